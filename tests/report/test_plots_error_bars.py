"""report.plots.grouped_error_bar_plot: groups side by side with their error bars."""

import pytest
from matplotlib.container import BarContainer

from elbolab.errors import ConfigError
from elbolab.report.plots import grouped_error_bar_plot, new_figure


def test_groups_sit_side_by_side_with_their_errors():
    fig, ax = new_figure()
    groups = {"kl": ([1.0, 2.0], [0.1, 0.2]), "mi": ([0.5, 0.5], None), "m": ([3.0, 1.0], None)}
    grouped_error_bar_plot(ax, ["d = 2", "d = 3"], groups, "latent size", "nats per datum")
    centers = [round(p.get_x() + p.get_width() / 2, 9) for p in ax.patches]
    assert centers == [-0.25, 0.75, 0.0, 1.0, 0.25, 1.25]
    assert [p.get_height() for p in ax.patches] == [1.0, 2.0, 0.5, 0.5, 3.0, 1.0]
    bars = [c for c in ax.containers if isinstance(c, BarContainer)]
    assert len(bars[0].errorbar.lines[2][0].get_segments()) == 2  # kl's two error bars
    assert bars[1].errorbar is None and bars[2].errorbar is None
    assert [t.get_text() for t in ax.get_xticklabels()] == ["d = 2", "d = 3"]
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["kl", "mi", "m"]
    assert ax.get_xlabel() == "latent size" and ax.get_ylabel() == "nats per datum"


def test_a_group_of_the_wrong_length_is_refused():
    fig, ax = new_figure()
    with pytest.raises(ConfigError, match="one value"):
        grouped_error_bar_plot(ax, ["a", "b"], {"x": ([1.0], None)}, "x", "y")
    with pytest.raises(ConfigError, match="one value"):
        grouped_error_bar_plot(ax, ["a"], {"x": ([1.0], [0.1, 0.2])}, "x", "y")
