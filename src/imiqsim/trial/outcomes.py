"""Per-patient outcome columns of one arm, from a batch of simulated patients.

:func:`simulate_chunk` simulates patients ``start..start+n-1`` of an arm and
returns one row per patient: status, clearance flags, recurrence after
clearance, peak skin reactions, drawn adverse events, kill tallies, lesion
counts and the patient's covariates. These columns are what the endpoint
registry (:mod:`imiqsim.trial.endpoints`) reads. Per-patient numbers depend
only on (seed, patient index), never on the chunk.

Kill tallies are summed by kind (``background``, ``immune``, ``direct``) over
:attr:`imiqsim.model.Model.kill_tallies`, in the model's declaration order, so a
new treatment stage that declares a ``direct`` tally counts in
``killed_direct`` with no change here.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from imiqsim.engine.run import run_batch
from imiqsim.model import CYTOKINES, SKIN_CELLS, Model, get_model
from imiqsim.model.lesions import N_SLOTS
from imiqsim.population import sample_population
from imiqsim.scenario import Scenario
from imiqsim.vocabulary import HOURS_PER_DAY, HOURS_PER_WEEK, HOURS_PER_YEAR

__all__ = [
    "HEADACHE_BACKGROUND",
    "HEADACHE_SHARE_OF_FLU_LIKE",
    "KILL_KINDS",
    "RECURRENCE_AFTER_H",
    "TRACE_VARIABLES",
    "kill_tally_sums",
    "output_grid",
    "simulate_chunk",
]

#: probability of headache in anyone over a 16-week course, whatever the arm
#: (Aldara label 6.1: 3% with vehicle); a share of drug-induced flu-like episodes adds headache.
HEADACHE_BACKGROUND = 0.03
HEADACHE_SHARE_OF_FLU_LIKE = 0.5  # assumed: headache is the commonest flu-like complaint

#: summary variables kept over time for every patient (percentile bands in reports): lesions and
#: skin reactions, every cytokine and skin immune cell of the model, memory T cells, exposure
TRACE_VARIABLES: tuple[str, ...] = (
    "lesion_burden",
    "visible_lesions",
    "lsr_score",
    "erythema_score",
    *CYTOKINES,
    *SKIN_CELLS,
    "memory_t",
    "serum_conc_ng_ml",
    "flu_like_probability",
)

#: kinds of kill tally a model stage may declare (``Model.kill_tallies``)
KILL_KINDS: tuple[str, ...] = ("background", "immune", "direct")

#: daily output times up to this long after the assessment visit, weekly after it
_DENSE_AFTER_ASSESSMENT_H = 13 * HOURS_PER_WEEK
#: recurrence outcome columns of every arm: time after clearance at which a visible lesion is
#: looked for (NaN unless the run follows patients that long; a scenario's
#: ``[assessment].recurrence_after_months`` adds its own and extends the follow-up to them)
RECURRENCE_AFTER_H = {
    "recurrence_12wk": 12 * HOURS_PER_WEEK,
    "recurrence_12mo": HOURS_PER_YEAR,
    "recurrence_16mo": 16 * HOURS_PER_YEAR / 12,
    "recurrence_5y": 5 * HOURS_PER_YEAR,
}
#: the recurrence columns that also get a ``sustained_clearance_*`` column in every arm
_SUSTAINED_FOR = ("recurrence_12mo", "recurrence_16mo")


def output_grid(sc: Scenario, followup_years: float) -> tuple[np.ndarray, float]:
    """Output times (hours) of an arm and its assessment time.

    Daily until 13 weeks after the assessment visit, weekly after that, to the
    end of treatment or assessment plus ``followup_years``, and at least to the
    longest recurrence visit of the scenario's ``[assessment]`` table.

    Examples
    --------
    >>> from imiqsim.scenario import load_preset
    >>> t, t_assess = output_grid(load_preset("sbcc-5pct"), 0.0)
    >>> float(t[0]), float(t[1]), bool(t[-1] >= t_assess)
    (0.0, 24.0, True)
    """
    t_assess = sc.assessment_time_h()
    end = max(sc.horizon_hours(), t_assess) + followup_years * HOURS_PER_YEAR
    end = max(end, t_assess + sc.assessment.max_recurrence_h())
    dense_end = min(end, t_assess + _DENSE_AFTER_ASSESSMENT_H)
    t = np.arange(0.0, dense_end + 1e-9, HOURS_PER_DAY)
    if end > dense_end:
        t = np.concatenate([t, np.arange(t[-1] + HOURS_PER_WEEK, end + 1e-9, HOURS_PER_WEEK)])
    if t[-1] < end - 1e-9:
        t = np.append(t, end)
    return t, t_assess


def _visible_at(t: np.ndarray, vis: np.ndarray, when: np.ndarray) -> np.ndarray:
    """Visible-lesion flag at per-patient times (first grid point at or after).

    NaN where the time is past the horizon or not finite.
    """
    out = np.full(when.shape, np.nan)
    for i, w in enumerate(when):
        if not np.isfinite(w):
            continue
        k = np.searchsorted(t, w - 1e-9)
        if k < t.size:
            out[i] = float(vis[i, k] >= 0.5)
    return out


def kill_tally_sums(model: Model, y: np.ndarray) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """Killed lesion cells per patient, summed by kind, and the total over every tally.

    Parameters
    ----------
    model : Model
    y : ndarray, shape (n_patients, n_states)
        States at one time.

    Returns
    -------
    by_kind : dict
        kind (:data:`KILL_KINDS`) -> cells killed by the tallies of that kind (zeros if none).
    total : ndarray
        Sum over every tally.

    Sums run in the model's declaration order (the same additions, in the same
    order, as naming the tallies by hand).
    """
    cols = {s: y[:, model.state_index(s)] for s in model.kill_tallies}
    unknown = {k for _, k in model.kill_tallies.values()} - set(KILL_KINDS)
    if unknown:
        raise ValueError(f"kill tallies of unknown kind {sorted(unknown)}; known: {KILL_KINDS}")
    zero = np.zeros(y.shape[0])
    by_kind = {}
    for kind in KILL_KINDS:
        parts = [cols[s] for s, (_, k) in model.kill_tallies.items() if k == kind]
        by_kind[kind] = _ordered_sum(parts) if parts else zero
    total = _ordered_sum(list(cols.values())) if cols else zero
    return by_kind, total


def _ordered_sum(parts: list[np.ndarray]) -> np.ndarray:
    acc = parts[0]
    for p in parts[1:]:
        acc = acc + p
    return acc


def simulate_chunk(
    sc: Scenario,
    seed: int,
    start: int,
    n: int,
    followup_years: float,
    overrides: dict | None = None,
    immunosuppressed_fraction: float | None = None,
) -> dict[str, Any]:
    """Simulate patients ``start..start+n-1`` of one arm.

    Parameters
    ----------
    sc : Scenario
        The arm; its ``[population]`` says who is enrolled and its ``[assessment]`` how
        clearance is judged and when recurrence is looked for.
    seed, start, n : int
        Trial seed, first patient and number of patients.
    followup_years : float
        Follow-up after the end of treatment or the assessment visit (extended to the
        scenario's longest recurrence visit).
    overrides : dict, optional
        Parameter values replacing the model's for every patient.
    immunosuppressed_fraction : float, optional
        Overrides the scenario's ``[population].immunosuppressed_fraction`` (None: the
        scenario's value).

    Lesion-level columns count lesions, not slots: a slot that stands for
    ``lesion_count_k`` lesions counts that many.

    Returns
    -------
    dict
        ``{"outcomes": DataFrame (one row per patient), "t_days": (T,), "traces": {variable:
        (n, T) float32}}``: plain, picklable values. A patient whose integration failed keeps
        its row and status; its outcomes are NaN.
    """
    model = get_model()
    base = sc.model_parameters(model, overrides)
    pop = sample_population(
        base,
        sc.indication,
        n,
        seed,
        start=start,
        model=model,
        immunosuppressed_fraction=immunosuppressed_fraction,
        site=sc.site,
        enrolment=sc.enrolment(),
    )
    t, t_assess = output_grid(sc, followup_years)
    res = run_batch(model, pop.P, sc.events(), t)
    oi = model.observable_index
    obs = res.observables
    vis = obs[:, :, oi("visible_lesions")]
    hist = obs[:, :, oi("histological_lesions")]
    k_a = int(np.searchsorted(t, t_assess - 1e-9))
    k_a = min(k_a, t.size - 1)
    vis0 = vis[:, 0]
    until_clear = sc.treatment.stops_when_clear
    cleared_at = res.cleared_at_h
    if until_clear:
        # assessed at the end of treatment: cleared at any time by then
        complete = (cleared_at >= 0) & (cleared_at <= t_assess + 1e-9) & (vis0 > 0)
        ref = np.where(complete, cleared_at, np.nan)
        vis_a = np.where(complete, 0.0, vis[:, k_a])
    else:
        complete = (vis[:, k_a] < 0.5) & (vis0 > 0)
        ref = np.where(complete, t_assess, np.nan)
        vis_a = vis[:, k_a]
    with np.errstate(invalid="ignore", divide="ignore"):
        reduction = np.where(vis0 > 0, (vis0 - vis_a) / vis0, np.nan)
    rec_after = {**RECURRENCE_AFTER_H, **sc.assessment.recurrence_columns}
    rec = {key: _visible_at(t, vis, ref + dt) for key, dt in rec_after.items()}
    # per-patient Bernoulli draws from the simulated probabilities, on the patient's own stream
    pk = {name: j for j, name in enumerate(res.tracked)}
    flu_p = res.peak[:, pk["flu_like_probability"]]
    u = np.array(
        [np.random.default_rng([int(seed), int(i), 7]).random(2) for i in pop.patient_index]
    )
    flu = u[:, 0] < flu_p
    headache = u[:, 1] < 1 - (1 - HEADACHE_BACKGROUND) * (1 - HEADACHE_SHARE_OF_FLU_LIKE * flu_p)
    ttc = np.where((cleared_at >= 0) & (vis0 > 0), cleared_at / HOURS_PER_DAY, np.nan)
    # lesion-level outcomes (slots): baseline visible / subclinical lesions, state at assessment
    thr = pop.P[:, model.parameter_index("visible_threshold_cells")][:, None]
    hthr = pop.P[:, model.parameter_index("histology_threshold_cells")][:, None]
    slots = [model.state_index(f"lesion_{k}") for k in range(1, N_SLOTS + 1)]
    counts = pop.P[:, [model.parameter_index(f"lesion_count_{k}") for k in range(1, N_SLOTS + 1)]]
    L0 = res.Y[:, 0][:, slots]
    La = res.Y[:, k_a][:, slots]
    base_vis = L0 >= thr
    base_sub = (L0 > 0) & (L0 < thr)

    def lesions(flags: np.ndarray) -> np.ndarray:  # slots -> lesions they stand for
        return np.rint((counts * flags).sum(axis=1)).astype(np.int64)

    histo_clear = hist[:, k_a] < 0.5
    method = sc.assessment.method
    assessed = {
        "clinical": complete,
        "histological": histo_clear,
        "composite": complete & histo_clear,
    }[method]
    lesion_gone = La < (thr if method == "clinical" else hthr)
    killed, killed_total = kill_tally_sums(model, res.Y[:, k_a])
    df = pd.DataFrame(
        {
            "patient": pop.patient_index,
            "status": res.status,
            "baseline_visible_lesions": vis0,
            "visible_lesions_at_assessment": vis_a,
            "complete_clearance": complete,
            "partial_clearance": np.where(vis0 > 0, vis_a <= 0.25 * vis0, np.nan),
            "lesion_reduction": reduction,
            "histological_clearance": histo_clear,
            "composite_clearance": complete & histo_clear,
            "assessed_clearance": assessed,
            "time_to_clearance_days": ttc,
            **{k: np.where(complete, v, np.nan) for k, v in rec.items()},
            "severe_erythema": res.peak[:, pk["erythema_score"]] >= 2.5,
            "rest_needed": res.doses_skipped_for_rest > 0,
            "applications_given": res.applications_given,
            "flu_like_probability": flu_p,
            "flu_like": flu,
            "headache": headache,
            "lsr_max": res.peak[:, pk["lsr_score"]],
            "erythema_max": res.peak[:, pk["erythema_score"]],
            "serum_cmax_ng_ml": res.peak[:, pk["serum_conc_ng_ml"]],
            "ifn_alpha_peak": res.peak[:, pk["ifn_alpha"]],
            "lesion_burden_initial": obs[:, 0, oi("lesion_burden")],
            "lesion_burden_final": obs[:, k_a, oi("lesion_burden")],
            "memory_t_final": res.Y[:, -1, model.state_index("memory_t")],
            "killed_immune": killed["immune"],
            "killed_baseline": killed["background"],
            "killed_direct": killed["direct"],
            "fraction_killed_immune": np.where(
                killed_total > 0,
                (killed_total - killed["direct"]) / np.maximum(killed_total, 1e-300),
                np.nan,
            ),
            "baseline_visible_lesion_count": lesions(base_vis),
            "visible_lesions_cleared": lesions(base_vis & (La < thr)),
            "assessed_lesions_cleared": lesions(base_vis & lesion_gone),
            "baseline_subclinical_lesion_count": lesions(base_sub),
            "subclinical_lesions_cleared": lesions(base_sub & (La < hthr)),
            "hypopigmentation": obs[:, -1, oi("hypopigmented")] > 0.5,
            "scarring": obs[:, -1, oi("scarred")] > 0.5,
            "blistering": res.peak[:, pk["blister_score"]] >= 1.5,
            "pain_max": res.peak[:, pk["pain_score"]],
            "moderate_pain": res.peak[:, pk["pain_score"]] >= 1.5,
        }
    )
    # sustained clearance: cleared and no visible lesion at the follow-up visit; unknown for
    # everyone when the run does not follow the arm that long (a share of the non-clearers alone
    # would read as 0% sustained)
    sustained = list(dict.fromkeys([*_SUSTAINED_FOR, *sc.assessment.recurrence_columns]))
    for key in sustained:
        r = df[key].to_numpy(dtype=float)
        followed = t[-1] >= t_assess + rec_after[key] - 1e-6
        df[key.replace("recurrence_", "sustained_clearance_")] = (
            np.where(complete, np.where(np.isfinite(r), (r == 0.0).astype(float), np.nan), 0.0)
            if followed
            else np.full(len(df), np.nan)
        )
    failed = res.status != 0
    if failed.any():  # a failed patient keeps its row and status; its outcomes are unknown
        for c in df.columns:
            if c not in ("patient", "status"):
                df[c] = df[c].astype(float)
                df.loc[failed, c] = np.nan
    cov = pop.covariates.drop(columns=["patient"])
    df = pd.concat([df.reset_index(drop=True), cov.reset_index(drop=True)], axis=1)
    traces = {}
    for v in TRACE_VARIABLES:
        if v in model.state_names:
            traces[v] = res.Y[:, :, model.state_index(v)].astype(np.float32)
        else:
            traces[v] = obs[:, :, oi(v)].astype(np.float32)
    return {"outcomes": df, "t_days": t / HOURS_PER_DAY, "traces": traces}
