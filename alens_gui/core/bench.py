"""``alens bench``: batched multi-class attribution vs captum called once per class.

Speed is always reported as a ratio measured in the same run on the same input
(SPEC section 5): median over repeats after a warm-up, ours and the peer timed
alternately so that a shared machine's slow moments fall on both sides. Absolute times
are printed with the machine they came from.
"""

from __future__ import annotations

import platform
import statistics
import time
from collections.abc import Callable, Sequence

import torch

from .methods.base import compute_base, get_method
from .methods.cam import find_cam_layer


def _captum_runner(name: str, model, x, ctx, ig_steps: int, opts: dict | None = None) -> Callable[[list[int]], None]:
    """captum's implementation of a method, called once per class (the usual usage).

    ``opts`` are our method's options (occlusion: window, stride, batch_size; feature ablation:
    segments, compactness, batch_size), given to captum's peer as its own arguments.
    """
    from captum import attr

    opts = dict(opts or {})

    if name == "ixg":
        m = attr.InputXGradient(model)
        return lambda classes: [m.attribute(x.clone(), target=c) for c in classes]
    if name == "saliency":
        m = attr.Saliency(model)
        return lambda classes: [m.attribute(x.clone(), target=c, abs=True) for c in classes]
    if name == "gradcam":
        layer = dict(model.named_modules())[find_cam_layer(model, x)]
        m = attr.LayerGradCam(model, layer)
        return lambda classes: [
            attr.LayerAttribution.interpolate(m.attribute(x, target=c, relu_attributions=True), x.shape[-2:])
            for c in classes
        ]
    if name == "ig":
        m = attr.IntegratedGradients(model)
        black = ctx.black.expand_as(x)
        return lambda classes: [
            m.attribute(x, baselines=black, target=c, n_steps=ig_steps, method="riemann_middle",
                        internal_batch_size=ig_steps)
            for c in classes
        ]
    if name == "guided_backprop":
        m = attr.GuidedBackprop(model)
        return lambda classes: [m.attribute(x.clone(), target=c) for c in classes]
    if name == "occlusion":  # black baseline, the same windows, as many perturbed inputs per pass
        m = attr.Occlusion(model)
        win, stride, per = int(opts.get("window", 15)), int(opts.get("stride", 8)), int(opts.get("batch_size", 32))
        black = ctx.black.expand_as(x)
        return lambda classes: [
            m.attribute(x, sliding_window_shapes=(x.shape[1], win, win), strides=(x.shape[1], stride, stride),
                        baselines=black, target=c, perturbations_per_eval=per)
            for c in classes
        ]
    if name == "feature_ablation":  # our SLIC superpixels as captum's feature mask
        from .methods.perturbation import superpixels

        m = attr.FeatureAblation(model)
        seg = superpixels(x, int(opts.get("segments", 100)), float(opts.get("compactness", 10.0)))[None, None]
        black = ctx.black.expand_as(x)
        per = int(opts.get("batch_size", 32))
        return lambda classes: [
            m.attribute(x, baselines=black, target=c, feature_mask=seg, perturbations_per_eval=per)
            for c in classes
        ]
    raise KeyError(name)


def run_bench(
    loaded,
    methods: Sequence[str] = ("ixg", "saliency", "gradcam", "ig"),
    ks: Sequence[int] = (1, 2, 4, 8),
    repeats: int = 5,
    ig_steps: int = 16,
    image=None,
    report: Callable[[dict], None] | None = None,
    extra_ks: Sequence[int] = (),
) -> list[dict]:
    """Time ours vs captum-per-class for each method and K; returns one row per pair.

    ``extra_ks`` adds rows for a ViT method and a perturbation method, timed against
    the same method called once per class (:func:`extra_bench_rows`).

    Each row: ``method, k, ours_s, captum_s, ratio`` (ours / captum; < 1 is faster).
    """
    from .images import sample_image

    model = loaded.model.eval()
    _, x = loaded.preprocess(image if image is not None else sample_image("chelsea"))
    ctx = loaded.context()
    probs = loaded.probabilities(x)
    order = torch.from_numpy(probs).argsort(descending=True).tolist()
    rows = []
    for name in methods:
        info = get_method(name)
        opts = {"steps": ig_steps, "batch_size": ig_steps} if name == "ig" else {}
        peer = _captum_runner(info.name, model, x, ctx, ig_steps)
        for k in ks:
            classes = order[:k]
            ours, theirs = _paired_medians(
                lambda cl=classes, i=info, o=opts: compute_base(model, x, cl, i, None, ctx, **o),
                lambda cl=classes, p=peer: p(cl), repeats,
            )
            row = {"method": info.name, "k": k, "ours_s": ours, "captum_s": theirs, "ratio": ours / theirs}
            rows.append(row)
            if report:
                report(row)
    if extra_ks:
        rows += extra_bench_rows(loaded, extra_ks, repeats, image, report)
    return rows


def extra_bench_rows(
    loaded,
    ks: Sequence[int] = (1, 2, 4),
    repeats: int = 3,
    image=None,
    report: Callable[[dict], None] | None = None,
) -> list[dict]:
    """Bench rows for one ViT method and one perturbation method vs the naive per-class loop.

    ``ours`` computes the K classes in one call (shared forward passes); the peer calls
    the same method once per class. The ViT method (Grad-Rollout) runs on ``loaded``
    when it is a ViT, else on a random-weight ``vit_tiny_patch16_224`` (timing only
    needs the architecture). The perturbation method is Feature Ablation over 50 SLIC
    superpixels on ``loaded``. Rows have the keys of ``bench.run_bench`` rows
    (``captum_s`` holds the per-class loop's time) plus ``peer``.
    """
    import functools

    from .images import sample_image
    from .methods.vit import vit_info

    _, x = loaded.preprocess(image if image is not None else sample_image("chelsea"))
    ctx = loaded.context()
    order = torch.from_numpy(loaded.probabilities(x)).argsort(descending=True).tolist()
    cases = []
    if vit_info(loaded.model) is not None:
        cases.append(("grad_rollout", loaded.model, x, {}))
    else:
        import timm

        torch.manual_seed(0)
        vit = timm.create_model("vit_tiny_patch16_224", pretrained=False).eval().to(x.device)
        cases.append(("grad_rollout (vit_tiny, random weights)", vit, torch.randn(1, 3, 224, 224).to(x.device), {}))
    cases.append(("feature_ablation", loaded.model.eval(), x, {"segments": 50}))
    rows = []
    for label, model, xin, opts in cases:
        name = label.split(" ")[0]
        for k in ks:
            classes = order[:k]
            run = functools.partial(compute_base, model, xin, method=name, context=ctx, **opts)
            ours, naive = _paired_medians(functools.partial(run, classes),
                                          lambda run=run, classes=classes: [run([c]) for c in classes], repeats)
            row = {"method": label, "k": k, "ours_s": ours, "captum_s": naive, "ratio": ours / naive,
                   "peer": "per-class loop"}
            rows.append(row)
            if report:
                report(row)
    return rows


def _paired_medians(ours: Callable[[], object], peer: Callable[[], object], repeats: int) -> tuple[float, float]:
    """Median times of two functions timed alternately (after one warm-up each).

    Alternating spreads any slow-down of a shared machine over both sides alike.
    """
    ours()
    peer()
    a, b = [], []
    for _ in range(max(1, repeats)):
        for fn, times in ((ours, a), (peer, b)):
            t0 = time.perf_counter()
            fn()
            times.append(time.perf_counter() - t0)
    return statistics.median(a), statistics.median(b)


def lens_row(k: int = 10, size: int = 448, repeats: int = 5, device: torch.device | str = "cpu") -> dict:
    """Re-lensing speed: :func:`~.lens.refine` (AL defaults) vs three plain softmaxes.

    Both run on the same float32 tensor of K random-normal maps of ``size`` x ``size``
    (seed 0) in the same run; the peer is ``[torch.softmax(x, dim=0) for _ in range(3)]``,
    the bare cost of the three temperatures' softmaxes with nothing else. The issue's goal
    is a ratio of at most 2 for K = 10 at 448 x 448.
    """
    from .lens import refine

    gen = torch.Generator().manual_seed(0)
    x = torch.randn((k, size, size), generator=gen).to(device)

    def sync():
        if x.device.type == "cuda":
            torch.cuda.synchronize(x.device)

    ours, peer = _paired_medians(lambda: (refine(x), sync()), lambda: ([torch.softmax(x, dim=0) for _ in range(3)],
                                                                       sync()), repeats)
    return {"what": f"lens refine(), K={k}, {size}x{size}, float32", "ours_s": ours,
            "peer": "3 x torch.softmax of the same tensor", "peer_s": peer, "ratio": ours / peer}


def api_row(loaded, k: int = 4, repeats: int = 5, image=None, method: str = "ixg") -> dict:
    """The whole API call vs captum: ``Explainer.explain(image, method, classes=<k classes>)``
    against captum's ``InputXGradient`` called once per class on the same model input.

    Ours includes everything a user gets: fitting the image, the one shared forward pass,
    the K backward passes, the lens and the :class:`~.explanation.Explanation`; the peer
    gets the already preprocessed input. The K classes are the image's top-k. The issue's
    goal is a ratio of at most 0.75 for K = 4.
    """
    from captum.attr import InputXGradient

    from .api import Explainer
    from .images import sample_image

    img = image if image is not None else sample_image("chelsea")
    ex = Explainer(loaded)
    x = loaded.fit(img)[2]
    classes = torch.from_numpy(loaded.probabilities(x)).argsort(descending=True)[:k].tolist()
    peer = InputXGradient(loaded.model.eval())
    ours_s, peer_s = _paired_medians(lambda: ex.explain(img, method=method, classes=classes),
                                     lambda: [peer.attribute(x.clone(), target=c) for c in classes], repeats)
    return {"what": f"Explainer.explain({method}, {k} classes): image to lensed maps", "ours_s": ours_s,
            "peer": "captum InputXGradient once per class", "peer_s": peer_s, "ratio": ours_s / peer_s}


def format_other_rows(rows: Sequence[dict]) -> str:
    """Rows that compare something other than a method against captum per class."""
    lines = ["| what | ours (s) | peer | peer (s) | ratio ours/peer |", "|---|---:|---|---:|---:|"]
    for r in rows:
        lines.append(f"| {r['what']} | {r['ours_s']:.4f} | {r['peer']} | {r['peer_s']:.4f} | {r['ratio']:.2f} |")
    return "\n".join(lines)


def machine_description(device: torch.device) -> str:
    if device.type == "cuda":
        return f"GPU {torch.cuda.get_device_name(device)}"
    return f"CPU {platform.processor() or platform.machine()}, {torch.get_num_threads()} threads"


def format_rows(rows: Sequence[dict]) -> str:
    lines = ["| method | K | ours (s) | captum per class (s) | ratio ours/captum |", "|---|---:|---:|---:|---:|"]
    for r in rows:
        lines.append(f"| {r['method']} | {r['k']} | {r['ours_s']:.4f} | {r['captum_s']:.4f} | {r['ratio']:.2f} |")
    return "\n".join(lines)


# ---------------------------------------------------------------------------------------------
# Many images: the batch engine vs our per-image path vs captum once per class per image
# ---------------------------------------------------------------------------------------------
def generate_folder(folder, n: int, seed: int = 0) -> list:
    """Write ``n`` photographs (skimage.data, each resized and cropped differently) as JPEG and PNG
    files in ``folder``; returns their paths. The same ``n`` and ``seed`` give the same files."""
    from pathlib import Path

    import numpy as np
    from PIL import Image

    from .images import sample_images

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    photos = sample_images()
    names = sorted(photos)
    rng = np.random.default_rng(seed)
    paths = []
    for i in range(int(n)):
        img = np.asarray(photos[names[i % len(names)]])
        if img.dtype != np.uint8:
            img = (np.clip(img, 0, 1) * 255).round().astype(np.uint8)
        h, w = img.shape[:2]
        ch, cw = int(h * rng.uniform(0.6, 1.0)), int(w * rng.uniform(0.6, 1.0))
        y0, x0 = int(rng.integers(0, h - ch + 1)), int(rng.integers(0, w - cw + 1))
        im = Image.fromarray(img[y0:y0 + ch, x0:x0 + cw])
        scale = rng.uniform(0.5, 1.2)
        im = im.resize((max(32, int(cw * scale)), max(32, int(ch * scale))), Image.BILINEAR)
        p = folder / f"photo_{i:05d}.{'jpg' if i % 3 else 'png'}"
        im.save(p, quality=90) if p.suffix == ".jpg" else im.save(p)
        paths.append(p)
    return paths


#: Method options of the folder benchmark's perturbation rows (small, so a 2-core CPU finishes a
#: folder in minutes; every side uses them, captum's peer included).
PERTURBATION_BENCH_OPTIONS = {"occlusion": {"window": 48, "stride": 32},
                              "feature_ablation": {"segments": 25}}


def _captum_per_image(loaded, name: str, k: int, ig_steps: int, opts: dict | None = None):
    """The naive loop: read and fit the image (our decoding and resizing), a forward pass for the
    top-k, captum's method once per class, the K maps saved (uncompressed .npy)."""
    import numpy as np

    from .images import load_image

    model = loaded.model.eval()
    ctx = loaded.context()

    def run(path, out_path):
        x = loaded.fit(load_image(path).pixels)[2]
        with torch.no_grad():
            top = model(x)[0].argsort(descending=True)[:k].tolist()
        # captum binds the input for Grad-CAM's layer search and IG's baseline: one runner per input
        peer = _captum_runner(name, model, x, ctx, ig_steps, opts)
        maps = peer(top)
        np.save(out_path, torch.stack([m.detach() for m in maps]).numpy())

    return run


def folder_bench(loaded, paths: Sequence, methods: Sequence[str] = ("ixg", "gradcam", "ig"), k: int = 3,
                 ig_steps: int = 16, batch_size="auto", report: Callable[[dict], None] | None = None,
                 scratch=None, rounds: int = 3) -> list[dict]:
    """Images per second over a folder for three ways of explaining it, per method, in one run.

    * **engine**: :class:`~.batch.BatchEngine` (decode ahead, batched passes, lens and npz on
      the writer thread), each result written as ``alens explain --no-png`` writes it;
    * **per image**: :meth:`~.api.Explainer.explain` then :meth:`~.explanation.Explanation.to_npz`,
      image after image (the loop ``alens explain`` ran before the engine);
    * **captum**: our decoding and resizing, a forward pass for the top-k, captum's method once
      per class, the K maps saved.

    All three see the same files, top-``k`` classes and method options (IG: ``ig_steps`` steps,
    the black baseline; perturbation methods: :data:`PERTURBATION_BENCH_OPTIONS`, captum's
    ``Occlusion`` / ``FeatureAblation`` as the peer); each writes into its own scratch folder.
    For a perturbation method a fourth side, **engine, images one by one**, runs the engine
    with ``cross_image=False`` (read ahead and written behind, but each image's perturbed
    inputs in passes of their own), so ``vs_alone`` says whether sharing passes across
    images pays (the engine side shares them). After a warm-up on two images
    each, the folder is timed in ``rounds`` parts, the three taking turns on each part. Rows: ``method, images,
    engine_ips, per_image_ips, captum_ips`` and the ratios of times ``engine/per_image`` and
    ``engine/captum`` (< 1: the engine is faster).
    """
    import shutil
    import tempfile
    from pathlib import Path

    from .api import Explainer
    from .batch import BatchEngine
    from .settings import ClassSet, RunSettings

    paths = [Path(p) for p in paths]
    own_scratch = scratch is None
    root = Path(tempfile.mkdtemp(prefix="alens-bench-")) if own_scratch else Path(scratch)
    ex = Explainer(loaded)
    rows = []
    try:
        for name in methods:
            info = get_method(name)
            from .methods.perturbation import PLANS

            opts = {"steps": ig_steps, "batch_size": ig_steps} if info.name == "ig" else \
                dict(PERTURBATION_BENCH_OPTIONS.get(info.name, {}))
            settings = RunSettings(info.name, opts, ClassSet.top(k))
            perturbed = info.name in PLANS
            engine = BatchEngine(loaded, settings, batch_size=batch_size, cross_image=True if perturbed else None)
            alone = BatchEngine(loaded, settings, batch_size=engine.batch_size, cross_image=False) \
                if perturbed else None
            dirs = {side: root / f"{info.name}-{side}" for side in ("engine", "alone", "per_image", "captum")}
            for d in dirs.values():
                d.mkdir(parents=True, exist_ok=True)

            def run_engine(items, d=dirs["engine"], engine=engine):
                def write(result):
                    if result.explanation is not None:
                        result.explanation.to_npz(d / f"{Path(result.input).stem}.npz")

                for r in engine.run(items, finish=write):
                    if r.error or r.finish_error:
                        raise RuntimeError(r.error or r.finish_error)

            def run_single(items, d=dirs["per_image"], settings=settings):
                for p in items:
                    ex.explain(p, settings).to_npz(d / f"{p.stem}.npz")

            captum_one = _captum_per_image(loaded, info.name, k, ig_steps, settings.resolved_options())

            def run_captum(items, d=dirs["captum"], one=captum_one):
                for p in items:
                    one(p, d / f"{p.stem}.npy")

            sides = (("engine", run_engine), ("per_image", run_single), ("captum", run_captum))
            if alone is not None:
                sides += (("alone", lambda items, d=dirs["alone"], e=alone: run_engine(items, d, e)),)
            times = dict.fromkeys((s for s, _ in sides), 0.0)
            for _side, fn in sides:
                fn(paths[:2])  # warm-up: model, kernels, the CAM layer search
            # the folder in ``rounds`` parts, the three sides taking turns on each part, so that a
            # shared machine's busy minutes fall on all three alike
            step = -(-len(paths) // max(1, min(rounds, len(paths))))
            for start in range(0, len(paths), step):
                part = paths[start:start + step]
                for side, fn in sides:
                    t0 = time.perf_counter()
                    fn(part)
                    times[side] += time.perf_counter() - t0
            n = len(paths)
            row = {"method": info.name, "label": info.label, "k": k, "images": n, "batch_size": engine.batch_size,
                   "engine_s": times["engine"], "per_image_s": times["per_image"], "captum_s": times["captum"],
                   "engine_ips": n / times["engine"], "per_image_ips": n / times["per_image"],
                   "captum_ips": n / times["captum"],
                   "vs_per_image": times["engine"] / times["per_image"], "vs_captum": times["engine"] / times["captum"]}
            if alone is not None:
                row.update(alone_s=times["alone"], alone_ips=n / times["alone"], vs_alone=times["engine"] / times["alone"],
                           options=opts)
            rows.append(row)
            if report:
                report(row)
    finally:
        if own_scratch:
            shutil.rmtree(root, ignore_errors=True)
    return rows


def format_folder_rows(rows: Sequence[dict]) -> str:
    lines = ["| method | K | images | B | engine (img/s) | our per-image (img/s) | captum per class (img/s) | "
             "time engine / per-image | time engine / captum | engine, images one by one (img/s) | "
             "time engine / one by one |",
             "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for r in rows:
        label = r["label"]
        if r.get("options"):
            label += " (" + ", ".join(f"{k}={v}" for k, v in r["options"].items()) + ")"
        alone = (f"{r['alone_ips']:.2f} | {r['vs_alone']:.2f}" if "alone_ips" in r else "- | -")
        lines.append(f"| {label} | {r['k']} | {r['images']} | {r['batch_size']} | {r['engine_ips']:.2f} | "
                     f"{r['per_image_ips']:.2f} | {r['captum_ips']:.2f} | {r['vs_per_image']:.2f} | "
                     f"{r['vs_captum']:.2f} | {alone} |")
    return "\n".join(lines)
