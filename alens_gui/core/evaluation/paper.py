"""The first paper's ResNet-50 numbers, to print next to ours.

"Hidden in Plain Sight" reports, for each method, the value *with* the lens and the
relative change against the method without it: Table 1 (grid pointing game on
Quad-ImageNet: RA, IoU, F1), Table 2 (insertion AUC) and Table 12 (deletion AUC), all
for ResNet-50. The sanity check is given as curves only (its Figure 6), so there is
nothing to tabulate for it. Only the methods listed here can be compared; any other
method we run (Saliency, for one) is "ours only".
"""

from __future__ import annotations

#: Our method names -> the paper's row labels.
PAPER_LABELS = {
    "gradcam": "GradCam",
    "guided_backprop": "GBP",
    "guided_gradcam": "Guide-GC",
    "ixg": "IxG",
    "ig": "IG",
    "lrp": "LRP",
}

#: ``{protocol: {metric: {method: (value with AL, relative change in %)}}}``, ResNet-50.
RESNET50 = {
    "grid": {
        "ra": {"gradcam": (0.88, 25), "guided_backprop": (0.86, 144), "guided_gradcam": (0.91, 21),
               "ixg": (0.55, 37), "ig": (0.56, 36), "lrp": (0.88, 56)},
        "iou": {"gradcam": (0.67, 64), "guided_backprop": (0.26, 32), "guided_gradcam": (0.34, 31),
                "ixg": (0.20, 0), "ig": (0.20, 0), "lrp": (0.69, 97)},
        "f1": {"gradcam": (0.79, 38), "guided_backprop": (0.41, 25), "guided_gradcam": (0.50, 23),
               "ixg": (0.33, 0), "ig": (0.34, 0), "lrp": (0.79, 55)},
    },
    "insertion": {
        "auc": {"ig": (0.53, 13), "guided_backprop": (0.65, 25), "ixg": (0.50, 14), "guided_gradcam": (0.65, 3),
                "gradcam": (0.61, 0), "lrp": (0.61, 11)},
    },
    "deletion": {
        "auc": {"ig": (0.06, -25), "guided_backprop": (0.04, -20), "ixg": (0.09, -18), "guided_gradcam": (0.03, -25),
                "gradcam": (0.04, 0), "lrp": (0.04, 0)},
    },
}

#: Where each protocol's numbers come from.
SOURCES = {
    "grid": "Table 1, ResNet-50, Quad-ImageNet",
    "insertion": "Table 2a, ResNet-50",
    "deletion": "Table 12a, ResNet-50",
}


def paper_entry(protocol: str, metric: str, method: str) -> tuple[float, float] | None:
    """``(value with AL, relative change %)`` from the paper, or ``None`` if it has no such row."""
    return RESNET50.get(protocol, {}).get(metric, {}).get(method)
