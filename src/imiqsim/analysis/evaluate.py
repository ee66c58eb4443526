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

__all__ = ["CRN_NOTE", "Estimate", "FunctionModel", "PointResult", "VirtualTrial"]

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


def _num(x: Any) -> float:
    return float("nan") if x is None else float(x)


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
    workers : int
        Processes per trial (1: the engine's own threads use the cores; more pays a pool start-up
        at every point).

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
        workers: int = 1,
    ) -> None:
        if not isinstance(patients, (int, np.integer)) or patients < 2:
            raise be.InputError("patients", patients, "a whole number >= 2")
        if not isinstance(seed, (int, np.integer)) or seed < 0:
            raise be.InputError("seed", seed, "a non-negative whole number")
        self.scenario = as_scenario(scenario)
        self.patients = int(patients)
        self.seed = int(seed)
        self.followup_years = float(followup_years)
        self.workers = int(workers)
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
    ) -> PointResult:
        """Run the virtual trial at ``point`` and summarise ``outputs`` and ``trajectories``."""
        sc = self.scenario_at(point)
        arm = be.run_trial(
            sc,
            patients=self.patients,
            seed=self.seed,
            followup_years=self.followup_years,
            workers=self.workers,
        )
        est = {name: summarise(arm, name) for name in outputs}
        traj = {}
        for v in trajectories:
            if v not in arm.traces:
                raise be.InputError("trajectory", v, f"one of {sorted(arm.traces)}")
            ok = (arm.outcomes["status"] == 0).to_numpy()
            traj[v] = np.asarray(arm.traces[v][ok], dtype=float).mean(axis=0)
        return PointResult(
            dict(point), est, np.asarray(arm.t_days), traj, description=sc.treatment_text()
        )


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
