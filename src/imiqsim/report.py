"""Virtual-trial outputs (the old import path): data files and the HTML report.

The code lives in :mod:`imiqsim.outputs` (:mod:`~imiqsim.outputs.trial` for the
data files, :mod:`~imiqsim.outputs.trial_figures`,
:mod:`~imiqsim.outputs.trial_report`); this module re-exports its public names
so that ``from imiqsim.report import write_trial_outputs`` keeps working.

>>> from imiqsim.report import write_trial_bundle
>>> from imiqsim.outputs.trial_report import write_trial_bundle as new
>>> write_trial_bundle is new
True
"""

from __future__ import annotations

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
from imiqsim.trial.endpoints import report_endpoints
from imiqsim.vocabulary import DISCLAIMER

#: the report's endpoint rows (the old name): entries of the endpoint registry, in table order
ENDPOINT_INFO = report_endpoints()

__all__ = [
    "ARM_COLOURS",
    "DISCLAIMER",
    "ENDPOINT_INFO",
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
