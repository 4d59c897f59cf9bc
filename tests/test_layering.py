"""The architecture rules, checked from the source: what each module may import."""

from __future__ import annotations

import ast
import os

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


@pytest.mark.parametrize(
    "relpath,path", [m for m in modules() if m[0].startswith("platform")], ids=lambda v: v if v.endswith(".py") else ""
)
def test_platform_layer_imports_nothing_above_it(relpath, path):
    above = {target for target in relative_imports(path) if not target.startswith("platform") and target != "errors"}
    assert not above, f"{relpath} reaches up into {sorted(above)}"


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
    assert out.stdout.splitlines() == ["[]", "poorio.net poorio.process True"]


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
