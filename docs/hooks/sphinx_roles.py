"""MkDocs hook: drop Sphinx role prefixes from rendered docstrings.

The docstrings name other objects Sphinx-style (:func:`find_root`); mkdocstrings renders
that as the text ":func:" before the code span. The code span alone reads right.
"""

from __future__ import annotations

import re

_ROLE = re.compile(r":(?:py:)?(?:func|meth|class|mod|attr|data|exc|obj|const):(<code>)")


def on_page_content(html: str, **kwargs) -> str:
    return _ROLE.sub(r"\1", html)
