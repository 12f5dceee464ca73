"""The session's settings and a session file's state, converted both ways (no Qt, no I/O).

:func:`state_of` is what a ``.alens`` file stores (plain JSON); :func:`settings_from_state`
turns a state that ``core.sessionfile.load_session`` has checked back into the session's
field values, in the order the window sets them; :func:`mask_result_from_state` rebuilds a
saved masking result. A round-trip test holds the two directions together.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from alens_gui.core.colors import ColorScale
from alens_gui.core.errors import AlensError
from alens_gui.core.lensparams import LensParams

from .session import ClassRequest, ImageRequest, ViewOptions


def state_of(s) -> dict:
    """The session's settings as plain JSON (what a session file stores).

    The inputs' and the checkpoint's SHA-256 are left to the saving job (hashing a large
    file on the GUI thread would stall the window): ``inputs[i]["sha256"]`` is None here and
    ``model["checkpoint"]`` says whether the spec is a checkpoint file to hash.
    """
    from alens_gui.core.safeio import is_regular_file

    req = s.image_request
    inputs = [{"path": str(Path(p).resolve()), "sha256": None}
              for p in ([req.path] if req.path else [t for t in req.tiles if Path(t).suffix])]
    m = s.model_request
    return {
        "inputs": inputs,
        "image_request": {"path": req.path, "sample": req.sample, "tiles": list(req.tiles), "frame": req.frame},
        "model": {"spec": m.spec, "arch": m.arch, "labels": m.labels, "device": m.device,
                  "torchscript": m.torchscript, "output": m.output, "checkpoint_sha256": None,
                  "checkpoint": m.spec != "default" and is_regular_file(m.spec),
                  "name": getattr(s.model, "name", None)},
        "method": s.method, "options": dict(s.options), "input_policy": s.input_policy,
        "window": list(s.window) if isinstance(s.window, tuple) else s.window,
        "class_request": {"kind": s.class_request.kind, "k": s.class_request.k,
                          "with_lowest": s.class_request.with_lowest, "classes": list(s.class_request.classes)},
        "lens": s.lens.as_dict(),
        "view": {"mode": s.view.mode, "overlay": s.view.overlay, "opacity": s.view.opacity,
                 "territory": s.view.territory, "hover_radius": s.hover_radius},
        "color_scale": s.color_scale.as_dict(),
        "selected": s.selected, "fill": s.fill,
        "mask_result": None if s.mask_result is None else {
            "classes": [int(c) for c in s.mask_result.classes], "before": list(map(float, s.mask_result.before)),
            "after": list(map(float, s.mask_result.after)), "fraction": float(s.mask_result.fraction),
            "fill": s.mask_result.fill},
    }


def settings_from_state(st: dict, has_maps: bool = False) -> tuple[dict, list[str]]:
    """``({field: value}, warnings)``: the session's settings a checked state names.

    The fields come in the order the window sets them (the image, the class set before the
    method, ...). The lens is left out when the file has maps (``has_maps``): the maps' own
    lens is the one shown. A method this installation lacks is left out with a warning.
    """
    from alens_gui.core.methods import get_method

    fields: dict = {}
    warnings: list[str] = []
    ir = st.get("image_request") or {}
    fields["image_request"] = ImageRequest(path=ir.get("path", ""), sample=ir.get("sample", ""),
                                           tiles=tuple(ir.get("tiles") or ()), frame=ir.get("frame", 0))
    cr = st.get("class_request")
    if cr:
        fields["class_request"] = ClassRequest(kind=cr["kind"], k=cr["k"], with_lowest=cr["with_lowest"],
                                               classes=tuple(cr["classes"]))
    if "method" in st:
        try:
            get_method(st["method"])
            fields["method"] = st["method"]
            fields["options"] = dict(st.get("options") or {})
        except AlensError:
            warnings.append(f"the session's method {st['method']!r} is not available here; the current one "
                            "stays selected")
    if "input_policy" in st:
        fields["input_policy"] = st["input_policy"]
    if "window" in st:
        fields["window"] = tuple(st["window"]) if isinstance(st["window"], list) else st["window"]
    v = st.get("view")
    if v:
        fields["view"] = ViewOptions(mode=v["mode"], overlay=v["overlay"], opacity=v["opacity"],
                                     territory=v["territory"])
        fields["hover_radius"] = int(v.get("hover_radius", 0))  # kept in the file's view record
    # the colour scale has its own record; files from before kept it in the view's
    scale = st.get("color_scale") or (v or {}).get("scale")
    if scale:
        fields["color_scale"] = ColorScale(**scale)
    if "fill" in st:
        fields["fill"] = st["fill"]
    if not has_maps and "lens" in st:
        fields["lens"] = LensParams(**{k: tuple(x) if k == "temperatures" else x for k, x in st["lens"].items()})
    return fields, warnings


def input_settings(s):
    """The input half of the session's run (intensity window and input policy) as a
    :class:`~alens_gui.core.settings.RunSettings`: what reading and classifying a folder's images
    need; it never fails on a method or class set the user is still editing."""
    from alens_gui.core.settings import RunSettings
    from alens_gui.core.windowing import window_request

    return RunSettings(window=window_request(s.window), resize=s.input_policy)


def run_settings(s, method: str, options: dict, current_image: bool = False):
    """The session's run as one :class:`~alens_gui.core.settings.RunSettings`: the one place where
    its class request becomes a :class:`~alens_gui.core.settings.ClassSet` and its window field a
    window request (the menu's "default" is None: the file's own). ``method`` and ``options`` are
    the ones the registry checked (``Controller.check_settings``).

    ``current_image``: the run of the image on screen. For a 2 x 2 grid that is its tiles' classes
    (found by ``jobs.tile_classes_job`` and kept in the class request) and a stretched input (the
    grid is composed at the model's input size; the model's own centre crop would cut its outer
    tiles). Otherwise (a folder's images) a grid's class request stands for the top-k of the request.
    """
    from alens_gui.core.settings import ClassSet

    req = s.class_request
    base = input_settings(s)
    if req.kind == "picked":
        classes = ClassSet.picked(list(req.classes))
    elif req.kind == "best_vs_worst":
        classes = ClassSet.best_vs_worst()
    elif req.kind == "tiles" and current_image:
        classes = ClassSet("tiles", len(req.classes), False, tuple(req.classes))
    else:
        classes = ClassSet.top(req.k, req.with_lowest)
    if current_image and s.image_request.tiles and base.resize == "model":
        base = base.with_(resize="stretch")
    return base.with_(method=method, options=options, classes=classes, lens=s.lens)


def mask_result_from_state(saved: dict | None, expl, mask):
    """The masking result a session saved, with its masked image made again (no model run)."""
    if not saved:
        return None
    from alens_gui.core.masking import MaskResult, apply_mask

    return MaskResult(
        classes=np.asarray(saved["classes"], dtype=np.int64), before=np.asarray(saved["before"], dtype=np.float64),
        after=np.asarray(saved["after"], dtype=np.float64), masked_image=apply_mask(expl.image, mask, saved["fill"]),
        fraction=float(saved["fraction"]), fill=str(saved["fill"]),
    )
