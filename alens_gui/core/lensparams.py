"""The lens's parameters and presets, importable without torch (the GUI builds its forms from them).

:mod:`alens_gui.core.lens` computes with them; see its docstring for the choices.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace

import numpy as np

from .errors import LensError

NORMALIZE_CHOICES = ("none", "joint-maxabs")
SOFTMAX_INPUT_CHOICES = ("signed", "abs")
REDUCE_CHOICES = ("sum", "abs-sum", "none")
#: A pixel is kept for class c only where S_c > 1/K + tau + TIE_MARGIN: a tie (K equal maps,
#: S = 1/K plus rounding) is never above chance (SPEC section 1.4).
TIE_MARGIN = 1e-6


@dataclass(frozen=True)
class LensParams:
    """Parameters of the refinement (SPEC section 1).

    Attributes
    ----------
    temperatures : tuple of float
        Softmax temperatures ``t``; the distribution is the mean of the softmaxes over
        them. AL uses ``(1.0, 0.2, 0.01)``, i.e. ``1/t`` in ``{1, 5, 100}``.
    tau : float
        Margin above chance: a pixel is kept for class ``c`` where ``S_c > 1/K + tau``
        (plus :data:`TIE_MARGIN`, so that ties keep nothing).
    normalize : {"none", "joint-maxabs"}
        Scale applied to all K maps before the softmax.
    softmax_input : {"signed", "abs"}
        Feed the signed maps, or their absolute values, to the softmax.
    reduce : {"sum", "abs-sum", "none"}
        How pixel-space maps (K x C x H x W) are reduced over channels.
    """

    temperatures: tuple[float, ...] = (1.0, 0.2, 0.01)
    tau: float = 0.0
    normalize: str = "none"
    softmax_input: str = "signed"
    reduce: str = "sum"

    def __post_init__(self) -> None:
        temps = tuple(float(t) for t in np.atleast_1d(np.asarray(self.temperatures, dtype=float)))
        object.__setattr__(self, "temperatures", temps)
        object.__setattr__(self, "tau", float(self.tau))
        if not temps:
            raise LensError("the lens needs at least one temperature")
        if any(not np.isfinite(t) or t <= 0 for t in temps):
            raise LensError(f"temperatures must be positive numbers, got {list(temps)}")
        if not np.isfinite(self.tau) or not -1.0 < self.tau < 1.0:
            raise LensError(f"tau must be a number between -1 and 1, got {self.tau}")
        for name, value, choices in (
            ("normalize", self.normalize, NORMALIZE_CHOICES),
            ("softmax_input", self.softmax_input, SOFTMAX_INPUT_CHOICES),
            ("reduce", self.reduce, REDUCE_CHOICES),
        ):
            if value not in choices:
                raise LensError(f"{name} must be one of {', '.join(choices)}; got {value!r}")

    def with_(self, **changes) -> LensParams:
        """A copy with some fields changed (``None`` values are ignored)."""
        return replace(self, **{k: v for k, v in changes.items() if v is not None})

    def as_dict(self) -> dict:
        d = asdict(self)
        d["temperatures"] = list(self.temperatures)
        return d

    def describe(self) -> str:
        """A short human-readable caption, e.g. for exported figures."""
        inv = ", ".join(f"{1.0 / t:g}" for t in self.temperatures)
        return (
            f"1/t={{{inv}}}, tau={self.tau:g}, normalize={self.normalize}, "
            f"softmax={self.softmax_input}"
        )


#: The Attribution Lens defaults (first paper).
AL = LensParams()
#: The earlier VAR form: one temperature t = 0.1 and a margin tau = 0.01.
VAR = LensParams(temperatures=(0.1,), tau=0.01)
PRESETS = {"al": AL, "var": VAR}


def preset(name: str) -> LensParams:
    """Return the named preset (``"al"`` or ``"var"``)."""
    try:
        return PRESETS[name.lower()]
    except KeyError:
        raise LensError(f"unknown lens preset {name!r}; choose one of {', '.join(PRESETS)}") from None
