"""Batched integration of many patients between dose events."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from imiqsim.engine.codegen import compiled
from imiqsim.errors import InputError
from imiqsim.model import TRACKED_PEAKS, Model
from imiqsim.vocabulary import METHODS, STATUS_TEXT

__all__ = [
    "AUTO_SWITCH_STEPS",
    "MAX_OUTPUT_BYTES",
    "MAX_OUTPUT_TIMES",
    "check_output_grid",
    "METHODS",
    "STATUS_TEXT",
    "BatchResult",
    "initial_states",
    "run_batch",
]

#: ``method="auto"``: a patient also switches to Rodas4 once DP5 has made this many step attempts
#: (a backstop to the stiffness test; a typical patient needs 3,000 to 7,000 for a course and a
#: year)
AUTO_SWITCH_STEPS = 50_000
#: the most output times per patient (ten years at 5-minute spacing)
MAX_OUTPUT_TIMES = 1_051_200
#: the most memory one batch's output arrays may take (states and observables, float64)
MAX_OUTPUT_BYTES = 8 * 2**30


def check_output_grid(
    horizon_h: float, every_h: float, field: str = "output_every_hours", patients: int = 1
) -> int:
    """Refuse an output grid too fine to hold, before anything is allocated.

    Returns the number of output times (``horizon_h / every_h + 1``).

    Examples
    --------
    >>> check_output_grid(24.0, 1.0)
    25
    >>> check_output_grid(2688.0, 1e-6, "--every")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    imiqsim.errors.InputError: --every: got 1e-06; an output spacing of at least 0.00255708 hours...
    """
    if not (np.isfinite(every_h) and every_h > 0):
        raise InputError(field, every_h, "a positive number of hours")
    n_times = int(np.floor(horizon_h / every_h)) + 2
    if n_times > MAX_OUTPUT_TIMES:
        raise InputError(
            field,
            every_h,
            f"an output spacing of at least {horizon_h / (MAX_OUTPUT_TIMES - 2):.6g} hours for "
            f"{horizon_h:g} hours (at most {MAX_OUTPUT_TIMES} output times)",
        )
    return n_times - 1


@dataclass(frozen=True)
class BatchResult:
    """Raw engine output for N patients.

    Y: (N, T, S) states at ``t_h``; observables: (N, T, O); status: (N,) int
    codes (see ``STATUS_TEXT``); peak: (N, len(tracked)) maxima over all
    accepted steps; cleared_at_h: first time with no visible lesion (-1 if
    never); applications_given / doses_skipped_for_rest: (N,) counts; steps:
    (N,) step attempts (accepted and rejected); switched_at_h: (N,) time from
    which the patient was integrated with the Rosenbrock method (0 for
    ``method="rosenbrock"``, the switch time for ``"auto"``, -1 if never).
    """

    t_h: np.ndarray
    Y: np.ndarray
    observables: np.ndarray
    status: np.ndarray
    tracked: tuple[str, ...]
    peak: np.ndarray
    cleared_at_h: np.ndarray
    applications_given: np.ndarray
    doses_skipped_for_rest: np.ndarray
    steps: np.ndarray
    switched_at_h: np.ndarray


def _kernel_array(a, dtype) -> np.ndarray:
    """``a`` as a C-contiguous, writable array (copied only where needed).

    Numba compiles one specialisation per array type, and read-only is part of
    the type: a preset's events (read-only) and a cryotherapy schedule's
    (writable) used to compile the whole kernel twice.
    """
    return np.require(a, dtype=dtype, requirements=["C", "W"])


def initial_states(model: Model, P: np.ndarray) -> np.ndarray:
    mod = compiled(model)
    Y0 = np.zeros((P.shape[0], len(model.states)))
    mod.initial_batch(_kernel_array(P, float), Y0)
    return Y0


def run_batch(
    model: Model,
    P: np.ndarray,
    events,
    t_out_h: np.ndarray,
    *,
    rtol: float = 1e-6,
    atol_factor: float = 1e-8,
    h_max: float = 12.0,
    max_steps: int = 2_000_000,
    tracked: tuple[str, ...] = TRACKED_PEAKS,
    y0: np.ndarray | None = None,
    method: str = "auto",
) -> BatchResult:
    """Integrate all patients (rows of ``P``) over the dose events to ``t_out_h[-1]``.

    ``events`` is a :class:`imiqsim.regimen.DoseEvents` (shared by the batch).
    ``method`` is one of ``METHODS``: ``"auto"`` (the default: DP5, switching
    a patient to Rodas4 for the rest of its run when DP5 detects stiffness;
    identical to ``"dp5"`` for a patient that never switches, which is every
    patient of the calibrated model), ``"dp5"`` (explicit only) or
    ``"rosenbrock"`` (Rodas4 throughout, for stiff parameter sets).
    """
    if not isinstance(method, str) or method not in METHODS:
        raise InputError("method", method, f"one of {sorted(METHODS)}")
    P = _kernel_array(np.atleast_2d(P), float)
    t_out = _kernel_array(np.asarray(t_out_h, dtype=float), float)
    if t_out.ndim != 1 or t_out.size < 1 or np.any(np.diff(t_out) <= 0) or t_out[0] < 0:
        raise InputError("t_out_h", t_out_h, "a non-empty increasing array of times >= 0 (hours)")
    if not (0 < rtol < 1):
        raise InputError("rtol", rtol, "a number in (0, 1)")
    mod = compiled(model)
    N, S = P.shape[0], len(model.states)
    Y0 = initial_states(model, P) if y0 is None else np.ascontiguousarray(y0, dtype=float).copy()
    atol = np.array([s.scale for s in model.states]) * atol_factor
    T = t_out.size
    need = N * T * (S + len(model.observables)) * 8
    if need > MAX_OUTPUT_BYTES:
        raise InputError(
            "t_out_h",
            f"{T} output times for {N} patients",
            f"outputs that fit in {MAX_OUTPUT_BYTES / 2**30:g} GiB (these need "
            f"{need / 2**30:.3g} GiB): a coarser output grid or smaller chunks",
        )
    Y = np.empty((N, T, S))
    status = np.zeros(N, dtype=np.int64)
    track_idx = np.array(
        [
            model.state_index(o) if o in model.state_names else S + model.observable_index(o)
            for o in tracked
        ],
        dtype=np.int64,
    )
    peak = np.empty((N, track_idx.size))
    cleared = np.empty(N)
    applied = np.zeros(N, dtype=np.int64)
    skipped = np.zeros(N, dtype=np.int64)
    steps = np.zeros(N, dtype=np.int64)
    switched = np.empty(N)
    mod.integrate_batch(
        Y0,
        P,
        _kernel_array(events.times_h, float),
        _kernel_array(events.kinds, np.int64),
        _kernel_array(events.amounts_mg, float),
        _kernel_array(events.gates, np.int64),
        t_out,
        float(rtol),
        atol,
        float(h_max),
        int(max_steps),
        model.error_norm_states(events.kinds),
        track_idx,
        METHODS[method],
        AUTO_SWITCH_STEPS,
        Y,
        status,
        peak,
        cleared,
        applied,
        skipped,
        steps,
        switched,
    )
    OBS = np.empty((N, T, len(model.observables)))
    mod.observables_batch(Y, P, OBS)
    return BatchResult(
        t_out, Y, OBS, status, tuple(tracked), peak, cleared, applied, skipped, steps, switched
    )
