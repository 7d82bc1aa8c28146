"""The package's layers: data flows down, imports never run up or across studies.

Layers, lowest first (a module may import its own layer and those below it):

0. the ground floor: ``errors``, ``checks``, ``files``, ``progress``, ``distributions``,
   ``optimize``
1. ``data``, and ``_types`` (the typing aliases, which name data's ``Corpus``)
2. ``models``
3. ``objectives``
4. ``diagnostics``, ``landscape``
5. ``report``
6. ``cluster`` (scheduling of a study's units)
7. ``studies``: a study module imports no other study module, only the shared ones
   (``studies/__init__``, ``claims``, ``vae_runs``, ``lda_runs``, ``tour``, ``runner``)
8. ``cli``, ``__main__``

Every import in every module is read with ``ast`` (imports inside functions too, and
those under ``TYPE_CHECKING``). The known exceptions are listed with the issue that
removes them; the list can only shrink: an exception that no longer occurs fails too.
"""

from __future__ import annotations

import ast
from pathlib import Path

import elbolab

PACKAGE = Path(elbolab.__file__).parent

LAYERS = {
    "errors": 0,
    "checks": 0,
    "files": 0,
    "progress": 0,
    "distributions": 0,
    "optimize": 0,
    "data": 1,
    "_types": 1,
    "models": 2,
    "objectives": 3,
    "diagnostics": 4,
    "landscape": 4,
    "report": 5,
    "cluster": 6,
    "studies": 7,
    "cli": 8,
    "__main__": 8,
}
SHARED_STUDY_MODULES = {"__init__", "claims", "vae_runs", "lda_runs", "tour", "runner"}

# Imports that break the rule today, each with the issue that removes it (none since
# issue 15 moved the dispatch of units out of the run directory into studies.runner).
KNOWN: set[tuple[str, str]] = set()


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path, name: str) -> set[str]:
    """The elbolab modules (or packages) that the module at ``path`` imports."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name.startswith("elbolab")}
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - (node.level - 1)]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            if not target.startswith("elbolab"):
                continue
            if node.module is None:
                # ``from . import x``: x are submodules (or names) of the package.
                found |= {f"{target}.{a.name}" for a in node.names}
            else:
                found.add(target)
    return found


def _layer(module: str) -> int | None:
    parts = module.split(".")
    return LAYERS.get(parts[1]) if len(parts) > 1 else None


def _study(module: str) -> str | None:
    parts = module.split(".")
    if len(parts) > 2 and parts[1] == "studies" and parts[2] not in SHARED_STUDY_MODULES:
        return parts[2]
    return None


def _violations() -> set[tuple[str, str]]:
    bad = set()
    for path in sorted(PACKAGE.rglob("*.py")):
        name = _module_name(path)
        own = _layer(name)
        for target in _imports(path, name):
            # A name imported from a package (``from elbolab.studies import lda``) counts
            # as the submodule when there is one.
            low = _layer(target)
            if own is None or low is None:
                continue
            if low > own:
                bad.add((name, target))
            mine, theirs = _study(name), _study(target)
            if mine and theirs and mine != theirs:
                bad.add((name, target))
    return bad


def test_every_module_is_in_a_layer():
    modules = {p.stem for p in PACKAGE.glob("*.py")} - {"__init__"}
    packages = {p.parent.name for p in PACKAGE.glob("*/__init__.py")}
    assert modules | packages == set(LAYERS)


def test_imports_run_down_the_layers_and_not_across_studies():
    bad = _violations()
    assert bad - KNOWN == set(), sorted(bad - KNOWN)
    assert KNOWN - bad == set(), f"fixed, remove from KNOWN: {sorted(KNOWN - bad)}"


def test_the_reader_sees_imports_of_every_kind(tmp_path):
    # The checker itself: relative, absolute, function-level and package imports.
    src = (
        "from ..models import vae\n"
        "from . import claims, lda\n"
        "import elbolab.cli\n"
        "def f():\n    from ..report.rundir import RunDir\n"
    )
    path = tmp_path / "x.py"
    path.write_text(src)
    got = _imports(path, "elbolab.studies.x")
    assert got == {
        "elbolab.models",
        "elbolab.studies.claims",
        "elbolab.studies.lda",
        "elbolab.cli",
        "elbolab.report.rundir",
    }
