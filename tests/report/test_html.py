"""HTML report: one self-contained file, figures inlined, text escaped."""

import base64
import io
import re

import numpy as np
import pytest

import elbolab
from elbolab.progress import progress
from elbolab.report import (
    Report,
    RunDir,
    flatten,
    format_number,
    line_plot,
    new_figure,
)

EXTERNAL = re.compile(r"""(?:src|href)\s*=\s*["']?\s*(?:https?:)?//""", re.IGNORECASE)


@pytest.fixture
def png(tmp_path):
    rd = RunDir(tmp_path / "run")
    fig, ax = new_figure()
    line_plot(ax, np.arange(4), {"elbo": np.arange(4.0), "iwae": np.arange(4.0) + 1}, "t", "nats")
    return rd.save_figure(fig, "curve")


def test_report_is_self_contained_with_embedded_figure(tmp_path, png):
    rep = Report("zoo", subtitle="VAE family on binarized MNIST", generated="2024-01-01 00:00")
    rep.heading("Results").paragraph("Test log-likelihood.")
    rep.figure(png, "ELBO per epoch")
    rep.metrics({"elbo": -85.123456, "fit": {"seconds": 12.5, "epochs": 3}}, caption="Summary")
    rep.code("elbolab zoo --preset smoke runs/zoo")
    out = rep.write(tmp_path / "report.html")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["report.html", "run"]
    page = out.read_text(encoding="utf-8")
    b64 = base64.b64encode(png.read_bytes()).decode()
    assert f'src="data:image/png;base64,{b64}"' in page
    assert 'alt="ELBO per epoch"' in page and "<figcaption>ELBO per epoch</figcaption>" in page
    assert EXTERNAL.search(page) is None
    assert "<link" not in page and "<script" not in page and "@import" not in page
    assert f"elbolab {elbolab.__version__}" in page and "2024-01-01 00:00" in page
    assert "fit.seconds" in page and "-85.12" in page
    assert page.startswith("<!DOCTYPE html>")


def test_external_regex_catches_remote_references():
    for bad in ['<img src="https://x.org/a.png">', "<a href='http://x'>", '<img src="//cdn/x">']:
        assert EXTERNAL.search(bad)


def test_table_cells_are_escaped():
    rep = Report("<t>", subtitle="a & b", generated="now")
    rep.table(["<b>name</b>", "value"], [["<script>alert(1)</script>", "x & y"], ["$body", 1.5]])
    rep.paragraph('"quoted" <i>')
    rep.figure(b"\x89PNG\r\n\x1a\nrest", 'a "caption" <x>')
    page = rep.render()
    assert "<script>" not in page and "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "&lt;b&gt;name&lt;/b&gt;" in page and "x &amp; y" in page
    assert "<title>&lt;t&gt;</title>" in page and "a &amp; b" in page
    assert "&quot;quoted&quot; &lt;i&gt;" in page
    assert 'alt="a &quot;caption&quot; &lt;x&gt;"' in page
    assert "<td>$body</td>" in page  # not taken for a template placeholder


def test_table_formats_numbers_and_checks_row_length():
    rep = Report("t", generated="now")
    rep.table(["a", "b", "c", "d"], [[np.float32(0.123456), 3, "0.1234567", None]])
    page = rep.render()
    assert '<td class="num">0.1235</td>' in page
    assert '<td class="num">3</td>' in page and "<td>0.1234567</td>" in page
    with pytest.raises(ValueError, match="row 0"):
        rep.table(["a"], [[1, 2]])


def test_format_number():
    assert format_number(0.5) == "0.5"
    assert format_number(-85.2371) == "-85.24"
    assert format_number(1.23456e-5) == "1.235e-05"
    assert format_number(-2345678.9) == "-2345679"
    assert format_number(9999.7) == "10000"
    assert format_number(0.0) == "0"
    assert format_number(float("nan")) == "nan" and format_number(-np.inf) == "-inf"
    assert format_number(3e15) == "3.000e+15"


def test_flatten():
    assert flatten({"a": {"b": 1, "c": {"d": 2}}, "e": 3, "f": {}}) == {
        "a.b": 1,
        "a.c.d": 2,
        "e": 3,
        "f": {},
    }


def test_figure_rejects_non_png(tmp_path):
    bad = tmp_path / "x.png"
    bad.write_text("hello")
    with pytest.raises(ValueError, match="not a PNG"):
        Report("t").figure(bad, "c")


class _Terminal(io.StringIO):
    def isatty(self):
        return True


def test_progress_bars_follow_the_terminal_and_the_environment(monkeypatch):
    monkeypatch.delenv("ELBOLAB_NO_PROGRESS", raising=False)
    monkeypatch.delenv("ELBOLAB_PROGRESS", raising=False)
    # tqdm's rule: a bar on a terminal, none on a file or pipe.
    terminal, pipe = _Terminal(), io.StringIO()
    with progress(total=2, desc="y", unit="doc", file=terminal) as bar:
        assert not bar.disable
        bar.update(2)
    assert bar.n == 2 and "2/2" in terminal.getvalue()
    assert list(progress(range(3), file=pipe)) == [0, 1, 2] and pipe.getvalue() == ""
    # Asked for: drawn on a pipe too.
    monkeypatch.setenv("ELBOLAB_PROGRESS", "1")
    assert not progress(range(3), file=pipe).disable
    # Refused: hidden even on a terminal, and it wins over ELBOLAB_PROGRESS.
    monkeypatch.setenv("ELBOLAB_NO_PROGRESS", "1")
    bar = progress(range(3), desc="x", file=terminal)
    assert bar.disable and list(bar) == [0, 1, 2]
