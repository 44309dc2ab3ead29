"""`helu example`: train one of the example user models and save it as a PyTorch file."""

HELP = (
    "train an example float model (digits-cnn, digits-mlp, wine-mlp, cancer-mlp) and save it "
    "with torch.save, as your own model would be: the input of 'helu quantize'"
)


def add_arguments(parser):
    from helu.golden.examples import EXAMPLES  # torch-free: models are built in run()

    parser.add_argument("name", choices=list(EXAMPLES), help="which example")
    parser.add_argument("--seed", type=int, default=0, help="initial weights and order seed")
    parser.add_argument("--epochs", type=int, help="training epochs (default: the example's)")
    parser.add_argument("--alpha", type=float, default=0.05, help="HeLU alpha (default 0.05)")
    parser.add_argument("--out", help="the .pt file to write (default: build/NAME.pt)")


def run(args) -> int:
    import os
    from pathlib import Path

    import numpy as np
    import torch

    from helu.golden import examples, quantize

    ex = examples.EXAMPLES[args.name]
    epochs = ex.epochs if args.epochs is None else args.epochs
    if epochs < 1 or args.seed < 0:
        raise ValueError(f"--epochs must be >= 1 and --seed >= 0, not {epochs} and {args.seed}")
    out = Path(args.out or f"build/{args.name}.pt")
    if out.is_dir():
        raise ValueError(f"--out {out} is a folder; give a .pt file name")
    data = quantize.load_data(ex.dataset)
    model = examples.train(examples.build(args.name, args.alpha, args.seed), data, epochs,
                           ex.lr, args.seed)  # fmt: skip
    with torch.no_grad():
        acc = float(np.mean(model(torch.from_numpy(data.x_test)).argmax(1).numpy() == data.y_test))
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + ".tmp")
    torch.save(model, tmp)
    os.replace(tmp, out)
    print(f"{args.name} ({ex.description}) on {ex.dataset}: test accuracy {100 * acc:.2f} %, "
          f"{epochs} epochs; written {out}")  # fmt: skip
    return 0
