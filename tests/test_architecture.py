"""The core never imports Qt, and the Qt side keeps its layers: import-linter's contracts, plus a runtime check."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _lint_imports(cwd: Path) -> subprocess.CompletedProcess:
    exe = shutil.which("lint-imports", path=str(Path(sys.executable).parent)) or shutil.which("lint-imports")
    assert exe, "import-linter is part of the test extra"
    env = dict(os.environ, PYTHONPATH=str(cwd))
    return subprocess.run([exe, "--no-cache"], cwd=cwd, capture_output=True, text=True, env=env)


def test_import_contract_holds():
    r = _lint_imports(ROOT)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "KEPT" in r.stdout


def test_import_contract_catches_a_qt_import_in_core(tmp_path):
    """The same contract, on a copy of the package with one Qt import added, must fail."""
    shutil.copytree(ROOT / "alens_gui", tmp_path / "alens_gui", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    (tmp_path / "alens_gui" / "core" / "sneaky.py").write_text("from PySide6 import QtCore  # noqa\n")
    r = _lint_imports(tmp_path)
    assert r.returncode != 0
    assert "BROKEN" in r.stdout and "alens_gui.core.sneaky" in r.stdout


def test_importing_the_whole_core_loads_no_qt():
    code = (
        "import pkgutil, importlib, sys, alens_gui.core as c\n"
        "for m in pkgutil.walk_packages(c.__path__, 'alens_gui.core.'):\n"
        "    importlib.import_module(m.name)\n"
        "from alens_gui.core.methods import list_methods; list_methods()\n"
        "bad = [m for m in sys.modules if m.split('.')[0] in ('PySide6', 'pyqtgraph', 'superqt', 'qtpy')]\n"
        "print(bad); sys.exit(1 if bad else 0)\n"
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
    assert r.returncode == 0, r.stdout + r.stderr


def test_layers_contract_catches_a_view_that_reaches_up(tmp_path):
    """Views only draw the session: a view importing the controller breaks the Qt layers contract."""
    shutil.copytree(ROOT / "alens_gui", tmp_path / "alens_gui", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    (tmp_path / "alens_gui" / "qt" / "views" / "sneaky.py").write_text("from alens_gui.qt import controller  # noqa\n")
    r = _lint_imports(tmp_path)
    assert r.returncode != 0
    assert "Qt layers" in r.stdout and "BROKEN" in r.stdout and "alens_gui.qt.views.sneaky" in r.stdout


def test_the_method_registry_needs_no_torch():
    """The GUI builds its method forms from the registry before torch loads (issue 9)."""
    code = (
        "import sys\n"
        "from alens_gui.core.methods.registry import get_method, list_methods\n"
        "forms = {m.name: (m.label, m.family, m.architectures, m.aliases, m.description,\n"
        "                  {k: (o.default, o.choices, o.minimum, o.maximum, o.help) for k, o in m.options.items()})\n"
        "         for m in list_methods()}\n"
        "assert get_method('IG').resolve_options({'steps': '8'})['steps'] == 8\n"
        "from alens_gui.core.methods import Option, get_method as g2\n"
        "assert g2('gbp').name == 'guided_backprop'\n"
        "heavy = sorted(m for m in sys.modules if m.split('.')[0] in ('torch', 'torchvision', 'timm', 'captum'))\n"
        "print(len(forms), heavy)\n"
        "sys.exit(1 if heavy or len(forms) < 21 else 0)\n"
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
    assert r.returncode == 0, r.stdout + r.stderr


def test_every_registered_method_resolves_to_its_implementation():
    import inspect

    from alens_gui.core.methods import list_methods

    for info in list_methods():
        fn = info.fn
        params = inspect.signature(fn).parameters
        assert list(params)[:4] == ["model", "x", "classes", "progress"], info.name
        # every declared option is a keyword of the implementation, with the same default
        for name, opt in info.options.items():
            assert name in params and params[name].default == opt.default, (info.name, name)


def _import_cycles() -> list[list[str]]:
    """Groups of modules that import each other (directly or round a loop), function-level imports
    included. A package importing its own sub-modules (``__init__`` re-exporting them) is left out:
    that is how a package presents its parts, not a loop between two parts."""
    import grimp

    graph = grimp.build_graph("alens_gui", cache_dir=None)

    def imported_by(m: str) -> list[str]:
        return [w for w in graph.find_modules_directly_imported_by(m) if not w.startswith(m + ".")]

    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    cycles: list[list[str]] = []
    counter = [0]

    def visit(v: str) -> None:  # Tarjan's strongly connected components
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on_stack.add(v)
        for w in imported_by(v):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                cycles.append(sorted(comp))

    for m in sorted(graph.modules):
        if m not in index:
            visit(m)
    return cycles


def test_the_package_has_no_import_cycle():
    """cli/cli_evaluate, core.dicom/core.images, methods.base/methods.vit and qt.app/platform_check/
    selftest imported each other behind function-level imports; their shared parts now have homes
    of their own (cli_args, imagelimits, methods.hooks, qt.appinfo)."""
    assert _import_cycles() == []


def test_every_qt_module_is_in_the_layers_contract():
    import tomllib

    layers = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["importlinter"]["contracts"][1]["layers"]
    named = {m.strip() for layer in layers for m in layer.replace(":", "|").split("|")}
    modules = {f"alens_gui.qt.{p.stem if p.is_file() else p.name}" for p in (ROOT / "alens_gui" / "qt").iterdir()
               if (p.suffix == ".py" and p.stem != "__init__") or (p.is_dir() and (p / "__init__.py").exists())}
    assert modules - named == set()


def test_views_only_draw_no_view_starts_work():
    """No module under qt/views runs a task or imports the jobs: the work is the controllers'
    (the Cohort dock's is :mod:`alens_gui.qt.cohortcontrol`'s)."""
    import ast

    offences = []
    for path in sorted((ROOT / "alens_gui" / "qt" / "views").glob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom):
                names = [(node.module or "")] + [f"{node.module or ''}.{a.name}" for a in node.names]
            elif isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            else:
                names = []
            for name in names:
                if name.split(".")[-1] in {"jobs", "cohortjob", "tasks"} or name.endswith("control"):
                    offences.append(f"{path.name}:{node.lineno} imports {name}")
            if (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "run"
                    and "runner" in ast.unparse(node.func.value)):
                offences.append(f"{path.name}:{node.lineno} calls {ast.unparse(node.func)}")
            if isinstance(node, ast.Attribute) and node.attr == "runner":
                offences.append(f"{path.name}:{node.lineno} reaches the task runner")
    assert offences == []
