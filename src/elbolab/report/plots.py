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
    "curves_plot",
    "contour_plot",
    "grouped_error_bar_plot",
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


def curves_plot(
    ax: Axes,
    curves: Mapping[str, tuple[ArrayOrTensor, ArrayOrTensor]],
    xlabel: str,
    ylabel: str,
    title: str | None = None,
    *,
    styles: Mapping[str, str] | None = None,
    legend: Mapping[str, object] | None = None,
) -> Axes:
    """One line per entry of ``curves`` (label -> (x, y)), each on its own x (paths
    resampled at different positions, histories of different lengths), with axis labels.

    ``styles`` maps a label to a matplotlib format string (``"o-"``, ``"s--"``). A legend
    without a frame is drawn when there is more than one line; ``legend`` adds options
    to it (``{"fontsize": 8}``).
    """
    from ..errors import ConfigError

    for label, (x, y) in curves.items():
        x, y = np.asarray(x), np.asarray(y)
        if y.shape != x.shape:
            raise ConfigError(
                f"curves: {label!r} has y of shape {y.shape} and x of shape {x.shape}"
            )
        fmt = (styles or {}).get(label)
        ax.plot(x, y, *([fmt] if fmt else []), label=str(label))
    _labels(ax, xlabel, ylabel, title)
    if len(curves) > 1:
        ax.legend(**{"frameon": False, **(legend or {})})
    return ax


def contour_plot(
    ax: Axes,
    xs: ArrayOrTensor,
    ys: ArrayOrTensor,
    values: ArrayOrTensor,
    xlabel: str,
    ylabel: str,
    title: str | None = None,
    *,
    colorbar_label: str,
    levels: int = 15,
) -> Axes:
    """Filled contours of ``values`` (len(ys), len(xs)) on the grid ``xs`` x ``ys``,
    with a colour bar.

    The ``levels`` contour levels are quantiles of the finite values, so that a few
    very low values (an ELBO far from a maximum) do not take every colour; non-finite
    values are left blank.
    """
    from ..errors import ConfigError

    values = np.asarray(values)
    if values.shape != (len(ys), len(xs)):
        raise ConfigError(
            f"values must have shape (len(ys), len(xs)) = ({len(ys)}, {len(xs)}), "
            f"got {values.shape}"
        )
    finite = values[np.isfinite(values)]
    cuts = np.unique(np.quantile(finite, np.linspace(0.0, 1.0, levels))) if finite.size else levels
    filled = ax.contourf(np.asarray(xs), np.asarray(ys), values, levels=cuts, cmap="viridis")
    ax.figure.colorbar(filled, ax=ax, label=colorbar_label)
    _labels(ax, xlabel, ylabel, title)
    return ax


def grouped_error_bar_plot(
    ax: Axes,
    ticks: Sequence[str],
    groups: Mapping[str, tuple[Sequence[float], Sequence[float] | None]],
    xlabel: str,
    ylabel: str,
    title: str | None = None,
) -> Axes:
    """Bars of every group side by side at each tick (one colour and legend entry per
    group: label -> (values, symmetric errors or None), one value per tick), the bars at
    a tick together 0.75 wide; a legend without a frame."""
    from ..errors import ConfigError

    if any(
        len(v) != len(ticks) or (e is not None and len(e) != len(ticks)) for v, e in groups.values()
    ):
        raise ConfigError(f"every group needs one value (and error) per tick ({len(ticks)})")
    width = 0.75 / max(len(groups), 1)
    pos = np.arange(len(ticks))
    for i, (label, (values, errors)) in enumerate(groups.items()):
        shift = (i - (len(groups) - 1) / 2) * width
        yerr = None if errors is None else np.asarray(errors)
        ax.bar(pos + shift, np.asarray(values), width, yerr=yerr, label=str(label))
    ax.set_xticks(pos, [str(t) for t in ticks])
    _labels(ax, xlabel, ylabel, title)
    ax.legend(frameon=False)
    return ax
