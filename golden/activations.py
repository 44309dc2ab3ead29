"""HeLU in PyTorch: the authors' semantics with a one-byte backward stash.

Forward is ReLU, ``y = z if z > 0 else 0``; backward passes the gradient where ``z > -alpha``
(strict in both, ``alpha >= 0``; ``alpha = 0`` is ReLU exactly, including ``dz = 0`` at ``z = 0``).
The authors' reference module saves the whole pre-activation ``z`` for backward (4 bytes per
element in float32). HeLU here saves only the boolean mask ``z > -alpha`` (1 byte per element),
which is all backward needs; the hardware forward unit emits the same bit.

Two implementations give the same numbers (tests/test_activations.py checks both against the
authors' formulation): a small tensor goes through :func:`_helu_native`, ATen ops only, so the
training step has no Python autograd node; a large one (and any call under ``torch.compile``)
through :class:`HeLUFunction`, whose kernels pass over memory fewer times.
"""

import functools
from collections.abc import Callable

import torch
from torch import nn

from helu.golden.fixed import validate_alpha  # re-exported: the one alpha check

__all__ = [
    "HeLUFunction",
    "HeLU",
    "helu",
    "validate_alpha",
    "swap_activations",
    "STUDY_ACTIVATIONS",
    "register_activation",
    "LEAKY_SLOPE",
]

STUDY_ACTIVATIONS: dict[str, Callable[[float], nn.Module]] = {}
"""Study activation name -> ``make(alpha)`` returning a fresh module (``alpha`` only for HeLU).

The studies, the CLI and the hardware registry (``UnitInfo.study``) read the names from here; a
new activation is one :func:`register_activation` next to its definition."""

# LeakyReLU's negative slope is the hardware baseline's: a power of two, so the unit is a shift.
LEAKY_SLOPE = 2.0**-7


def register_activation(name: str, make: Callable[[float], nn.Module]) -> None:
    """Make ``make(alpha) -> nn.Module`` the study activation ``name`` (once per name)."""
    if name in STUDY_ACTIVATIONS:
        raise RuntimeError(f"study activation {name!r} is registered twice")
    STUDY_ACTIVATIONS[name] = make


# Below this many elements a step is dominated by the cost of each call, above it by memory
# traffic; _helu picks the implementation by it and HeLUFunction its kernels (all give the same
# numbers). Measured on a 2-core Xeon with one thread (forward and backward of one call, thread
# CPU time): at 4,096 elements _helu_native adds 15 us to ReLU's 38 us and HeLUFunction 23 us;
# at 65,536 _helu_native adds 172 us to ReLU's 237 us and HeLUFunction 88 us.
_FEW_ELEMENTS = 1 << 15


class HeLUFunction(torch.autograd.Function):
    """``y = where(z > 0, z, 0)``, ``dz = where(z > -alpha, g, 0)``, with a bool stash.

    Works for any shape and floating dtype. ``alpha`` receives no gradient. The backward is
    written with differentiable ops, so double backward works (it is linear in ``g``).

    Both directions use the fastest CPU kernels that give the same numbers as the authors'
    ``where``: ``relu`` forward (identical for every number; a NaN stays NaN instead of being
    masked to 0, so a diverged run does not look healthy) and a multiply by the mask viewed as
    ``int8`` backward (identical for every finite gradient; a non-finite gradient at a masked
    element gives NaN, ``0 * inf``). ``torch.where`` and ``masked_fill`` on CPU are several
    times slower than both, and so is a comparison that writes ``bool``: a large tensor's mask
    is compared into the float output buffer (vectorized) and cast to ``bool``, then ``relu``
    overwrites the buffer, so the forward allocates what ReLU's does plus the 1-byte mask.
    ``alpha = 0`` is not routed here: :func:`helu` and :class:`HeLU` call ``torch.relu``. Nor,
    in eager mode, are small tensors: a Python autograd node costs about as much as ReLU's whole
    forward and backward on 4,096 elements, so they take :func:`_helu_native`.
    """

    @staticmethod
    def forward(ctx, z, alpha):
        if z.numel() < _FEW_ELEMENTS:
            ctx.save_for_backward(z > -alpha)
            return torch.relu(z)
        y = torch.gt(z, -alpha, out=torch.empty_like(z))
        ctx.save_for_backward(y.bool())
        return torch.clamp_min(z, 0, out=y)  # torch.relu is clamp_min(z, 0)

    @staticmethod
    def backward(ctx, grad):
        (keep,) = ctx.saved_tensors
        # int8, not uint8 or bool: its cast to float is the vectorized one on CPU.
        keep = keep.view(torch.int8)
        if keep.numel() < _FEW_ELEMENTS or grad.requires_grad:
            return grad * keep, None
        # One buffer (the cast mask) multiplied in place, where grad * keep makes two.
        return keep.to(grad.dtype).mul_(grad), None


@functools.lru_cache(maxsize=64)
def _minus(alpha: float, dtype: torch.dtype, device: torch.device) -> torch.Tensor:
    # -alpha rounded to z's dtype, as a 0-dim tensor: comparing with it rounds alpha as the
    # Python scalar does, and skips wrapping the scalar into a new tensor on every call.
    return torch.tensor(-alpha, dtype=dtype, device=device)


def _helu_native(z: torch.Tensor, alpha: float) -> torch.Tensor:
    """HeLU from ATen ops only: no Python autograd node, so no Python in the backward pass.

    ``z * keep`` (``keep`` the bool mask viewed as ``int8``, the vectorized cast on CPU) records
    autograd's own ``MulBackward0``, which saves ``keep`` alone (``z`` is not needed for the
    gradient with respect to ``z``) and computes ``grad * keep``: HeLUFunction's backward. The
    product is the right node with the wrong values in the band (``z`` where ``-alpha < z <=
    0``): ``relu(z)`` overwrites them through ``.data``, out of autograd's sight, which is sound
    because nothing saved the product. In a training step of the [64, 64] MLP at batch 64 this
    takes HeLU from about 1.22x ReLU's time (the Python node) to about 1.11x: three ATen calls
    where ReLU makes one, each about 2 to 5 us on 4,096 elements (docs/use-helu.md).
    """
    keep = torch.gt(z, _minus(alpha, z.dtype, z.device)).view(torch.int8)
    y = z.mul(keep)
    torch.clamp_min(z.data, 0, out=y.data)  # torch.relu is clamp_min(z, 0)
    return y


def _helu_function(z: torch.Tensor, alpha: float) -> torch.Tensor:
    # ReLU's own autograd path where nothing tells HeLU from ReLU: alpha = 0 (the same numbers,
    # bit for bit, forward and backward), and no gradient wanted (the forward is relu either way).
    if alpha == 0 or not (z.requires_grad and torch.is_grad_enabled()):
        return torch.relu(z)
    return HeLUFunction.apply(z, alpha)


@torch.jit.ignore  # TorchScript takes _helu_function (HeLU.forward); eager Python takes this
def _helu(z: torch.Tensor, alpha: float) -> torch.Tensor:
    # Dynamo and AOTAutograd trace the autograd.Function; they need not see the .data write.
    if (
        alpha != 0
        and z.requires_grad
        and torch.is_grad_enabled()
        and z.numel() < _FEW_ELEMENTS
        and not torch.compiler.is_compiling()
    ):
        return _helu_native(z, alpha)
    return _helu_function(z, alpha)


def helu(z: torch.Tensor, alpha: float = 0.05) -> torch.Tensor:
    """Functional HeLU (see :class:`HeLUFunction`)."""
    alpha = validate_alpha(alpha)
    if not isinstance(z, torch.Tensor):
        raise TypeError(f"HeLU input must be a torch.Tensor, not {type(z).__name__}")
    if not z.is_floating_point():
        raise TypeError(f"HeLU input must have a floating dtype, not {z.dtype}")
    return _helu(z, alpha)


class HeLU(nn.Module):
    """Hysteresis activation: ReLU forward, gradient where ``z > -alpha`` (default 0.05).

    Parameters
    ----------
    alpha : float
        Width of the band ``(-alpha, 0]`` where the output is 0 but the gradient still flows.
        Fixed (not learned), ``>= 0``.
    """

    def __init__(self, alpha: float = 0.05):
        super().__init__()
        self._alpha = validate_alpha(alpha)

    @property
    def alpha(self) -> float:
        return self._alpha

    def forward(self, z):
        # alpha was checked once, at construction; torch.relu and apply() refuse non-tensors.
        if torch.jit.is_scripting():
            return _helu_function(z, self._alpha)
        return _helu(z, self._alpha)

    def extra_repr(self):
        return f"alpha={self._alpha:g}"


def swap_activations(model: nn.Module, make, kinds=(nn.ReLU, nn.GELU)) -> list[str]:
    """Replace every ``nn.ReLU``/``nn.GELU`` submodule of ``model`` with ``make()``, in place.

    ``make`` is a zero-argument callable returning a fresh module (e.g. ``lambda: HeLU(0.05)``);
    each replaced module gets its own instance, under the same name. Activations called as
    functions inside ``forward`` (``F.relu``) are not modules and cannot be swapped. Returns the
    qualified names of the replaced modules (empty when there were none).
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"Model must be a torch.nn.Module, not {type(model).__name__}")
    if not callable(make):
        raise TypeError(f"make must be a callable returning a module, not {make!r}")
    targets = [
        (name, module)
        for name, module in model.named_modules()
        if name and isinstance(module, tuple(kinds))
    ]
    swapped = []
    for name, _ in targets:
        parent_name, _, child = name.rpartition(".")
        parent = model.get_submodule(parent_name) if parent_name else model
        new = make()
        if not isinstance(new, nn.Module):
            raise TypeError(f"make() must return a torch.nn.Module, not {type(new).__name__}")
        setattr(parent, child, new)
        swapped.append(name)
    return swapped


register_activation("relu", lambda alpha: nn.ReLU())
register_activation("helu", lambda alpha: HeLU(alpha))
register_activation("gelu", lambda alpha: nn.GELU())
register_activation("elu", lambda alpha: nn.ELU())
register_activation("leaky", lambda alpha: nn.LeakyReLU(LEAKY_SLOPE))
register_activation("relu6", lambda alpha: nn.ReLU6())  # clipped ReLU, hw unit clipped-relu
