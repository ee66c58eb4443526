"""Virtual trials: arms of virtual patients, per-patient outcomes, endpoints with CIs.

Each arm simulates patients ``0..N-1`` of the trial seed (the same virtual
patients in every arm of a given indication: a virtual-twin design), in
chunks that may run in separate processes; per-patient numbers do not depend
on the chunk size or worker count.

Endpoints (per arm, 95% CI):

- ``complete_clearance``: no visible lesion at the assessment visit (for
  until-clear regimens: cleared by the end of treatment).
- ``partial_clearance``: >= 75% fewer visible lesions than at baseline.
- ``median_lesion_reduction``: median % reduction in visible lesion count.
- ``histological_clearance``: no lesion above the histological detection limit.
- ``composite_clearance``: complete (clinical) and histological clearance.
- ``time_to_clearance_days``: median among patients who cleared.
- ``recurrence_12wk`` / ``recurrence_12mo`` / ``recurrence_5y``: a visible
  lesion again, among complete clearers, at that time after clearance.
- ``sustained_clearance_12mo``: complete clearance and no recurrence by 12 months.
- ``severe_erythema``: erythema score >= 2.5 (grade 3 of 0-3) at any time.
- ``rest_needed``: at least one application skipped for a skin-reaction rest.
- ``flu_like`` and ``headache``: drawn per patient from the simulated
  probability (seeded by the patient's own stream).
- ``lesion_complete_response``: fraction of baseline visible lesions not
  visible at assessment (pooled over patients); ``subclinical_cleared``:
  fraction of baseline subclinical lesions below the histological limit.
- ``fraction_killed_by_immune``: mean share of killed lesion cells killed by
  immune mechanisms rather than directly by freezing.
- ``hypopigmentation``, ``scarring`` (at the end of follow-up), ``blistering``
  (score >= 1.5), ``moderate_pain`` (pain score >= 1.5).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from imiqsim import __version__
from imiqsim.engine.run import run_batch
from imiqsim.errors import InputError
from imiqsim.model import get_model
from imiqsim.model.lesions import N_SLOTS
from imiqsim.population import sample_population
from imiqsim.scenario import Scenario, resolve
from imiqsim.stats import median_ci, newcombe_diff_ci, proportion, wilson_ci

HOURS_PER_WEEK = 168.0
HOURS_PER_YEAR = 8766.0
MAX_PATIENTS = 100_000  # per arm without --force
#: probability of headache in anyone over a 16-week course, whatever the arm
#: (Aldara label 6.1: 3% with vehicle); a share of drug-induced flu-like episodes adds headache.
HEADACHE_BACKGROUND = 0.03
HEADACHE_SHARE_OF_FLU_LIKE = 0.5  # assumed: headache is the commonest flu-like complaint

#: summary variables kept over time for every patient (percentile bands in reports)
TRACE_VARIABLES = (
    "lesion_burden",
    "visible_lesions",
    "lsr_score",
    "erythema_score",
    "ifn_alpha",
    "tnf_alpha",
    "il12",
    "macrophage",
    "pdc",
    "nk_cells",
    "cd8_ctl",
    "cd4_th1",
    "dendritic_cells",
    "memory_t",
    "serum_conc_ng_ml",
    "flu_like_probability",
)

ENDPOINTS = (
    "complete_clearance",
    "partial_clearance",
    "median_lesion_reduction",
    "histological_clearance",
    "composite_clearance",
    "lesion_complete_response",
    "subclinical_cleared",
    "fraction_killed_by_immune",
    "hypopigmentation",
    "scarring",
    "blistering",
    "moderate_pain",
    "time_to_clearance_days",
    "recurrence_12wk",
    "recurrence_12mo",
    "recurrence_5y",
    "sustained_clearance_12mo",
    "severe_erythema",
    "rest_needed",
    "flu_like",
    "headache",
)


@dataclass
class ArmResult:
    name: str
    scenario: Scenario
    outcomes: pd.DataFrame
    t_days: np.ndarray
    traces: dict[str, np.ndarray]  # variable -> (N, T)
    endpoints: dict = field(default_factory=dict)


@dataclass
class TrialResult:
    arms: list[ArmResult]
    seed: int
    n_patients: int
    followup_years: float

    def to_dict(self) -> dict:
        out = {
            "arms": [],
            "seed": self.seed,
            "version": __version__,
            "n_patients_per_arm": self.n_patients,
            "followup_years": self.followup_years,
            "disclaimer": "research and teaching software, not a medical device",
        }
        for a in self.arms:
            out["arms"].append(
                {
                    "name": a.name,
                    "n": int(len(a.outcomes)),
                    "scenario": a.scenario.name,
                    "indication": a.scenario.indication,
                    "endpoints": a.endpoints,
                    "failed_patients": int((a.outcomes["status"] != 0).sum()),
                }
            )
        out["differences"] = differences(self)
        return out


def _output_grid(sc: Scenario, followup_years: float) -> tuple[np.ndarray, float]:
    t_assess = sc.assessment_time_h()
    end = max(sc.horizon_hours(), t_assess) + followup_years * HOURS_PER_YEAR
    dense_end = min(end, t_assess + 13 * HOURS_PER_WEEK)
    t = np.arange(0.0, dense_end + 1e-9, 24.0)
    if end > dense_end:
        t = np.concatenate([t, np.arange(t[-1] + HOURS_PER_WEEK, end + 1e-9, HOURS_PER_WEEK)])
    if t[-1] < end - 1e-9:
        t = np.append(t, end)
    return t, t_assess


def _visible_at(t: np.ndarray, vis: np.ndarray, when: np.ndarray) -> np.ndarray:
    """Visible-lesion flag at per-patient times (first grid point at or after); NaN past the horizon."""
    out = np.full(when.shape, np.nan)
    for i, w in enumerate(when):
        if not np.isfinite(w):
            continue
        k = np.searchsorted(t, w - 1e-9)
        if k < t.size:
            out[i] = float(vis[i, k] >= 0.5)
    return out


def simulate_chunk(
    sc: Scenario,
    seed: int,
    start: int,
    n: int,
    followup_years: float,
    overrides: dict | None = None,
    immunosuppressed_fraction: float = 0.0,
) -> dict:
    """Simulate patients ``start..start+n-1`` of one arm. Returns plain arrays (picklable)."""
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
    )
    t, t_assess = _output_grid(sc, followup_years)
    res = run_batch(model, pop.P, sc.events(), t)
    oi = model.observable_index
    O = res.observables
    vis = O[:, :, oi("visible_lesions")]
    hist = O[:, :, oi("histological_lesions")]
    k_a = int(np.searchsorted(t, t_assess - 1e-9))
    k_a = min(k_a, t.size - 1)
    vis0 = vis[:, 0]
    until_clear = sc.regimen is not None and sc.regimen.until_clear
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
    rec = {}
    for key, dt in (
        ("recurrence_12wk", 12 * HOURS_PER_WEEK),
        ("recurrence_12mo", HOURS_PER_YEAR),
        ("recurrence_5y", 5 * HOURS_PER_YEAR),
    ):
        rec[key] = _visible_at(t, vis, ref + dt)
    # per-patient Bernoulli draws from the simulated probabilities, on the patient's own stream
    pk = {name: j for j, name in enumerate(res.tracked)}
    flu_p = res.peak[:, pk["flu_like_probability"]]
    u = np.array(
        [np.random.default_rng([int(seed), int(i), 7]).random(2) for i in pop.patient_index]
    )
    flu = u[:, 0] < flu_p
    headache = u[:, 1] < 1 - (1 - HEADACHE_BACKGROUND) * (1 - HEADACHE_SHARE_OF_FLU_LIKE * flu_p)
    ttc = np.where((cleared_at >= 0) & (vis0 > 0), cleared_at / 24.0, np.nan)
    y_final = res.Y[:, k_a]
    # lesion-level outcomes (slots): baseline visible / subclinical lesions and their state at assessment
    thr = pop.P[:, model.parameter_index("visible_threshold_cells")][:, None]
    hthr = pop.P[:, model.parameter_index("histology_threshold_cells")][:, None]
    slots = [model.state_index(f"lesion_{k}") for k in range(1, N_SLOTS + 1)]
    L0 = res.Y[:, 0][:, slots]
    La = res.Y[:, k_a][:, slots]
    base_vis = L0 >= thr
    base_sub = (L0 > 0) & (L0 < thr)
    killed = {
        m: y_final[:, model.state_index(f"killed_{m}")]
        for m in ("baseline", "nk", "ctl", "macrophage", "memory", "cryo")
    }
    killed_total = sum(killed.values())
    df = pd.DataFrame(
        {
            "patient": pop.patient_index,
            "status": res.status,
            "baseline_visible_lesions": vis0,
            "visible_lesions_at_assessment": vis_a,
            "complete_clearance": complete,
            "partial_clearance": np.where(vis0 > 0, vis_a <= 0.25 * vis0, np.nan),
            "lesion_reduction": reduction,
            "histological_clearance": hist[:, k_a] < 0.5,
            "composite_clearance": complete & (hist[:, k_a] < 0.5),
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
            "lesion_burden_initial": O[:, 0, oi("lesion_burden")],
            "lesion_burden_final": O[:, k_a, oi("lesion_burden")],
            "memory_t_final": res.Y[:, -1, model.state_index("memory_t")],
            "killed_immune": killed["nk"] + killed["ctl"] + killed["macrophage"] + killed["memory"],
            "killed_baseline": killed["baseline"],
            "killed_direct": killed["cryo"],
            "fraction_killed_immune": np.where(
                killed_total > 0,
                (killed_total - killed["cryo"]) / np.maximum(killed_total, 1e-300),
                np.nan,
            ),
            "baseline_visible_lesion_count": base_vis.sum(axis=1),
            "visible_lesions_cleared": (base_vis & (La < thr)).sum(axis=1),
            "baseline_subclinical_lesion_count": base_sub.sum(axis=1),
            "subclinical_lesions_cleared": (base_sub & (La < hthr)).sum(axis=1),
            "hypopigmentation": O[:, -1, oi("hypopigmented")] > 0.5,
            "scarring": O[:, -1, oi("scarred")] > 0.5,
            "blistering": res.peak[:, pk["blister_score"]] >= 1.5,
            "pain_max": res.peak[:, pk["pain_score"]],
            "moderate_pain": res.peak[:, pk["pain_score"]] >= 1.5,
        }
    )
    r12 = df["recurrence_12mo"].to_numpy(dtype=float)
    df["sustained_clearance_12mo"] = np.where(
        complete, np.where(np.isfinite(r12), (r12 == 0.0).astype(float), np.nan), 0.0
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
            traces[v] = O[:, :, oi(v)].astype(np.float32)
    return {"outcomes": df, "t_days": t / 24.0, "traces": traces}


def _run_chunk(args):
    return simulate_chunk(*args)


def endpoints(df: pd.DataFrame) -> dict:
    ok = df[df["status"] == 0]
    ep = {}
    for name in (
        "complete_clearance",
        "partial_clearance",
        "histological_clearance",
        "composite_clearance",
        "hypopigmentation",
        "scarring",
        "blistering",
        "moderate_pain",
        "recurrence_12wk",
        "recurrence_12mo",
        "recurrence_5y",
        "sustained_clearance_12mo",
        "severe_erythema",
        "rest_needed",
        "flu_like",
        "headache",
    ):
        ep[name] = proportion(ok[name].to_numpy(dtype=float))
    # lesion-level endpoints pooled over patients (Wilson CI; clustering within patients ignored)
    for name, num, den in (
        ("lesion_complete_response", "visible_lesions_cleared", "baseline_visible_lesion_count"),
        ("subclinical_cleared", "subclinical_lesions_cleared", "baseline_subclinical_lesion_count"),
    ):
        k = int(np.nansum(ok[num].to_numpy(dtype=float)))
        n = int(np.nansum(ok[den].to_numpy(dtype=float)))
        if n:
            lo, hi = wilson_ci(k, n)
            ep[name] = {"value": k / n, "ci95": [lo, hi], "k": k, "n": n, "unit": "lesions"}
        else:
            ep[name] = {"value": None, "ci95": [None, None], "k": 0, "n": 0, "unit": "lesions"}
    fk = ok["fraction_killed_immune"].to_numpy(dtype=float)
    fk = fk[np.isfinite(fk)]
    if fk.size:
        m_, se = float(fk.mean()), float(fk.std(ddof=1) / np.sqrt(fk.size)) if fk.size > 1 else 0.0
        ep["fraction_killed_by_immune"] = {
            "value": m_,
            "ci95": [m_ - 1.96 * se, m_ + 1.96 * se],
            "n": int(fk.size),
        }
    else:
        ep["fraction_killed_by_immune"] = {"value": None, "ci95": [None, None], "n": 0}
    med, lo, hi = median_ci(ok["lesion_reduction"].to_numpy(dtype=float))
    ep["median_lesion_reduction"] = {
        "value": med,
        "ci95": [lo, hi],
        "n": int(ok["lesion_reduction"].notna().sum()),
    }
    m, lo, hi = median_ci(ok["time_to_clearance_days"].to_numpy(dtype=float))
    ep["time_to_clearance_days"] = {
        "value": None if np.isnan(m) else m,
        "ci95": [None if np.isnan(lo) else lo, None if np.isnan(hi) else hi],
        "n": int(ok["time_to_clearance_days"].notna().sum()),
    }
    return ep


def differences(tr: TrialResult) -> list[dict]:
    """Pairwise differences (arm i minus arm j) in the proportion endpoints, with Newcombe CIs."""
    out = []
    for i, a in enumerate(tr.arms):
        for b in tr.arms[i + 1 :]:
            row = {"arms": [a.name, b.name], "endpoints": {}}
            for name in (
                "complete_clearance",
                "partial_clearance",
                "histological_clearance",
                "severe_erythema",
                "flu_like",
                "recurrence_12mo",
                "sustained_clearance_12mo",
                "hypopigmentation",
                "scarring",
                "blistering",
            ):
                ea, eb = a.endpoints[name], b.endpoints[name]
                if ea["n"] and eb["n"]:
                    d, lo, hi = newcombe_diff_ci(ea["k"], ea["n"], eb["k"], eb["n"])
                    row["endpoints"][name] = {"value": d, "ci95": [lo, hi]}
            out.append(row)
    return out


def run_trial(
    arms: Sequence[str | Scenario],
    *,
    patients: int = 1000,
    seed: int = 1,
    workers: int = 1,
    chunk_size: int = 250,
    followup_years: float = 1.0,
    overrides: dict | None = None,
    immunosuppressed_fraction: float = 0.0,
    force: bool = False,
    progress: Callable[[int, int], None] | None = None,
) -> TrialResult:
    """Run a virtual trial. See the module docstring for the endpoints."""
    if not arms:
        raise InputError("arms", list(arms), "at least one preset or scenario file")
    if not isinstance(patients, (int, np.integer)) or patients <= 0:
        raise InputError("patients", patients, "a positive whole number")
    if patients > MAX_PATIENTS and not force:
        raise InputError("patients", patients, f"at most {MAX_PATIENTS} per arm without --force")
    if not isinstance(workers, (int, np.integer)) or workers < 1 or workers > 64:
        raise InputError("workers", workers, "a whole number from 1 to 64")
    if not isinstance(chunk_size, (int, np.integer)) or chunk_size < 1:
        raise InputError("chunk_size", chunk_size, "a positive whole number")
    if not (0 <= followup_years <= 10) or not np.isfinite(followup_years):
        raise InputError("followup_years", followup_years, "a number of years from 0 to 10")
    scs = [a if isinstance(a, Scenario) else resolve(a) for a in arms]
    names = []
    for s in scs:
        nm, k = s.name, 2
        while nm in names:
            nm, k = f"{s.name}#{k}", k + 1
        names.append(nm)
    jobs = []
    for ai, sc in enumerate(scs):
        for start in range(0, patients, chunk_size):
            jobs.append(
                (
                    ai,
                    (
                        sc,
                        seed,
                        start,
                        min(chunk_size, patients - start),
                        followup_years,
                        overrides,
                        immunosuppressed_fraction,
                    ),
                )
            )
    results: list[dict | None] = [None] * len(jobs)
    done = 0
    if workers == 1:
        for j, (_, args) in enumerate(jobs):
            results[j] = _run_chunk(args)
            done += 1
            if progress:
                progress(done, len(jobs))
    else:
        # spawn, not fork: forking a process whose Numba kernels already started OpenMP threads is unsafe
        import multiprocessing as _mp

        old = os.environ.get("NUMBA_NUM_THREADS")
        os.environ["NUMBA_NUM_THREADS"] = "1"  # children inherit it: W processes use W cores
        try:
            ex = ProcessPoolExecutor(max_workers=workers, mp_context=_mp.get_context("spawn"))
        finally:
            if old is None:
                os.environ.pop("NUMBA_NUM_THREADS", None)
            else:
                os.environ["NUMBA_NUM_THREADS"] = old
        with ex:
            futs = {ex.submit(_run_chunk, args): j for j, (_, args) in enumerate(jobs)}
            from concurrent.futures import as_completed

            for f in as_completed(futs):
                results[futs[f]] = f.result()
                done += 1
                if progress:
                    progress(done, len(jobs))
    arm_results = []
    for ai, sc in enumerate(scs):
        parts = [r for (a, _), r in zip(jobs, results) if a == ai]
        df = pd.concat([p["outcomes"] for p in parts], ignore_index=True)
        df.insert(0, "arm", names[ai])
        traces = {v: np.concatenate([p["traces"][v] for p in parts]) for v in TRACE_VARIABLES}
        ar = ArmResult(names[ai], sc, df, parts[0]["t_days"], traces)
        ar.endpoints = endpoints(df)
        arm_results.append(ar)
    return TrialResult(arm_results, seed, patients, followup_years)
