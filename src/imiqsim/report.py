"""Virtual-trial outputs (the old import path): data files and the HTML report.

The code lives in :mod:`imiqsim.outputs` (:mod:`~imiqsim.outputs.trial` for the
data files, :mod:`~imiqsim.outputs.trial_figures`,
:mod:`~imiqsim.outputs.trial_report`); this module re-exports its public names
so that ``from imiqsim.report import write_trial_outputs`` keeps working.

>>> from imiqsim.report import write_trial_bundle
>>> from imiqsim.outputs.trial_report import write_trial_bundle as new
>>> write_trial_bundle is new
True
>>> from imiqsim.report import ENDPOINT_INFO
>>> ENDPOINT_INFO[0].key, ENDPOINT_INFO[0].kind
('complete_clearance', 'proportion')
"""

from __future__ import annotations

from dataclasses import dataclass

from imiqsim.outputs.formatting import format_days, format_difference, format_proportion
from imiqsim.outputs.trial import (
    OUTCOMES_NAME,
    SUMMARY_NAME,
    TRACES_NAME,
    outcomes_frame,
    traces_dataset,
    write_trial_outputs,
)
from imiqsim.outputs.trial_figures import (
    ARM_COLOURS,
    fig_kinetics,
    fig_lesions_lsr,
    fig_subgroups,
    fig_waterfall,
    subgroup_table,
)
from imiqsim.outputs.trial_report import (
    FIGURE_NAMES,
    REPORT_NAME,
    format_endpoint,
    write_trial_bundle,
    write_trial_report,
)
from imiqsim.trial.endpoints import Endpoint, report_endpoints
from imiqsim.vocabulary import DISCLAIMER


@dataclass(frozen=True)
class EndpointInfo:
    """A report row in the old shape, read from the registry (:mod:`imiqsim.trial.endpoints`).

    ``kind`` is ``"proportion"``, ``"fraction_median"`` (a median of a fraction, shown in %) or
    ``"days"``; ``explanation`` is the registry's ``description``.
    """

    key: str
    label: str
    kind: str
    explanation: str


def _old_kind(e: Endpoint) -> str:
    if e.unit == "days":
        return "days"
    return "fraction_median" if e.kind == "median" else "proportion"


#: the report's endpoint rows, in table order (the old name and shape; the registry is the source)
ENDPOINT_INFO: tuple[EndpointInfo, ...] = tuple(
    EndpointInfo(e.name, e.label, _old_kind(e), e.description) for e in report_endpoints()
)

__all__ = [
    "ARM_COLOURS",
    "DISCLAIMER",
    "ENDPOINT_INFO",
    "EndpointInfo",
    "FIGURE_NAMES",
    "OUTCOMES_NAME",
    "REPORT_NAME",
    "SUMMARY_NAME",
    "TRACES_NAME",
    "fig_kinetics",
    "fig_lesions_lsr",
    "fig_subgroups",
    "fig_waterfall",
    "format_days",
    "format_difference",
    "format_endpoint",
    "format_proportion",
    "outcomes_frame",
    "subgroup_table",
    "traces_dataset",
    "write_trial_bundle",
    "write_trial_outputs",
    "write_trial_report",
]
