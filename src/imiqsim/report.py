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
from imiqsim.vocabulary import DISCLAIMER

# --------------------------------------------------------------------------- endpoints


@dataclass(frozen=True)
class EndpointInfo:
    key: str
    label: str
    kind: str  # "proportion", "fraction_median" (median of a fraction, shown in %), "days"
    explanation: str


ENDPOINT_INFO: tuple[EndpointInfo, ...] = (
    EndpointInfo(
        "complete_clearance",
        "Complete clearance",
        "proportion",
        "No clinically visible lesion left in the treated area at the assessment visit (for "
        "treat-until-clear regimens: cleared by the end of treatment). Denominator: all patients.",
    ),
    EndpointInfo(
        "partial_clearance",
        "Partial clearance (\u226575%)",
        "proportion",
        "At least 75% fewer visible lesions at the assessment visit than at baseline. Every "
        "complete clearer is also a partial clearer.",
    ),
    EndpointInfo(
        "median_lesion_reduction",
        "Median lesion reduction",
        "fraction_median",
        "Median per-patient reduction in the visible lesion count from baseline to the "
        "assessment visit (100% = cleared; negative = more lesions than at baseline).",
    ),
    EndpointInfo(
        "histological_clearance",
        "Histological clearance",
        "proportion",
        "No lesion above the histological detection limit at the assessment visit. Stricter than "
        "complete (clinical) clearance: a clinically clear area may still hold sub-visible "
        "lesions that a biopsy would find and that can later reappear.",
    ),
    EndpointInfo(
        "composite_clearance",
        "Composite clearance",
        "proportion",
        "Both complete clinical and histological clearance.",
    ),
    EndpointInfo(
        "time_to_clearance_days",
        "Time to clearance (median days)",
        "days",
        "Median time from the first application until no lesion is visible, among the patients "
        "who cleared at some time (n = those patients).",
    ),
    EndpointInfo(
        "recurrence_12wk",
        "Recurrence at 12 weeks",
        "proportion",
        "A visible lesion again 12 weeks after clearance, among complete clearers only "
        "(n = clearers followed that long). Not a share of all patients.",
    ),
    EndpointInfo(
        "recurrence_12mo",
        "Recurrence at 12 months",
        "proportion",
        "As above, 12 months after clearance, among complete clearers followed that long.",
    ),
    EndpointInfo(
        "recurrence_5y",
        "Recurrence at 5 years",
        "proportion",
        "As above, 5 years after clearance, among complete clearers followed that long.",
    ),
    EndpointInfo(
        "sustained_clearance_12mo",
        "Sustained clearance at 12 months",
        "proportion",
        "Complete clearance and still no visible lesion 12 months later. Denominator: all patients "
        "whose outcome is known (clearers need 12 months of follow-up).",
    ),
    EndpointInfo(
        "severe_erythema",
        "Severe erythema",
        "proportion",
        "Erythema score \u2265 2.5 on the 0\u20133 scale (grade 3) at any time during the course.",
    ),
    EndpointInfo(
        "rest_needed",
        "Rest period needed",
        "proportion",
        "At least one application skipped for a rest from an intense local skin reaction.",
    ),
    EndpointInfo(
        "flu_like",
        "Flu-like symptoms",
        "proportion",
        "Drawn per patient from the simulated probability at that patient's systemic exposure.",
    ),
    EndpointInfo(
        "headache",
        "Headache",
        "proportion",
        "Drawn per patient: a background rate (as seen with vehicle) plus a share of the "
        "flu-like episodes.",
    ),
)
_INFO = {e.key: e for e in ENDPOINT_INFO}
#: rows shown only when at least one arm has a non-empty denominator
_OPTIONAL_ROWS = {
    "recurrence_12wk",
    "recurrence_12mo",
    "recurrence_5y",
    "sustained_clearance_12mo",
    "time_to_clearance_days",
}


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
