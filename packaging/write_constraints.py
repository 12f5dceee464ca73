"""Write ``resources/constraints/constraints.txt`` from the packages of a working virtual environment.

    .venv/bin/python packaging/write_constraints.py        # after `make test` passed in that .venv

The file pins every package the suite was tested with (napari keeps the same kind of file in
``resources/constraints/``); ``make run``, ``make test`` and ``make package`` install with
``pip install -c`` it, so a new machine resolves the same versions. Packages that exist only
for Linux x86-64 (the CUDA libraries that PyPI's torch wheel pulls in) carry an environment
marker, so the file also works where pip resolves another torch build.
"""

from __future__ import annotations

import platform
import sys
from importlib import metadata
from pathlib import Path

OUT = Path(__file__).resolve().parent.parent / "resources" / "constraints" / "constraints.txt"
SKIP = {"pip", "setuptools", "wheel", "alens-gui"}
LINUX_X86_ONLY = ("nvidia-", "cuda-", "triton")


def main() -> int:
    dists = {}
    for d in metadata.distributions():
        name = (d.metadata["Name"] or "").strip()
        if name and name.lower() not in SKIP:
            dists[name.lower()] = (name, d.version)
    lines = [
        "# Exact versions `make test` passed with; written by packaging/write_constraints.py.",
        f"# Python {platform.python_version()} on {platform.system()} {platform.machine()}.",
        "# make run / make test / make package install with: pip install -c resources/constraints/constraints.txt",
        "# make test-latest ignores this file and tests the newest releases.",
    ]
    for key in sorted(dists):
        name, version = dists[key]
        marker = ' ; sys_platform == "linux" and platform_machine == "x86_64"' if key.startswith(LINUX_X86_ONLY) else ""
        lines.append(f"{name}=={version}{marker}")
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text("\n".join(lines) + "\n", encoding="utf-8")
    print(f"wrote {len(dists)} pins to {OUT}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
