"""Virtual trials: per-patient outcomes, one endpoint registry, one executor layer.

The package follows the data flow of a trial::

    outcomes.py    simulate_chunk: a chunk of patients -> one row of outcome columns per patient
    endpoints.py   ENDPOINTS: the registry (what, who counts, how computed and differenced, where
                   shown); endpoints() per arm, differences() between arms
    stats.py       the interval estimates the registry uses (Wilson, Newcombe, median)
    executors.py   validate_run (one validation) and execute: here, spawned processes or dask
    run.py         plan_trial (validated arms and chunks, for both kinds of run);
                   run_trial -> TrialResult of ArmResult (in memory); the JSON summary shape
    streaming.py   run_streaming: the same trial chunk by chunk to Parquet, resumable

Examples
--------
>>> from imiqsim.trial import ENDPOINTS, run_trial
>>> len({e.name for e in ENDPOINTS}) == len(ENDPOINTS)
True
>>> tr = run_trial(["sbcc-5pct"], patients=4, seed=1, followup_years=0.0)  # doctest: +SKIP
"""

from __future__ import annotations

from imiqsim.trial.endpoints import (
    ENDPOINTS,
    Endpoint,
    comparison_endpoints,
    differences,
    endpoint,
    endpoints,
    report_endpoints,
)
from imiqsim.trial.executors import MAX_WORKERS, execute, validate_run
from imiqsim.trial.outcomes import (
    HEADACHE_BACKGROUND,
    HEADACHE_SHARE_OF_FLU_LIKE,
    TRACE_VARIABLES,
    simulate_chunk,
)
from imiqsim.trial.run import (
    MAX_PATIENTS,
    ArmResult,
    ArmSummary,
    TrialPlan,
    TrialResult,
    arm_names,
    plan_trial,
    run_trial,
    trial_summary,
)
from imiqsim.trial.streaming import StreamResult, read_outcomes, run_streaming, trace_bands

# time units for older imports (``from imiqsim.trial import HOURS_PER_YEAR``); defined in vocabulary
from imiqsim.vocabulary import HOURS_PER_WEEK, HOURS_PER_YEAR

__all__ = [
    "ENDPOINTS",
    "HEADACHE_BACKGROUND",
    "HEADACHE_SHARE_OF_FLU_LIKE",
    "HOURS_PER_WEEK",
    "HOURS_PER_YEAR",
    "MAX_PATIENTS",
    "MAX_WORKERS",
    "TRACE_VARIABLES",
    "ArmResult",
    "ArmSummary",
    "Endpoint",
    "StreamResult",
    "TrialPlan",
    "TrialResult",
    "arm_names",
    "comparison_endpoints",
    "differences",
    "endpoint",
    "endpoints",
    "execute",
    "plan_trial",
    "read_outcomes",
    "report_endpoints",
    "run_streaming",
    "run_trial",
    "simulate_chunk",
    "trace_bands",
    "trial_summary",
    "validate_run",
]
