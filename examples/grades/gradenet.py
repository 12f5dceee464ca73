"""A small CNN for four texture "grades": the kind of architecture a user brings in a .py file.

``alens ... --model grades.pt --arch examples/grades/gradenet.py:GradeNet`` builds it and loads
the state dict; ``num_classes`` comes from the checkpoint. The class attributes ``input_size``,
``mean`` and ``std`` tell Attribution Lens how the network was trained (no flags needed).
"""

from __future__ import annotations

import torch
from torch import nn


class GradeNet(nn.Module):
    """Four convolutions, global average pooling, one linear layer (about 10 k weights)."""

    input_size = (64, 64)
    mean = (0.5, 0.5, 0.5)
    std = (0.5, 0.5, 0.5)

    def __init__(self, num_classes: int = 4) -> None:
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(3, 8, 5, stride=2, padding=2), nn.ReLU(),
            nn.Conv2d(8, 16, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(16, 32, 3, padding=1), nn.ReLU(),
        )
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(32, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(torch.flatten(self.pool(self.features(x)), 1))
