"""Cohorts: what the model uses for each class across a folder of images.

One explanation shows one decision; a cohort shows many. For each class this module
gathers the images where the class counts (it is in the class set, or it is the model's
prediction, or the image's label: ``by``), brings their refined maps into one frame (the
model's input frame) normalised per image, and answers three questions:

* **strategies**: does the model look at the same evidence in every image? Spectral
  clustering of the maps (spectral relevance analysis, Lapuschkin et al. 2019, *Unmasking
  Clever Hans predictors*): a k-nearest-neighbour affinity of downsampled maps, the number
  of clusters from the eigengap of its normalised Laplacian (or given), each cluster with
  its members, its prototype (the mean map) and its share; a 2-D embedding (t-SNE, or UMAP
  when installed) to look at. The same on the base maps, to show what the lens adds: a
  refined map holds only where the class wins, so a shortcut that wins its own pixels
  stands out as its own cluster where the base maps blur it into the rest.
* **territory**: how much of the image does the class win, by how much, and where (a
  frequency map in the common frame)?
* **two groups** (two folders, or two label groups): each class's mean refined map per
  group, the difference, and a per-pixel permutation test whose threshold controls the
  family-wise error over all pixels (the maximum statistic over pixels, Nichols & Holmes
  2002). A note says when the images are not aligned well enough for pixel-wise
  comparison to mean anything.

The explanations come from an iterator of ``(input path, Explanation)`` pairs
(:func:`explain_paths`: the result cache where the gallery filled it, else the batch engine). Torch, NumPy, SciPy and scikit-learn only; never Qt.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field

import numpy as np

from .errors import AlensError
from .explanation import Explanation, reduce_channels_np
from .lens import refine
from .lensparams import TIE_MARGIN
from .progress import Progress, ensure_progress

BY_CHOICES = ("classset", "predicted", "label")
#: Maps are kept per image at most this many pixels on a side (area-averaged); prototypes of
#: larger model inputs are resized back to the model's input frame.
STORE_MAX = 128
#: Side of the downsampled maps that are clustered (as in spectral relevance analysis).
FEATURE_SIDE = 16
#: Largest number of clusters the eigengap may choose.
MAX_CLUSTERS = 8
#: Fewest images of a class for clustering (fewer: one cluster).
MIN_FOR_CLUSTERING = 6
#: Below this mean correlation of each image with its group's mean image, pixel-wise
#: comparison of two groups is flagged as not meaningful.
ALIGNMENT_MIN = 0.5
THUMB = 48
#: The two-group test runs on maps averaged down to at most this many pixels a side (fewer,
#: less noisy pixels: more power under the family-wise correction, and a faster test).
TEST_MAX = 64


class CohortError(AlensError):
    """A cohort cannot be built (no images, a bad option)."""


# -- what one image contributes --------------------------------------------------------------
@dataclass(frozen=True)
class CohortItem:
    """One image of a cohort, reduced to what the cohort needs.

    Attributes
    ----------
    path : str
        The input path as listed.
    classes : tuple of int
        The class set the image was explained for.
    predicted : int
        The model's most probable class over all classes.
    refined, base : (K, h, w) float16
        Refined and base maps in the model's input frame (at most :data:`STORE_MAX` a
        side), each normalised by its largest absolute value.
    won : (K,) float
        Share of the image's pixels each class wins (territory).
    margin : (K,) float
        Mean margin above chance where the class wins (0 where it wins nothing).
    thumb : (t, t, 3) uint8
        What the model saw, small.
    gray : (16, 16) float32
        What the model saw, gray and tiny (for the alignment check).
    territory : (h, w) int8
        Position of the class that wins each pixel of the model's input, -1 for none.
    group : str or None
    label : str or None
    source_hw : (int, int)
    """

    path: str
    classes: tuple[int, ...]
    class_names: tuple[str, ...]
    predicted: int
    refined: np.ndarray
    base: np.ndarray
    won: np.ndarray
    margin: np.ndarray
    thumb: np.ndarray
    gray: np.ndarray
    territory: np.ndarray
    group: str | None = None
    label: str | None = None
    source_hw: tuple[int, int] = (0, 0)

    def position(self, c: int) -> int | None:
        try:
            return self.classes.index(int(c))
        except ValueError:
            return None


def _area_down(maps: np.ndarray, side_max: int) -> np.ndarray:
    """(..., h, w) averaged over blocks so that no side is above ``side_max``."""
    import torch

    h, w = maps.shape[-2:]
    if max(h, w) <= side_max:
        return maps
    s = side_max / max(h, w)
    size = (max(1, round(h * s)), max(1, round(w * s)))
    t = torch.from_numpy(np.ascontiguousarray(maps, dtype=np.float32)).reshape(-1, 1, h, w)
    out = torch.nn.functional.adaptive_avg_pool2d(t, size)
    return out.reshape(*maps.shape[:-2], *size).numpy()


def _resize(maps: np.ndarray, hw: tuple[int, int]) -> np.ndarray:
    import torch

    if tuple(maps.shape[-2:]) == tuple(hw):
        return maps
    t = torch.from_numpy(np.ascontiguousarray(maps, dtype=np.float32)).reshape(-1, 1, *maps.shape[-2:])
    out = torch.nn.functional.interpolate(t, size=tuple(hw), mode="bilinear", align_corners=False)
    return out.reshape(*maps.shape[:-2], *hw).numpy()


def _normalise(maps: np.ndarray) -> np.ndarray:
    """Each map (K, h, w) divided by its largest absolute value (0 stays 0)."""
    a = np.nan_to_num(np.asarray(maps, dtype=np.float32))
    peak = np.abs(a).reshape(a.shape[0], -1).max(axis=1)
    return a / np.where(peak > 0, peak, 1.0)[:, None, None]


def model_frame(expl: Explanation) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Base, class distribution and refined maps (K, h, w) in the model's input frame.

    The lens runs again on the method's own maps (``raw``, in the model's frame), so no
    resampling from the display frame is involved; pixels of padding (``pad``) are 0.
    """
    lens = expl.lens
    base = reduce_channels_np(np.asarray(expl.raw, dtype=np.float32), lens.reduce)
    out = refine(base, lens)
    dist, ref, base = (np.asarray(a, dtype=np.float32) for a in (out.distribution, out.refined, out.base))
    if ref.ndim == 4:  # reduce "none": one map per channel; the cohort looks at their sum
        dist, ref, base = dist.mean(axis=1), ref.sum(axis=1), base.sum(axis=1)
    geom = expl.geometry
    if geom is not None and geom.policy == "pad":
        keep = np.zeros(ref.shape[-2:], dtype=bool)
        y0, x0, y1, x1 = geom.content
        keep[y0:y1, x0:x1] = True
        ref, base = ref * keep, base * keep
        dist = np.where(keep, dist, 1.0 / len(dist))
    return base, dist, ref


def territory_of(dist: np.ndarray, tau: float, valid: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """``labels`` (h, w; position of the winning class, -1 for none) and ``strength`` in [0, 1]
    of a class distribution (K, h, w), as :meth:`Explanation.territory` defines them."""
    k = dist.shape[0]
    best = dist.argmax(axis=0)
    smax = dist.max(axis=0)
    chance = 1.0 / k + tau
    won = smax > chance + TIE_MARGIN
    if valid is not None:
        won &= valid
    span = max(1.0 - chance, 1e-12)
    return np.where(won, best, -1), np.where(won, np.clip((smax - chance) / span, 0.0, 1.0), 0.0)


def item_from_explanation(path, expl: Explanation, *, group: str | None = None,
                          label: str | None = None) -> CohortItem:
    """What one explanation contributes to a cohort (see :class:`CohortItem`)."""
    base, dist, ref = model_frame(expl)
    valid = None
    geom = expl.geometry
    if geom is not None and geom.policy == "pad":
        valid = np.zeros(ref.shape[-2:], dtype=bool)
        y0, x0, y1, x1 = geom.content
        valid[y0:y1, x0:x1] = True
    labels, strength = territory_of(dist, expl.lens.tau, valid)
    n_valid = float(valid.sum()) if valid is not None else float(labels.size)
    k = len(expl.classes)
    won = np.array([(labels == i).sum() / max(n_valid, 1.0) for i in range(k)])
    margin = np.array([float(strength[labels == i].mean()) if (labels == i).any() else 0.0 for i in range(k)])
    seen = _model_image(expl, ref.shape[-2:])
    thumb = np.clip(np.round(_area_down(seen.transpose(2, 0, 1), THUMB).transpose(1, 2, 0) * 255), 0, 255)
    gray = _area_down(seen.mean(axis=2)[None], FEATURE_SIDE)[0]
    gray = _resize(gray[None], (FEATURE_SIDE, FEATURE_SIDE))[0]
    predicted = int(expl.top5[0][0]) if expl.top5 else int(expl.classes[int(np.argmax(expl.probs))])
    item = CohortItem(
        path=str(path), classes=tuple(int(c) for c in expl.classes), class_names=tuple(expl.class_names),
        predicted=predicted,
        refined=_area_down(_normalise(ref), STORE_MAX).astype(np.float16),
        base=_area_down(_normalise(base), STORE_MAX).astype(np.float16),
        won=won, margin=margin, thumb=thumb.astype(np.uint8), gray=gray.astype(np.float32),
        territory=labels.astype(np.int8), group=group, label=label,
        source_hw=tuple(geom.source_hw) if geom is not None else tuple(ref.shape[-2:]),
    )
    return item


def _model_image(expl: Explanation, hw) -> np.ndarray:
    """What the model saw, (h, w, 3) in [0, 1] (gray where the image is unknown)."""
    img = np.asarray(expl.image, dtype=np.float32)
    if img.ndim == 2:
        img = np.repeat(img[..., None], 3, axis=2)
    if img.size == 0 or img.shape[-1] not in (3, 4):
        return np.full((*hw, 3), 0.5, dtype=np.float32)
    img = np.nan_to_num(img[..., :3], nan=0.5)
    if expl.geometry is not None:
        try:
            return np.asarray(expl.geometry.model_image(img), dtype=np.float32)
        except AlensError:
            pass
    return _resize(img.transpose(2, 0, 1), tuple(hw)).transpose(1, 2, 0)


# -- the producer of explanations -------------------------------------------------------------
def explain_paths(explainer, paths: Sequence, settings, *, cache=None, key_of: Callable | None = None,
                  progress: Progress | None = None, batch_size: int | str = "auto"
                  ) -> Iterator[tuple[str, Explanation | AlensError]]:
    """``(path, Explanation)`` for each input in order, or ``(path, error)`` for one that failed.

    The one producer of explanations for cohorts: the result cache's entry when ``cache`` and
    ``key_of(path)`` find one (the window's gallery writes the same keys), else the batch
    engine (:class:`~alens_gui.core.batch.BatchEngine`, several images per pass, decoded ahead)
    with ``settings`` (a :class:`~alens_gui.core.settings.RunSettings`), whose results then go
    into the cache. Cancel through ``progress``; its total grows by one unit per image.
    """
    from .batch import BatchEngine, FollowProgress

    progress = ensure_progress(progress)
    paths = list(paths)
    progress.add_total(len(paths))
    window = settings.window  # (None: the file's default, as the gallery's "default")
    keys = [key_of(p) if (cache is not None and key_of is not None) else None for p in paths]
    found: dict[int, Explanation] = {}
    for i, (path, key) in enumerate(zip(paths, keys)):
        expl = cache.explanation(key, path, window) if key is not None else None
        if expl is not None:
            found[i] = expl.relens(settings.lens) if expl.lens != settings.lens else expl
    missing = [i for i in range(len(paths)) if i not in found]
    results = iter(())
    if missing:  # the engine counts its own work; this function counts images as it yields them
        engine = BatchEngine(explainer.loaded, settings, batch_size=batch_size)
        results = engine.run([paths[i] for i in missing], FollowProgress(progress))
    try:
        for n, path in enumerate(paths):
            progress.check()
            if n in found:
                yield str(path), found[n]
            else:
                r = next(results)
                if r.explanation is None:
                    yield str(path), AlensError(r.error or f"{path}: no explanation")
                else:
                    if keys[n] is not None:
                        cache.put_explanation(keys[n], r.explanation)
                    yield str(path), r.explanation
            progress.advance(1, f"explained {n + 1} of {len(paths)}")
    finally:
        close = getattr(results, "close", None)
        if close is not None:
            close()


def model_identity(spec: str, arch: str | None, labels: str | None, name: str, output: str = "softmax") -> str:
    """The model part of the window's cache keys, so the CLI reads what the gallery wrote."""
    from pathlib import Path

    from .safeio import sha256_file

    ck = (sha256_file(spec) or "") if spec != "default" and Path(spec).is_file() else ""
    return f"{spec}|{arch or ''}|{labels or ''}|{ck}|{name}" + (f"|{output}" if output != "softmax" else "")


# -- strategies ---------------------------------------------------------------------------------
@dataclass
class Strategy:
    """One cluster of a class's maps: which images (indices into the cohort's items), their
    mean map (the prototype, in the model's input frame) and their share of the class's images."""

    members: list[int]
    prototype: np.ndarray
    share: float
    #: The images whose map is 0 everywhere (with refined maps: the class wins no pixel there).
    empty: bool = False


@dataclass
class Clustering:
    """Strategies of one kind of map (refined or base), largest first."""

    strategies: list[Strategy]
    labels: np.ndarray
    eigenvalues: np.ndarray
    n_clusters: int
    chosen_by: str
    embedding: np.ndarray
    embedding_method: str


def features(maps: np.ndarray, side: int = FEATURE_SIDE) -> np.ndarray:
    """(n, h, w) maps -> (n, side*side) downsampled (area mean) and scaled to unit length, as
    clustered: distances then compare where the evidence lies, not how strong it is."""
    small = _area_down(np.asarray(maps, dtype=np.float32), side)
    small = _resize(small, (side, side)).reshape(len(small), -1)
    norm = np.linalg.norm(small, axis=1, keepdims=True)
    return small / np.where(norm > 0, norm, 1.0)


def knn_affinity(x: np.ndarray, k: int | None = None) -> np.ndarray:
    """Symmetric k-nearest-neighbour affinity (n, n) of the rows of ``x``.

    Gaussian weights with a local scale per image (the distance to its k-th neighbour,
    Zelnik-Manor & Perona 2004), kept only between neighbours; symmetric by the larger of
    the two directions.
    """
    n = len(x)
    if k is None:
        k = int(round(math.sqrt(n)))
    k = max(1, min(n - 1, max(5, k)))
    sq = (x * x).sum(axis=1)
    d2 = np.maximum(sq[:, None] + sq[None, :] - 2.0 * (x @ x.T), 0.0)
    np.fill_diagonal(d2, np.inf)
    nn = np.argpartition(d2, k - 1, axis=1)[:, :k]
    dk = np.sqrt(np.take_along_axis(d2, nn, axis=1)).max(axis=1)
    # duplicates (dk = 0) get a scale from the others, so that their other neighbours keep a weight
    floor = 0.05 * float(np.median(dk[dk > 0])) if (dk > 0).any() else 1e-6
    sigma = np.maximum(dk, max(floor, 1e-9))
    rows = np.repeat(np.arange(n), k)
    cols = nn.ravel()
    w = np.exp(-d2[rows, cols] / (sigma[rows] * sigma[cols]))
    a = np.zeros((n, n))
    a[rows, cols] = w
    a = np.maximum(a, a.T)
    np.fill_diagonal(a, 0.0)
    return a


def eigengap(affinity: np.ndarray, max_clusters: int = MAX_CLUSTERS) -> tuple[int, np.ndarray]:
    """The number of clusters from the largest gap among the smallest eigenvalues of the
    normalised graph Laplacian; and those eigenvalues."""
    from scipy.linalg import eigh
    from scipy.sparse.csgraph import laplacian

    n = len(affinity)
    m = min(n - 1, max_clusters)
    lap = laplacian(affinity, normed=True)
    vals = eigh(lap, eigvals_only=True, subset_by_index=[0, m])
    vals = np.clip(vals, 0.0, None)
    gaps = np.diff(vals)
    return int(np.argmax(gaps)) + 1, vals


def embed_2d(x: np.ndarray, seed: int = 0) -> tuple[np.ndarray, str]:
    """A 2-D embedding of the rows of ``x``: UMAP when installed, else t-SNE (PCA for a handful)."""
    n = len(x)
    if n < 2 or np.ptp(x, axis=0).max() == 0:  # nothing to spread out (one image, or all alike)
        return np.zeros((n, 2)), "none"
    if n < 8:
        from sklearn.decomposition import PCA

        out = PCA(n_components=min(2, n, x.shape[1]), random_state=seed).fit_transform(x)
        return np.pad(out, ((0, 0), (0, 2 - out.shape[1]))), "PCA"
    try:
        import umap  # noqa: F401

        reducer = umap.UMAP(n_components=2, n_neighbors=min(15, n - 1), random_state=seed)
        return np.asarray(reducer.fit_transform(x)), "UMAP"
    except ImportError:
        pass
    from sklearn.manifold import TSNE
    from threadpoolctl import threadpool_limits

    perplexity = float(min(30.0, max(2.0, (n - 1) / 3.0)))
    # one OpenMP thread: Barnes-Hut t-SNE's threads spin while they wait, and on a machine busy
    # with other work (the window's own workers) that made it 5-10 times slower, not faster
    with threadpool_limits(limits=1, user_api="openmp"):
        out = TSNE(n_components=2, perplexity=perplexity, init="pca", learning_rate="auto",
                   random_state=seed).fit_transform(x)
    return np.asarray(out), "t-SNE"


def cluster_maps(maps: np.ndarray, clusters: int | str = "auto", *, out_hw: tuple[int, int] | None = None,
                 embed: bool = True, seed: int = 0, progress: Progress | None = None) -> Clustering:
    """Strategies of ``maps`` (n, h, w), normalised per image: spectral clustering of a kNN
    affinity of their downsampled forms (``clusters`` given, or ``"auto"``: the eigengap).
    Prototypes are means of the full maps, resized to ``out_hw``."""
    progress = ensure_progress(progress)
    maps = np.asarray(maps, dtype=np.float32)
    n = len(maps)
    if n == 0:
        raise CohortError("no maps to cluster")
    out_hw = tuple(out_hw or maps.shape[-2:])
    x = features(maps)
    if clusters != "auto":
        clusters = int(clusters)
        if clusters < 1:
            raise CohortError(f"the number of clusters is at least 1; got {clusters}")
    # maps that are 0 everywhere (a class that wins no pixel of the image) are a strategy of their
    # own, "nothing": they are not clustered with the others (they would be everyone's nearest)
    empty = np.abs(maps).reshape(n, -1).max(axis=1) == 0
    full = np.flatnonzero(~empty)
    labels, vals, k, how = _spectral(x[full], clusters, seed, progress)
    all_labels = np.full(n, -1, dtype=int)
    all_labels[full] = labels
    progress.check()
    emb, emb_method = embed_2d(x, seed) if embed else (np.zeros((n, 2)), "none")
    order = sorted(set(labels.tolist()), key=lambda lab: (-(labels == lab).sum(), lab))
    if empty.any():
        order.append(-1)
    strategies = []
    relabel = np.zeros(n, dtype=int)
    for new, lab in enumerate(order):
        members = np.flatnonzero(all_labels == lab)
        relabel[members] = new
        proto = _resize(maps[members].mean(axis=0)[None], out_hw)[0]
        strategies.append(Strategy(members.tolist(), proto.astype(np.float32), len(members) / n, lab == -1))
    return Clustering(strategies, relabel, np.asarray(vals), len(strategies), how, emb, emb_method)


def _spectral(x: np.ndarray, clusters, seed: int, progress: Progress) -> tuple[np.ndarray, np.ndarray, int, str]:
    """Labels of the rows of ``x``, the Laplacian's smallest eigenvalues, the number and how it was chosen."""
    n = len(x)
    if n == 0:
        return np.zeros(0, dtype=int), np.zeros(0), 0, "no map"
    if n < MIN_FOR_CLUSTERING or (clusters != "auto" and clusters == 1):
        return np.zeros(n, dtype=int), np.zeros(0), 1, "too few images" if n < MIN_FOR_CLUSTERING else "given"
    aff = knn_affinity(x)
    k_gap, vals = eigengap(aff)
    k, how = (k_gap, "eigengap") if clusters == "auto" else (min(int(clusters), n - 1), "given")
    progress.check()
    if k == 1:
        return np.zeros(n, dtype=int), vals, 1, how
    import warnings

    from sklearn.cluster import SpectralClustering

    with warnings.catch_warnings():  # a graph in pieces is what separate strategies look like
        warnings.filterwarnings("ignore", message="Graph is not fully connected")
        labels = SpectralClustering(n_clusters=k, affinity="precomputed", assign_labels="cluster_qr",
                                    random_state=seed).fit_predict(aff)
    return labels, vals, k, how


# -- two groups ---------------------------------------------------------------------------------
@dataclass
class GroupDifference:
    """Two groups' mean refined maps for one class and where they differ more than chance."""

    groups: tuple[str, str]
    counts: tuple[int, int]
    mean_a: np.ndarray
    mean_b: np.ndarray
    difference: np.ndarray
    t: np.ndarray
    p: np.ndarray
    significant: np.ndarray
    alpha: float
    permutations: int
    alignment: float
    note: str


def _welch_t(x: np.ndarray, xx: np.ndarray, ind: np.ndarray) -> np.ndarray:
    """Welch t (P, d) of group 1 (``ind`` rows, 0/1 of length n) against group 0 for each row of
    ``ind``; ``xx`` is ``x * x``."""
    n1 = ind.sum(axis=1, keepdims=True)
    n0 = ind.shape[1] - n1
    s1, s = ind @ x, x.sum(axis=0)[None]
    q1, q = ind @ xx, xx.sum(axis=0)[None]
    m1, m0 = s1 / n1, (s - s1) / n0
    v1 = np.maximum(q1 / n1 - m1 * m1, 0) * n1 / np.maximum(n1 - 1, 1)
    v0 = np.maximum((q - q1) / n0 - m0 * m0, 0) * n0 / np.maximum(n0 - 1, 1)
    se = np.sqrt(v1 / n1 + v0 / n0)
    return (m1 - m0) / np.maximum(se, 1e-6)


def group_difference(maps_a: np.ndarray, maps_b: np.ndarray, names=("A", "B"), *, gray_a=None, gray_b=None,
                     permutations: int = 999, alpha: float = 0.05, out_hw=None, seed: int = 0,
                     progress: Progress | None = None) -> GroupDifference:
    """Mean maps of two groups, their difference and a per-pixel permutation test.

    The statistic is Welch's t at every pixel (of the maps averaged down to at most
    :data:`TEST_MAX` a side); group labels are permuted ``permutations`` times and a pixel is significant where its |t| exceeds the (1 - ``alpha``) quantile of
    the largest |t| over all pixels under permutation: the family-wise error over the whole
    map stays at ``alpha``. ``p`` is that corrected p-value per pixel. ``gray_a``/``gray_b``
    (n, s, s) are the images the model saw, small: their alignment decides the note.
    """
    progress = ensure_progress(progress)
    a = np.asarray(maps_a, dtype=np.float32)
    b = np.asarray(maps_b, dtype=np.float32)
    hw = a.shape[-2:]
    out_hw = tuple(out_hw or hw)
    mean_a, mean_b = a.mean(axis=0), b.mean(axis=0)
    test = _area_down(np.concatenate([a, b]), TEST_MAX)
    thw = test.shape[-2:]
    x = test.reshape(len(test), -1).astype(np.float64)
    xx = x * x
    n, na = len(x), len(a)
    ind0 = np.zeros((1, n))
    ind0[0, :na] = 1
    t_obs = _welch_t(x, xx, ind0)[0]
    exceed = np.zeros(x.shape[1])
    rng = np.random.default_rng(seed)
    p_count = 0
    if min(len(a), len(b)) >= 2:
        chunk = max(1, int(2e7 // max(1, n * x.shape[1])))
        while p_count < permutations:
            m = min(chunk, permutations - p_count)
            ind = np.zeros((m, n))
            for i in range(m):
                ind[i, rng.permutation(n)[:na]] = 1
            tmax = np.abs(_welch_t(x, xx, ind)).max(axis=1)
            exceed += (tmax[:, None] >= np.abs(t_obs)[None]).sum(axis=0)
            p_count += m
            progress.check()
        p = (1.0 + exceed) / (1.0 + p_count)
    else:
        p = np.ones(x.shape[1])
    alignment = _alignment(gray_a, gray_b)
    notes = []
    if min(len(a), len(b)) < 5:
        notes.append(f"only {min(len(a), len(b))} image(s) in the smaller group: the test has little power")
    if math.isfinite(alignment) and alignment < ALIGNMENT_MIN:
        notes.append(f"the images are not aligned (mean correlation with their group's mean image {alignment:.2f}, "
                     f"below {ALIGNMENT_MIN}): the same pixel is not the same place in every image, so a "
                     "pixel-wise difference says little; compare the strategies instead")

    def up(m):
        return _resize(np.asarray(m, dtype=np.float32)[None], out_hw)[0]

    def nearest(m):  # test-resolution values as blocks of the model's frame
        from .geometry import _resize as resample

        return resample(np.asarray(m, dtype=np.float32).reshape(thw)[None], out_hw, mode="nearest")[0]

    p_map = nearest(p)
    return GroupDifference(
        tuple(names), (len(a), len(b)), up(mean_a), up(mean_b), up(mean_a - mean_b), nearest(t_obs), p_map,
        p_map <= alpha, alpha, p_count, alignment, "; ".join(notes))


def _alignment(gray_a, gray_b) -> float:
    """Mean correlation of each image (small, gray) with its own group's mean image."""
    scores = []
    for g in (gray_a, gray_b):
        if g is None or len(g) < 2:
            continue
        g = np.asarray(g, dtype=np.float64).reshape(len(g), -1)
        mean = g.mean(axis=0)
        for row in g:
            if row.std() > 1e-9 and mean.std() > 1e-9:
                scores.append(float(np.corrcoef(row, mean)[0, 1]))
            else:
                scores.append(1.0 if np.allclose(row, mean) else 0.0)
    return float(np.mean(scores)) if scores else float("nan")


# -- territory ----------------------------------------------------------------------------------
@dataclass
class Territory:
    """Per class over its cohort: mean share of image area won, mean margin above chance where
    it wins, and the frequency map (share of the images in which it wins each pixel)."""

    area: float
    margin: float
    frequency: np.ndarray
    images: int


# -- the cohort ---------------------------------------------------------------------------------
@dataclass
class ClassCohort:
    class_index: int
    class_name: str
    members: list[int]
    refined: Clustering | None
    base: Clustering | None
    territory: Territory | None
    groups: GroupDifference | None = None
    note: str = ""


@dataclass
class Cohort:
    items: list[CohortItem]
    classes: dict[int, ClassCohort]
    model_hw: tuple[int, int]
    by: str
    failures: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


class CohortBuilder:
    """Takes explanations one at a time (:meth:`add`), then builds the :class:`Cohort` (:meth:`finish`).

    Only small per-image summaries are kept (:class:`CohortItem`).
    """

    def __init__(self) -> None:
        self.items: list[CohortItem] = []
        self.failures: list[str] = []
        self.model_hw: tuple[int, int] | None = None
        self.class_names: dict[int, str] = {}

    def add(self, path, expl: Explanation | AlensError, *, group: str | None = None, label: str | None = None) -> None:
        if isinstance(expl, BaseException):
            self.failures.append(str(expl) if str(path) in str(expl) else f"{path}: {expl}")
            return
        item = item_from_explanation(path, expl, group=group, label=label)
        hw = tuple(item.territory.shape)
        if self.model_hw is None:
            self.model_hw = hw
        elif hw != self.model_hw:
            self.failures.append(f"{path}: maps of {hw[0]} x {hw[1]}, not the cohort's "
                                 f"{self.model_hw[0]} x {self.model_hw[1]}; left out")
            return
        self.items.append(item)
        for i, c in enumerate(item.classes):
            self.class_names.setdefault(c, item.class_names[i])

    def members(self, c: int, by: str) -> tuple[list[int], int]:
        """Item indices of class ``c``'s cohort, and how many images qualified but lack the class in their set."""
        name = self.class_names.get(c, "").casefold()
        out, missing = [], 0
        for n, it in enumerate(self.items):
            if by == "classset":
                wanted = c in it.classes
            elif by == "predicted":
                wanted = it.predicted == c
            else:
                wanted = it.label is not None and it.label.casefold() == name
            if wanted:
                if c in it.classes:
                    out.append(n)
                else:
                    missing += 1
        return out, missing

    def finish(self, *, by: str = "classset", classes: Iterable[int] | None = None, clusters: int | str = "auto",
               min_members: int = 2, groups: tuple[str, str] | None = None, permutations: int = 999,
               alpha: float = 0.05, embed: bool = True, progress: Progress | None = None) -> Cohort:
        """Cluster every class with at least ``min_members`` images (or the ``classes`` given).

        With ``groups`` (two group names), each class's refined maps are compared between them.
        """
        if by not in BY_CHOICES:
            raise CohortError(f"--by is one of {', '.join(BY_CHOICES)}; got {by!r}")
        progress = ensure_progress(progress)
        if not self.items:
            raise CohortError("no image could be explained: nothing to group")
        wanted = sorted(self.class_names) if classes is None else [int(c) for c in classes]
        work = []
        notes = []
        for c in wanted:
            idx, missing = self.members(c, by)
            if missing:
                notes.append(f"{self.class_names.get(c, c)}: {missing} image(s) {by} as this class have it outside "
                             "their class set (no map); widen the class set to include them")
            if len(idx) >= min_members or classes is not None:
                work.append((c, idx))
        if by == "label" and not any(idx for _, idx in work):
            labels = sorted({it.label for it in self.items if it.label})
            notes.append("no image is labelled with a class of its class set: labels are the names of the images' "
                         "sub-folders and must be class names" + (f" (found: {', '.join(labels[:5])})" if labels
                                                                   else " (the images are in no sub-folder)"))
        progress.add_total(len(work))
        out: dict[int, ClassCohort] = {}
        for c, idx in work:
            name = self.class_names.get(c, str(c))
            if not idx:
                out[c] = ClassCohort(c, name, [], None, None, None, note="no image")
                progress.advance(1, f"{name}: no image")
                continue
            ref = np.stack([self.items[n].refined[self.items[n].position(c)] for n in idx]).astype(np.float32)
            base = np.stack([self.items[n].base[self.items[n].position(c)] for n in idx]).astype(np.float32)
            rc = cluster_maps(ref, clusters, out_hw=self.model_hw, embed=embed, progress=progress)
            bc = cluster_maps(base, clusters, out_hw=self.model_hw, embed=embed, progress=progress)
            terr = self._territory(c, idx)
            gd = None
            if groups is not None:
                ga = [n for n in idx if self.items[n].group == groups[0]]
                gb = [n for n in idx if self.items[n].group == groups[1]]
                if ga and gb:
                    pos = {n: k for k, n in enumerate(idx)}
                    gd = group_difference(
                        ref[[pos[n] for n in ga]], ref[[pos[n] for n in gb]], groups,
                        gray_a=np.stack([self.items[n].gray for n in ga]),
                        gray_b=np.stack([self.items[n].gray for n in gb]),
                        permutations=permutations, alpha=alpha, out_hw=self.model_hw, progress=progress)
            out[c] = ClassCohort(c, name, idx, rc, bc, terr, gd)
            progress.advance(1, f"{name}: {rc.n_clusters} strategies")
        return Cohort(self.items, out, self.model_hw, by, list(self.failures), notes)

    def _territory(self, c: int, idx: list[int]) -> Territory:
        won = [self.items[n].won[self.items[n].position(c)] for n in idx]
        margins = [self.items[n].margin[self.items[n].position(c)] for n in idx
                   if self.items[n].won[self.items[n].position(c)] > 0]
        freq = np.zeros(self.model_hw, dtype=np.float64)
        for n in idx:
            freq += self.items[n].territory == self.items[n].position(c)
        return Territory(float(np.mean(won)), float(np.mean(margins)) if margins else 0.0,
                         (freq / len(idx)).astype(np.float32), len(idx))


def build_cohort(pairs: Iterable, *, groups: tuple[str, str] | None = None, progress: Progress | None = None,
                 **finish) -> Cohort:
    """A :class:`Cohort` from ``(path, Explanation)`` pairs (or ``(path, Explanation, group, label)``).

    Keywords go to :meth:`CohortBuilder.finish` (``by``, ``classes``, ``clusters``, ...).
    """
    builder = CohortBuilder()
    for entry in pairs:
        path, expl, *rest = entry
        group = rest[0] if len(rest) > 0 else None
        label = rest[1] if len(rest) > 1 else None
        builder.add(path, expl, group=group, label=label)
    return builder.finish(groups=groups, progress=progress, **finish)


# -- agreement with a known partition (for tests and examples) -------------------------------
def agreement(labels: Sequence[int], truth: Sequence[int]) -> dict[str, float]:
    """Adjusted Rand index and purity of a clustering against known labels."""
    from sklearn.metrics import adjusted_rand_score

    labels, truth = np.asarray(labels), np.asarray(truth)
    purity = sum(np.bincount(truth[labels == lab]).max() for lab in np.unique(labels)) / max(len(labels), 1)
    return {"ari": float(adjusted_rand_score(truth, labels)), "purity": float(purity)}
