"""``alens-gui [PATH [PATH2]] [--model SPEC] [--arch A] [--labels F] [--device D] [--torchscript]``: the desktop program.

``PATH`` is opened as what it is: an image, a folder (the gallery, class sub-folders included)
or a ``.alens`` session (so a double-click on a session file opens it). Two images are opened
as a comparison: the first is explained and pinned, the second explained with its class set.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from .appinfo import APP_NAME, ORG_NAME, make_app  # noqa: F401 - re-exported


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="alens-gui",
        description="Attribution Lens Studio: per-class attribution maps refined by class competition.",
    )
    p.add_argument("path", nargs="*", metavar="PATH",
                   help="an image, a folder (shown in the gallery) or a .alens session to open "
                        "(default: a sample photograph); two images are opened as a comparison "
                        "(the first pinned, the second explained with its class set)")
    p.add_argument("--model", default="default",
                   help="default (offline EfficientNet-Lite0), torchvision:NAME, timm:NAME or a checkpoint file")
    p.add_argument("--arch", help="architecture of a state-dict checkpoint (timm:NAME, torchvision:NAME, or your "
                                  "own FILE.py:NAME / module:NAME, which runs that code)")
    p.add_argument("--torchscript", action="store_true",
                   help="the --model file is a TorchScript program: load it as one (this runs the code inside it)")
    p.add_argument("--labels", help="class names file (.txt, one per line, or .json)")
    p.add_argument("--device", default="auto", help="auto, cpu or cuda")
    p.add_argument("--self-test", action="store_true", help="check this installation offscreen and exit")
    p.add_argument("--install-desktop", action="store_true", help="add the menu entry and icon (Linux)")
    p.add_argument("--uninstall-desktop", action="store_true", help="remove the menu entry and icon")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    """Start the GUI; returns the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if len(args.path) > 2:
        parser.error(f"at most two paths (an image, or two images to compare); got {len(args.path)}")
    if args.self_test or args.install_desktop or args.uninstall_desktop:
        from alens_gui import desktop, selftest

        return selftest.run() if args.self_test else desktop.main(["uninstall" if args.uninstall_desktop else "install"])
    from .platform_check import check_platform, report

    if (problem := check_platform()) is not None:
        report(problem)
        return 1
    app = make_app(sys.argv[:1])
    from PySide6.QtGui import QIcon

    from alens_gui._resources import resource_path

    from .window import MainWindow

    icon = resource_path("icon.png")
    if icon.exists():
        app.setWindowIcon(QIcon(str(icon)))
    paths = list(args.path) + [None, None]
    win = MainWindow(paths[0], args.model, args.arch, args.labels, args.device, torchscript=args.torchscript,
                     compare_with=paths[1])
    win.show()
    return int(app.exec())


if __name__ == "__main__":
    raise SystemExit(main())
