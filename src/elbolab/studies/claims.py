"""The claims table that opens every study's report.

Each study reproduces claims of the papers it follows. Its ``claims(cfg, metrics)``
returns one :class:`Claim` per claim: the claim in our words with its reference, what
this run measured, and a verdict with its reason. :func:`elbolab.studies.run_study`
stores them in ``metrics.json`` under ``claims`` and the report opens with them, so a
reader sees first whether the run supports the paper and why not where it does not.
"""

from __future__ import annotations

import dataclasses

HOLDS = "holds"
PARTLY = "partly"
NOT_AT_THIS_BUDGET = "not at this budget"
# For a check this installation cannot make (an optional package is missing): the reason
# says what to install. Not a verdict on the paper.
NOT_CHECKED = "not checked"
VERDICTS = (HOLDS, PARTLY, NOT_AT_THIS_BUDGET, NOT_CHECKED)


@dataclasses.dataclass(frozen=True)
class Claim:
    """One row of the claims table.

    claim : the paper's claim in our words.
    reference : where it is made (authors, year, section).
    measured : what this run measured, with units.
    verdict : one of :data:`VERDICTS` (:func:`verdict` for those computed from numbers,
        :data:`NOT_CHECKED` where this installation cannot check the claim).
    reason : why the verdict (what was compared with what, or what is missing).
    """

    claim: str
    reference: str
    measured: str
    verdict: str
    reason: str

    def __post_init__(self):
        if self.verdict not in VERDICTS:
            raise ValueError(f"verdict must be one of {VERDICTS}, got {self.verdict!r}")
        for field in dataclasses.fields(self):
            if not str(getattr(self, field.name)).strip():
                raise ValueError(f"claim field {field.name!r} is empty")


def verdict(holds: bool, partly: bool = False) -> str:
    """``holds`` if ``holds``, else ``partly`` if ``partly``, else ``not at this budget``."""
    return HOLDS if holds else PARTLY if partly else NOT_AT_THIS_BUDGET


def as_rows(claims: list[Claim]) -> list[dict]:
    """The claims as plain dicts, for ``metrics.json``."""
    return [dataclasses.asdict(c) for c in claims]


def add_table(report, rows: list[dict]) -> None:
    """Open ``report`` with the claims table built from ``metrics.json`` rows."""
    if not rows:
        report.opening_table(
            ["claim"], [["This run was made before elbolab recorded claims; run it again."]]
        )
        return
    report.opening_table(
        ["claim", "reference", "measured", "verdict", "reason"],
        [[r["claim"], r["reference"], r["measured"], r["verdict"], r["reason"]] for r in rows],
        caption="The papers' claims and what this run measured.",
    )
