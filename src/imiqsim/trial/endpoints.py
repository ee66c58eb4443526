"""The endpoint registry: every trial endpoint written once.

Each :class:`Endpoint` says what the endpoint is (name, label, description,
denominator, unit), how it is computed from the per-patient outcome columns
(:mod:`imiqsim.trial.outcomes`), whether and how two arms are differenced, and
where it is shown (the HTML report table, the ``imiqsim compare`` table). The
arm endpoint table (:func:`endpoints`), the pairwise differences
(:func:`differences`), the report and the comparison all read :data:`ENDPOINTS`.

The denominator rule is the same for every endpoint: patients whose
integration failed never count, and a patient outside an endpoint's
denominator holds NaN in its outcome column (a recurrence column is NaN for a
patient who did not clear, or was not followed long enough). So the column
alone decides who counts; the ``denominator`` text says it in words.

A new endpoint is one :class:`Endpoint` entry here plus its outcome column in
:func:`imiqsim.trial.outcomes.simulate_chunk`. Recurrence follow-up visits are
scenario data (``[assessment]`` ``recurrence_after_months`` / ``_weeks``): an arm
whose outcomes hold ``recurrence_<N>mo`` / ``sustained_clearance_<N>mo`` (or
``..._<N>wk``) columns the registry does not list gets those endpoints too
(:func:`recurrence_endpoints`), after the registered ones.

Examples
--------
>>> from imiqsim.trial.endpoints import ENDPOINTS, endpoint
>>> e = endpoint("recurrence_12mo")
>>> e.kind, e.column, e.difference
('proportion', 'recurrence_12mo', 'newcombe')
>>> e.denominator
'complete clearers followed 12 months after clearance'
>>> [x.name for x in ENDPOINTS if x.report_row is not None][:3]
['complete_clearance', 'partial_clearance', 'histological_clearance']
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal, Protocol

import numpy as np
import pandas as pd

from imiqsim.errors import InputError
from imiqsim.trial.stats import median_ci, newcombe_diff_ci, proportion, wilson_ci

__all__ = [
    "ENDPOINTS",
    "KINDS",
    "ArmEndpoints",
    "Endpoint",
    "comparison_endpoints",
    "differences",
    "endpoint",
    "endpoints",
    "recurrence_endpoints",
    "report_endpoints",
]

#: how an endpoint is estimated from its outcome column(s):
#: ``proportion`` (share of patients, Wilson CI), ``pooled_proportion`` (share of lesions pooled
#: over patients, Wilson CI; clustering within patients ignored), ``mean`` (mean with a normal
#: 95% CI), ``median`` (median with a distribution-free order-statistic CI)
Kind = Literal["proportion", "pooled_proportion", "mean", "median"]
KINDS: tuple[str, ...] = ("proportion", "pooled_proportion", "mean", "median")
#: the only difference method today: Newcombe's hybrid score interval for two proportions
Difference = Literal["newcombe"]


@dataclass(frozen=True)
class Endpoint:
    """One trial endpoint: what it is, how it is computed and differenced, where it is shown.

    Parameters
    ----------
    name : str
        Key in an arm's ``endpoints`` dict and in the JSON summary.
    label : str
        Human label (report table row).
    kind : {"proportion", "pooled_proportion", "mean", "median"}
        The estimator (see :data:`KINDS`).
    column : str
        The per-patient outcome column it reads (for ``pooled_proportion``: the
        per-patient count of lesions that meet the endpoint).
    denominator : str
        Who counts, in words (the column is NaN for everyone else).
    description : str
        What the endpoint means, for readers of the report.
    unit : {"fraction", "days"}
        Unit of the value: a fraction (shown as %) or days.
    counts : {"patients", "lesions"}
        What the denominator counts.
    count_column : str, optional
        ``pooled_proportion`` only: the per-patient count of lesions in the denominator.
    difference : {"newcombe"}, optional
        How two arms are differenced (:func:`differences`); None: not differenced.
    report_row : int, optional
        Sort key of the row in the HTML report's endpoint table; None: not in that table.
    report_optional : bool
        The report shows the row only when some arm has a non-empty denominator.
    compare_row : int, optional
        Sort key of the row in the ``imiqsim compare`` table; None: not in that table.
    compare_label : str
        Label of that row.
    """

    name: str
    label: str
    kind: Kind
    column: str
    denominator: str
    description: str
    unit: Literal["fraction", "days"] = "fraction"
    counts: Literal["patients", "lesions"] = "patients"
    count_column: str | None = None
    difference: Difference | None = None
    report_row: int | None = None
    report_optional: bool = False
    compare_row: int | None = None
    compare_label: str = ""

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"endpoint {self.name}: kind {self.kind!r} is not one of {KINDS}")
        if (self.kind == "pooled_proportion") != (self.count_column is not None):
            raise ValueError(f"endpoint {self.name}: count_column goes with pooled_proportion")
        if self.difference is not None and self.kind != "proportion":
            raise ValueError(f"endpoint {self.name}: only proportions are differenced")

    @property
    def is_percent(self) -> bool:
        """True when the value is a fraction shown in percent (everything but days)."""
        return self.unit == "fraction"

    def compute(self, ok: pd.DataFrame) -> dict[str, Any]:
        """This endpoint for one arm, from the outcomes of its patients whose integration succeeded.

        Returns ``{"value", "ci95", "n"}`` (value and bounds None when nothing counts), plus
        ``"k"`` for proportions and ``"unit": "lesions"`` for lesion-level ones.
        """
        return _ESTIMATORS[self.kind](self, ok)


# --------------------------------------------------------------------------- estimators


def _none_if_nan(x: float) -> float | None:
    return None if np.isnan(x) else x


def _proportion(e: Endpoint, ok: pd.DataFrame) -> dict[str, Any]:
    return proportion(ok[e.column].to_numpy(dtype=float))


def _pooled_proportion(e: Endpoint, ok: pd.DataFrame) -> dict[str, Any]:
    assert e.count_column is not None  # checked in Endpoint.__post_init__
    k = int(np.nansum(ok[e.column].to_numpy(dtype=float)))
    n = int(np.nansum(ok[e.count_column].to_numpy(dtype=float)))
    if not n:
        return {"value": None, "ci95": [None, None], "k": 0, "n": 0, "unit": e.counts}
    lo, hi = wilson_ci(k, n)
    return {"value": k / n, "ci95": [lo, hi], "k": k, "n": n, "unit": e.counts}


def _mean(e: Endpoint, ok: pd.DataFrame) -> dict[str, Any]:
    x = ok[e.column].to_numpy(dtype=float)
    x = x[np.isfinite(x)]
    if not x.size:
        return {"value": None, "ci95": [None, None], "n": 0}
    m = float(x.mean())
    se = float(x.std(ddof=1) / np.sqrt(x.size)) if x.size > 1 else 0.0
    return {"value": m, "ci95": [m - 1.96 * se, m + 1.96 * se], "n": int(x.size)}


def _median(e: Endpoint, ok: pd.DataFrame) -> dict[str, Any]:
    x = ok[e.column].to_numpy(dtype=float)
    m, lo, hi = median_ci(x)
    return {
        "value": _none_if_nan(m),
        "ci95": [_none_if_nan(lo), _none_if_nan(hi)],
        "n": int(ok[e.column].notna().sum()),
    }


_ESTIMATORS: dict[str, Callable[[Endpoint, pd.DataFrame], dict[str, Any]]] = {
    "proportion": _proportion,
    "pooled_proportion": _pooled_proportion,
    "mean": _mean,
    "median": _median,
}

# --------------------------------------------------------------------------- the registry

_RECURRENCE = (
    "A visible lesion again {when} after clearance, among complete clearers only "
    "(n = clearers followed that long). Not a share of all patients."
)

#: every endpoint, in the order of an arm's ``endpoints`` dict (the JSON summary and CLI table)
ENDPOINTS: tuple[Endpoint, ...] = (
    Endpoint(
        "complete_clearance",
        "Complete clearance",
        "proportion",
        "complete_clearance",
        "all patients",
        "No clinically visible lesion left in the treated area at the assessment visit (for "
        "treat-until-clear regimens: cleared by the end of treatment). Denominator: all patients.",
        difference="newcombe",
        report_row=1,
        compare_row=2,
        compare_label="initial complete clearance (patients)",
    ),
    Endpoint(
        "partial_clearance",
        "Partial clearance (\u226575%)",
        "proportion",
        "partial_clearance",
        "patients with a visible lesion at baseline",
        "At least 75% fewer visible lesions at the assessment visit than at baseline. Every "
        "complete clearer is also a partial clearer.",
        difference="newcombe",
        report_row=2,
    ),
    Endpoint(
        "histological_clearance",
        "Histological clearance",
        "proportion",
        "histological_clearance",
        "all patients",
        "No lesion above the histological detection limit at the assessment visit. Stricter than "
        "complete (clinical) clearance: a clinically clear area may still hold sub-visible "
        "lesions that a biopsy would find and that can later reappear.",
        difference="newcombe",
        report_row=4,
        compare_row=4,
        compare_label="histological clearance",
    ),
    Endpoint(
        "composite_clearance",
        "Composite clearance",
        "proportion",
        "composite_clearance",
        "all patients",
        "Both complete clinical and histological clearance.",
        report_row=5,
    ),
    Endpoint(
        "hypopigmentation",
        "Hypopigmentation",
        "proportion",
        "hypopigmentation",
        "all patients",
        "Hypopigmentation of the treated skin at the end of follow-up.",
        difference="newcombe",
        compare_row=7,
        compare_label="cosmetic: hypopigmentation",
    ),
    Endpoint(
        "scarring",
        "Scarring",
        "proportion",
        "scarring",
        "all patients",
        "A scar in the treated area at the end of follow-up.",
        difference="newcombe",
        compare_row=8,
        compare_label="cosmetic: scarring",
    ),
    Endpoint(
        "blistering",
        "Blistering",
        "proportion",
        "blistering",
        "all patients",
        "Blister score \u2265 1.5 at any time during the course.",
        difference="newcombe",
        compare_row=10,
        compare_label="local: blistering",
    ),
    Endpoint(
        "moderate_pain",
        "Moderate or worse pain",
        "proportion",
        "moderate_pain",
        "all patients",
        "Pain score \u2265 1.5 at any time during the course.",
        compare_row=11,
        compare_label="local: moderate or worse pain",
    ),
    Endpoint(
        "recurrence_12wk",
        "Recurrence at 12 weeks",
        "proportion",
        "recurrence_12wk",
        "complete clearers followed 12 weeks after clearance",
        _RECURRENCE.format(when="12 weeks"),
        report_row=7,
        report_optional=True,
    ),
    Endpoint(
        "recurrence_12mo",
        "Recurrence at 12 months",
        "proportion",
        "recurrence_12mo",
        "complete clearers followed 12 months after clearance",
        "As above, 12 months after clearance, among complete clearers followed that long.",
        difference="newcombe",
        report_row=8,
        report_optional=True,
        compare_row=6,
        compare_label="recurrence at 12 months (among clearers)",
    ),
    Endpoint(
        "recurrence_5y",
        "Recurrence at 5 years",
        "proportion",
        "recurrence_5y",
        "complete clearers followed 5 years after clearance",
        "As above, 5 years after clearance, among complete clearers followed that long.",
        report_row=9,
        report_optional=True,
    ),
    Endpoint(
        "sustained_clearance_12mo",
        "Sustained clearance at 12 months",
        "proportion",
        "sustained_clearance_12mo",
        "all patients whose outcome is known (clearers followed 12 months)",
        "Complete clearance and still no visible lesion 12 months later. Denominator: all patients "
        "whose outcome is known (clearers need 12 months of follow-up); none when the run does "
        "not follow the arm 12 months past the assessment visit.",
        difference="newcombe",
        report_row=10,
        report_optional=True,
        compare_row=5,
        compare_label="sustained clearance at 12 months",
    ),
    Endpoint(
        "recurrence_16mo",
        "Recurrence at 16 months",
        "proportion",
        "recurrence_16mo",
        "complete clearers followed 16 months after clearance",
        "As above, 16 months after clearance, among complete clearers followed that long "
        "(Lee et al. 2005: median 16 months after the post-treatment visit of the AK trials). "
        "A scenario with [assessment] recurrence_after_months = [16] follows patients that long.",
        difference="newcombe",
    ),
    Endpoint(
        "sustained_clearance_16mo",
        "Sustained clearance at 16 months",
        "proportion",
        "sustained_clearance_16mo",
        "all patients whose outcome is known (clearers followed 16 months)",
        "Complete clearance and still no visible lesion 16 months later. Denominator: all patients "
        "whose outcome is known (clearers need 16 months of follow-up).",
        difference="newcombe",
    ),
    Endpoint(
        "assessed_clearance",
        "Clearance as assessed (scenario's method)",
        "proportion",
        "assessed_clearance",
        "all patients",
        "Patients cleared by the scenario's [assessment] method: clinical (complete clearance), "
        "histological (no lesion above the histological detection limit) or composite (both). "
        'The primary endpoint of a scenario with level = "patient".',
        difference="newcombe",
    ),
    Endpoint(
        "assessed_lesion_clearance",
        "Lesion clearance as assessed (scenario's method)",
        "pooled_proportion",
        "assessed_lesions_cleared",
        "visible lesions at baseline, pooled over patients",
        "Share of the lesions visible at baseline that are cleared by the scenario's [assessment] "
        "method at the assessment visit (clinical: no longer visible; histological or "
        "composite: below the histological detection limit), pooled over patients. The primary "
        'endpoint of a scenario with level = "lesion".',
        counts="lesions",
        count_column="baseline_visible_lesion_count",
    ),
    Endpoint(
        "severe_erythema",
        "Severe erythema",
        "proportion",
        "severe_erythema",
        "all patients",
        "Erythema score \u2265 2.5 on the 0\u20133 scale (grade 3) at any time during the course.",
        difference="newcombe",
        report_row=11,
        compare_row=9,
        compare_label="local: severe erythema",
    ),
    Endpoint(
        "rest_needed",
        "Rest period needed",
        "proportion",
        "rest_needed",
        "all patients",
        "At least one application skipped for a rest from an intense local skin reaction.",
        report_row=12,
        compare_row=12,
        compare_label="local: rest period needed",
    ),
    Endpoint(
        "flu_like",
        "Flu-like symptoms",
        "proportion",
        "flu_like",
        "all patients",
        "Drawn per patient from the simulated probability at that patient's systemic exposure.",
        difference="newcombe",
        report_row=13,
        compare_row=13,
        compare_label="systemic: flu-like symptoms",
    ),
    Endpoint(
        "headache",
        "Headache",
        "proportion",
        "headache",
        "all patients",
        "Drawn per patient: a background rate (as seen with vehicle) plus a share of the "
        "flu-like episodes.",
        report_row=14,
    ),
    Endpoint(
        "lesion_complete_response",
        "Lesion complete response",
        "pooled_proportion",
        "visible_lesions_cleared",
        "visible lesions at baseline, pooled over patients",
        "Share of the lesions visible at baseline that are no longer visible at the assessment "
        "visit, pooled over patients (clustering within patients ignored).",
        counts="lesions",
        count_column="baseline_visible_lesion_count",
        compare_row=3,
        compare_label="lesion complete response (visible lesions)",
    ),
    Endpoint(
        "subclinical_cleared",
        "Subclinical lesions cleared",
        "pooled_proportion",
        "subclinical_lesions_cleared",
        "subclinical lesions at baseline, pooled over patients",
        "Share of the sub-visible lesions at baseline that are below the histological detection "
        "limit at the assessment visit, pooled over patients.",
        counts="lesions",
        count_column="baseline_subclinical_lesion_count",
        compare_row=1,
        compare_label="subclinical lesions cleared",
    ),
    Endpoint(
        "fraction_killed_by_immune",
        "Share of lesion cells killed by immune mechanisms",
        "mean",
        "fraction_killed_immune",
        "patients with any lesion cell killed",
        "Mean per-patient share of the killed lesion cells that a treatment did not kill "
        "directly (the model's kill tallies of kind direct, e.g. freezing): immune effectors and "
        "background surveillance.",
    ),
    Endpoint(
        "median_lesion_reduction",
        "Median lesion reduction",
        "median",
        "lesion_reduction",
        "patients with a visible lesion at baseline",
        "Median per-patient reduction in the visible lesion count from baseline to the "
        "assessment visit (100% = cleared; negative = more lesions than at baseline).",
        report_row=3,
    ),
    Endpoint(
        "time_to_clearance_days",
        "Time to clearance (median days)",
        "median",
        "time_to_clearance_days",
        "patients who cleared at some time",
        "Median time from the first application until no lesion is visible, among the patients "
        "who cleared at some time (n = those patients).",
        unit="days",
        report_row=6,
        report_optional=True,
    ),
)

_BY_NAME: dict[str, Endpoint] = {e.name: e for e in ENDPOINTS}
if len(_BY_NAME) != len(ENDPOINTS):  # pragma: no cover - caught at import by every test
    raise ValueError("duplicate endpoint names in ENDPOINTS")


_FOLLOW_UP_NAME = re.compile(r"^(recurrence|sustained_clearance)_([1-9][0-9]*)(mo|wk)$")
_UNIT_WORDS = {"mo": "months", "wk": "weeks"}


def recurrence_endpoints(n: int, unit: str = "mo") -> tuple[Endpoint, Endpoint]:
    """The recurrence and sustained-clearance endpoints of a follow-up visit ``n`` units later.

    ``unit`` is ``"mo"`` (months) or ``"wk"`` (weeks). A registered entry is returned as
    it is (e.g. ``recurrence_16mo``, ``recurrence_12wk``); the others are built here:
    ``recurrence_<n><unit>`` (a visible lesion again that long after clearance, among
    complete clearers followed that long) and ``sustained_clearance_<n><unit>`` (cleared
    and no visible lesion that long later). Their columns come from a scenario's
    ``[assessment]`` follow-up times.

    Examples
    --------
    >>> rec, sus = recurrence_endpoints(24)
    >>> rec.name, rec.denominator
    ('recurrence_24mo', 'complete clearers followed 24 months after clearance')
    >>> recurrence_endpoints(16)[0] is endpoint("recurrence_16mo")
    True
    >>> recurrence_endpoints(12, "wk")[1].name
    'sustained_clearance_12wk'
    """
    if unit not in _UNIT_WORDS:
        raise InputError("unit", unit, "mo (months) or wk (weeks)")
    when = f"{n} {_UNIT_WORDS[unit]}"
    rec_name, sus_name = f"recurrence_{n}{unit}", f"sustained_clearance_{n}{unit}"
    rec = _BY_NAME.get(rec_name) or Endpoint(
        rec_name,
        f"Recurrence at {when}",
        "proportion",
        rec_name,
        f"complete clearers followed {when} after clearance",
        _RECURRENCE.format(when=when),
        difference="newcombe",
    )
    sus = _BY_NAME.get(sus_name) or Endpoint(
        sus_name,
        f"Sustained clearance at {when}",
        "proportion",
        sus_name,
        f"all patients whose outcome is known (clearers followed {when})",
        f"Complete clearance and still no visible lesion {when} later. Denominator: "
        f"all patients whose outcome is known (clearers need {when} of follow-up).",
        difference="newcombe",
    )
    return rec, sus


def _follow_up_endpoints(columns: Sequence[str]) -> list[Endpoint]:
    """Follow-up endpoints whose columns ``columns`` hold and the registry does not list."""
    times = sorted(
        {
            (m.group(3) == "mo", int(m.group(2)), m.group(3))
            for c in columns
            if (m := _FOLLOW_UP_NAME.match(c)) and c not in _BY_NAME
        }
    )
    out: list[Endpoint] = []
    for _, n, unit in times:
        out += [
            e
            for e in recurrence_endpoints(n, unit)
            if e.column in columns and e.name not in _BY_NAME
        ]
    return out


def endpoint(name: str) -> Endpoint:
    """The registry entry of endpoint ``name`` (or a follow-up month's, ``recurrence_<N>mo``).

    Raises
    ------
    InputError
        ``name`` is not an endpoint.

    Examples
    --------
    >>> endpoint("time_to_clearance_days").unit
    'days'
    >>> endpoint("sustained_clearance_24mo").label
    'Sustained clearance at 24 months'
    """
    if name in _BY_NAME:
        return _BY_NAME[name]
    m = _FOLLOW_UP_NAME.match(name)
    if m:
        rec, sus = recurrence_endpoints(int(m.group(2)), m.group(3))
        return rec if m.group(1) == "recurrence" else sus
    raise InputError(
        "endpoint",
        name,
        f"one of {', '.join(_BY_NAME)}, or recurrence_<N>mo / recurrence_<N>wk / "
        "sustained_clearance_<N>mo / sustained_clearance_<N>wk",
    )


def report_endpoints() -> tuple[Endpoint, ...]:
    """The endpoints of the HTML report's table, in row order.

    Examples
    --------
    >>> [e.name for e in report_endpoints()][:3]
    ['complete_clearance', 'partial_clearance', 'median_lesion_reduction']
    """
    return _in_row_order(lambda e: e.report_row)


def comparison_endpoints() -> tuple[Endpoint, ...]:
    """The endpoints of the ``imiqsim compare`` table, in row order.

    Examples
    --------
    >>> [e.compare_label for e in comparison_endpoints()][:2]
    ['subclinical lesions cleared', 'initial complete clearance (patients)']
    """
    return _in_row_order(lambda e: e.compare_row)


def _in_row_order(row: Callable[[Endpoint], int | None]) -> tuple[Endpoint, ...]:
    shown = [(r, e) for e in ENDPOINTS if (r := row(e)) is not None]
    return tuple(e for _, e in sorted(shown, key=lambda re: re[0]))


# --------------------------------------------------------------------------- arm tables


def endpoints(df: pd.DataFrame) -> dict[str, dict[str, Any]]:
    """Every registered endpoint of one arm, from its per-patient outcomes.

    Patients whose integration failed (``status != 0``) are left out.

    Parameters
    ----------
    df : pandas.DataFrame
        An arm's outcomes (:attr:`imiqsim.trial.ArmResult.outcomes`, or the
        rows of one arm read back from a streamed run).

    Returns
    -------
    dict
        endpoint name -> ``{"value", "ci95", "n", ...}`` (see :meth:`Endpoint.compute`),
        in :data:`ENDPOINTS` order, then the recurrence endpoints of any further follow-up
        months whose columns ``df`` holds (:func:`recurrence_endpoints`).
    """
    ok = df[df["status"] == 0]
    return {e.name: e.compute(ok) for e in (*ENDPOINTS, *_follow_up_endpoints(list(df.columns)))}


class ArmEndpoints(Protocol):
    """Anything with an arm ``name`` and its ``endpoints`` dict (in-memory or streamed arms)."""

    @property
    def name(self) -> str: ...

    @property
    def endpoints(self) -> Mapping[str, Mapping[str, Any]]: ...


class _HasArms(Protocol):
    @property
    def arms(self) -> Sequence[ArmEndpoints]: ...


def differences(arms: Sequence[ArmEndpoints] | _HasArms) -> list[dict[str, Any]]:
    """Pairwise differences (arm i minus arm j, i < j) in the differenced endpoints.

    Parameters
    ----------
    arms : sequence of arms, or a trial result
        Each arm has ``name`` and ``endpoints``; a :class:`~imiqsim.trial.TrialResult`
        (anything with ``arms``) is accepted too.

    Returns
    -------
    list of dict
        ``{"arms": [name_i, name_j], "endpoints": {name: {"value", "ci95"}}}`` per pair; an
        endpoint is left out of a pair when either arm has an empty denominator.
    """
    seq: Sequence[ArmEndpoints]
    if isinstance(arms, Sequence):
        seq = arms
    else:  # a TrialResult
        seq = arms.arms
    diffed = [e for e in ENDPOINTS if e.difference is not None]
    out = []
    for i, a in enumerate(seq):
        for b in seq[i + 1 :]:
            row: dict[str, Any] = {"arms": [a.name, b.name], "endpoints": {}}
            both = [n for n in a.endpoints if n in b.endpoints and n not in _BY_NAME]
            for e in (*diffed, *(e for e in _follow_up_endpoints(both) if e.difference)):
                ea, eb = a.endpoints[e.name], b.endpoints[e.name]
                if ea["n"] and eb["n"]:
                    d, lo, hi = newcombe_diff_ci(ea["k"], ea["n"], eb["k"], eb["n"])
                    row["endpoints"][e.name] = {"value": d, "ci95": [lo, hi]}
            out.append(row)
    return out
