"""report.plots: curves on their own x and quantile-level contours."""

import numpy as np
import pytest

from elbolab.errors import ConfigError
from elbolab.report.plots import contour_plot, curves_plot, new_figure


def test_curves_keep_their_own_x_and_styles():
    fig, ax = new_figure()
    curves_plot(
        ax,
        {"a": ([0.0, 0.5, 1.0], [1.0, 2.0, 3.0]), "b": ([0.0, 1.0], [5.0, 4.0])},
        "position (fraction)",
        "ELBO (nats)",
        styles={"b": "s--"},
    )
    a, b = ax.get_lines()
    assert a.get_xdata().tolist() == [0.0, 0.5, 1.0]
    assert b.get_xdata().tolist() == [0.0, 1.0] and b.get_linestyle() == "--"
    assert b.get_marker() == "s"
    assert ax.get_xlabel() == "position (fraction)" and ax.get_ylabel() == "ELBO (nats)"
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["a", "b"]


def test_one_curve_has_no_legend_and_a_bad_curve_is_named():
    fig, ax = new_figure()
    curves_plot(ax, {"only": ([0, 1], [1, 2])}, "x", "y")
    assert ax.get_legend() is None
    with pytest.raises(ConfigError, match="'bad'"):
        curves_plot(ax, {"bad": ([0, 1, 2], [1, 2])}, "x", "y")


def test_contour_levels_are_quantiles_of_the_finite_values():
    values = np.array([[0.0, 1.0, 2.0], [3.0, -1000.0, np.nan]])
    fig, ax = new_figure()
    contour_plot(ax, [0, 1, 2], [0, 1], values, "u", "v", colorbar_label="nats", levels=3)
    finite = values[np.isfinite(values)]
    want = np.quantile(finite, [0.0, 0.5, 1.0])
    contours = next(o for o in ax.get_children() if hasattr(o, "levels"))
    # Linear levels would be -1000, -498.5, 3: one very low value would take every colour.
    np.testing.assert_allclose(contours.levels, want)
    assert len(fig.axes) == 2  # the colour bar
    with pytest.raises(ConfigError, match=r"\(2, 3\)"):
        contour_plot(ax, [0, 1], [0, 1, 2], values, "u", "v", colorbar_label="nats")
