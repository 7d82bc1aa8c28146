"""Small plotting helpers shared by the studies (headless, one consistent look).

Importing this module selects matplotlib's non-interactive Agg backend, so studies run
on servers without a display. It does so only if ``matplotlib.pyplot`` has not been
imported yet: switching the backend under a session that already chose one (a Jupyter
notebook with inline plots) would break that session's figures.

:func:`new_figure` makes a ``matplotlib.figure.Figure`` directly rather than through
``pyplot``: such a figure is not registered with pyplot's global figure manager, so it
cannot leak memory when a study forgets to close it, and it draws with Agg whatever the
backend. Save it with ``RunDir.save_figure``.
"""

from __future__ import annotations

import sys
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

import matplotlib

if "matplotlib.pyplot" not in sys.modules:
    matplotlib.use("Agg")

import numpy as np  # noqa: E402
from matplotlib.axes import Axes  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

if TYPE_CHECKING:
    from .._types import ArrayOrTensor

__all__ = [
    "new_figure",
    "line_plot",
    "bar_plot",
    "scatter_plot",
    "label_axes",
    "reference_line",
    "signed_heatmap",
    "density_plot",
]


def new_figure(
    width: float = 6.4, height: float = 4.0, ncols: int = 1, nrows: int = 1
) -> tuple[Figure, Axes | np.ndarray]:
    """A figure with grid lines on and a tight layout.

    Parameters
    ----------
    width, height : float
        Size in inches (the whole figure).
    ncols, nrows : int
        Subplot grid; with more than one panel ``ax`` is an array of Axes.

    Returns
    -------
    fig : matplotlib.figure.Figure
    ax : matplotlib.axes.Axes or ndarray of Axes
    """
    fig = Figure(figsize=(width, height), layout="tight")
    ax = fig.subplots(nrows, ncols, squeeze=True)
    for a in np.atleast_1d(ax).ravel():
        a.grid(True, alpha=0.3)
        a.set_axisbelow(True)
    return fig, ax


def _labels(ax: Axes, xlabel: str, ylabel: str, title: str | None) -> None:
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    if title:
        ax.set_title(title)


def line_plot(
    ax: Axes,
    x: ArrayOrTensor,
    ys: Mapping[str, Sequence[float]],
    xlabel: str,
    ylabel: str,
    title: str | None = None,
    *,
    logx: bool = False,
    logy: bool = False,
    marker: str | None = None,
) -> Axes:
    """One line per entry of ``ys`` (label -> y values, each of ``len(x)``) against ``x``.

    A legend is drawn when there is more than one line.
    """
    x = np.asarray(x)
    for label, y in ys.items():
        y = np.asarray(y)
        if y.shape != x.shape:
            raise ValueError(f"line {label!r} has shape {y.shape}, x has {x.shape}")
        ax.plot(x, y, label=str(label), marker=marker)
    if logx:
        ax.set_xscale("log")
    if logy:
        ax.set_yscale("log")
    _labels(ax, xlabel, ylabel, title)
    if len(ys) > 1:
        ax.legend(frameon=False)
    return ax


def bar_plot(
    ax: Axes,
    labels: Sequence[str],
    values: Sequence[float],
    xlabel: str,
    ylabel: str,
    title: str | None = None,
    *,
    errors: Sequence[float] | None = None,
) -> Axes:
    """Bars with optional symmetric error bars (e.g. standard errors)."""
    pos = np.arange(len(labels))
    ax.bar(pos, np.asarray(values), yerr=None if errors is None else np.asarray(errors), capsize=3)
    ax.set_xticks(pos, [str(s) for s in labels])
    _labels(ax, xlabel, ylabel, title)
    return ax


def scatter_plot(
    ax: Axes,
    x: ArrayOrTensor,
    y: ArrayOrTensor,
    xlabel: str,
    ylabel: str,
    title: str | None = None,
    *,
    label: str | None = None,
    c: ArrayOrTensor | str | None = None,
    s: float = 12.0,
) -> Axes:
    """A scatter plot; ``c`` colours points by value (a colour bar is then added)."""
    pts = ax.scatter(np.asarray(x), np.asarray(y), c=c, s=s, label=label)
    if c is not None and np.ndim(c) > 0:
        ax.figure.colorbar(pts, ax=ax)
    _labels(ax, xlabel, ylabel, title)
    if label:
        ax.legend(frameon=False)
    return ax


def label_axes(
    ax: Axes,
    xlabel: str,
    ylabel: str,
    title: str | None = None,
    *,
    xscale: str | None = None,
    yscale: str | None = None,
    legend: bool | Mapping[str, object] = False,
) -> Axes:
    """What every panel ends with: axis labels (with units), an optional title, axis
    scales (``"log"``, ``"symlog"``) and a legend: ``legend=True``, or a mapping of
    options for it (``{"frameon": False, "title": ...}``)."""
    _labels(ax, xlabel, ylabel, title)
    if xscale:
        ax.set_xscale(xscale)
    if yscale:
        ax.set_yscale(yscale)
    if legend:
        ax.legend(**(legend if isinstance(legend, Mapping) else {}))
    return ax


def reference_line(
    ax: Axes,
    value: float,
    label: str | None = None,
    *,
    vertical: bool = False,
    dashed: bool = False,
) -> Axes:
    """A thin black line at a reference value (an exact maximum, a true parameter):
    horizontal at y = value, or vertical at x = value."""
    draw = ax.axvline if vertical else ax.axhline
    draw(value, color="k", lw=1, ls="--" if dashed else "-", label=label)
    return ax


def signed_heatmap(
    ax: Axes, matrix: ArrayOrTensor, xlabel: str, ylabel: str, title: str | None = None
) -> Axes:
    """A matrix in a diverging colour map centred at 0 (red positive, blue negative),
    with a colour bar."""
    values = np.asarray(matrix)
    limit = float(np.abs(values).max()) if values.size else 0.0
    image = ax.imshow(values, cmap="RdBu_r", vmin=-limit, vmax=limit)
    ax.figure.colorbar(image, ax=ax, shrink=0.8)
    _labels(ax, xlabel, ylabel, title)
    return ax


def density_plot(ax: Axes, values: ArrayOrTensor, label: str | None = None) -> Axes:
    """Gaussian kernel density of ``values`` (Silverman's bandwidth) on 400 points, or a
    rug of the values when there are fewer than two or they coincide."""
    values = np.asarray(values, dtype=np.float64)
    spread = values.std() if values.size else 0.0
    if values.size < 2 or spread == 0:
        ax.plot(values, np.zeros_like(values), "|", ms=20, label=label)
        return ax
    h = 1.06 * spread * values.size ** (-1 / 5)
    grid = np.linspace(values.min() - 3 * h, values.max() + 3 * h, 400)
    dens = np.exp(-0.5 * ((grid[:, None] - values) / h) ** 2).sum(1) / (
        values.size * h * np.sqrt(2 * np.pi)
    )
    ax.plot(grid, dens, label=label)
    return ax
