"""The timed events a treatment emits and the engine integrates between.

Units: hours from midnight at the start of day 0 (a Monday); drug amounts in mg.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from imiqsim.vocabulary import APPLY

__all__ = ["DoseEvents", "readonly"]


def readonly(a: np.ndarray) -> np.ndarray:
    """Mark ``a`` read-only and return it (event tables are immutable)."""
    a.setflags(write=False)
    return a


@dataclass(frozen=True, eq=False)
class DoseEvents:
    """Timed events of a schedule, sorted by time (ties: APPLY, WASH, CHECK, FREEZE).

    Attributes
    ----------
    times_h : ndarray of float64
        Event times, hours from midnight at the start of day 0 (a Monday).
    kinds : ndarray of int64
        Event kinds from :mod:`imiqsim.vocabulary` (``APPLY``, ``WASH``, ``CHECK``, ``FREEZE``).
    amounts_mg : ndarray of float64
        Drug mg put on the skin by an APPLY (0 for a vehicle and for every other
        kind; a FREEZE carries its effective freeze time in seconds here).
    gates : ndarray of int64
        ``GATE_ALWAYS``, ``GATE_UNTIL_CLEAR`` or ``GATE_NOT_CLEAR_AT_CHECK``; only
        APPLY events carry a gate other than 0. A WASH is always performed
        (washing bare skin removes nothing).
    course : ndarray of int64
        0 for the first course, 1.. for repeat courses. A CHECK carries the
        number of the course it decides on.
    dose_kinds : tuple of int
        The kinds that are applications of a drug (``APPLY`` for imiquimod; a cream with
        its own event kind names it), counted by :attr:`n_applications`.

    Examples
    --------
    >>> import numpy as np
    >>> from imiqsim.vocabulary import APPLY, WASH
    >>> ev = DoseEvents(np.array([22.0, 30.0]), np.array([APPLY, WASH]), np.array([12.5, 0.0]),
    ...                 np.zeros(2, dtype=np.int64), np.zeros(2, dtype=np.int64))
    >>> ev.n_applications, ev.total_drug_mg, ev.end_h()
    (1, 12.5, 30.0)
    """

    times_h: np.ndarray
    kinds: np.ndarray
    amounts_mg: np.ndarray
    gates: np.ndarray
    course: np.ndarray
    dose_kinds: tuple[int, ...] = (APPLY,)

    def __post_init__(self) -> None:
        n = len(self.times_h)
        for name in ("kinds", "amounts_mg", "gates", "course"):
            if len(getattr(self, name)) != n:
                raise ValueError(f"DoseEvents.{name} has a different length from times_h")

    def __len__(self) -> int:
        return int(self.times_h.shape[0])

    @property
    def n_applications(self) -> int:
        """Number of scheduled applications (gated ones included)."""
        return int(np.count_nonzero(np.isin(self.kinds, self.dose_kinds)))

    def times_of(self, kind: int) -> np.ndarray:
        """Times (h) of all events of one kind."""
        return self.times_h[self.kinds == kind]

    def last_application_h(self) -> float:
        """Time (h) of the last scheduled application; nan if there is none."""
        t = self.times_h[np.isin(self.kinds, self.dose_kinds)]
        return float(t.max()) if t.size else math.nan

    def end_h(self) -> float:
        """Time (h) of the last event; 0 if there is none."""
        return float(self.times_h.max()) if len(self) else 0.0

    @property
    def total_drug_mg(self) -> float:
        """Drug mg over all scheduled applications (if every gated one were given)."""
        return float(self.amounts_mg.sum())
