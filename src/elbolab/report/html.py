"""A self-contained HTML report: one file, figures inlined, no external resources.

A study builds a :class:`Report` block by block and writes it as ``report.html``::

    rep = Report("landscape", subtitle="Two CAVI maxima of LDA on the AP corpus")
    rep.heading("Setting")
    rep.code("elbolab landscape --preset default runs/landscape")
    rep.metrics(metrics, caption="Summary")
    rep.figure(rundir.save_figure(fig, "barrier"), "ELBO along the path.")
    rep.write(rundir / "report.html")

Every piece of text passes through ``html.escape``; figures are embedded as base64
``data:image/png`` URIs; the CSS lives in ``template.html`` (filled with
``string.Template``). Nothing is fetched when the page is opened, so the report can be
mailed, archived or opened offline and looks the same.
"""

from __future__ import annotations

import base64
import functools
import html
import math
import os
import string
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np

import elbolab
from elbolab.report.rundir import atomic_write

__all__ = ["Report", "format_number", "format_value", "flatten"]

_PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
_LIST_SHOWN = 8  # a longer list in a table cell is cut, with its length


@functools.lru_cache(maxsize=1)
def _template() -> string.Template:
    text = resources.files("elbolab.report").joinpath("template.html").read_text("utf-8")
    return string.Template(text)


def format_number(x: float) -> str:
    """Format a float for a table: 4 significant digits, without losing integer digits.

    ``0.5 -> "0.5"``, ``-85.2371 -> "-85.24"``, ``1.23456e-05 -> "1.235e-05"``,
    ``-2345678.9 -> "-2345679"`` (an ELBO summed over a corpus should not read as
    ``-2.346e+06``), ``nan -> "nan"``.
    """
    x = float(x)
    if not math.isfinite(x):
        return "nan" if math.isnan(x) else ("inf" if x > 0 else "-inf")
    if x == 0:
        return "0"
    ax = abs(x)
    if ax >= 1e-3:
        s = f"{x:.4g}"
        if "e" not in s:
            return s
        if ax < 1e12:
            return f"{x:.0f}"
    return f"{x:.3e}"


def format_value(v: Any) -> str:
    """Plain-text form of a table or metrics value (not yet HTML-escaped).

    Strings are kept as given (so a caller can choose its own number format), floats go
    through :func:`format_number`, integers print in full, None prints as an em dash,
    and sequences print as ``[a, b, ...]``, cut after 8 items with their length.
    """
    if v is None:
        return "\u2014"
    if isinstance(v, str):
        return v
    if isinstance(v, (bool, np.bool_)):
        return str(bool(v))
    if isinstance(v, (int, np.integer)):
        return str(int(v))
    if isinstance(v, (float, np.floating)):
        return format_number(v)
    if isinstance(v, np.ndarray):
        v = v.item() if v.ndim == 0 else v.tolist()
        return format_value(v)
    if isinstance(v, os.PathLike):
        return os.fspath(v)
    if isinstance(v, (list, tuple)):
        shown = ", ".join(format_value(u) for u in v[:_LIST_SHOWN])
        more = f", \u2026 ({len(v)} items)" if len(v) > _LIST_SHOWN else ""
        return f"[{shown}{more}]"
    return str(v)


def _is_number(v: Any) -> bool:
    return isinstance(v, (int, float, np.integer, np.floating)) and not isinstance(
        v, (bool, np.bool_)
    )


def flatten(d: Mapping, prefix: str = "") -> dict[str, Any]:
    """Flatten nested mappings to one level with dotted keys: ``{"a": {"b": 1}}`` -> ``{"a.b": 1}``.

    Empty nested mappings are kept as values.
    """
    out: dict[str, Any] = {}
    for k, v in d.items():
        key = f"{prefix}{k}"
        if isinstance(v, Mapping) and v:
            out.update(flatten(v, key + "."))
        else:
            out[key] = v
    return out


def _cell(tag: str, v: Any) -> str:
    cls = ' class="num"' if _is_number(v) else ""
    return f"<{tag}{cls}>{html.escape(format_value(v))}</{tag}>"


def _table_html(header: Sequence[str], rows: Iterable[Sequence[Any]], caption: str) -> str:
    header = list(header)
    body = []
    for i, row in enumerate(rows):
        row = list(row)
        if len(row) != len(header):
            raise ValueError(f"table row {i} has {len(row)} cells, header has {len(header)}")
        body.append("<tr>" + "".join(_cell("td", v) for v in row) + "</tr>")
    cap = f"<caption>{html.escape(str(caption))}</caption>" if caption else ""
    head = "<tr>" + "".join(f"<th>{html.escape(str(h))}</th>" for h in header) + "</tr>"
    return (
        f'<div class="table-wrap"><table>{cap}<thead>{head}</thead>'
        f"<tbody>{''.join(body)}</tbody></table></div>"
    )


class Report:
    """An HTML report built from blocks in order; :meth:`write` saves it atomically.

    Parameters
    ----------
    title : str
        Page title and top heading.
    subtitle : str
        One line under the title (plain text).
    generated : datetime or str, optional
        The generation time shown in the footer; default: when :meth:`render` runs
        (local time with UTC offset). Pass a fixed value for byte-identical reports.

    Notes
    -----
    Each block method returns the report, so calls can be chained. All text arguments
    are plain text and are escaped; there is deliberately no raw-HTML block, so nothing
    a study writes (a file name, a config string) can break the page.
    """

    def __init__(self, title: str, subtitle: str = "", *, generated: datetime | str | None = None):
        self.title = str(title)
        self.subtitle = str(subtitle)
        self.generated = generated
        self._blocks: list[str] = []

    # -- blocks -------------------------------------------------------------------------

    def heading(self, text: str, level: int = 2) -> Report:
        """A section heading; ``level`` 2 (section) or 3 (subsection)."""
        if level not in (2, 3):
            raise ValueError(f"heading level must be 2 or 3, got {level}")
        self._blocks.append(f"<h{level}>{html.escape(str(text))}</h{level}>")
        return self

    def paragraph(self, text: str) -> Report:
        """A paragraph of plain text."""
        self._blocks.append(f"<p>{html.escape(str(text))}</p>")
        return self

    def bullets(self, items: Iterable[str]) -> Report:
        """A bulleted list of plain-text items."""
        lis = "".join(f"<li>{html.escape(str(i))}</li>" for i in items)
        self._blocks.append(f"<ul>{lis}</ul>")
        return self

    def table(
        self, header: Sequence[str], rows: Iterable[Sequence[Any]], caption: str = ""
    ) -> Report:
        """A table. Cells are formatted with :func:`format_value` (floats to 4 significant
        digits; strings kept as given) and numbers are right-aligned.

        Raises
        ------
        ValueError
            If a row's length differs from the header's.
        """
        self._blocks.append(_table_html(header, rows, caption))
        return self

    def opening_table(
        self, header: Sequence[str], rows: Iterable[Sequence[Any]], caption: str = ""
    ) -> Report:
        """A table under its own "Claims" heading placed before every other block, so it
        opens the page whenever it is added (the claims table of a study's report)."""
        self._blocks[:0] = ["<h2>Claims</h2>", _table_html(header, rows, caption)]
        return self

    def metrics(self, d: Mapping, caption: str = "") -> Report:
        """A two-column key/value table of ``d``, nested dicts flattened to dotted keys."""
        return self.table(["name", "value"], list(flatten(d).items()), caption=caption)

    def figure(self, png: str | os.PathLike | bytes, caption: str) -> Report:
        """A PNG figure embedded as a base64 data URI, with ``caption`` as figcaption and alt.

        Parameters
        ----------
        png : path or bytes
            A PNG file (e.g. the path returned by ``RunDir.save_figure``) or its bytes.
        caption : str
            Plain text.

        Raises
        ------
        ValueError
            If the data are not a PNG.
        """
        if isinstance(png, (bytes, bytearray)):
            data, where = bytes(png), "figure data"
        else:
            data, where = Path(png).read_bytes(), str(png)
        if not data.startswith(_PNG_MAGIC):
            raise ValueError(f"{where} is not a PNG file")
        uri = "data:image/png;base64," + base64.b64encode(data).decode("ascii")
        cap = html.escape(str(caption))
        self._blocks.append(
            f'<figure><img src="{uri}" alt="{cap}"><figcaption>{cap}</figcaption></figure>'
        )
        return self

    def link(self, href: str, text: str) -> Report:
        """A paragraph holding one link; ``href`` is a relative path or URL (e.g. another
        run's ``report.html``), escaped like all text."""
        ref = html.escape(str(href), quote=True)
        self._blocks.append(f'<p><a href="{ref}">{html.escape(str(text))}</a></p>')
        return self

    def code(self, text: str) -> Report:
        """Preformatted text, e.g. the command line or the config as JSON."""
        self._blocks.append(f"<pre><code>{html.escape(str(text))}</code></pre>")
        return self

    # -- output -------------------------------------------------------------------------

    def render(self) -> str:
        """The whole page as a string."""
        when = self.generated
        if when is None:
            when = datetime.now().astimezone()
        if isinstance(when, datetime):
            when = when.isoformat(sep=" ", timespec="seconds")
        sub = f'<p class="subtitle">{html.escape(self.subtitle)}</p>' if self.subtitle else ""
        # Template.substitute makes a single pass, so a "$" inside the (escaped) content
        # is never taken for a placeholder.
        return _template().substitute(
            title=html.escape(self.title),
            subtitle=sub,
            body="\n".join(self._blocks),
            version=html.escape(elbolab.__version__),
            generated=html.escape(str(when)),
        )

    def write(self, path: str | os.PathLike) -> Path:
        """Render and write the page to ``path`` atomically; returns the path."""
        page = self.render()
        return atomic_write(path, lambda fh: fh.write(page), text=True)
