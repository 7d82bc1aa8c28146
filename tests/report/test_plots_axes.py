"""report.plots: axis labels and scales, reference lines, signed heat maps, densities."""

import numpy as np
import pytest

from elbolab.report.plots import (
    density_plot,
    label_axes,
    new_figure,
    reference_line,
    signed_heatmap,
)


def test_label_axes_sets_labels_scales_and_legend_options():
    fig, ax = new_figure()
    ax.plot([1, 10, 100], [1, 2, 3], label="a")
    label_axes(ax, "width (units)", "gap (nats)", "title", xscale="log", legend={"title": "t"})
    assert (ax.get_xlabel(), ax.get_ylabel(), ax.get_title()) == (
        "width (units)",
        "gap (nats)",
        "title",
    )
    assert ax.get_xscale() == "log" and ax.get_yscale() == "linear"
    assert ax.get_legend().get_title().get_text() == "t"
    fig, ax = new_figure()
    ax.plot([1, 2], [1, 2], label="a")
    label_axes(ax, "x", "y")
    assert ax.get_legend() is None and ax.get_title() == ""


def test_reference_line_is_thin_black_and_where_asked():
    fig, ax = new_figure()
    reference_line(ax, 2.5, "exact")
    reference_line(ax, -1.0, vertical=True, dashed=True)
    flat, upright = ax.get_lines()
    assert flat.get_ydata()[0] == 2.5 and flat.get_label() == "exact"
    assert upright.get_xdata()[0] == -1.0 and upright.get_linestyle() == "--"
    assert flat.get_color() == "k" and flat.get_linewidth() == 1


def test_signed_heatmap_is_centred_at_zero_with_a_colour_bar():
    fig, ax = new_figure()
    signed_heatmap(ax, np.array([[1.0, -3.0], [0.5, 2.0]]), "latent dimension", "latent dimension")
    image = ax.get_images()[0]
    assert image.get_clim() == (-3.0, 3.0)
    assert len(fig.axes) == 2  # the panel and its colour bar


def test_density_integrates_to_one_and_coinciding_values_are_a_rug():
    fig, ax = new_figure()
    values = np.random.default_rng(0).normal(100.0, 2.0, size=50)
    density_plot(ax, values, "fits")
    (line,) = ax.get_lines()
    x, y = line.get_xdata(), line.get_ydata()
    assert np.trapezoid(y, x) == pytest.approx(1.0, abs=0.01)
    assert x[int(np.argmax(y))] == pytest.approx(100.0, abs=2.0)
    fig, ax = new_figure()
    density_plot(ax, [3.0, 3.0, 3.0])
    (rug,) = ax.get_lines()
    assert rug.get_marker() == "|" and rug.get_xdata().tolist() == [3.0, 3.0, 3.0]
