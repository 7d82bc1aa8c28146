"""Check that the built site documents every public name (each package's ``__all__``).

mkdocstrings lists a package's ``__all__`` by itself, but a name that is also the name of
a submodule (``elbolab.objectives.elbo``) is hidden there and needs its own directive in
``docs/api``; this check is what notices a new one. Run after ``mkdocs build``:

    python docs/check_api.py SITE_DIR
"""

from __future__ import annotations

import importlib
import sys
import zlib
from pathlib import Path

PACKAGES = [
    "distributions",
    "optimize",
    "data",
    "models",
    "objectives",
    "diagnostics",
    "landscape",
    "report",
]


def documented(site: Path) -> set[str]:
    """The object names in the site's Sphinx inventory (``objects.inv``)."""
    raw = (site / "objects.inv").read_bytes()
    # Four header lines in plain text, then the zlib-compressed entries, one a line.
    header_end = 0
    for _ in range(4):
        header_end = raw.index(b"\n", header_end) + 1
    lines = zlib.decompress(raw[header_end:]).decode().splitlines()
    return {line.split(" ", 1)[0] for line in lines if line}


def main(site: Path) -> int:
    names = documented(site)
    missing = []
    for package in PACKAGES:
        module = importlib.import_module(f"elbolab.{package}")
        for name in module.__all__:
            obj = getattr(module, name)
            home = f"{getattr(obj, '__module__', '')}.{name}"
            if f"elbolab.{package}.{name}" not in names and home not in names:
                missing.append(f"elbolab.{package}.{name}")
    if missing:
        print("not in the API reference: " + ", ".join(missing), file=sys.stderr)
        return 1
    print(f"API reference: all public names of {len(PACKAGES)} packages documented")
    return 0


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: python docs/check_api.py SITE_DIR")
    sys.exit(main(Path(sys.argv[1])))
