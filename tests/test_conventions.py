"""The layering rules of the codebase, checked on the imports of every module (parsed, not run).

- crdt/ knows pycrdt only; persistence/ knows SQLAlchemy and Alembic only; server/ wires them.
- The composition root (server.app) is imported by the CLI alone (and the tests' launcher and
  the authorization matrix, which reads its route table).
- Package ``__init__`` files only re-export, as ``from .x import y as y``.
- server/ is grown in wings (identity, live, plan, worker, http): the plan domain, identity and
  the worker import no Starlette, the live wing imports nothing of the HTTP wing, the worker
  (its own process) nothing of the live rooms or the HTTP wing, identity, live and plan
  nothing of the worker, only the URL table (server/http/routes.py) imports the page and API
  handler modules, and one wing uses another only through its ``__init__`` (its public
  surface), as server/ uses crdt/ and persistence/.
"""

from __future__ import annotations

import ast
import re
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("crdt", "persistence", "server")
STDLIB = frozenset(sys.stdlib_module_names) | {"__future__"}

ALLOWED_THIRD_PARTY = {
    "crdt": {"pycrdt"},
    "persistence": {"sqlalchemy", "alembic"},
}
COMPOSITION_ROOT = "server.app"
# The authorization matrix builds the app to read its route table, so that a route without a
# rule fails it.
MAY_IMPORT_ROOT = ("server/cli.py", "tests/support/", "tests/server/test_access_matrix.py")


@dataclass(frozen=True)
class Import:
    module: str  # absolute dotted name
    names: tuple[str, ...]  # for ``from m import a, b``; empty for ``import m``
    line: int

    @property
    def top(self) -> str:
        return self.module.split(".")[0]

    def targets(self) -> Iterator[str]:
        """Every module this import may load: ``from pkg import mod`` can load ``pkg.mod``."""
        yield self.module
        for name in self.names:
            yield f"{self.module}.{name}"


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imports_of(source: str, name: str, *, is_package: bool = False) -> list[Import]:
    """Every import statement anywhere in the module (functions included), made absolute."""
    package = name if is_package else name.rpartition(".")[0]
    found: list[Import] = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found += [Import(alias.name, (), node.lineno) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - (node.level - 1)]
                module = ".".join([*base, node.module] if node.module else base)
            else:
                module = node.module or ""
            found.append(Import(module, tuple(a.name for a in node.names), node.lineno))
    return found


def python_files(*tops: str) -> list[Path]:
    files: list[Path] = []
    for top in tops:
        files += [
            p
            for p in sorted((ROOT / top).rglob("*.py"))
            if "node_modules" not in p.parts and "__pycache__" not in p.parts
        ]
    return files


def module_imports(path: Path) -> list[Import]:
    return imports_of(
        path.read_text(encoding="utf-8"), module_name(path), is_package=path.name == "__init__.py"
    )


def rel(path: Path) -> str:
    return path.relative_to(ROOT).as_posix()


# The checker itself


def test_relative_imports_are_resolved() -> None:
    source = "from . import a\nfrom .b import c\nfrom ..d import e\ndef f():\n    import g.h\n"
    found = imports_of(source, "pkg.sub.mod")
    assert [(i.module, i.names) for i in found] == [
        ("pkg.sub", ("a",)),
        ("pkg.sub.b", ("c",)),
        ("pkg.d", ("e",)),
        ("g.h", ()),
    ]
    assert imports_of("from .x import y", "pkg", is_package=True)[0].module == "pkg.x"


def test_every_package_has_modules_to_check() -> None:
    for package in PACKAGES:
        assert len(python_files(package)) >= 3, package


# Layering


@pytest.mark.parametrize("package", sorted(ALLOWED_THIRD_PARTY))
def test_package_imports_only_what_it_may(package: str) -> None:
    allowed = ALLOWED_THIRD_PARTY[package] | {package}
    wrong = [
        f"{rel(path)}:{imp.line} imports {imp.module}"
        for path in python_files(package)
        for imp in module_imports(path)
        if imp.top not in allowed and imp.top not in STDLIB
    ]
    assert wrong == [], f"{package}/ may import only {sorted(allowed)} and the standard library"


def test_only_the_cli_imports_the_composition_root() -> None:
    importers = {
        rel(path)
        for path in python_files(*PACKAGES, "tests")
        for imp in module_imports(path)
        if any(t == COMPOSITION_ROOT or t.startswith(COMPOSITION_ROOT + ".") for t in imp.targets())
    }
    assert "server/cli.py" in importers  # the rule is about something real
    wrong = sorted(p for p in importers if not p.startswith(MAY_IMPORT_ROOT))
    assert wrong == [], f"{COMPOSITION_ROOT} is imported by {wrong}"


# Package interfaces

# Folders of page and API handler modules: only the URL table imports them, module by module.
HANDLER_PACKAGES = ("server/http/pages/__init__.py", "server/http/api/__init__.py")


def init_files() -> list[Path]:
    return [p for p in python_files(*PACKAGES) if p.name == "__init__.py"]


def test_every_package_has_an_init() -> None:
    assert {rel(p) for p in init_files()} >= {f"{p}/__init__.py" for p in PACKAGES}


@pytest.mark.parametrize("path", init_files(), ids=rel)
def test_package_init_only_reexports_explicitly(path: Path) -> None:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    body = tree.body
    if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
        body = body[1:]  # the docstring
    if rel(path) in HANDLER_PACKAGES:
        assert body == [], f"{rel(path)} is a folder of handler modules: it exports nothing"
        return
    assert body, f"{rel(path)} exports nothing"
    wrong = []
    for node in body:
        if not (isinstance(node, ast.ImportFrom) and node.level == 1 and node.module):
            wrong.append(f"line {node.lineno}: {ast.unparse(node)}")
            continue
        for alias in node.names:
            if alias.asname != alias.name:
                wrong.append(f"line {node.lineno}: {ast.unparse(node)}")
    assert wrong == [], f"{rel(path)}: use only `from .module import name as name`"


# The wings of server/


WINGS = ("identity", "live", "plan", "worker", "http")
# What each wing must not import (beyond the rule that wings meet only through __init__).
FORBIDDEN = {
    "identity": ("starlette", "server.http", "server.live", "server.plan", "server.worker"),
    "live": ("server.http", "server.plan", "server.worker"),
    "plan": ("starlette", "server.http", "server.worker"),
    # The worker process reaches the rooms only through the serving process (writeback.py).
    "worker": ("starlette", "uvicorn", "server.http", "server.live"),
}
URL_TABLE = "server/http/routes.py"
HANDLER_MODULES = (
    "server.http.pages",
    "server.http.api",
    # The modules serving one concept both ways (page and API) hold handlers too: they share
    # code through the domain, never by importing each other.
    "server.http.calendar",
    "server.http.lifecycle",
    "server.http.links",
    "server.http.members",
    "server.http.share",
    "server.http.workspace",
)


def wing_of(name: str) -> str | None:
    parts = name.split(".")
    return parts[1] if len(parts) > 1 and parts[0] == "server" and parts[1] in WINGS else None


def under(module: str, prefix: str) -> bool:
    return module == prefix or module.startswith(prefix + ".")


def test_every_wing_exists_and_has_a_public_surface() -> None:
    for wing in WINGS:
        init = ROOT / "server" / wing / "__init__.py"
        assert init.is_file(), f"server/{wing}/ has no __init__.py"
        assert len(python_files(f"server/{wing}")) >= 3, wing


@pytest.mark.parametrize("wing", sorted(FORBIDDEN))
def test_wing_imports_only_what_it_may(wing: str) -> None:
    wrong = [
        f"{rel(path)}:{imp.line} imports {imp.module}"
        for path in python_files(f"server/{wing}")
        for imp in module_imports(path)
        if any(under(imp.module, f) for f in FORBIDDEN[wing])
    ]
    assert wrong == [], f"server/{wing}/ may not import {FORBIDDEN[wing]}"


def test_wings_meet_only_through_their_init() -> None:
    wrong = []
    for path in python_files("server"):
        here = wing_of(module_name(path))
        for imp in module_imports(path):
            there = wing_of(imp.module)
            if there is not None and there != here and imp.module != f"server.{there}":
                wrong.append(f"{rel(path)}:{imp.line} imports {imp.module}")
    assert wrong == [], "use the wing's __init__ (its public surface) instead"


def test_only_the_url_table_imports_page_and_api_modules() -> None:
    importers = set()
    for path in python_files("server"):
        for imp in module_imports(path):
            targets = [imp.module, *(f"{imp.module}.{n}" for n in imp.names)]
            if any(under(t, h) for t in targets for h in HANDLER_MODULES):
                importers.add(rel(path))
    assert URL_TABLE in importers  # the rule is about something real
    assert importers == {URL_TABLE}, f"handler modules are imported by {importers - {URL_TABLE}}"


def test_server_uses_crdt_and_persistence_only_through_their_init() -> None:
    """``crdt/__init__.py`` and ``persistence/__init__.py`` are those packages' public surface."""
    wrong = [
        f"{rel(path)}:{imp.line} imports {imp.module}"
        for path in python_files("server")
        for imp in module_imports(path)
        if imp.top in ("crdt", "persistence")
        and (
            imp.module != imp.top  # from crdt.structure import x
            or any(
                (ROOT / imp.top / f"{n}.py").exists() for n in imp.names
            )  # from crdt import structure
        )
    ]
    assert wrong == [], "import the package (its __init__) instead"


def test_the_checks_catch_what_they_are_for() -> None:
    """The wing rules flag a page module imported from elsewhere and a wing's inner module."""
    found = imports_of(
        "from .pages.home import x\nfrom server.live.rooms import Room\n", "server.http.members"
    )
    assert [i.module for i in found] == ["server.http.pages.home", "server.live.rooms"]
    assert any(under(found[0].module, h) for h in HANDLER_MODULES)
    assert wing_of(found[1].module) == "live" and found[1].module != "server.live"


# Type checking

# ``# type: ignore[code]  # why``: mypy's codes, then the reason, on the same line.
TYPE_IGNORE = re.compile(r"#\s*type:\s*ignore(\[[\w\s,-]+\])?(.*)$")


def unexplained_ignores(line: str) -> bool:
    found = TYPE_IGNORE.search(line)
    if found is None:
        return False
    codes, rest = found.groups()
    return codes is None or not rest.strip().lstrip("#").strip()


def test_every_type_ignore_names_its_codes_and_its_reason() -> None:
    bare = [
        f"{rel(path)}:{n}: {line.strip()}"
        for path in python_files(*PACKAGES)
        for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
        if unexplained_ignores(line)
    ]
    assert bare == [], "say which check is ignored and why: # type: ignore[code]  # reason"


def test_the_ignore_check_catches_what_it_is_for() -> None:
    assert unexplained_ignores("x = f()  # type: ignore")
    assert unexplained_ignores("x = f()  # type: ignore[arg-type]")
    assert unexplained_ignores("x = f()  # type: ignore[arg-type]  #")
    assert not unexplained_ignores("x = f()  # type: ignore[import-untyped]  # no stubs")
    assert not unexplained_ignores("x = f()  # a comment")
