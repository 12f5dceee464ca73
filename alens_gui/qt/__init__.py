"""The desktop GUI of Attribution Lens Studio (PySide6 + pyqtgraph + superqt).

Everything that imports Qt lives in this package; the computations it shows come from
:mod:`alens_gui.core` and run in a thread pool (:mod:`alens_gui.qt.tasks`).
"""

from __future__ import annotations
