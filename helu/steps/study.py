"""Step ``study``: the quick accuracy study on the bundled digits data (``golden.train.QUICK``:
ReLU, HeLU, GELU, LeakyReLU) into ``<out>/study/``; its HeLU checkpoint feeds the golden step.

The report reads ``study/metrics.json``. The HeLU against ReLU comparison is read with the
collapse study's significance rule (``golden.collapse.paired_verdict``, McNemar exact on the
seeds' paired outcomes): a difference that rule does not find is "no difference within noise".
"""

import logging
from dataclasses import replace

from helu.markdown import table
from helu.steps.base import DONE, Context, Step, Verdict, need

__all__ = ["STEP", "StudyStep", "compare"]

log = logging.getLogger(__name__)


def _fmt(x, spec=".3f"):
    return "n/a" if x is None else format(x, spec)


def compare(arm: dict, relu: dict) -> str:
    """One line comparing a HeLU row of ``metrics.json`` with ReLU's, over seeds paired by
    index: the difference counts only as the collapse study's rule says (``p < SIGNIFICANCE``,
    McNemar exact on the seeds where one beat the other); otherwise "no difference within
    noise"."""
    import math

    from helu.golden.collapse import SIGNIFICANCE, mcnemar, paired_verdict

    a, r = arm.get("acc", []), relu.get("acc", [])
    pairs = list(zip(a, r, strict=False))
    wins = sum(x > y for x, y in pairs)
    losses = sum(x < y for x, y in pairs)
    diff = arm["acc_mean"] - relu["acc_mean"]
    if abs(diff) < 1e-6:  # equal up to float32 rounding (accuracies are k / n_test)
        diff = 0.0
    p = mcnemar(wins, losses)
    verdict = paired_verdict({"diff": diff, "p": p}, better=1)
    spread = math.hypot(arm["acc_std"], relu["acc_std"])
    said = {
        "helps": "beats relu",
        "hurts": "trails relu",
        "null": "shows no difference from relu within noise",
    }[verdict]
    label = arm.get("label") or arm["act"]
    return (
        f"{label} {said}: {100 * arm['acc_mean']:.2f} ± {100 * arm['acc_std']:.2f} % vs "
        f"{100 * relu['acc_mean']:.2f} ± {100 * relu['acc_std']:.2f} % ({100 * diff:+.2f} points, "
        f"combined std {100 * spread:.2f}; better on {wins} of {len(pairs)} paired seeds, worse "
        f"on {losses}: McNemar p = {p:.2g}, significant below {SIGNIFICANCE:g})"
    )


class StudyStep(Step):
    name = "study"
    title = "Accuracy study"
    record = "study/metrics.json"

    def doing(self, ctx):
        return "training the quick study on digits (ReLU, HeLU, GELU, LeakyReLU)"

    def run(self, ctx: Context) -> None:
        from helu.golden.train import QUICK, run_study

        seeds = ctx.options.seeds
        cfg = QUICK if seeds is None else replace(QUICK, seeds=tuple(range(seeds)))
        metrics = run_study(cfg, ctx.out / "study")
        ctx.shared["metrics"] = metrics
        log.info("      %s", metrics["comparison"]["summary"])

    def check(self, data, path):
        super().check(data, path)
        results = data.get("results")
        need(path, "dataset" in data, "no 'dataset'")
        need(path, isinstance(results, list) and results, "no 'results' list")
        for r in results:
            need(path, isinstance(r, dict), "a result is not an object")
            for key in ("act", "acc_mean", "acc_std"):
                need(path, key in r, f"a result has no {key!r}")

    def summary(self, data):
        keys = ("act", "alpha", "label", "acc_mean", "acc_std", "dead_frac")
        return {
            "dataset": data["dataset"],
            "model": data.get("model"),
            "results": [
                {k: r.get(k) for k in keys} | {"seeds": len(r.get("acc", []))}
                for r in data["results"]
            ],
        }

    def comparison(self, data) -> list[str]:
        relu = next((r for r in data["results"] if r.get("label", r["act"]) == "relu"), None)
        if relu is None:
            relu = next((r for r in data["results"] if r["act"] == "relu"), None)
        lines = [compare(r, relu) for r in data["results"] if r["act"] == "helu" and relu]
        if relu is None:
            lines.append("No ReLU baseline in this study: HeLU was not compared.")
        best = max(data["results"], key=lambda r: r["acc_mean"])
        lines.append(f"Best setting: {best.get('label') or best['act']} "
                     f"({100 * best['acc_mean']:.2f} %).")  # fmt: skip
        return lines

    def section(self, data, found, out_dir):
        rows = [
            (
                r.get("label") or r["act"],
                len(r.get("acc", [])),
                f"{100 * r['acc_mean']:.2f} ± {100 * r['acc_std']:.2f}",
                _fmt(r.get("dead_frac")),
                _fmt(r.get("band_frac")),
            )
            for r in data["results"]
        ]
        parts = [
            f"Dataset `{data['dataset']}`, model `{data.get('model')}`; test accuracy over seeds "
            "(mean ± std), dead-unit fraction (units never positive on the training set) and the "
            "share of pre-activations inside the HeLU band (-alpha, 0].\n",
            table(["activation", "seeds", "test acc %", "dead frac", "band frac"], rows),
            "",
        ]
        parts += [f"- {line}" for line in self.comparison(data)] + [""]
        for name, file in data.get("plots", {}).items():
            if (out_dir / "study" / file).is_file():
                parts.append(f"![{name}](study/{file})\n")
        return parts

    def verdict(self, data, found, out_dir):
        seeds = max(len(r.get("acc", [])) for r in data["results"])
        return Verdict(DONE, f"{len(data['results'])} settings x {seeds} seeds trained")


STEP = StudyStep()
