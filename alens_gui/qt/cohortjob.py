"""The Cohort view's background work: explanations of the gallery's images (the result cache
first), then strategies, embedding and territory per class (:mod:`alens_gui.core.cohort`)."""

from __future__ import annotations

from alens_gui.core.progress import Progress


def cohort_job(progress: Progress, loaded, items, settings, cache, key_of, by: str, clusters, groups=None):
    """``items`` are ``(path, label)``; yields ``("explained", n)``; returns the Cohort. With
    ``groups`` (two labels) each class's refined maps are compared between those label groups."""
    from alens_gui.core.api import Explainer
    from alens_gui.core.cohort import CohortBuilder, explain_paths

    explainer = Explainer(loaded)  # the batch engine holds the model's lock while it computes
    labels = {str(p): lab for p, lab in items}
    builder = CohortBuilder()
    paths = [str(p) for p, _ in items]
    for n, (path, expl) in enumerate(explain_paths(explainer, paths, settings, cache=cache, key_of=key_of,
                                                   progress=progress)):
        label = labels.get(path)
        builder.add(path, expl, label=label, group=label if groups and label in groups else None)
        yield ("explained", n + 1)
    cache.flush()
    return builder.finish(by=by, clusters=clusters, groups=groups, progress=progress)
