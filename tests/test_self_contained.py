"""Everything the tests read is in the repository, so a fresh clone with nothing beside it runs them.

The contracts the Prism tests mock are copies in `tests/contracts/` (its README says where they were cut
from). This test reads every test module's syntax tree and refuses a path that climbs out of the
repository from `__file__` (`Path(__file__).parents[2]` from `tests/x.py`, one `.parent` too many), a
relative path that starts with `..`, and the names of folders that only exist beside a checkout
(`shared/openapi`, `/work/`).
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
#: Every test module but this one, whose probes name the ways out on purpose.
TEST_FILES = sorted(path for path in (REPO / "tests").rglob("*.py") if path != Path(__file__).resolve())
#: Text that names a place outside the repository: the folder the contracts were once read from.
OUTSIDE = ("shared/openapi", "/work/")
#: Calls whose first argument is a path.
PATH_CALLS = {"Path", "PurePath", "open", "join", "read_text", "chdir"}


def _levels_up(node: ast.expr) -> int | None:
    """How many folders above `__file__` the expression names, or None if it is not built on `__file__`.

    `Path(__file__)` is level 0 (the file), `.parent` of it level 1, `.parents[i]` level i + 1,
    `os.path.dirname(x)` one more than x, `x / ".."` one more and `x / "name"` one less."""
    if isinstance(node, ast.Name):
        return 0 if node.id == "__file__" else None
    if isinstance(node, ast.Call):
        function = node.func
        if isinstance(function, ast.Name) and function.id in {"Path", "PurePath"} and node.args:
            return _levels_up(node.args[0])
        if isinstance(function, ast.Attribute) and function.attr == "dirname" and node.args:
            inner = _levels_up(node.args[0])
            return None if inner is None else inner + 1
        if isinstance(function, ast.Attribute) and function.attr in {"resolve", "absolute"}:
            return _levels_up(function.value)
        return None
    if isinstance(node, ast.Attribute) and node.attr == "parent":
        inner = _levels_up(node.value)
        return None if inner is None else inner + 1
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Div):
        # `base / "../x"`: up a level for each `..`, down one for each other part.
        inner = _levels_up(node.left)
        if inner is None:
            return None
        part = node.right
        if not (isinstance(part, ast.Constant) and isinstance(part.value, str)):
            return inner - 1
        for name in part.value.split("/"):
            inner += 1 if name == ".." else 0 if name in ("", ".") else -1
        return inner
    if (
        isinstance(node, ast.Subscript)
        and isinstance(node.value, ast.Attribute)
        and node.value.attr == "parents"
        and isinstance(node.slice, ast.Constant)
        and isinstance(node.slice.value, int)
    ):
        inner = _levels_up(node.value.value)
        return None if inner is None else inner + node.slice.value + 1
    return None


def _climbs(text: object) -> bool:
    return isinstance(text, str) and (text == ".." or text.startswith("../"))


def outside_paths(source: str, path: Path) -> list[str]:
    """Each place in `source`, the module at `path`, that names a path outside the repository, as
    `line: why`."""
    tree = ast.parse(source, filename=str(path))
    # tests/x.py: the repository is two levels above the file; more climbs out of it.
    inside = len(path.relative_to(REPO).parts)
    found = []
    for node in ast.walk(tree):
        levels = _levels_up(node) if isinstance(node, ast.expr) else None
        if levels is not None and levels > inside:
            found.append(
                f"{node.lineno}: {ast.unparse(node)} is {levels - inside} level(s) above the repository"
            )
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            found += [f"{node.lineno}: {node.value!r} names {word}" for word in OUTSIDE if word in node.value]
        if isinstance(node, ast.Call) and node.args:
            function = node.func
            name = function.id if isinstance(function, ast.Name) else getattr(function, "attr", "")
            first = node.args[0]
            if name in PATH_CALLS and isinstance(first, ast.Constant) and _climbs(first.value):
                found.append(f"{node.lineno}: {ast.unparse(node)} opens a path above the working folder")
    return found


@pytest.mark.parametrize("path", TEST_FILES, ids=lambda p: str(p.relative_to(REPO)))
def test_no_test_reads_outside_the_repository(path: Path) -> None:
    assert outside_paths(path.read_text(encoding="utf-8"), path) == []


def test_the_check_sees_each_way_out() -> None:
    """The forms the check refuses, and the ones it lets through (a hostile id is text, not a path)."""
    module = REPO / "tests" / "probe_outside.py"
    source = "\n".join(
        [
            'A = Path(__file__).resolve().parents[2] / "shared" / "openapi"',
            "B = Path(__file__).parent.parent.parent",
            'C = Path("../shared/openapi/assistants.yaml")',
            'D = Path(__file__).parent / ".." / ".." / "x"',
            "E = os.path.dirname(os.path.dirname(os.path.dirname(__file__)))",
            'OK1 = Path(__file__).resolve().parent.parent / "README.md"',
            'OK2 = Path(__file__).resolve().parents[1] / "examples"',
            'OK3 = read_runs("thread/../x")',
            'OK4 = ["../../files", "run/../x"]',
            'OK5 = tmp_path / "data" / ".." / "data" / "runs.duckdb"',
            'OK6 = Path(__file__).parent / "contracts" / ".." / "contracts"',
            'F = Path(__file__).parent.parent / "x" / ".." / ".." / "y"',
        ]
    )
    found = outside_paths(source, module)
    lines = sorted({int(entry.split(":", 1)[0]) for entry in found})
    assert lines == [1, 2, 3, 4, 5, 12], found
