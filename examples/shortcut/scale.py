"""How long do a class's strategies take for 1,000 images, once the explanations exist?

``python examples/shortcut/scale.py [--images 1000]`` times what ``alens cohort`` does per
class after explaining: spectral clustering (kNN affinity, eigengap, scikit-learn's spectral
clustering) and the 2-D embedding, on the refined maps and again on the base maps, for
synthetic maps of the size a cohort keeps for a 224 x 224 model (128 x 128) with four
planted strategies. Prints the seconds and how well the planted strategies were found.
"""

from __future__ import annotations

import argparse
import sys
import time

import numpy as np


def planted(n: int, side: int = 128, seed: int = 0):
    rng = np.random.default_rng(seed)
    truth = rng.integers(0, 4, n)
    maps = rng.normal(0, 0.3, (n, side, side)).astype(np.float32)
    places = [(10, 10), (70, 70), (10, 80), (80, 15)]
    for i, t in enumerate(truth):
        y, x = places[t]
        y, x = y + rng.integers(-4, 5), x + rng.integers(-4, 5)
        maps[i, y:y + 24, x:x + 24] += 1.0
    return maps / np.abs(maps).reshape(n, -1).max(axis=1)[:, None, None], truth


def main(argv=None) -> int:
    from alens_gui.core.cohort import agreement, cluster_maps

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--images", type=int, default=1000)
    args = p.parse_args(argv)
    maps, truth = planted(args.images)
    t0 = time.perf_counter()
    found = [cluster_maps(maps, "auto", out_hw=(224, 224)) for _ in ("refined", "base")]
    dt = time.perf_counter() - t0
    ag = agreement(found[0].labels, truth)
    print(f"{args.images} maps of 128 x 128, twice (refined and base): {dt:.1f} s for clustering and "
          f"{found[0].embedding_method} embedding; {found[0].n_clusters} strategies by the eigengap "
          f"(4 planted), adjusted Rand {ag['ari']:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
