"""The installed Qt binding keeps Python's reference counts: a long session must not crash.

PySide6 6.12.0 under Python 3.11 releases a reference to None (and to True/False) on every
call of a void method such as ``QLabel.setText``; after some thousand calls Python aborts with
"deallocating None". The window makes such calls all the time (1,000 class names are listed
for each model), so the test suite crashed midway. pyproject.toml keeps that version out.
"""

from __future__ import annotations

import sys

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QLabel, QListWidgetItem, QWidget


def test_void_calls_keep_the_reference_counts_of_none_and_bools(qapp):
    label, widget, item = QLabel(), QWidget(), QListWidgetItem("x")
    calls = (lambda: label.setText("a"), lambda: widget.setEnabled(True), lambda: item.setHidden(False),
             lambda: item.setData(Qt.ItemDataRole.UserRole, 3), lambda: item.setCheckState(Qt.CheckState.Checked))
    for call in calls:
        call()  # first calls may cache things
    before = sys.getrefcount(None), sys.getrefcount(True), sys.getrefcount(False)
    for _ in range(200):
        for call in calls:
            call()
    after = sys.getrefcount(None), sys.getrefcount(True), sys.getrefcount(False)
    lost = [b - a for a, b in zip(after, before)]
    import PySide6

    assert max(lost) < 50, (f"PySide6 {PySide6.__version__} on Python {sys.version.split()[0]} dropped "
                            f"{lost} references to None/True/False in 1,000 calls: it will crash the window")
