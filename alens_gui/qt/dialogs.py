"""Dialogs of the main window: a 2 x 2 grid of images, file choosers with overwrite checks, shortcuts."""

from __future__ import annotations

import re
from pathlib import Path

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QMessageBox,
    QPushButton,
    QWidget,
)

from .session import SAMPLES

IMAGE_FILTER = "Images (*.png *.jpg *.jpeg *.tif *.tiff *.bmp *.webp *.gif *.dcm);;All files (*)"
SESSION_FILTER = "Attribution Lens sessions (*.alens)"
FIGURE_FILTER = "PNG (*.png);;SVG (*.svg);;PDF (*.pdf)"
GRID_DEFAULT = ("chelsea", "coffee", "rocket", "stereo_motorcycle")
SHORTCUTS = (
    ("Open an image", "Ctrl+O"),
    ("Run (explain with the current settings)", "Ctrl+R or F5"),
    ("Cancel the running work", "Esc"),
    ("Next / previous class", "] / ["),
    ("Next / previous image of the gallery", "Page Down / Page Up"),
    ("Open a folder (gallery)", "Ctrl+Shift+F"),
    ("Pin for comparison / unpin", "P / Shift+P"),
    ("Toggle the map overlay", "O"),
    ("Toggle the class-territory view", "T"),
    ("Reset zoom", "0"),
    ("Save / open a session", "Ctrl+S / Ctrl+Shift+O"),
    ("Export the figure", "Ctrl+E"),
)


class GridDialog(QDialog):
    """Pick four images (sample photographs or files) for a 2 x 2 grid."""

    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Compose a 2 × 2 grid")
        form = QFormLayout(self)
        self.combos: list[QComboBox] = []
        for i, pos in enumerate(("top left", "top right", "bottom left", "bottom right")):
            c = QComboBox()
            c.setEditable(True)
            c.addItems(list(SAMPLES))
            c.setCurrentText(GRID_DEFAULT[i])
            b = QPushButton("File…")
            b.clicked.connect(lambda _=False, c=c: self._browse(c))
            row = QHBoxLayout()
            row.addWidget(c, 1)
            row.addWidget(b)
            form.addRow(pos, row)
            self.combos.append(c)
        box = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel)
        box.accepted.connect(self.accept)
        box.rejected.connect(self.reject)
        form.addRow(box)

    def _browse(self, combo: QComboBox) -> None:
        path = open_file(self, "Tile image", IMAGE_FILTER)
        if path:
            combo.setCurrentText(path)

    def sources(self) -> list[str]:
        return [c.currentText().strip() for c in self.combos]


#: The folder the last file dialog was left in: every dialog starts there (this run of the program).
_last = {"folder": ""}


def last_folder() -> str:
    return _last["folder"]


def remember(path: str, is_folder: bool = False) -> str:
    """Note where a dialog was left (``path`` itself for a folder, else its folder); returns ``path``."""
    if path:
        _last["folder"] = str(Path(path) if is_folder else Path(path).parent)
    return path


def open_file(parent: QWidget, title: str, filt: str) -> str:
    path, _ = QFileDialog.getOpenFileName(parent, title, last_folder(), filt)
    return remember(path)


def open_folder(parent: QWidget, title: str) -> str:
    return remember(QFileDialog.getExistingDirectory(parent, title, last_folder()), is_folder=True)


def save_file(parent: QWidget, title: str, filt: str, default_suffix: str = "", suggested: str = "") -> str:
    """A target file name; the suffix of the chosen filter is added when the name has none.

    ``suggested`` is the name the dialog offers (e.g. ``chelsea-gradcam.png``). The dialog
    does not ask about overwriting: the window asks once, for every way a file is written
    (dialog, API, tests).
    """
    start = str(Path(last_folder()) / suggested) if last_folder() and suggested and not Path(suggested).is_absolute() \
        else (suggested or last_folder())
    path, chosen = QFileDialog.getSaveFileName(parent, title, start, filt,
                                               options=QFileDialog.Option.DontConfirmOverwrite)
    if path and not Path(path).suffix:
        path += "." + (chosen.split("*.")[-1].rstrip(")") if "*." in chosen else default_suffix)
    return remember(path)


def file_stem(text: str) -> str:
    """``text`` as a safe file-name stem: ``"coffee.png"`` -> ``"coffee"``,
    ``"chelsea (sample photograph)"`` -> ``"chelsea_sample_photograph"``."""
    return re.sub(r"[^\w.-]+", "_", Path(text).stem).strip("._") or "explanation"


def ask_overwrite(parent: QWidget, path: str) -> bool:
    answer = QMessageBox.question(parent, "Overwrite?", f"{path} exists. Replace it?")
    return answer == QMessageBox.StandardButton.Yes


def ask_run_code(parent: QWidget, what: str, where: str) -> bool:
    """Ask whether to load the model a session file names although loading it runs code.

    The dialog names the code (``what``: the architecture file, the callable or the
    TorchScript file) and the session (``where``), says that it will run as a program with
    the user's rights, and answers no unless the user clicks *Yes*.
    """
    box = QMessageBox(parent)
    box.setIcon(QMessageBox.Icon.Warning)
    box.setWindowTitle("Run code from a session?")
    box.setTextFormat(Qt.TextFormat.PlainText)  # names come from the file: never read as markup
    box.setText(f"The session {where} names a model whose loading will run code: {what}.")
    box.setInformativeText(
        "That code runs as a program with your rights and can do anything you can. Load the model "
        "only if you trust whoever made the session and the file it names.\n\n"
        "Without it, the session opens with its saved maps and the current model stays in use."
    )
    box.setStandardButtons(QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.No)
    box.setDefaultButton(QMessageBox.StandardButton.No)
    box.setEscapeButton(QMessageBox.StandardButton.No)
    box.button(QMessageBox.StandardButton.Yes).setText("Run the code and load the model")
    box.button(QMessageBox.StandardButton.No).setText("Do not load it")
    return box.exec() == QMessageBox.StandardButton.Yes


def show_shortcuts(parent: QWidget) -> None:
    rows = "".join(f"<tr><td>{what}</td><td><b>{keys}</b></td></tr>" for what, keys in SHORTCUTS)
    QMessageBox.information(parent, "Keyboard shortcuts", f"<table cellspacing='6'>{rows}</table>")
