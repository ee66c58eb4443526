"""In-memory virtual trials: :func:`run_trial`, its :class:`TrialResult` and :class:`ArmResult`.

Each arm simulates patients ``0..N-1`` of the trial seed (the same virtual
patients in every arm of a given indication: a virtual-twin design), in
chunks run by :func:`imiqsim.trial.executors.execute` (here, in spawned
processes or on dask); per-patient numbers do not depend on the chunk size,
the worker count or the executor. The endpoints, with 95% CIs, are those of
the registry :data:`imiqsim.trial.endpoints.ENDPOINTS` (each entry says what
it means and who counts).

Examples
--------
>>> from imiqsim.trial import run_trial
>>> tr = run_trial(["ak-5pct", "ak-5pct-vehicle"], patients=200, seed=1)  # doctest: +SKIP
>>> tr.arms[0].endpoints["complete_clearance"]["value"]  # doctest: +SKIP
0.45...
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from imiqsim import __version__
from imiqsim.scenario import Scenario, resolve
from imiqsim.trial import outcomes as _outcomes
from imiqsim.trial.endpoints import differences, endpoints
from imiqsim.trial.executors import chunk_starts, execute, validate_run
from imiqsim.trial.outcomes import TRACE_VARIABLES
from imiqsim.vocabulary import DISCLAIMER_SHORT

__all__ = [
    "MAX_PATIENTS",
    "ArmResult",
    "ArmSummary",
    "TrialResult",
    "TrialPlan",
    "arm_names",
    "plan_trial",
    "run_trial",
    "trial_summary",
]

MAX_PATIENTS = 100_000  # per arm without --force (larger trials: streamed)


@dataclass
class ArmResult:
    """One arm of an in-memory trial.

    Attributes
    ----------
    name : str
        Arm name (the scenario's, with ``#2``, ``#3`` ... for repeats).
    scenario : Scenario
    outcomes : pandas.DataFrame
        One row per patient (columns: :mod:`imiqsim.trial.outcomes`), ``arm`` first.
    t_days : ndarray
        Output times of the traces.
    traces : dict
        variable (:data:`~imiqsim.trial.outcomes.TRACE_VARIABLES`) -> (N, T) float32.
    endpoints : dict
        endpoint name -> ``{"value", "ci95", "n", ...}``
        (:func:`~imiqsim.trial.endpoints.endpoints`).
    """

    name: str
    scenario: Scenario
    outcomes: pd.DataFrame
    t_days: np.ndarray
    traces: dict[str, np.ndarray]  # variable -> (N, T)
    endpoints: dict = field(default_factory=dict)

    def summary(self) -> ArmSummary:
        """The arm's endpoints and counts, without the per-patient data."""
        return ArmSummary(
            name=self.name,
            n=int(len(self.outcomes)),
            scenario=self.scenario.name,
            indication=self.scenario.indication,
            endpoints=self.endpoints,
            failed_patients=int((self.outcomes["status"] != 0).sum()),
        )


@dataclass(frozen=True)
class ArmSummary:
    """An arm's endpoints and counts: what the JSON summary holds per arm.

    In-memory arms give one with :meth:`ArmResult.summary`; a streamed run
    builds it from its Parquet files.
    """

    name: str
    n: int
    scenario: str
    indication: str
    endpoints: dict
    failed_patients: int

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "n": self.n,
            "scenario": self.scenario,
            "indication": self.indication,
            "endpoints": self.endpoints,
            "failed_patients": self.failed_patients,
        }


def trial_summary(
    arms: Sequence[ArmSummary], seed: int, n_patients: int, followup_years: float
) -> dict[str, Any]:
    """The JSON summary of a trial (in-memory or streamed): arms, endpoints, differences."""
    return {
        "arms": [a.to_dict() for a in arms],
        "seed": seed,
        "version": __version__,
        "n_patients_per_arm": n_patients,
        "followup_years": followup_years,
        "disclaimer": DISCLAIMER_SHORT,
        "differences": differences(arms),
    }


@dataclass
class TrialResult:
    """An in-memory virtual trial: its arms and how it was run."""

    arms: list[ArmResult]
    seed: int
    n_patients: int
    followup_years: float

    def to_dict(self) -> dict[str, Any]:
        """The summary: per-arm endpoints and pairwise differences (no per-patient data)."""
        summaries = [a.summary() for a in self.arms]
        return trial_summary(summaries, self.seed, self.n_patients, self.followup_years)


def arm_names(scenarios: Sequence[Scenario]) -> list[str]:
    """Arm names: each scenario's name, ``name#2``, ``name#3`` ... when repeated."""
    names: list[str] = []
    for s in scenarios:
        nm, k = s.name, 2
        while nm in names:
            nm, k = f"{s.name}#{k}", k + 1
        names.append(nm)
    return names


@dataclass(frozen=True)
class TrialPlan:
    """A validated trial: its arms, the patients and how they are cut into chunks.

    Built by :func:`plan_trial` for in-memory and streamed trials alike.
    """

    scenarios: tuple[Scenario, ...]
    names: tuple[str, ...]
    patients: int
    seed: int
    chunk_size: int
    followup_years: float
    overrides: dict | None
    immunosuppressed_fraction: float | None  # None: each scenario's [population] value

    def chunks(self) -> list[tuple[int, int]]:
        """``(start, n)`` of each chunk of an arm."""
        return chunk_starts(self.patients, self.chunk_size)

    def chunk_args(self, arm: int, start: int, n: int) -> tuple:
        """The arguments of :func:`~imiqsim.trial.outcomes.simulate_chunk` for one chunk."""
        return (
            self.scenarios[arm],
            self.seed,
            start,
            n,
            self.followup_years,
            self.overrides,
            self.immunosuppressed_fraction,
        )


def plan_trial(
    arms: Sequence[str | Scenario],
    *,
    patients: int,
    seed: int,
    workers: int,
    chunk_size: int,
    followup_years: float,
    overrides: dict | None,
    immunosuppressed_fraction: float | None,
    max_patients: int | None = None,
) -> TrialPlan:
    """Validate a trial's inputs (:func:`~imiqsim.trial.executors.validate_run`), resolve its arms.

    Examples
    --------
    >>> plan = plan_trial(["sbcc-5pct", "sbcc-5pct"], patients=5, seed=1, workers=1,
    ...                   chunk_size=2, followup_years=0.0, overrides=None,
    ...                   immunosuppressed_fraction=0.0)
    >>> plan.names, plan.chunks()
    (('sbcc-5pct', 'sbcc-5pct#2'), [(0, 2), (2, 2), (4, 1)])
    """
    validate_run(
        arms,
        patients=patients,
        seed=seed,
        workers=workers,
        chunk_size=chunk_size,
        followup_years=followup_years,
        immunosuppressed_fraction=immunosuppressed_fraction,
        max_patients=max_patients,
    )
    scs = tuple(a if isinstance(a, Scenario) else resolve(a) for a in arms)
    return TrialPlan(
        scs,
        tuple(arm_names(scs)),
        patients,
        seed,
        chunk_size,
        followup_years,
        overrides,
        immunosuppressed_fraction,
    )


def _chunk(args: tuple) -> dict[str, Any]:
    # looked up at call time, so a replaced simulate_chunk (tests) is the one that runs
    return _outcomes.simulate_chunk(*args)


def run_trial(
    arms: Sequence[str | Scenario],
    *,
    patients: int = 1000,
    seed: int = 1,
    workers: int = 1,
    chunk_size: int = 250,
    followup_years: float = 1.0,
    overrides: dict | None = None,
    immunosuppressed_fraction: float | None = None,
    force: bool = False,
    progress: Callable[[int, int], None] | None = None,
    scheduler: Any = None,
    scheduler_file: str | None = None,
    uncertainty: int = 0,
) -> TrialResult:
    """Run a virtual trial in memory.

    Parameters
    ----------
    arms : list of str or Scenario
        Preset names, scenario files or :class:`~imiqsim.scenario.Scenario` objects.
    patients : int
        Virtual patients per arm (at most :data:`MAX_PATIENTS` unless ``force``; larger trials
        belong in :func:`imiqsim.trial.streaming.run_streaming`).
    seed : int
        Trial seed: patient i of seed s is the same patient in every run and arm.
    workers : int
        Local worker processes (1: this process). Ignored with a scheduler. The
        workers never re-run the calling script, so a plain script needs no
        ``if __name__ == "__main__":`` guard.
    chunk_size : int
        Patients per chunk (changes memory and parallelism, not results).
    followup_years : float
        Follow-up after the end of treatment or the assessment visit (0 to 10).
    overrides : dict, optional
        Parameter values replacing the model's for every patient.
    immunosuppressed_fraction : float, optional
        Share of immunosuppressed patients (0 to 1) in every arm; None: each scenario's own
        (``[population]``, else the indication's default).
    force : bool
        Allow more than :data:`MAX_PATIENTS` per arm.
    progress : callable(done, total), optional
        Called with chunks finished after each chunk.
    scheduler : str or dask.distributed.Client, optional
        Where to run the chunks: a dask.distributed scheduler address
        (``tcp://host:8786``) or a ``Client`` of your own (left open).
    scheduler_file : str, optional
        A dask scheduler file instead (``dask scheduler --scheduler-file``,
        dask-jobqueue, dask-mpi).
    uncertainty : int
        0: the calibrated values. K >= 2: K draws from the calibration's posterior, patients
        split across them, intervals including parameter uncertainty
        (:mod:`imiqsim.trial.uncertainty`).

    Returns
    -------
    TrialResult
        Each arm's ``failed_patients`` (in :meth:`TrialResult.to_dict`) counts
        patients whose integration failed; they are left out of the endpoints.

    Raises
    ------
    InputError
        Bad inputs, including arms of different indications (the arms are
        virtual twins: the same patients) and more than :data:`MAX_PATIENTS`
        per arm without ``force``.
    """
    if uncertainty:
        from imiqsim.trial.uncertainty import run_trial_uncertain

        return run_trial_uncertain(
            arms, uncertainty=uncertainty, patients=patients, seed=seed, workers=workers,
            chunk_size=chunk_size, followup_years=followup_years, overrides=overrides,
            immunosuppressed_fraction=immunosuppressed_fraction, force=force, progress=progress,
            scheduler=scheduler, scheduler_file=scheduler_file,
        )  # fmt: skip
    plan = plan_trial(
        arms,
        patients=patients,
        seed=seed,
        workers=workers,
        chunk_size=chunk_size,
        followup_years=followup_years,
        overrides=overrides,
        immunosuppressed_fraction=immunosuppressed_fraction,
        max_patients=None if force else MAX_PATIENTS,
    )
    jobs = [(ai, start, n) for ai in range(len(plan.scenarios)) for start, n in plan.chunks()]
    results: list[dict | None] = [None] * len(jobs)

    def keep(j: int, r: dict) -> None:
        results[j] = r

    execute(
        _chunk,
        [plan.chunk_args(*job) for job in jobs],
        on_done=keep,
        workers=workers,
        scheduler=scheduler,
        scheduler_file=scheduler_file,
        progress=progress,
    )
    arm_results = []
    for ai, (name, sc) in enumerate(zip(plan.names, plan.scenarios, strict=True)):
        parts = [r for (a, _, _), r in zip(jobs, results, strict=True) if a == ai and r is not None]
        df = pd.concat([p["outcomes"] for p in parts], ignore_index=True)
        df.insert(0, "arm", name)
        traces = {v: np.concatenate([p["traces"][v] for p in parts]) for v in TRACE_VARIABLES}
        ar = ArmResult(name, sc, df, parts[0]["t_days"], traces)
        ar.endpoints = endpoints(df)
        arm_results.append(ar)
    return TrialResult(arm_results, seed, patients, followup_years)
