"""The dose-gate and rest decision, written once for the patient kernel and the skin field.

:func:`dose_decision` is a Numba function: the batched kernel renders its
source into the generated module (:func:`source`), and the field's Python
event loop calls the compiled function directly. The SBML export encodes
the same rule as ``piecewise`` event assignments (:mod:`imiqsim.export.sbml`),
documented against this function.

Examples
--------
>>> from imiqsim.vocabulary import GATE_UNTIL_CLEAR
>>> dose_decision(GATE_UNTIL_CLEAR, True, True, False, 1.0, 8.0)
(False, False, True)
"""

from __future__ import annotations

import inspect

from numba import njit

from imiqsim.vocabulary import GATE_NOT_CLEAR_AT_CHECK, GATE_UNTIL_CLEAR

__all__ = ["dose_decision", "source"]


@njit(cache=True)
def dose_decision(gate, clear_now, not_clear_at_check, stopped, rest_score, rest_threshold):
    """Whether a gated dose is given: ``(give, skipped_for_rest, stopped)``.

    Parameters
    ----------
    gate : int
        The event's gate (:data:`imiqsim.vocabulary.GATES`).
    clear_now : bool
        The patient (or field) has no visible lesion now.
    not_clear_at_check : bool
        Not clear at the most recent CHECK (True before any CHECK).
    stopped : bool
        An until-clear dose has already found the patient clear: every later
        until-clear dose is skipped, even if a lesion becomes visible again.
    rest_score, rest_threshold : float
        A dose the gate allows is skipped for rest while ``rest_score >=
        rest_threshold`` (the model's gating declaration).

    Returns
    -------
    (bool, bool, bool)
        Give the dose; it was skipped for rest (count it); the new ``stopped``.
    """
    give = True
    if gate == GATE_UNTIL_CLEAR:
        if stopped:
            give = False
        elif clear_now:
            stopped = True
            give = False
    elif gate == GATE_NOT_CLEAR_AT_CHECK:
        if not not_clear_at_check:
            give = False
    rested = False
    if give and rest_score >= rest_threshold:
        give = False
        rested = True
    return give, rested, stopped


def source() -> str:
    """Numba source of :func:`dose_decision` with its gate codes, for a generated module."""
    return "\n".join(
        [
            f"GATE_UNTIL_CLEAR = {GATE_UNTIL_CLEAR!r}",
            f"GATE_NOT_CLEAR_AT_CHECK = {GATE_NOT_CLEAR_AT_CHECK!r}",
            "",
            "",
            inspect.getsource(dose_decision.py_func),
        ]
    )
