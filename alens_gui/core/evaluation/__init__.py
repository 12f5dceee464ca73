"""The evaluation suite: grid pointing game, insertion/deletion, randomization sanity checks.

Every benchmark compares base maps with lensed maps on seeded, offline inputs (the
scikit-image photographs or a user folder) and returns a plain dict
``{method: {"base": {...}, "al": {...}, "variants": {...}}, "_meta": {...}}`` that
:func:`format_markdown`, :func:`write_json` and :func:`save_plots` turn into a table,
a JSON file and PNG figures. Compute functions take a
:class:`~alens_gui.core.progress.Progress`, so the GUI can run them in a worker thread.
"""

from __future__ import annotations

from .common import DEFAULT_METHODS, LensVariant, lens_variants
from .data import EvaluationDataError, Sample, make_composites, make_grids, map_folder_classes, read_grids
from .grid import INSTANCE_COLUMNS, instance_rows, lens_ranking, run_grid_game, write_instances
from .metrics import (
    GRID_KEYS,
    auc,
    blur_positive,
    cosine,
    grid_scores,
    localisation,
    localisation_batch,
    pearson,
    pointing,
    spearman,
)
from .perturbation import run_perturbation
from .sanity import CLASS_SETS, cascade, cascade_groups, randomization_layers, run_sanity
from .summary import format_markdown, lens_choice, lens_choice_table, save_plots, write_json

__all__ = [
    "CLASS_SETS", "DEFAULT_METHODS", "GRID_KEYS", "INSTANCE_COLUMNS", "grid_scores", "instance_rows", "pointing",
    "read_grids", "write_instances", "EvaluationDataError", "LensVariant", "Sample", "auc", "blur_positive", "cascade",
    "cascade_groups", "cosine", "format_markdown", "lens_choice", "lens_choice_table", "lens_ranking",
    "lens_variants", "localisation",
    "localisation_batch", "make_composites", "make_grids", "map_folder_classes", "pearson",
    "randomization_layers", "run_grid_game", "run_perturbation", "run_sanity", "save_plots", "spearman",
    "write_json",
]
