"""``alens evaluate grid|insertion|deletion|perturbation|sanity|lens-choice``: the benchmarks on the command line.

Prints Markdown tables on stdout, progress bars on stderr, and optionally writes every
number as JSON (``--json``) and the figures as PNGs (``--plots``). Lens options take
comma-separated lists and are swept (their cartesian product); the first combination is
the one reported as "AL". ``perturbation`` runs insertion and deletion on the same maps
(one JSON file with both); ``lens-choice`` reads result JSON files and ranks the lens
variants over all the benchmarks they hold; ``report`` prints the tables of result JSON
files again, optionally with another lens variant as "AL" (``--al``).
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

PROTOCOLS = ("grid", "insertion", "deletion", "perturbation", "sanity", "lens-choice", "report")


def _list_of(choices):
    def parse(text: str) -> tuple[str, ...]:
        vals = tuple(v.strip().lower() for v in text.split(",") if v.strip())
        bad = [v for v in vals if v not in choices]
        if not vals or bad:
            raise argparse.ArgumentTypeError(
                f"expected a comma-separated list of {', '.join(choices)}; got {text!r}"
            )
        return tuple(dict.fromkeys(vals))

    return parse


def add_evaluate_parser(subparsers) -> argparse.ArgumentParser:
    """Register ``evaluate`` on the ``alens`` sub-command parser; return the new parser."""
    from .cli_args import _batch_size, _floats, _option, add_model_arguments
    from .core.evaluation.common import DEFAULT_METHODS
    from .core.lens import NORMALIZE_CHOICES, PRESETS, SOFTMAX_INPUT_CHOICES

    p = subparsers.add_parser(
        "evaluate",
        help="benchmarks: grid pointing game, insertion/deletion AUC, randomization sanity check",
        description="Compare base attribution maps with lensed maps on seeded offline inputs "
                    "(the scikit-image photographs, or --folder).",
    )
    p.add_argument("protocol", choices=PROTOCOLS, help="which benchmark to run")
    p.add_argument("--methods", default=None,
                   help=f"comma-separated registered methods (default: {','.join(DEFAULT_METHODS)}); "
                        "lens-choice, report: keep only these methods of the files")
    add_model_arguments(p)
    p.add_argument("--n", type=int, default=None,
                   help="number of grids / composites (default: 8; 2 for sanity)")
    p.add_argument("--seed", type=int, default=0, help="seed of the grids / composites (default: %(default)s)")
    p.add_argument("--folder", help="ImageNet-val style folder (one sub-folder per class) instead of the photographs")
    p.add_argument("--grids", metavar="DIR",
                   help="grid: pre-built grids, a folder holding grids.json and the grid images "
                        "(see README, Evaluation), instead of drawing grids")
    p.add_argument("--instances", metavar="FILE",
                   help="grid, report: write every per-instance value (grid, tile, class, method, lens, metric, base, "
                        "refined) to FILE, CSV for .csv, JSON otherwise: for paired tests")
    p.add_argument("--batch-size", type=_batch_size, default=None, metavar="N|auto",
                   help="grid, insertion, deletion, perturbation: grids / composites per batch of the batch engine "
                        "(composed ahead, one forward pass per batch with each its own classes, scored on a writer "
                        "thread; the values equal batch size 1); default: auto, as for explain")
    p.add_argument("--option", "-O", type=_option, action="append", default=[], metavar="[METHOD.]NAME=VALUE",
                   help="a method option, e.g. -O ig.steps=16 (repeatable)")
    p.add_argument("--steps", type=int, default=None,
                   help="insertion/deletion: curve steps (default 16); sanity: randomization steps (default 8)")
    p.add_argument("--class-sets", type=_list_of(("top2", "tiles")), default=("top2", "tiles"),
                   help="sanity: class sets, first one reported first (default: top2,tiles)")
    p.add_argument("--paper", action="store_true",
                   help="print the first paper's ResNet-50 numbers next to ours, with averages over the "
                        "methods both report")
    p.add_argument("--inputs", nargs="+", metavar="FILE", help="lens-choice, report: result JSON files to read")
    p.add_argument("--al", metavar="VARIANT", help="report: the lens variant shown as AL, e.g. al/none/abs")
    p.add_argument("--summary", action="store_true",
                   help="report: one table, one row per method across all the files, ours beside the paper's")
    p.add_argument("--json", metavar="FILE", help="write every number to FILE as JSON")
    p.add_argument("--plots", metavar="DIR", help="write the figures as PNGs into DIR")
    p.add_argument("--overwrite", action="store_true",
                   help="replace the --json / --instances files when they exist (checked before any work; "
                        "without it an existing file stops the run and nothing is replaced)")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    g = p.add_argument_group("lens (comma-separated lists are swept)")
    g.add_argument("--preset", type=_list_of(tuple(PRESETS)), default=("al",), help="al and/or var (default: al)")
    g.add_argument("--normalize", type=_list_of(NORMALIZE_CHOICES), default=None,
                   help="none and/or joint-maxabs (default: the preset's)")
    g.add_argument("--softmax-input", type=_list_of(SOFTMAX_INPUT_CHOICES), default=None,
                   help="signed and/or abs (default: the preset's)")
    g.add_argument("--temperatures", type=_floats, help="softmax temperatures t for every variant, e.g. 1,0.2,0.01")
    g.add_argument("--tau", type=float, help="margin above chance for every variant")
    p.set_defaults(func=cmd_evaluate)
    return p


class _Bar:
    """A tqdm bar driven by Progress callbacks (done, total, message)."""

    def __init__(self, desc: str, disable: bool) -> None:
        from tqdm import tqdm

        self.bar = tqdm(total=0, desc=desc, unit="run", file=sys.stderr, disable=True if disable else None,
                        dynamic_ncols=True)

    def __call__(self, done: float, total: float, message: str) -> None:
        self.bar.total = int(total)
        self.bar.n = int(done)
        if message:
            self.bar.set_postfix_str(message[:60], refresh=False)
        self.bar.refresh()

    def close(self) -> None:
        self.bar.close()


def _read_results(args) -> list[dict]:
    """Every results dict in the ``--inputs`` JSON files (a perturbation file holds two), keeping
    only ``--methods`` when given."""
    from .cli_args import _Usage
    from .core import safeio
    from .core.errors import AlensError

    if not args.inputs:
        raise _Usage(f"{args.protocol} needs --inputs FILE ... (JSON files written by alens evaluate --json)")
    out = []
    for name in args.inputs:
        try:  # results files are passed around: size and nesting limits, regular files only
            data = safeio.read_json(name, str(name), what="results file")
        except AlensError as exc:
            raise _Usage(f"cannot read results: {exc}") from None
        if not isinstance(data, dict):
            raise _Usage(f"{name}: not a results file of alens evaluate")
        parts = [data] if "_meta" in data else [v for v in data.values() if isinstance(v, dict) and "_meta" in v]
        if not parts or not all(isinstance(p["_meta"], dict) and isinstance(p["_meta"].get("protocol"), str)
                                for p in parts):
            raise _Usage(f"{name}: not a results file of alens evaluate")
        out.extend(parts)
    if args.methods:
        from .core.evaluation.common import resolve_methods

        keep = {i.name for i in resolve_methods(args.methods)}
        out = [{k: v for k, v in p.items() if k.startswith("_") or k in keep} for p in out]
        for p in out:
            if isinstance(p.get("_instances"), list):
                p["_instances"] = [i for i in p["_instances"] if isinstance(i, dict) and i.get("method") in keep]
    return out


def _lens_choice(args) -> int:
    from .cli_args import _Usage
    from .core.evaluation.summary import lens_choice_table

    by = {part["_meta"]["protocol"]: part for part in _read_results(args)}
    try:
        print(lens_choice_table(by), flush=True)
    except ValueError as exc:
        raise _Usage(str(exc)) from None
    return 0


def _report(args) -> int:
    from .cli_args import _Usage
    from .core.evaluation import format_markdown, save_plots, write_json
    from .core.evaluation.summary import summary_table, with_al_variant

    parts = _read_results(args)
    if args.al:
        try:
            parts = [with_al_variant(p, args.al) for p in parts]
        except ValueError as exc:
            raise _Usage(str(exc)) from None
    if args.instances:
        from .core.evaluation import write_instances

        grid = [p for p in parts if p["_meta"]["protocol"] == "grid"]
        if len(grid) != 1:
            raise _Usage("--instances needs exactly one grid results file in --inputs")
        print(f"wrote {write_instances(grid[0], args.instances)}", file=sys.stderr)
    if args.summary:
        print(summary_table({p["_meta"]["protocol"]: p for p in parts}), flush=True)
        return 0
    print("\n\n".join(format_markdown(p, paper=args.paper) for p in parts), flush=True)
    if args.json:
        data = parts[0] if len(parts) == 1 else {p["_meta"]["protocol"]: p for p in parts}
        print(f"wrote {write_json(data, args.json)}", file=sys.stderr)
    if args.plots:
        for p in parts:
            for path in save_plots(p, args.plots):
                print(f"wrote {path}", file=sys.stderr)
    return 0


def _check_targets(args) -> None:
    """Refuse before any work to replace a results file (``--json``, ``--instances``) that exists,
    unless ``--overwrite``: earlier results, perhaps hours of them, are not lost to a repeated command."""
    from .cli_args import _Failed

    if args.overwrite:
        return
    for flag, name in (("--json", args.json), ("--instances", args.instances)):
        if name and os.path.lexists(name) and not Path(name).is_dir():
            raise _Failed(f"{flag} {name} already exists; nothing was run or replaced: --overwrite replaces it, "
                          "or give another file name")


def cmd_evaluate(args) -> int:
    from .cli_args import _Usage, load_from_args
    from .core.evaluation import (
        format_markdown,
        lens_variants,
        run_grid_game,
        run_perturbation,
        run_sanity,
        save_plots,
        write_json,
    )
    from .core.evaluation.common import DEFAULT_METHODS, resolve_methods, split_options
    from .core.progress import Progress

    _check_targets(args)  # before any model work: an evaluation can take hours
    if args.protocol == "lens-choice":
        return _lens_choice(args)
    if args.protocol == "report":
        return _report(args)
    if args.inputs or args.al:
        raise _Usage("--inputs and --al apply to lens-choice and report only")
    n = args.n if args.n is not None else (2 if args.protocol == "sanity" else 8)
    if n < 1:
        raise _Usage(f"--n must be at least 1; got {n}")
    if args.steps is not None and args.steps < (1 if args.protocol == "sanity" else 2):
        raise _Usage(f"--steps is too small: {args.steps}")
    if args.steps is not None and args.protocol == "grid":
        raise _Usage("--steps applies to insertion, deletion and sanity, not to grid")
    if args.batch_size is not None and args.protocol not in ("grid", "insertion", "deletion", "perturbation"):
        raise _Usage("--batch-size applies to grid, insertion, deletion and perturbation")
    batch_size = "auto" if args.batch_size is None else args.batch_size
    if args.grids and args.protocol != "grid":
        raise _Usage("--grids applies to grid only")
    if args.instances and args.protocol != "grid":
        raise _Usage("--instances applies to grid and report only")
    if args.grids and args.folder:
        raise _Usage("give --grids (pre-built grids) or --folder (grids drawn from it), not both")
    if args.instances and Path(args.instances).is_dir():
        raise _Usage(f"--instances {args.instances} is a folder; give a file name")
    if args.json and Path(args.json).is_dir():
        raise _Usage(f"--json {args.json} is a folder; give a file name")
    if args.plots and Path(args.plots).exists() and not Path(args.plots).is_dir():
        raise _Usage(f"--plots {args.plots} exists and is not a folder")
    infos = resolve_methods(args.methods or DEFAULT_METHODS)  # bad names and options fail before the model loads
    options = dict(args.option)
    split_options(infos, options)
    variants = lens_variants(args.preset, args.normalize, args.softmax_input, args.temperatures, args.tau)
    loaded = load_from_args(args)
    grids = None
    if args.grids:  # an EvaluationDataError is one line, like every other core error
        from .core.evaluation import read_grids

        grids = read_grids(loaded, args.grids)
    bar = _Bar(f"evaluate {args.protocol}", args.no_progress)
    progress = Progress(bar)
    common = dict(lens_params_list=variants, progress=progress, folder=args.folder, method_options=options)
    names = [i.name for i in infos]
    try:
        if args.protocol == "grid":
            results = run_grid_game(loaded, names, n, args.seed, grids=grids, batch_size=batch_size,
                                    source=str(args.grids) if args.grids else None, **common)
        elif args.protocol == "sanity":
            results = run_sanity(loaded, names, n, args.seed, steps=args.steps or 8, class_sets=args.class_sets,
                                 **common)
        else:
            modes = ("insertion", "deletion") if args.protocol == "perturbation" else (args.protocol,)
            both = run_perturbation(loaded, names, n, args.seed, modes=modes, steps=args.steps or 16,
                                    batch_size=batch_size, **common)
            results = both if args.protocol == "perturbation" else both[args.protocol]
    finally:
        bar.close()
    parts = list(results.values()) if args.protocol == "perturbation" else [results]
    print("\n\n".join(format_markdown(r, paper=args.paper) for r in parts), flush=True)
    if args.json:
        path = write_json(results, args.json)
        print(f"wrote {path}", file=sys.stderr)
    if args.instances:
        from .core.evaluation import write_instances

        print(f"wrote {write_instances(results, args.instances)}", file=sys.stderr)
    if args.plots:
        for r in parts:
            for path in save_plots(r, args.plots):
                print(f"wrote {path}", file=sys.stderr)
    return 0
