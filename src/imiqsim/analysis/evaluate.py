"""A virtual trial at a sample point: what sensitivity, scans and the optimiser evaluate.

Common random numbers: virtual patient ``i`` of seed ``s`` draws every random number from its
own stream ``default_rng([s, i])``, so every sample point of one analysis simulates the *same*
virtual patients; differences between points come from the factors, not from sampling noise.

An output is a trial endpoint (``complete_clearance``, ``severe_erythema``, ... with its Wilson
or order-statistic CI) or a numeric per-patient outcome column (``lsr_max``,
``ifn_alpha_peak``, ``serum_cmax_ng_ml``, ...: its mean with a normal-approximation CI).
A trajectory is a trace variable (``lesion_burden``, ``ifn_alpha``, ``lsr_score``, ...)
averaged over the patients at each output time.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from imiqsim.analysis import _backend as be
from imiqsim.analysis.factors import as_scenario, check_factor, scenario_at

__all__ = [
    "AUTO_POOL_PATIENTS",
    "CRN_NOTE",
    "Estimate",
    "FunctionModel",
    "PointResult",
    "VirtualTrial",
    "auto_workers",
]

Z95 = 1.959963984540054

#: the sentence every analysis output carries
CRN_NOTE = (
    "common random numbers: every sample point simulates virtual patients 0..{n} of seed {seed} "
    "(patient i draws from its own stream default_rng([seed, i])), the same patients at every point"
)


@dataclass(frozen=True)
class Estimate:
    """An output at one point: value, 95% CI, events ``k`` (proportions) and patients ``n``."""

    value: float
    low: float
    high: float
    n: int
    k: int | None = None


@dataclass
class PointResult:
    """Outputs and trajectories of one sample point."""

    point: dict[str, float]
    estimates: dict[str, Estimate]
    t_days: np.ndarray | None = None
    trajectories: dict[str, np.ndarray] = field(default_factory=dict)
    description: str = ""
    #: output -> per-patient values (NaN: not counted) whose mean is the output's value; only
    #: when asked for (``per_patient=True``) and only for outputs that are such a mean
    per_patient: dict[str, np.ndarray] = field(default_factory=dict)


def _num(x: Any) -> float:
    return float("nan") if x is None else float(x)


#: ``workers=None``: evaluate points in a process pool only when a batch simulates at least this
#: many patients in all (points x patients); below it the pool's start-up (spawning, importing
#: imiqsim, loading the compiled kernels: 2-4 s) costs more than it saves
AUTO_POOL_PATIENTS = 2000


def auto_workers(n_points: int, patients: int, cores: int | None = None) -> int:
    """Processes for a batch of ``n_points`` points of ``patients`` patients (``workers=None``).

    One process per core (at most one per point) when the batch is large enough to pay for the
    pool's start-up (:data:`AUTO_POOL_PATIENTS`), else 1 (this process, the engine's threads).

    >>> auto_workers(100, 500, cores=2), auto_workers(3, 8, cores=2)
    (2, 1)
    >>> auto_workers(100, 500, cores=1)
    1
    """
    cores = be.local_cores() if cores is None else cores
    if cores < 2 or n_points < 2 or n_points * patients < AUTO_POOL_PATIENTS:
        return 1
    return min(cores, n_points)


def _check_workers(workers: Any) -> int | None:
    if workers is None:
        return None
    ok = isinstance(workers, (int, np.integer)) and not isinstance(workers, bool)
    if not ok or not 1 <= int(workers) <= 256:
        raise be.InputError("workers", workers, "a whole number from 1 to 256, or None (automatic)")
    return int(workers)


def _run_point(
    sc: be.Scenario,
    point: Mapping[str, float],
    outputs: Sequence[str],
    trajectories: Sequence[str],
    patients: int,
    seed: int,
    followup_years: float,
    per_patient: bool = False,
) -> PointResult:
    """The virtual trial of scenario ``sc`` (the scenario at ``point``), summarised."""
    arm = be.run_trial(sc, patients=patients, seed=seed, followup_years=followup_years)
    est = {name: summarise(arm, name) for name in outputs}
    pp = {}
    if per_patient:
        for name in outputs:
            values = patient_values(arm, name, est[name])
            if values is not None:
                pp[name] = values
    traj = {}
    for v in trajectories:
        if v not in arm.traces:
            raise be.InputError("trajectory", v, f"one of {sorted(arm.traces)}")
        ok = (arm.outcomes["status"] == 0).to_numpy()
        traj[v] = np.asarray(arm.traces[v][ok], dtype=float).mean(axis=0)
    return PointResult(
        dict(point),
        est,
        np.asarray(arm.t_days),
        traj,
        description=sc.treatment_text(),
        per_patient=pp,
    )


def patient_values(arm: Any, name: str, estimate: Estimate) -> np.ndarray | None:
    """Per-patient values whose mean is ``estimate`` (NaN: not counted), or None.

    None for an output that is not a mean over patients (a median, a lesion-level proportion),
    and, as a check, wherever the mean of the values is not the estimate.
    """
    col = be.patient_column(name)
    df = arm.outcomes
    if col is None or col not in df.columns or df[col].dtype.kind not in "biuf":
        return None
    v = df[col].to_numpy(dtype=float).copy()
    v[(df["status"] != 0).to_numpy() | ~np.isfinite(v)] = np.nan
    if not np.isfinite(v).any():
        return None
    m = float(np.nanmean(v))
    if not math.isclose(m, estimate.value, rel_tol=1e-9, abs_tol=1e-12):
        return None
    return v


def _point_task(args: tuple) -> tuple[str, Any]:
    """One point in a worker process: its summary only (no per-patient data travels back).

    An InputError (an unknown output, say) comes back as its field, value and allowed text and
    is raised again in the calling process (the exception itself does not pickle).
    """
    try:
        return "ok", _run_point(*args)
    except be.InputError as exc:
        return "input_error", (exc.field, exc.value, exc.allowed)


class VirtualTrial:
    """Evaluate virtual trials of one scenario at sample points (common random numbers).

    Parameters
    ----------
    scenario : str or Scenario
        Preset name, scenario file or scenario.
    patients : int
        Virtual patients per point.
    seed : int
        Trial seed: the same virtual patients at every point.
    followup_years : float
        Follow-up after the assessment visit (0 unless an output needs recurrence).
    workers : int or None
        Processes that evaluate the points of a batch (:meth:`evaluate_many`) side by side, each
        point on one core, from one pool started once for the batch. 1 (default): this process,
        one point after another (the engine's own threads share each point: on a quiet 2-core
        machine they keep 1.9 cores busy, so a pool gains little there). None: one per core
        when the batch is large enough (:func:`auto_workers`). Results do not depend on it.

    Examples
    --------
    >>> vt = VirtualTrial("sbcc-5pct", patients=10, seed=3)
    >>> r = vt.evaluate({"applications_per_week": 3}, ["complete_clearance"])  # doctest: +SKIP
    >>> r.estimates["complete_clearance"].n  # doctest: +SKIP
    10
    """

    def __init__(
        self,
        scenario: str | be.Scenario,
        *,
        patients: int = 100,
        seed: int = 1,
        followup_years: float = 0.0,
        workers: int | None = 1,
    ) -> None:
        if not isinstance(patients, (int, np.integer)) or patients < 2:
            raise be.InputError("patients", patients, "a whole number >= 2")
        if not isinstance(seed, (int, np.integer)) or seed < 0:
            raise be.InputError("seed", seed, "a non-negative whole number")
        self.workers = _check_workers(workers)
        self.scenario = as_scenario(scenario)
        self.patients = int(patients)
        self.seed = int(seed)
        self.followup_years = float(followup_years)
        self._names = tuple(r["name"] for r in be.parameter_rows(self.scenario))

    @property
    def crn_note(self) -> str:
        return CRN_NOTE.format(n=self.patients - 1, seed=self.seed)

    def check_factors(self, names: Sequence[str]) -> list[str]:
        """Canonical factor names (InputError for an unknown one)."""
        return [check_factor(n, self._names) for n in names]

    def scenario_at(self, point: Mapping[str, float]) -> be.Scenario:
        return scenario_at(self.scenario, point)

    def evaluate(
        self,
        point: Mapping[str, float],
        outputs: Sequence[str],
        trajectories: Sequence[str] = (),
        *,
        per_patient: bool = False,
    ) -> PointResult:
        """Run the virtual trial at ``point`` here; summarise ``outputs`` and ``trajectories``.

        ``per_patient``: also keep each output's per-patient values (:func:`patient_values`).
        """
        return _run_point(
            self.scenario_at(point),
            point,
            outputs,
            trajectories,
            self.patients,
            self.seed,
            self.followup_years,
            per_patient,
        )

    def evaluate_many(
        self,
        points: Sequence[Mapping[str, float]],
        outputs: Sequence[str],
        trajectories: Sequence[str] = (),
        *,
        per_patient: bool = False,
        progress: Callable[[int, int], None] | None = None,
    ) -> list[PointResult]:
        """:meth:`evaluate` at every point, in point order, with :attr:`workers` processes.

        Every point is validated before the first simulation. In a pool the points go out
        longest course first (the cost of a point grows with its course), so the last point to
        finish is a short one and no core idles long at the end; each worker returns the
        point's summary only.
        """
        scs = [self.scenario_at(p) for p in points]  # a bad point fails before any simulation
        workers = self.workers or auto_workers(len(scs), self.patients)
        results: list[PointResult | None] = [None] * len(scs)
        order = sorted(range(len(scs)), key=lambda i: -scs[i].horizon_hours())
        items = [
            (
                scs[i],
                dict(points[i]),
                tuple(outputs),
                tuple(trajectories),
                self.patients,
                self.seed,
                self.followup_years,
                per_patient,
            )
            for i in order
        ]
        errors: list[tuple[str, Any, str]] = []

        def keep(j: int, r: tuple[str, Any]) -> None:
            kind, value = r
            if kind == "ok":
                results[order[j]] = value
            elif not errors:
                errors.append(value)

        be.execute(
            _point_task,
            items,
            on_done=keep,
            workers=min(workers, max(1, len(items))),
            progress=progress,
        )
        if errors:
            field_, value, allowed = errors[0]
            raise be.InputError(field_, value, allowed)
        return [r for r in results if r is not None]


def summarise(arm: Any, name: str) -> Estimate:
    """An endpoint (value and CI as the trial reports it) or the mean of an outcome column."""
    if name in arm.endpoints:
        e = arm.endpoints[name]
        lo, hi = e.get("ci95", [None, None])
        return Estimate(_num(e["value"]), _num(lo), _num(hi), int(e.get("n", 0)), e.get("k"))
    df = arm.outcomes
    if name in df.columns and df[name].dtype.kind in "biuf":
        x = df.loc[df["status"] == 0, name].to_numpy(dtype=float)
        x = x[np.isfinite(x)]
        if x.size == 0:
            return Estimate(float("nan"), float("nan"), float("nan"), 0)
        m = float(x.mean())
        se = float(x.std(ddof=1) / math.sqrt(x.size)) if x.size > 1 else 0.0
        return Estimate(m, m - Z95 * se, m + Z95 * se, int(x.size))
    numeric = [c for c in df.columns if df[c].dtype.kind in "biuf" and c not in ("patient",)]
    raise be.InputError(
        "output",
        name,
        f"a trial endpoint ({', '.join(arm.endpoints)}) or an outcome column "
        f"({', '.join(numeric)})",
    )


class FunctionModel:
    """A stand-in for the model: outputs computed by a function of the point.

    Used to check the analysis code on functions with known answers (e.g. the Ishigami
    function); it has the same ``evaluate`` method as :class:`VirtualTrial`.

    Parameters
    ----------
    function : callable
        ``function(point) -> {output: value}``.
    factors : sequence of str
        The names the function accepts.

    Examples
    --------
    >>> fm = FunctionModel(lambda p: {"y": p["a"] + 1.0}, ["a"])
    >>> fm.evaluate({"a": 2.0}, ["y"]).estimates["y"].value
    3.0
    """

    crn_note = "a stand-in function, not the model"

    def __init__(
        self, function: Callable[[Mapping[str, float]], Mapping[str, float]], factors: Sequence[str]
    ) -> None:
        self.function = function
        self.factors = tuple(factors)
        self.patients = 1
        self.seed = 0

    def check_factors(self, names: Sequence[str]) -> list[str]:
        for n in names:
            if n not in self.factors:
                raise be.InputError("factor", n, f"one of {list(self.factors)}")
        return list(names)

    def evaluate(
        self,
        point: Mapping[str, float],
        outputs: Sequence[str],
        trajectories: Sequence[str] = (),
        *,
        per_patient: bool = False,
    ) -> PointResult:
        y = self.function(point)
        est = {}
        for o in outputs:
            if o not in y:
                raise be.InputError("output", o, f"one of {sorted(y)}")
            v = float(y[o])
            est[o] = Estimate(v, v, v, 1)
        if trajectories:
            raise be.InputError("trajectory", list(trajectories), "none for a stand-in function")
        return PointResult(dict(point), est)

    def evaluate_many(
        self,
        points: Sequence[Mapping[str, float]],
        outputs: Sequence[str],
        trajectories: Sequence[str] = (),
        *,
        per_patient: bool = False,
        progress: Callable[[int, int], None] | None = None,
    ) -> list[PointResult]:
        """:meth:`evaluate` at every point, here, in order (a function need not pickle).

        A function has no patients: ``per_patient`` keeps nothing.
        """
        out = []
        for i, p in enumerate(points, start=1):
            out.append(self.evaluate(p, outputs, trajectories))
            if progress:
                progress(i, len(points))
        return out
