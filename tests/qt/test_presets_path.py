"""The command line finds the GUI's named class sets without Qt."""

from __future__ import annotations


def test_cli_reads_the_guis_preset_store(qtbot):
    from alens_gui.core.classsets import default_presets_path
    from alens_gui.qt.app import make_app
    from alens_gui.qt.window import default_config_dir

    make_app()  # the organisation and application names decide QStandardPaths' folder
    assert default_presets_path() == default_config_dir() / "class_presets.json"
