"""Report layer: run directories (atomic writes, checkpoints, resume), figures, HTML.

See :mod:`elbolab.report.rundir` for the run-directory conventions (``metrics.json`` is
written last among the results and marks a complete run).
"""

from elbolab.report.html import Report, flatten, format_number, format_value
from elbolab.report.plots import bar_plot, line_plot, new_figure, scatter_plot
from elbolab.report.rundir import RunDir, atomic_write, from_jsonable, to_jsonable

__all__ = [
    "RunDir",
    "Report",
    "atomic_write",
    "to_jsonable",
    "from_jsonable",
    "format_number",
    "format_value",
    "flatten",
    "new_figure",
    "line_plot",
    "bar_plot",
    "scatter_plot",
]
