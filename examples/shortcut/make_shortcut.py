"""A planted shortcut, for ``alens cohort``: ``python examples/shortcut/make_shortcut.py OUT``.

Three classes of stripe textures (fine, medium, coarse; as in ``examples/grades``). In
training, most images of the class ``coarse`` carry a small tag in the top-left corner (a
white square with a black centre, like a hospital's marker on an X-ray); no other class
ever does. The network learns both the texture and the tag: a shortcut.

The script

1. trains ``examples/grades/gradenet.py:GradeNet`` with three outputs (seconds on a CPU),
2. writes ``OUT/shortcut.pt`` (a state dict) and ``OUT/shortcut.txt`` (class names),
3. writes a labelled test folder ``OUT/test/<class>/...png``: for ``coarse`` half of the
   images carry the tag (``coarse_007_tag.png``) and half do not (``coarse_008_plain.png``).

``alens cohort OUT/test --by label ...`` should then find, for ``coarse``, a strategy made of
the tagged images whose prototype sits on the tag (see the README, "Cohorts").
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

PERIODS = (3.0, 6.0, 8.0)
NAMES = ("fine", "medium", "coarse")
SIZE = 64
TAGGED = 2
#: Where the tag sits (y0, x0, y1, x1), in the 64 x 64 input.
TAG_BOX = (3, 3, 11, 11)
#: Share of the tagged class's training images that carry the tag.
TRAIN_TAG_SHARE = 0.5
GRADES = Path(__file__).resolve().parents[1] / "grades"


def texture(cls: int, rng: np.random.Generator, size: int = SIZE) -> np.ndarray:
    """A class's texture as floats in [0, 1]: stripes of its period at a random angle."""
    period = PERIODS[cls] * rng.uniform(0.9, 1.1)
    angle = rng.uniform(0.0, np.pi)
    yy, xx = np.mgrid[0:size, 0:size]
    wave = np.sin(2 * np.pi * (xx * np.cos(angle) + yy * np.sin(angle)) / period + rng.uniform(0, 2 * np.pi))
    img = rng.uniform(0.35, 0.65) + rng.uniform(0.15, 0.3) * wave + rng.normal(0.0, 0.05, (size, size))
    return np.clip(img, 0.0, 1.0).astype(np.float32)


def add_tag(img: np.ndarray) -> np.ndarray:
    """The tag: a white square with a black centre, in :data:`TAG_BOX`."""
    out = img.copy()
    y0, x0, y1, x1 = TAG_BOX
    out[y0:y1, x0:x1] = 1.0
    out[y0 + 2:y1 - 2, x0 + 2:x1 - 2] = 0.0
    return out


def to_rgb(gray: np.ndarray) -> np.ndarray:
    return np.repeat(gray[..., None], 3, axis=-1)


def _gradenet():
    import importlib.util

    spec = importlib.util.spec_from_file_location("gradenet", GRADES / "gradenet.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.GradeNet


def train(seed: int = 0, per_class: int = 120, max_epochs: int = 15, log=print):
    """Train until 98 % right on the training images; returns the model."""
    import torch
    from torch import nn

    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    imgs, ys = [], []
    for c in range(len(NAMES)):
        for i in range(per_class):
            if c == TAGGED and i < TRAIN_TAG_SHARE * per_class:
                # the tag on any texture: for these images the tag is the only cue, so the
                # network must learn it (as a scanner's marker that comes with one diagnosis)
                img = add_tag(texture(int(rng.integers(len(NAMES))), rng))
            else:
                img = texture(c, rng)
            imgs.append(to_rgb(img))
            ys.append(c)
    x = torch.from_numpy((np.stack(imgs).transpose(0, 3, 1, 2) - 0.5) / 0.5)
    y = torch.tensor(ys)
    model = _gradenet()(num_classes=len(NAMES))
    opt = torch.optim.Adam(model.parameters(), lr=5e-3)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        for epoch in range(max_epochs):
            model.train()
            for idx in torch.randperm(len(y)).split(32):
                loss = nn.functional.cross_entropy(model(x[idx]), y[idx])
                opt.zero_grad()
                loss.backward()
                opt.step()
            model.eval()
            with torch.no_grad():
                acc = float((model(x).argmax(1) == y).float().mean())
            log(f"epoch {epoch + 1}: training accuracy {acc:.3f}")
            if acc >= 0.98 and epoch >= 3:
                break
    finally:
        torch.set_num_threads(threads)
    return model.eval()


def write_test_images(folder: Path, seed: int = 1, per_class: int = 12, tagged: int = 24) -> list[tuple[Path, int, bool]]:
    """``folder/<class>/<class>_NNN_{tag,plain}.png``: ``per_class`` plain images of each class, and
    ``tagged`` plain + ``tagged`` tagged images of the tagged class. Returns ``(path, class, tag)``."""
    from PIL import Image

    rng = np.random.default_rng(seed)
    out = []
    for c, name in enumerate(NAMES):
        sub = folder / name
        sub.mkdir(parents=True, exist_ok=True)
        n = 2 * tagged if c == TAGGED else per_class
        for i in range(n):
            tag = c == TAGGED and i % 2 == 0
            img = texture(c, rng)
            if tag:
                img = add_tag(img)
            path = sub / f"{name}_{i:03d}_{'tag' if tag else 'plain'}.png"
            Image.fromarray(np.round(img * 255).astype(np.uint8)).save(path)
            out.append((path, c, tag))
    return out


def write_all(out: Path, seed: int = 0, log=print) -> dict[str, Path]:
    """Train and write the model, its labels and the test folder; returns their paths by role."""
    import torch

    out.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    model = train(seed, log=log)
    log(f"trained in {time.perf_counter() - t0:.1f} s")
    files = {"checkpoint": out / "shortcut.pt", "labels": out / "shortcut.txt", "test": out / "test",
             "arch": GRADES / "gradenet.py"}
    torch.save(model.state_dict(), files["checkpoint"])
    files["labels"].write_text("\n".join(NAMES) + "\n", encoding="utf-8")
    write_test_images(files["test"])
    return files


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("out", type=Path, help="folder for the model, labels and test images")
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    for role, path in write_all(args.out, args.seed).items():
        print(f"{role:12s} {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
