"""The architecture rules, checked from the source: what each module may import, and whose privates it may touch."""

from __future__ import annotations

import ast
import os
import sys

import pytest

PACKAGE = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "poorio")

# Only the asyncio bridges may use the stdlib's own multiplexing modules.
BRIDGES = {"selector.py", "aio.py"}
FORBIDDEN = {"select", "selectors", "asyncio"}


def modules():
    for folder, _dirs, files in os.walk(PACKAGE):
        for name in sorted(files):
            if name.endswith(".py"):
                path = os.path.join(folder, name)
                yield os.path.relpath(path, PACKAGE), path


def parse(path: str) -> ast.Module:
    with open(path, encoding="utf-8") as source:
        return ast.parse(source.read(), path)


def imported_names(path: str) -> set:
    """Top-level module names imported anywhere in the file (lazy imports included)."""
    tree = parse(path)
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module)
    return names


def relative_imports(path: str) -> set:
    """The poorio modules a package-relative import names, as paths relative to poorio/."""
    tree = parse(path)
    here = os.path.dirname(os.path.relpath(path, PACKAGE))
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.level:
            base = here
            for _ in range(node.level - 1):
                base = os.path.dirname(base)
            target = os.path.join(base, *(node.module or "").split(".")) if node.module else base
            found.add(os.path.normpath(target))
    return found


@pytest.mark.parametrize("relpath,path", list(modules()), ids=lambda v: v if v.endswith(".py") else "")
def test_core_never_imports_the_stdlib_multiplexers(relpath, path):
    if os.path.basename(relpath) in BRIDGES:
        pytest.skip("the asyncio bridges are the documented exception")
    used = {name.split(".")[0] for name in imported_names(path)}
    assert not used & FORBIDDEN, f"{relpath} imports {sorted(used & FORBIDDEN)}"


# The layers, bottom up (README's table).  A module may import its own layer
# and the layers below it, never one above.  The ground floor (errors,
# record) is under everything.
LAYERS = [
    ("ground", {"errors", "record"}),
    ("platform", {"platform"}),
    ("events", {"events"}),
    ("core", {"_core"}),
    ("ops", {"waitqueue", "ops", "channel", "sync", "completion"}),
    ("io", {"waithooks", "streams", "net", "tls", "system", "process", "_childwatch", "files", "threads",
            "from_thread"}),
    ("applications", {"selector", "aio", "actors", "serve", "http", "__init__", "__main__"}),
]


def layer_of(relpath: str) -> int:
    """The index in LAYERS of a module (path relative to poorio/, without .py, or a package folder)."""
    unit = relpath.split(os.sep)[0]
    unit = unit[:-3] if unit.endswith(".py") else unit
    for index, (_, units) in enumerate(LAYERS):
        if unit in units:
            return index
    raise AssertionError(f"{relpath} is in no layer: add it to LAYERS (and to the README's table)")


def test_every_module_has_a_layer():
    for relpath, _ in modules():
        layer_of(relpath)


@pytest.mark.parametrize("relpath,path", list(modules()), ids=lambda v: v if v.endswith(".py") else "")
def test_no_module_imports_a_layer_above_its_own(relpath, path):
    mine = layer_of(relpath)
    above = sorted(
        target for target in relative_imports(path) if target != "." and layer_of(target) > mine
    )
    assert not above, f"{relpath} ({LAYERS[mine][0]}) reaches up into {above}"


def test_the_layer_checker_sees_a_reach_up(tmp_path, monkeypatch):
    sample = tmp_path / "poorio" / "events"
    sample.mkdir(parents=True)
    (sample / "bad.py").write_text("from ..ops import choice\nfrom .._core import traps\n")
    monkeypatch.setattr(sys.modules[__name__], "PACKAGE", str(tmp_path / "poorio"))
    found = {layer_of(t) for t in relative_imports(str(sample / "bad.py"))}
    assert found == {layer_of("ops.py"), layer_of("_core")} and min(found) > layer_of("events")


# Private names (one leading underscore) belong to the unit that defines them:
# a top-level module, or a package (whose modules share internals freely).
# Other units reach them only through named methods.  The stdlib's own
# underscore names that are meant for use (namedtuple's _replace...) are fine.
STDLIB_PRIVATE_OK = {"_replace", "_asdict", "_fields", "_get_running_loop", "_exit", "_local"}


def unit_of(relpath: str) -> str:
    return relpath.split(os.sep)[0]


def private_names_defined(units: dict) -> dict:
    """For each unit, every private name it defines: functions, classes, slots, attributes it assigns."""
    defined = {}
    for relpath, path in modules():
        names = defined.setdefault(unit_of(relpath), set())
        for node in ast.walk(parse(path)):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                names.add(node.name)
            elif isinstance(node, ast.Attribute) and isinstance(node.ctx, ast.Store):
                names.add(node.attr)
            elif isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
                names.add(node.id)
            elif isinstance(node, ast.Assign) and any(
                isinstance(t, ast.Name) and t.id == "__slots__" for t in node.targets
            ) and isinstance(node.value, (ast.Tuple, ast.List)):
                names.update(e.value for e in node.value.elts if isinstance(e, ast.Constant))
    return defined


def foreign_private_uses(relpath: str, path: str, defined: dict) -> list:
    """``obj._name`` on something other than self/cls, and ``from .x import _name``, reaching outside the unit."""
    own = defined[unit_of(relpath)]
    here = os.path.dirname(relpath)
    found = []
    for node in ast.walk(parse(path)):
        if isinstance(node, ast.Attribute) and node.attr.startswith("_") and not node.attr.startswith("__"):
            if isinstance(node.value, ast.Name) and node.value.id in ("self", "cls"):
                continue
            if node.attr not in own and node.attr not in STDLIB_PRIVATE_OK:
                found.append(f"line {node.lineno}: {ast.unparse(node)}")
        elif isinstance(node, ast.ImportFrom) and node.level:
            base = here
            for _ in range(node.level - 1):
                base = os.path.dirname(base)
            target = os.path.normpath(os.path.join(base, *(node.module or "").split("."))) if node.module else base
            if unit_of(target) == unit_of(relpath):
                continue
            for alias in node.names:
                if alias.name.startswith("_") and not alias.name.startswith("__"):
                    found.append(f"line {node.lineno}: imports {alias.name} from {target}")
            if any(part.startswith("_") and part != "_core" for part in target.split(os.sep)[1:]):
                found.append(f"line {node.lineno}: imports the private module {target}")
    return found


_DEFINED = None


@pytest.mark.parametrize("relpath,path", list(modules()), ids=lambda v: v if v.endswith(".py") else "")
def test_no_module_touches_another_units_privates(relpath, path):
    global _DEFINED
    if _DEFINED is None:
        _DEFINED = private_names_defined({})
    assert foreign_private_uses(relpath, path, _DEFINED) == []


def test_the_private_checker_sees_a_reach_in(tmp_path):
    sample = tmp_path / "sample.py"
    sample.write_text(
        "from ._core.traps import _thread_state\n"
        "def f(fiber, key):\n"
        "    fiber._scope = None\n"
        "    key._replace(fd=1)\n"
        "    return self._mine\n"
    )
    defined = {"sample.py": set()}
    found = foreign_private_uses("sample.py", str(sample), defined)
    traps = os.path.join("_core", "traps")
    assert found == [f"line 1: imports _thread_state from {traps}", "line 3: fiber._scope"]


def test_every_module_opens_with_a_docstring():
    missing = [relpath for relpath, path in modules() if not ast.get_docstring(parse(path))]
    assert missing == []


def test_the_package_is_typed():
    assert os.path.exists(os.path.join(PACKAGE, "py.typed"))


def test_import_poorio_leaves_sockets_threads_and_subprocesses_for_later():
    """``import poorio`` stays cheap: the lazily loaded layers load on first use, and then work."""
    import subprocess
    import sys

    code = (
        "import sys, poorio\n"
        "print(sorted(m for m in ('poorio.net', 'poorio.threads', 'poorio.process', 'socket', 'threading', 'subprocess') if m in sys.modules))\n"
        "from poorio import connect_tcp, run_process\n"
        "print(connect_tcp.__module__, run_process.__module__, all(hasattr(poorio, n) for n in poorio.__all__))\n"
    )
    root = os.path.dirname(PACKAGE)
    out = subprocess.run([sys.executable, "-S", "-c", code], cwd=root, capture_output=True, text=True, check=True)
    assert out.stdout.splitlines() == ["[]", "poorio.net.tcp poorio.process True"]


# Spellings of "which OS is this?".  Above the platform layer a difference in
# behaviour asks poorio.platform.facts instead, by what it means.
OS_QUESTIONS = {("sys", "platform"), ("os", "name"), ("platform", "system")}


def os_questions(path: str) -> list:
    """The lines of ``path`` that compare or call one of ``OS_QUESTIONS``."""
    found = set()
    for node in ast.walk(parse(path)):
        if isinstance(node, ast.Compare):
            operands = [node.left, *node.comparators]
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
            operands = [node.func, node.func.value]  # platform.system(), sys.platform.startswith(...)
        else:
            continue
        for part in operands:
            if isinstance(part, ast.Attribute) and isinstance(part.value, ast.Name):
                if (part.value.id, part.attr) in OS_QUESTIONS:
                    found.add(node.lineno)
    return sorted(found)


@pytest.mark.parametrize(
    "relpath,path", [m for m in modules() if not m[0].startswith("platform")], ids=lambda v: v if v.endswith(".py") else ""
)
def test_nothing_above_the_platform_layer_asks_which_os_it_is(relpath, path):
    assert os_questions(path) == [], f"{relpath} branches on the OS; ask poorio.platform.facts instead"


def test_the_os_question_finder_finds_them(tmp_path):
    sample = tmp_path / "sample.py"
    sample.write_text(
        "import os, sys, platform\n"
        "a = sys.platform == 'win32'\n"
        "b = 'posix' != os.name\n"
        "c = sys.platform.startswith('linux')\n"
        "d = platform.system()\n"
        "e = sys.platform\n"  # naming it (say, in a message) is not branching on it
    )
    assert os_questions(str(sample)) == [2, 3, 4, 5]
