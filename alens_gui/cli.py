"""``alens``: the headless front door (explain, report, methods, bench, evaluate).

Every user error ends as one line on stderr (``alens: error: ...``) and a non-zero
exit status; a batch over many images processes every readable image and reports the
ones that failed at the end.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from .cli_args import (  # noqa: F401 - shared with cli_evaluate; re-exported for callers of cli
    _batch_size,
    _Failed,
    _floats,
    _option,
    _size,
    _three,
    _Usage,
    add_model_arguments,
    load_from_args,
)

EXIT_ERROR = 1
EXIT_USAGE = 2


def _window(text: str):
    from .core.errors import WindowError
    from .core.windowing import parse_window

    try:
        return parse_window(text)
    except WindowError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _frame(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"a frame is a whole number from 0, got {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"frames count from 0, got {value}")
    return value


def add_image_arguments(p: argparse.ArgumentParser) -> None:
    """How images are read: intensity window, frame, identifiers (shared by commands that read images)."""
    g = p.add_argument_group("image")
    g.add_argument("--window", type=_window, metavar="auto|full|dicom|C,W",
                   help="intensity window for images above 8 bits and DICOM: auto (0.5-99.5 percentile; the "
                        "default), full (the data type's range), dicom (the file's window; the default for DICOM) "
                        "or CENTER,WIDTH in the image's units, e.g. 40,400 (a negative centre: --window=-600,1500)")
    g.add_argument("--frame", type=_frame, metavar="N", help="frame of a multi-frame DICOM file, from 0 (default 0)")
    g.add_argument("--include-identifiers", action="store_true",
                   help="write DICOM patient/study identifiers into the outputs (default: never)")


def image_options(args) -> dict:
    """The keyword arguments of :meth:`Explainer.explain` that the image options set."""
    return {"window": getattr(args, "window", None), "frame": getattr(args, "frame", None),
            "include_identifiers": bool(getattr(args, "include_identifiers", False))}


def expand_inputs(items, recursive: bool = False, exclude: Path | None = None,
                  unique: bool = False) -> tuple[list[Path], list[str], list[str]]:
    """Files and folders -> (image paths in order, their output names, folder errors).

    Images found under ``exclude`` (the output folder) are skipped, so that a second run over a
    folder does not explain the figures the first one wrote. With ``unique`` a file given (or
    found) twice is taken once. The output names follow :mod:`alens_gui.core.outputs`: stable
    for each input path whatever the other inputs are, and unique in the run."""
    from .core.errors import FolderError
    from .core.folders import scan_images
    from .core.outputs import output_names

    entries: list[tuple[Path, Path | None]] = []
    errors: list[str] = []
    for item in items:
        p = Path(item)
        if p.is_dir():
            try:
                listing = scan_images(p, recursive=recursive)
            except FolderError as exc:
                errors.append(str(exc))
                continue
            for note in listing.skipped:  # FIFOs, devices, link loops: said, not opened
                print(f"alens: note: {p / note}", file=sys.stderr)
            found = listing.images
            if exclude is not None:
                found = [q for q in found if not q.resolve().is_relative_to(exclude)]
            if not found:
                hint = "" if recursive else " (use --recursive for sub-folders)"
                errors.append(f"{p}: no images in this folder{hint}")
            entries.extend((q, p) for q in found)
        else:
            entries.append((p, None))
    if unique:
        seen: set[str] = set()
        kept = []
        for path, folder in entries:
            ident = os.path.normcase(os.path.realpath(path))
            if ident not in seen:
                seen.add(ident)
                kept.append((path, folder))
        entries = kept
    return [p for p, _ in entries], output_names(entries), errors


def add_logging_arguments(p: argparse.ArgumentParser, sub: bool = False) -> None:
    """``-v`` / ``--quiet``: how much of the ``alens_gui`` log reaches stderr (default: warnings).

    On the main parser and (``sub=True``, no defaults of their own) on every sub-command, so
    that both ``alens -v explain ...`` and ``alens explain ... -v`` work.
    """
    extra = {"default": argparse.SUPPRESS} if sub else {}
    g = p.add_mutually_exclusive_group()
    g.add_argument("-v", "--verbose", action="count", help="more messages on stderr: -v what is loaded and "
                   "decided (model, input policy, CAM layer), -vv debugging detail", **(extra or {"default": 0}))
    g.add_argument("-q", "--quiet", action="store_true", help="errors only on stderr (no warnings)", **extra)


def _add_logging_to_subcommands(parser: argparse.ArgumentParser) -> None:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for sub in action.choices.values():
                add_logging_arguments(sub, sub=True)
                _add_logging_to_subcommands(sub)


def setup_logging(verbose: int = 0, quiet: bool = False) -> None:
    """Send the ``alens_gui`` log to stderr at the level ``-v`` / ``--quiet`` ask for.

    Warnings of the libraries the program drives (pydicom, timm, transformers) go to the same
    place through :func:`logging.captureWarnings`; ``--quiet`` hides them too.
    """
    import logging

    level = logging.ERROR if quiet else (logging.WARNING, logging.INFO, logging.DEBUG)[min(int(verbose), 2)]
    log = logging.getLogger("alens_gui")
    log.setLevel(level)
    if not any(getattr(h, "_alens_cli", False) for h in log.handlers):
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("alens: %(levelname)s: %(message)s"))
        handler._alens_cli = True
        log.addHandler(handler)
        log.propagate = False
    logging.captureWarnings(True)
    wlog = logging.getLogger("py.warnings")
    wlog.setLevel(level)
    if not any(getattr(h, "_alens_cli", False) for h in wlog.handlers):
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("alens: warning from a library: %(message)s"))
        handler._alens_cli = True
        wlog.addHandler(handler)
        wlog.propagate = False


def add_class_set_arguments(p: argparse.ArgumentParser) -> None:
    """How the class set is chosen (explain, report)."""
    g = p.add_argument_group("class set")
    cs = g.add_mutually_exclusive_group()
    cs.add_argument("--classes", help="the class set: indices or names, comma-separated (e.g. 285,967)")
    cs.add_argument("--top-k", type=int, help="the K most probable classes (default 3)")
    cs.add_argument("--best-vs-worst", action="store_true", help="the most and the least probable class")
    cs.add_argument("--class-preset", metavar="NAME",
                    help="a named class set saved in the GUI (or in --class-presets FILE)")
    g.add_argument("--with-lowest", action="store_true", help="with --top-k: add the least probable class")
    g.add_argument("--class-presets", metavar="FILE",
                   help='named class sets as JSON {"name": [indices or names]} (default: the GUI\'s own)')


def class_request(args, class_names) -> tuple[dict, str]:
    """The class-set keywords for :meth:`Explainer.explain` and a description for reports."""
    from .core.classsets import class_preset

    if args.with_lowest and args.top_k is None:
        raise _Usage("--with-lowest goes with --top-k")
    if args.class_presets and not args.class_preset:
        raise _Usage("--class-presets goes with --class-preset NAME")
    if args.class_preset:
        classes = class_preset(args.class_preset, class_names, args.class_presets)
        names = ", ".join(class_names[c] for c in classes)
        return {"classes": classes}, f"preset {args.class_preset!r}: {names}"
    if args.classes:
        return {"classes": args.classes}, f"classes {args.classes}"
    if args.best_vs_worst:
        return {"best_vs_worst": True}, "best vs worst (most and least probable class of each image)"
    k = args.top_k or 3
    lowest = " + the least probable" if args.with_lowest else ""
    return ({"top_k": args.top_k, "with_lowest": args.with_lowest},
            f"top-{k}{lowest} of each image")


def add_lens_arguments(p: argparse.ArgumentParser) -> None:
    from .core.lens import NORMALIZE_CHOICES, SOFTMAX_INPUT_CHOICES

    g = p.add_argument_group("lens")
    g.add_argument("--preset", choices=("al", "var"), default="al", help="lens preset (default: %(default)s)")
    g.add_argument("--temperatures", type=_floats, help="softmax temperatures t, e.g. 1,0.2,0.01")
    g.add_argument("--tau", type=float, help="margin above chance (S > 1/K + tau)")
    g.add_argument("--normalize", choices=NORMALIZE_CHOICES)
    g.add_argument("--softmax-input", choices=SOFTMAX_INPUT_CHOICES)


def add_run_arguments(p: argparse.ArgumentParser, option_example: str = "-O steps=32") -> None:
    """What a run explains with: the method and its options, the class set and the lens."""
    p.add_argument("--method", default="ixg", help="attribution method (see `alens methods`; default: %(default)s)")
    p.add_argument("--option", "-O", type=_option, action="append", default=[], metavar="NAME=VALUE",
                   help=f"a method option, e.g. {option_example} (repeatable)")
    add_class_set_arguments(p)
    add_lens_arguments(p)


def lens_from_args(args):
    from .core.lens import preset

    return preset(args.preset).with_(temperatures=args.temperatures, tau=args.tau,
                                      normalize=args.normalize, softmax_input=args.softmax_input)


def build_parser() -> argparse.ArgumentParser:
    from . import __version__

    parser = argparse.ArgumentParser(prog="alens", description="Attribution Lens: class-focused attribution maps.")
    parser.add_argument("--version", action="version", version=f"alens {__version__}")
    add_logging_arguments(parser)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True

    ex = sub.add_parser("explain", help="explain images and write maps (.npz) and annotated PNGs")
    ex.add_argument("images", nargs="+", metavar="IMAGE",
                    help="image files (PNG, JPEG, TIFF, DICOM, ...) or folders of them")
    ex.add_argument("--recursive", "-r", action="store_true", help="also explain the images in sub-folders of a folder")
    add_image_arguments(ex)
    add_model_arguments(ex)
    add_run_arguments(ex, "-O steps=32 -O baseline=blurred")
    ex.add_argument("--out", required=True, help="output folder")
    ex.add_argument("--no-png", action="store_true", help="write only the .npz maps")
    add_output_arguments(ex, "images whose .npz exists in --out are skipped without any model work, so a stopped "
                             "batch resumes where it stopped")
    add_batch_arguments(ex)
    add_engine_arguments(ex)
    ex.set_defaults(func=cmd_explain)

    rp = sub.add_parser("report", help="explain images and write one PDF report (settings, then a page per image)")
    rp.add_argument("images", nargs="+", metavar="INPUT", help="image files or folders of images")
    add_input_arguments(rp)
    add_model_arguments(rp)
    add_run_arguments(rp)
    rp.add_argument("--compare", action="store_true",
                    help="two inputs side by side on one page (one class set: --classes/--class-preset, "
                         "else the first image's top-k)")
    rp.add_argument("--title", default="Attribution Lens report", help="the report's title")
    rp.add_argument("--full-resolution", action="store_true",
                    help="embed images and maps at their own resolution (larger file; default: 150 dpi)")
    rp.add_argument("--out", required=True, help="the PDF file to write")
    add_output_arguments(rp, "if the PDF exists, nothing is done")
    add_engine_arguments(rp)
    rp.set_defaults(func=cmd_report)

    co = sub.add_parser("cohort", help="strategies per class across a folder (spectral clustering of refined maps), "
                                       "territory statistics, and the difference between two groups")
    co.add_argument("folders", nargs="+", metavar="DIR",
                    help="a folder of images (or files); two folders are two groups to compare")
    co.add_argument("--recursive", "-r", action="store_true", help="also take the images in sub-folders")
    add_image_arguments(co)
    add_model_arguments(co)
    add_run_arguments(co)
    g = co.add_argument_group("cohort")
    g.add_argument("--by", choices=("classset", "predicted", "label"), default="classset",
                   help="which images make a class's cohort: those with the class in their class set (default), "
                        "those the model predicts as the class, or those labelled with it (the name of the "
                        "image's sub-folder)")
    g.add_argument("--cohort-classes", metavar="NAMES",
                   help="only these classes (indices or names, comma-separated; default: every class with "
                        "--min-members images)")
    g.add_argument("--min-members", type=int, default=2, metavar="N",
                   help="leave out classes with fewer images (default: %(default)s)")
    g.add_argument("--clusters", default="auto", metavar="auto|N",
                   help="number of strategies per class: auto (the eigengap; default) or a number")
    g.add_argument("--groups", metavar="A,B",
                   help="compare two label groups of one folder (sub-folder names); two folders are compared "
                        "without this")
    g.add_argument("--permutations", type=int, default=999, metavar="N",
                   help="permutations of the group test (default: %(default)s)")
    g.add_argument("--no-cache", action="store_true",
                   help="neither read nor fill the result cache the window's gallery uses")
    g.add_argument("--no-pdf", action="store_true", help="write no PDF")
    co.add_argument("--out", required=True, help="output folder (cohort.json, .npy maps, cohort.pdf)")
    co.add_argument("--overwrite", action="store_true", help="replace an existing cohort.json in --out")
    co.set_defaults(func=cmd_cohort)

    me = sub.add_parser("methods", help="list the attribution methods")
    me.set_defaults(func=cmd_methods)

    be = sub.add_parser("bench", help="time batched multi-class attribution against captum per class")
    add_model_arguments(be)
    be.add_argument("--methods", help="comma-separated (default: ixg,saliency,gradcam,ig; with --folder or "
                                      "--generate: ixg,gradcam,ig; there also occlusion and feature_ablation, "
                                      "against captum's Occlusion and FeatureAblation)")
    be.add_argument("--ks", default="1,2,4,8", help="class-set sizes (default: %(default)s)")
    be.add_argument("--repeats", type=int, default=5, help="timed repeats per cell, median reported")
    be.add_argument("--ig-steps", type=int, default=16, help="IG steps for both sides (default: %(default)s)")
    be.add_argument("--extra-ks", default="", help="also time grad_rollout (ViT) and feature_ablation against "
                    "a per-class loop for these class-set sizes, e.g. 1,4 (slow; default: off)")
    be.add_argument("--threads", type=int, help="CPU threads for torch (default: torch's own choice); 1 gives "
                    "steadier ratios on a machine shared with other work")
    fg = be.add_argument_group("many images (images/s: the batch engine, our per-image path, captum per class)")
    src = fg.add_mutually_exclusive_group()
    src.add_argument("--folder", metavar="DIR", help="time explaining the images of DIR (top-k, npz written to a "
                                                     "scratch folder) three ways; methods default ixg,gradcam,ig")
    src.add_argument("--generate", type=int, metavar="N",
                     help="as --folder, on N photographs from skimage.data, resized and cropped differently")
    fg.add_argument("--top-k", type=int, default=3, help="classes per image with --folder/--generate "
                                                         "(default: %(default)s)")
    add_batch_arguments(fg, group=False)
    be.set_defaults(func=cmd_bench)

    dr = sub.add_parser("doctor", help="versions, device, Qt platform plugins and a default-model check, "
                                       "for bug reports")
    dr.add_argument("--device", default="auto", help="device for the model check (default: %(default)s)")
    dr.add_argument("--no-model", action="store_true", help="skip loading the default model")
    dr.add_argument("--no-qt", action="store_true", help="skip probing the Qt platform plugins")
    dr.set_defaults(func=cmd_doctor)

    ca = sub.add_parser("cache", help="where the result cache is, its size and cap; clear it")
    ca_sub = ca.add_subparsers(dest="action", metavar="ACTION")
    ca_sub.required = True
    ca_sub.add_parser("info", help="folder, size, entries, cap, and caches of earlier versions")
    cl = ca_sub.add_parser("clear", help="remove every cached prediction and explanation")
    cl.add_argument("--old", action="store_true", help="also remove the caches earlier versions left "
                                                       "(in the config folder or ~/.cache/alens-gui)")
    li = ca_sub.add_parser("limit", help="set the size cap (least recently used entries go first)")
    li.add_argument("mb", type=_megabytes, metavar="MB", help="the cap in MB; 0 turns the cache off")
    px = ca_sub.add_parser("pixels", help="keep image pixels in explanation entries (default: off, the image "
                                          "is read again from its file)")
    px.add_argument("state", choices=("on", "off"))
    ca.set_defaults(func=cmd_cache)

    try:
        from .cli_evaluate import add_evaluate_parser
    except ImportError:
        add_evaluate_parser = None
    if add_evaluate_parser is not None:
        add_evaluate_parser(sub)
    _add_logging_to_subcommands(parser)
    return parser


def add_batch_arguments(p, group: bool = True) -> None:
    """``--batch-size``: images per forward pass of the batch engine (:mod:`alens_gui.core.batch`);
    in a group of its own, or (``group=False``) in ``p``, itself a group."""
    g = p.add_argument_group("many images") if group else p
    g.add_argument("--batch-size", type=_batch_size, default="auto", metavar="N|auto",
                   help="images per forward pass (default: auto, from the model, the input size, the class "
                        "set and the free memory; the GPU's on a GPU)")


def add_engine_arguments(p) -> None:
    """``--engine local|ray``, ``--ray-address``, ``--ray-actors`` (:mod:`alens_gui.core.raybatch`)."""
    g = p.add_argument_group("engine (Ray: pip install \"alens-gui[ray]\")")
    g.add_argument("--engine", choices=("local", "ray"), default="local",
                   help="local: this process's batch engine (default); ray: Ray Data actors, each loading the "
                        "model once, on this machine or on --ray-address")
    g.add_argument("--ray-address", metavar="ADDR",
                   help="a running Ray cluster (ray://HOST:10001, HOST:6379 or auto); default: start Ray here. "
                        "On a cluster, the inputs and --out must be on storage every node sees")
    g.add_argument("--ray-actors", type=int, metavar="N",
                   help="actors, each with the model loaded (default: one per GPU, else one per 4 CPUs)")


def add_output_arguments(p: argparse.ArgumentParser, skip_help: str) -> None:
    """``--overwrite`` / ``--skip-existing``: what to do with outputs that exist (default: refuse)."""
    g = p.add_argument_group("existing outputs (default: refuse, nothing is replaced)")
    x = g.add_mutually_exclusive_group()
    x.add_argument("--overwrite", action="store_true",
                   help="replace outputs that exist (each file is replaced whole, in one step)")
    x.add_argument("--skip-existing", action="store_true", help="keep outputs that exist: " + skip_help)


def _megabytes(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a size in MB, got {text!r}") from None
    if not value >= 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"the cap is a size in MB from 0, got {text!r}")
    return value


def cmd_cache(args) -> int:
    from .core.resultcache import MB, ResultCache, clear_old_caches

    cache = ResultCache()
    if args.action == "info":
        print("\n".join(cache.info().lines()))
    elif args.action == "clear":
        n, size = cache.clear()
        print(f"removed {n} file(s), {size / MB:.1f} MB, from {cache.root}")
        if args.old:
            cleared = clear_old_caches()
            for folder, n_old, size_old in cleared:
                print(f"removed {n_old} file(s), {size_old / MB:.1f} MB, from {folder} (an earlier version's cache)")
            if not cleared:
                print("no cache of an earlier version found")
    elif args.action == "limit":
        try:
            cache.set_limit(args.mb)
        except OSError as exc:
            raise _Failed(f"{cache.root}: the setting cannot be saved ({exc.strerror or exc})") from None
        info = cache.info()
        print(f"cache limit {'off (nothing is stored)' if args.mb == 0 else f'{args.mb:g} MB'}; now "
              f"{info.size / MB:.1f} MB in {info.root}")
        if info.limit_from != "alens cache limit":
            print(f"note: {info.limit_from} sets the limit while it is set")
    elif args.action == "pixels":
        try:
            cache.set_keep_pixels(args.state == "on")
        except OSError as exc:
            raise _Failed(f"{cache.root}: the setting cannot be saved ({exc.strerror or exc})") from None
        print("new explanation entries " + ("keep image pixels" if args.state == "on" else
                                            "keep no image pixels (images are read again from their files)"))
    return 0


def cmd_methods(args) -> int:
    from .core.methods import list_methods

    for info in list_methods():
        opts = ", ".join(f"{k}={o.default!r}" for k, o in info.options.items())
        print(f"{info.name:18s} {info.label:28s} [{info.family}; {'/'.join(info.architectures)}]"
              f"{'  options: ' + opts if opts else ''}")
        if info.description:
            print(f"{'':18s} {info.description}")
    return 0


def _npz_names(stem: str, frame: int | None) -> list[str]:
    """The .npz names an image's finished run may have left (its frame suffix depends on the file)."""
    if frame is None:
        return [f"{stem}.npz"]
    if frame == 0:
        return [f"{stem}.npz", f"{stem}_frame0.npz"]
    return [f"{stem}_frame{frame}.npz"]


def cmd_explain(args) -> int:
    from tqdm import tqdm

    from .core.api import Explainer
    from .core.errors import AlensError
    from .core.export import render_figure, safe_name
    from .core.methods import get_method
    from .core.outputs import atomic_write, check_writable
    from .core.progress import Progress

    if args.with_lowest and args.top_k is None:
        raise _Usage("--with-lowest goes with --top-k")
    info = get_method(args.method)
    options = dict(args.option)
    info.resolve_options(options)
    lens = lens_from_args(args)
    out = Path(args.out)
    if out.exists() and not out.is_dir():
        raise _Usage(f"--out {out} exists and is not a folder")
    images, stems, failures = expand_inputs(args.images, args.recursive, exclude=out.resolve(), unique=True)
    for msg in failures:
        print(f"alens: error: {msg}", file=sys.stderr)
    if not images:
        print(f"wrote 0 of 0 image(s) to {out}", file=sys.stderr)
        return EXIT_ERROR
    problem = check_writable(out)  # before any model work
    if problem:
        raise _Failed(f"{problem}; nothing was written")
    todo = list(zip(images, stems))
    # an image is done when its .npz is there (written last, after its figures)
    present = set(os.listdir(out))
    done = [(im, st) for im, st in todo if any(n in present for n in _npz_names(st, args.frame))]
    if done and not args.overwrite:
        if not args.skip_existing:
            example = next(n for n in _npz_names(done[0][1], args.frame) if n in present)
            raise _Failed(f"{len(done)} of {len(images)} image(s) already have outputs in {out} (e.g. {example}); "
                          "nothing was replaced: --skip-existing explains only the others, --overwrite replaces them")
        todo = [x for x in todo if x not in done]
        print(f"skipping {len(done)} image(s) already explained in {out} (--skip-existing)", file=sys.stderr)
    if not todo:
        print(f"all {len(images)} image(s) are already explained in {out}; nothing to do", file=sys.stderr)
        return EXIT_ERROR if failures else 0
    if args.engine == "ray":
        from .core.raybatch import require_ray

        require_ray()  # before any model work: one line on how to install it
    explainer = Explainer(load_from_args(args))
    request, _ = class_request(args, explainer.class_names)
    img_opts = image_options(args)
    if args.engine == "ray":
        return _explain_ray(args, explainer, info, options, lens, request, img_opts, todo, images, out, failures,
                            done)
    if len(todo) > 1:
        return _explain_batched(args, explainer, info, options, lens, request, img_opts, todo, images, out,
                                failures, done)
    bad = written = kept_now = 0
    written_now: set[str] = set()  # names this run wrote (case-folded): one input never replaces another's
    stopped = None
    bar = tqdm(todo, unit="image", disable=None, file=sys.stderr)
    plain = not (hasattr(sys.stderr, "isatty") and sys.stderr.isatty())
    for n_image, (image, stem) in enumerate(bar):
        bar.set_postfix_str(image.name)
        inner = tqdm(total=0, leave=False, unit="step", disable=None if len(todo) == 1 else True,
                     file=sys.stderr)

        shown = {"tenth": -1}

        def tick(done, total, _msg, inner=inner, shown=shown, name=Path(image).name):
            inner.total = total
            inner.n = done
            inner.refresh()
            if plain and total:  # no terminal (a log, a pipe): one line every 10 %
                tenth = int(10 * done / total)
                if tenth > shown["tenth"]:
                    shown["tenth"] = tenth
                    print(f"{name}: {info.name} {100 * done / total:.0f}% ({done:g}/{total:g})",
                          file=sys.stderr, flush=True)

        def show_classes(prepared, name=Path(image).name):
            chosen = ", ".join(f"{c} {explainer.class_names[c]} ({prepared.probs[c]:.3f})" for c in prepared.classes)
            tqdm.write(f"{name}: classes {chosen}", file=sys.stderr)

        created: list[Path] = []  # this image's files published so far: removed if the image fails
        target = out / f"{stem}.npz"
        try:
            expl = explainer.explain(image, info.name, lens=lens, progress=Progress(tick), on_classes=show_classes,
                                     **request, **img_opts, **options)
            if args.frame is not None and int(expl.source.get("n_frames", 1)) > 1:
                stem = f"{stem}_frame{args.frame}"  # frames of one file explained one by one keep apart
            figures = [] if args.no_png else [
                out / f"{stem}_{int(expl.classes[i])}_{safe_name(expl.class_names[i])}.png" for i in range(expl.k)]
            for i, target in enumerate(figures + [out / f"{stem}.npz"]):
                if target.name.casefold() in written_now:
                    raise _SameName(target.name)
                if target.suffix == ".npz":  # last: its presence says the image is done
                    expl.to_npz(target, overwrite=args.overwrite)
                else:
                    data = render_figure(expl, None, [i])
                    # --skip-existing redoes an image whose .npz is missing: its figures are leftovers
                    atomic_write(target, lambda f, data=data: f.write(data),
                                 overwrite=args.overwrite or args.skip_existing)
                created.append(target)
                written_now.add(target.name.casefold())
            written += 1
        except (AlensError, _SameName) as exc:
            _remove(created)
            bad += 1
            if isinstance(exc, _SameName):
                msg = f"{image}: its output {exc} was written by this run from another input; not replaced"
            else:
                msg = str(exc) if image.name in str(exc) else f"{image}: {exc}"
            failures.append(msg)
            tqdm.write(f"alens: error: {msg}", file=sys.stderr)
        except OSError as exc:
            what, line = _write_failure(exc, target, image.name, image, args.skip_existing)
            if what == "kept":  # another run finished this image meanwhile; its figures are as good as ours
                kept_now += 1
                tqdm.write(line, file=sys.stderr)
                continue
            _remove(created)
            if what == "fatal":
                stopped = f"{line}; stopped: {len(todo) - n_image} image(s) not written"
                break
            bad += 1
            failures.append(line)
            tqdm.write(f"alens: error: {line}", file=sys.stderr)
        except BaseException:  # Ctrl-C: leave no image half-written
            _remove(created)
            raise
        finally:
            inner.close()
    bar.close()
    if stopped:
        failures.append(stopped)
        print(f"alens: error: {stopped}", file=sys.stderr)
    kept = 0 if args.overwrite else len(done) + kept_now
    print(f"wrote {written} of {len(images)} image(s) to {out}" + (f"; {kept} already there, kept" if kept else ""),
          file=sys.stderr)
    return EXIT_ERROR if failures else 0


def run_settings_from_args(args, class_names):
    """The one :class:`RunSettings` that the explain options (method, class set, lens, image, input) describe."""
    from .core.methods import get_method
    from .core.settings import ClassSet, RunSettings

    info = get_method(args.method)
    given = dict(args.option)
    resolved = info.resolve_options(given)  # an unknown option is one error line here
    options = {k: resolved[k] for k in given if k in resolved}  # typed: -O abs=false is False, steps=32 is 32
    request, _ = class_request(args, class_names)
    window = getattr(args, "window", None)
    return RunSettings(info.name, options, ClassSet.from_request(**request, class_names=class_names),
                       lens_from_args(args), window, getattr(args, "frame", None), getattr(args, "resize", None))


def _cohort_inputs(args) -> tuple[list[tuple[Path, str | None, str | None]], list[str], tuple[str, str] | None]:
    """``(path, group, label)`` for every image, folder errors, and the two group names (if any)."""
    if len(args.folders) > 2:
        raise _Usage(f"give one folder, or two to compare; got {len(args.folders)}")
    if len(args.folders) == 2 and args.groups:
        raise _Usage("--groups compares label groups of one folder; two folders are already two groups")
    out = Path(args.out).resolve()
    names = [Path(f).resolve().name or str(f) for f in args.folders]
    if len(names) == 2 and names[0] == names[1]:
        names = [f"1 {names[0]}", f"2 {names[1]}"]
    entries, errors = [], []
    for folder, name in zip(args.folders, names):
        # labels are sub-folder names: --by label and --groups look into sub-folders
        recursive = args.recursive or args.by == "label" or bool(args.groups)
        paths, _, errs = expand_inputs([folder], recursive, exclude=out, unique=True)
        errors.extend(errs)
        root = Path(folder)
        for p in paths:
            label = None
            if root.is_dir():
                rel = p.parent.relative_to(root) if p.parent != root else None
                label = rel.parts[0] if rel is not None and rel.parts else None
            entries.append((p, name if len(args.folders) == 2 else None, label))
    groups = None
    if len(args.folders) == 2:
        groups = (names[0], names[1])
    elif args.groups:
        parts = [x.strip() for x in args.groups.split(",") if x.strip()]
        if len(parts) != 2:
            raise _Usage(f"--groups names two label groups, e.g. --groups benign,malignant; got {args.groups!r}")
        groups = (parts[0], parts[1])
        entries = [(p, lab if lab in groups else None, lab) for p, _, lab in entries]
        found = {lab for _, _, lab in entries}
        lost = [gname for gname in groups if gname not in found]
        if lost:
            raise _Failed(f"no sub-folder named {lost[0]!r} in {args.folders[0]}: --groups names sub-folders")
    return entries, errors, groups


def cmd_cohort(args) -> int:
    from tqdm import tqdm

    from .core.api import Explainer
    from .core.classsets import parse_classes
    from .core.cohort import build_cohort, explain_paths, model_identity
    from .core.cohort_export import JSON_NAME, write_cohort
    from .core.outputs import check_writable, write_error
    from .core.progress import Progress
    from .core.resultcache import ResultCache

    out = Path(args.out)
    if out.exists() and not out.is_dir():
        raise _Usage(f"--out {out} exists and is not a folder")
    if (out / JSON_NAME).exists() and not args.overwrite:
        raise _Failed(f"{out / JSON_NAME} already exists; not replaced: --overwrite replaces it")
    clusters = args.clusters.strip().lower()
    if clusters != "auto":
        try:
            clusters = int(clusters)
        except ValueError:
            raise _Usage(f"--clusters is auto or a number; got {args.clusters!r}") from None
        if clusters < 1:
            raise _Usage(f"--clusters is at least 1; got {clusters}")
    if args.permutations < 0:
        raise _Usage(f"--permutations is at least 0; got {args.permutations}")
    if args.by == "label" and len(args.folders) == 2:
        raise _Usage("--by label reads labels from sub-folders of one folder")
    entries, failures, groups = _cohort_inputs(args)
    for msg in failures:
        print(f"alens: error: {msg}", file=sys.stderr)
    if not entries:
        raise _Failed("no images to group")
    problem = check_writable(out)  # before any model work
    if problem:
        raise _Failed(f"{problem}; nothing was written")
    loaded = load_from_args(args)
    explainer = Explainer(loaded)
    settings = run_settings_from_args(args, explainer.class_names)
    settings.check(loaded.num_classes)
    only = None
    if args.cohort_classes:
        only = parse_classes(args.cohort_classes, explainer.class_names)
    cache = key_of = None
    if not args.no_cache:
        cache = ResultCache()
        model_id = model_identity(args.model, args.arch, args.labels, loaded.name, loaded.output)

        def key_of(path):  # the key the window's gallery writes for the same run (one RunSettings)
            return cache.explanation_key(path, model_id, settings)

    bar = tqdm(total=len(entries), unit="image", disable=None, file=sys.stderr)

    def tick(done, total, msg):
        bar.total = total
        bar.n = done
        bar.set_postfix_str(msg, refresh=False)
        bar.refresh()

    progress = Progress(tick)
    paths = [p for p, _, _ in entries]
    meta = {p: (g, lab) for p, g, lab in entries}

    def pairs():
        for path, expl in explain_paths(explainer, paths, settings, cache=cache, key_of=key_of, progress=progress):
            if not hasattr(expl, "classes"):
                tqdm.write(f"alens: error: {expl}", file=sys.stderr)
            group, label = meta[Path(path)]
            yield path, expl, group, label

    try:
        cohort = build_cohort(pairs(), groups=groups, progress=progress, by=args.by, classes=only,
                              clusters=clusters, min_members=args.min_members, permutations=args.permutations)
    finally:
        bar.close()
        if cache is not None:
            cache.flush()
    doc_meta = {"settings": settings.to_json(), "model": loaded.name, "groups": list(groups) if groups else None,
                "settings_text": f"{loaded.name}; {settings.describe(explainer.class_names)}"}
    try:
        write_cohort(out, cohort, doc_meta, pdf=not args.no_pdf)
    except OSError as exc:
        raise _Failed(write_error(exc, out)) from None
    for c in cohort.classes.values():
        if c.refined is None:
            continue
        shares = ", ".join(f"{100 * s.share:.0f}%" for s in c.refined.strategies)
        print(f"{c.class_name}: {len(c.members)} image(s), {c.refined.n_clusters} strategies ({shares}); "
              f"base maps: {c.base.n_clusters}", file=sys.stderr)
    for note in cohort.notes:
        print(f"alens: note: {note}", file=sys.stderr)
    bad = failures + cohort.failures
    print(f"wrote {out / JSON_NAME}: {len(cohort.items)} image(s), {len(cohort.classes)} class(es)"
          + (f"; {len(bad)} failed" if bad else ""), file=sys.stderr)
    return EXIT_ERROR if bad or not cohort.classes else 0


def _write_failure(err: OSError, target: Path, name: str, source, skip_existing: bool) -> tuple[str, str]:
    """What a failed write of one image's file means for the run, and its line: ``("kept", ...)``
    when another run wrote the .npz meanwhile and --skip-existing keeps it, ``("fatal", msg)`` when
    nothing more can be written (a full disk, a folder that went away), else ``("failed", line)``."""
    from .core.outputs import is_fatal, write_error

    if isinstance(err, FileExistsError) and skip_existing and target.suffix == ".npz":
        return "kept", f"{name}: explained by another run meanwhile; kept"
    msg = write_error(err, target)
    if isinstance(err, FileExistsError):
        msg += " (another run wrote it meanwhile?): --overwrite replaces, --skip-existing keeps it"
    if is_fatal(err):
        return "fatal", msg
    return "failed", msg if name in msg else f"{source}: {msg}"


class _WriteFailed(Exception):
    """A result's file could not be written: ``error`` (OSError or _SameName) at ``target``."""

    def __init__(self, error: BaseException, target: Path) -> None:
        super().__init__(str(error))
        self.error, self.target = error, target


def _tenth_line(n_seen: int, total: int, shown: int, start: float) -> int:
    """Print "explain: n of N image(s), rate, time left" when another tenth is done (for a log or a
    pipe, where no bar is drawn); returns the tenth shown last."""
    import time

    tenth = int(10 * n_seen / total)
    if tenth > shown:
        rate = n_seen / max(time.monotonic() - start, 1e-9)
        print(f"explain: {n_seen} of {total} image(s), {rate:.2f} image/s, "
              f"{_eta((total - n_seen) / rate)} left", file=sys.stderr, flush=True)
        return tenth
    return shown


def _eta(seconds: float) -> str:
    seconds = int(max(0, seconds))
    h, rest = divmod(seconds, 3600)
    m, s = divmod(rest, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m}:{s:02d}"


def _explain_batched(args, explainer, info, options, lens, request, img_opts, todo, images, out, failures,
                     done) -> int:
    """``alens explain`` over many images through the batch engine: decode ahead, B images per pass,
    files written on the writer thread; ETA while it runs and a summary at the end."""
    import time

    from tqdm import tqdm

    from .core.batch import BatchEngine
    from .core.outputs import is_fatal
    from .core.publish import publish_explanation

    settings = run_settings_from_args(args, explainer.class_names)
    engine = BatchEngine(explainer.loaded, settings, batch_size=args.batch_size,
                         include_identifiers=img_opts["include_identifiers"])
    print(f"alens: {len(todo)} image(s); {engine.note}", file=sys.stderr)
    paths = [im for im, _ in todo]
    stems = [st for _, st in todo]
    written_now: set[str] = set()  # names this run wrote (case-folded): one input never replaces another's

    fatal: list[OSError] = []  # a full disk or a read-only folder: nothing further is written

    def write(result):  # on the writer thread, one result at a time
        expl = result.explanation
        if expl is None or fatal:
            return None
        try:
            return publish_explanation(expl, out, stems[result.index], frame=args.frame, png=not args.no_png,
                                       overwrite=args.overwrite, keep_figures=args.skip_existing,
                                       taken=written_now)
        except (OSError, _SameName) as exc:
            if isinstance(exc, OSError) and is_fatal(exc):
                fatal.append(exc)
            raise _WriteFailed(exc, exc.target) from exc

    plain = not (hasattr(sys.stderr, "isatty") and sys.stderr.isatty())
    bar = tqdm(total=len(todo), unit="image", disable=None, file=sys.stderr, smoothing=0.1)
    written = bad = kept_now = n_seen = 0
    stopped = None
    start = time.monotonic()
    shown = -1
    results = engine.run(paths, finish=write)
    try:
        for result in results:
            n_seen += 1
            bar.update(1)
            bar.set_postfix_str(result.name, refresh=False)
            if result.error is not None:
                bad += 1
                failures.append(result.error)
                tqdm.write(f"alens: error: {result.error}", file=sys.stderr)
            elif result.finish_error is not None:
                exc = result.finish_error
                if not isinstance(exc, _WriteFailed):
                    raise exc
                err, target = exc.error, exc.target
                if isinstance(err, _SameName):
                    bad += 1
                    failures.append(f"{paths[result.index]}: its output {err} was written by this run from "
                                    "another input; not replaced")
                    tqdm.write(f"alens: error: {failures[-1]}", file=sys.stderr)
                else:
                    what, line = _write_failure(err, target, result.name, paths[result.index], args.skip_existing)
                    if what == "kept":
                        kept_now += 1
                        tqdm.write(line, file=sys.stderr)
                    elif what == "fatal":
                        stopped = f"{line}; stopped: {len(todo) - written} image(s) not written"
                        break
                    else:
                        bad += 1
                        failures.append(line)
                        tqdm.write(f"alens: error: {line}", file=sys.stderr)
            else:
                written += 1
                expl = result.explanation
                chosen = ", ".join(f"{int(c)} {n} ({p:.3f})" for c, n, p in
                                   zip(expl.classes, expl.class_names, expl.probs))
                tqdm.write(f"{result.name}: classes {chosen}", file=sys.stderr)
            if plain:  # no terminal (a log, a pipe): one line every 10 % with the time left
                shown = _tenth_line(n_seen, len(todo), shown, start)
    except KeyboardInterrupt:
        results.close()  # the images already computed are written before this returns
        bar.close()
        print(f"alens: interrupted after {written} of {len(todo)} image(s) were written to {out}; "
              "run again with --skip-existing to go on", file=sys.stderr)
        raise
    finally:
        results.close()
        bar.close()
    elapsed = time.monotonic() - start
    if stopped:
        failures.append(stopped)
        print(f"alens: error: {stopped}", file=sys.stderr)
    kept = 0 if args.overwrite else len(done) + kept_now
    rate = f"; {n_seen / elapsed:.2f} image/s ({elapsed:.1f} s)" if elapsed > 0 and n_seen else ""
    print(f"wrote {written} of {len(images)} image(s) to {out}" + (f"; {kept} already there, kept" if kept else "")
          + (f"; {bad} failed" if bad else "") + rate, file=sys.stderr)
    return EXIT_ERROR if failures else 0


def _explain_ray(args, explainer, info, options, lens, request, img_opts, todo, images, out, failures, done) -> int:
    """``alens explain --engine ray``: Ray Data actors run the batch engine's per-batch function and write
    into ``out`` with the local engine's names and atomic publishing; Ctrl-C ends the cluster work."""
    import time

    from tqdm import tqdm

    from .cli_args import model_kwargs
    from .core.raybatch import RayEngine

    settings = run_settings_from_args(args, explainer.class_names)
    settings.classes.check(explainer.loaded.num_classes)
    engine = RayEngine(model_kwargs(args), settings, batch_size=args.batch_size, address=args.ray_address,
                       actors=args.ray_actors, include_identifiers=img_opts["include_identifiers"])
    try:
        print(f"alens: {len(todo)} image(s); {engine.start()}", file=sys.stderr)
    except KeyboardInterrupt:
        engine.close()
        print("alens: interrupted while Ray started; nothing was written", file=sys.stderr)
        raise
    paths = [im for im, _ in todo]
    stems = [st for _, st in todo]
    write = dict(frame=args.frame, png=not args.no_png, overwrite=args.overwrite, skip_existing=args.skip_existing)
    bar = tqdm(total=len(todo), unit="image", disable=None, file=sys.stderr, smoothing=0.1)
    plain = not (hasattr(sys.stderr, "isatty") and sys.stderr.isatty())
    written = bad = kept_now = n_seen = 0
    shown = -1
    start = time.monotonic()
    rows = engine.run(paths, [p.name for p in paths], stems, out=os.fspath(out), write=write)
    try:
        for row in rows:
            n_seen += 1
            bar.update(1)
            if row.status == "written":
                written += 1
                tqdm.write(row.message, file=sys.stderr)
            elif row.status == "kept":
                kept_now += 1
                tqdm.write(row.message, file=sys.stderr)
            else:
                bad += 1
                failures.append(row.message)
                tqdm.write(f"alens: error: {row.message}", file=sys.stderr)
            if plain:  # no terminal (a log, a pipe): one line every 10 % with the time left
                shown = _tenth_line(n_seen, len(todo), shown, start)
    except KeyboardInterrupt:
        bar.close()
        engine.stop()  # ends this run's actors and tasks on the cluster
        try:  # what the actors published, counted on disk (some after their last report came back)
            present = set(os.listdir(out))
            on_disk = sum(any(n in present for n in _npz_names(st, args.frame)) for st in stems)
        except OSError:
            on_disk = written
        print(f"alens: interrupted; the Ray work was stopped. {on_disk} of {len(todo)} image(s) were written to "
              f"{out}; run again with --skip-existing to go on", file=sys.stderr)
        raise
    finally:
        rows.close()
        bar.close()
        engine.close()
    elapsed = time.monotonic() - start
    kept = 0 if args.overwrite else len(done) + kept_now
    rate = f"; {n_seen / elapsed:.2f} image/s ({elapsed:.1f} s)" if elapsed > 0 and n_seen else ""
    print(f"wrote {written} of {len(images)} image(s) to {out} with Ray" + (f"; {kept} already there, kept" if kept else "")
          + (f"; {bad} failed" if bad else "") + rate, file=sys.stderr)
    return EXIT_ERROR if failures else 0


from .core.publish import SameName as _SameName  # noqa: E402  (one class for both engines)


def _remove(paths) -> None:
    for p in paths:
        try:
            os.unlink(p)
        except OSError:
            pass


# -- inputs of `report` ---------------------------------------------------------------------
def add_input_arguments(p: argparse.ArgumentParser) -> None:
    """How inputs are found and read (report): folders, intensity window, frame, identifiers."""
    p.add_argument("--recursive", "-r", action="store_true", help="also take the images in sub-folders of a folder")
    add_image_arguments(p)


def report_inputs(args) -> tuple[list[Path], list]:
    """Files and folders -> (image paths in order, a Failure for each folder that gives none)."""
    from .core.report import Failure

    paths, _, errors = expand_inputs(args.images, args.recursive)
    return paths, [Failure(msg.split(": ", 1)[0], msg) for msg in errors]


def report_window(args) -> str:
    """The intensity window asked for, as the report's first page records it."""
    win = getattr(args, "window", None)
    if win is None:
        return "default: auto (0.5-99.5 percentile) above 8 bits, the file's own for DICOM; each page says which"
    return (win if isinstance(win, str) else win.describe()) + "; each page says which"


def cmd_report(args) -> int:
    import itertools

    from tqdm import tqdm

    from .core.api import Explainer
    from .core.methods import get_method
    from .core.progress import Progress
    from .core.report import Failure, ReportSettings, explain_inputs, write_report

    out = Path(args.out)
    if out.is_dir():
        raise _Usage(f"--out {out} is a folder: give the PDF file to write, e.g. {out / 'report.pdf'}")
    if out.suffix.lower() != ".pdf":
        raise _Usage(f"--out must name a .pdf file; got {out.name}")
    from .core.outputs import check_writable, write_error

    if os.path.lexists(out) and not args.overwrite:
        if args.skip_existing:
            print(f"{out} exists; kept (--skip-existing), nothing to do", file=sys.stderr)
            return 0
        raise _Failed(f"{out} already exists; not replaced: --overwrite replaces it")
    problem = check_writable(out.parent)  # before any model work
    if problem:
        raise _Failed(f"{problem}; nothing was written")
    info = get_method(args.method)
    options = dict(args.option)
    info.resolve_options(options)
    lens = lens_from_args(args)
    inputs, failures = report_inputs(args)
    if args.compare and (len(inputs) != 2 or failures):
        raise _Usage(f"--compare needs exactly two images; got {len(inputs)}")
    if args.engine == "ray":
        if args.compare:
            raise _Usage("--compare explains two images; it runs with the local engine (leave out --engine ray)")
        from .core.raybatch import require_ray

        require_ray()  # before any model work: one line on how to install it
    explainer = Explainer(load_from_args(args))
    request, described = class_request(args, explainer.class_names)
    img_opts = image_options(args)
    settings = ReportSettings.for_explainer(
        explainer, title=args.title, class_request=described + ("; shared by both images" if args.compare else ""),
        window=report_window(args), inputs=len(inputs) + len(failures), method=info.name, method_label=info.label,
        method_options=options, lens=lens, include_identifiers=bool(img_opts.get("include_identifiers")),
        full_resolution=args.full_resolution,
    )
    total = 1 if args.compare else len(inputs) + len(failures)
    bar = tqdm(total=total, unit="page" if args.compare else "image", disable=None, file=sys.stderr)
    plain = not (hasattr(sys.stderr, "isatty") and sys.stderr.isatty())
    shown = {"tenth": -1}

    def tick(done, total_, msg):
        bar.n = done
        bar.set_postfix_str(msg, refresh=False)
        bar.refresh()
        if plain and total_:  # no terminal (a log, a pipe): one line every 10 %
            tenth = int(10 * done / total_)
            if tenth > shown["tenth"]:
                shown["tenth"] = tenth
                print(f"report: {done:g} of {total_:g} done ({msg})", file=sys.stderr, flush=True)

    progress = Progress(tick)
    bad = [f.message for f in failures]

    def counted(items):
        for item in items:
            if isinstance(item, Failure):
                bad.append(item.message)
                tqdm.write(f"alens: error: {item.message}", file=sys.stderr)
            yield item

    kwargs = dict(image_options=img_opts, lens=lens, progress=progress, **options)
    if args.compare:
        items = counted(_compare_items(explainer, inputs, info.name, request, kwargs))
    elif args.engine == "ray":
        engine = _report_ray_engine(args, explainer, info, options, lens, request, img_opts)
        items = itertools.chain(failures, counted(_ray_report_items(engine, inputs, progress)))
    else:
        items = itertools.chain(failures, counted(explain_inputs(explainer, inputs, info.name, **request, **kwargs)))
    try:
        write_report(out, items, settings, progress, total=total, overwrite=args.overwrite)
    except KeyboardInterrupt:
        if args.engine == "ray":
            engine.stop()  # ends this run's actors and tasks on the cluster
            print(f"alens: interrupted; the Ray work was stopped and {out} was not written", file=sys.stderr)
        raise
    except OSError as exc:
        msg = write_error(exc, out)
        if isinstance(exc, FileExistsError):
            msg += " (another run wrote it meanwhile?): --overwrite replaces it"
        raise _Failed(msg) from None
    finally:
        bar.close()
        if args.engine == "ray":
            engine.close()
    n_in = len(inputs) + len(failures)
    print(f"wrote {out}: {n_in - len(bad)} of {n_in} input(s) explained"
          + (f", {len(bad)} listed as failed" if bad else ""), file=sys.stderr)
    return EXIT_ERROR if bad else 0


def _report_ray_engine(args, explainer, info, options, lens, request, img_opts):
    from .cli_args import model_kwargs
    from .core.raybatch import RayEngine

    settings = run_settings_from_args(args, explainer.class_names)
    settings.classes.check(explainer.loaded.num_classes)
    engine = RayEngine(model_kwargs(args), settings, batch_size=getattr(args, "batch_size", "auto"), address=args.ray_address,
                       actors=args.ray_actors, include_identifiers=img_opts["include_identifiers"])
    print(f"alens: {engine.start()}", file=sys.stderr)
    return engine


def _ray_report_items(engine, inputs, progress):
    """The report's items from Ray actors, in input order: an explanation, or a Failure of one line."""
    from .core.raybatch import explanation_from_row
    from .core.report import Failure

    rows = engine.run(inputs, [Path(p).name for p in inputs], [""] * len(inputs))
    try:
        for row in rows:
            progress.check()
            yield explanation_from_row(row) if row.status == "explained" else Failure(row.name, row.message)
    finally:
        rows.close()


def _compare_items(explainer, inputs, method, request, kwargs):
    """One comparison: the first image chooses the class set (unless given), the second shares it."""
    from .core.report import Comparison, explain_inputs

    first = next(explain_inputs(explainer, inputs[:1], method, **request, **kwargs))
    if not hasattr(first, "classes"):
        yield first
        return
    second = next(explain_inputs(explainer, inputs[1:], method, classes=[int(c) for c in first.classes], **kwargs))
    yield Comparison(first, second) if hasattr(second, "classes") else second


def cmd_bench(args) -> int:
    from .core.bench import api_row, format_other_rows, format_rows, lens_row, machine_description, run_bench

    if args.threads is not None:
        import torch

        if args.threads < 1:
            raise _Usage(f"--threads must be >= 1, got {args.threads}")
        torch.set_num_threads(args.threads)
    loaded = load_from_args(args)
    if args.folder or args.generate:
        return _bench_folder(args, loaded)
    methods = [m.strip() for m in (args.methods or "ixg,saliency,gradcam,ig").split(",") if m.strip()]
    try:
        ks = [int(k) for k in args.ks.split(",")]
        extra_ks = [int(k) for k in args.extra_ks.split(",") if k.strip()]
    except ValueError:
        raise _Usage(f"--ks expects comma-separated integers, got {args.ks!r}") from None
    print(f"# alens bench on {loaded.name}, {machine_description(loaded.device)}; "
          f"median of {args.repeats} after a warm-up; ratio < 1 means we are faster", flush=True)

    def show(row):
        print(f"  {row['method']:10s} K={row['k']:<2d} ours {row['ours_s']:.4f}s  captum/class "
              f"{row['captum_s']:.4f}s  ratio {row['ratio']:.2f}", file=sys.stderr, flush=True)

    rows = run_bench(loaded, methods, ks, args.repeats, args.ig_steps, report=show, extra_ks=extra_ks)
    print(format_rows(rows))
    other = [api_row(loaded, 4, args.repeats), lens_row(repeats=max(args.repeats, 5), device=loaded.device)]
    print()
    print(format_other_rows(other))
    return 0


def _bench_folder(args, loaded) -> int:
    import tempfile

    import torch

    from .core.bench import folder_bench, format_folder_rows, generate_folder, machine_description
    from .core.folders import scan_images

    methods = [m.strip() for m in (args.methods or "ixg,gradcam,ig").split(",") if m.strip()]
    for m in methods:
        from .core.methods import get_method

        get_method(m)
    if args.top_k < 2:
        raise _Usage(f"--top-k must be >= 2, got {args.top_k}")
    with tempfile.TemporaryDirectory(prefix="alens-bench-photos-") as tmp:
        if args.generate:
            if args.generate < 3:
                raise _Usage(f"--generate needs at least 3 images, got {args.generate}")
            paths = generate_folder(tmp, args.generate)
            what = f"{len(paths)} generated photographs (skimage.data, resized and cropped)"
        else:
            paths = list(scan_images(Path(args.folder)).images)
            if len(paths) < 3:
                raise _Failed(f"{args.folder}: the benchmark needs at least 3 images; found {len(paths)}")
            what = f"{len(paths)} images of {args.folder}"
        try:
            load = os.getloadavg()[0]
            load_text = f"; load average {load:.2f} at the start"
        except OSError:
            load_text = ""
        print(f"# alens bench on {loaded.name}, {machine_description(loaded.device)}, {os.cpu_count()} CPU(s)"
              f"{load_text}; {what}; top-{args.top_k}; torch {torch.__version__}", flush=True)
        print("# images/s over the whole path (read, fit, maps, lens, npz written); after a warm-up on 2 images, "
              "the ways take turns on each third of the folder; ratio < 1: the engine takes less time", flush=True)

        def show(row):
            alone = f", engine images one by one {row['alone_ips']:.2f}" if "alone_ips" in row else ""
            print(f"  {row['label']}: engine {row['engine_ips']:.2f} img/s (B={row['batch_size']}), per-image "
                  f"{row['per_image_ips']:.2f}, captum per class {row['captum_ips']:.2f}{alone}", file=sys.stderr,
                  flush=True)

        rows = folder_bench(loaded, paths, methods, k=args.top_k, ig_steps=args.ig_steps,
                            batch_size=args.batch_size, report=show)
    print(format_folder_rows(rows))
    return 0


def cmd_doctor(args) -> int:
    from .doctor import run_doctor

    text, ok = run_doctor(args.device, model=not args.no_model, plugins=not args.no_qt)
    print(text)
    return 0 if ok else EXIT_ERROR


def main(argv=None) -> int:
    import warnings

    warnings.filterwarnings("ignore", message="Input Tensor 0 did not already require gradients")
    warnings.filterwarnings("ignore", message="Setting forward, backward hooks")
    parser = build_parser()
    args = parser.parse_args(argv)
    setup_logging(getattr(args, "verbose", 0) or 0, getattr(args, "quiet", False))
    from .core.errors import AlensError

    try:
        return int(args.func(args) or 0)
    except _Usage as exc:
        parser.error(str(exc))
    except (AlensError, _Failed) as exc:
        print(f"alens: error: {exc}", file=sys.stderr)
        return EXIT_ERROR
    except OSError as exc:  # a file the command had to read or write, in one line (no traceback)
        where = f"{exc.filename}: " if exc.filename is not None else ""
        print(f"alens: error: {where}{exc.strerror or exc}", file=sys.stderr)
        return EXIT_ERROR
    except KeyboardInterrupt:
        print("alens: interrupted", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
