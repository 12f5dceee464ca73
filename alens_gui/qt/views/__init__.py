"""Views: they draw the session and nothing else (no state of their own beyond what is drawn)."""

from .compare import CompareView
from .maps import MapsView
from .readouts import DistributionView, ProbabilityView

__all__ = ["CompareView", "DistributionView", "MapsView", "ProbabilityView"]
