"""Cryotherapy (liquid nitrogen) sessions as data -> FREEZE events.

The biology (direct kill of visible lesions by freeze time and lesion thickness, blistering, pain,
pigment loss, scarring, the small danger signal of necrosis) is part of the model
(``imiqsim.model.cryo``); this module only turns a clinic protocol into timed events.
A FREEZE event's ``amounts_mg`` slot carries the effective freeze time in seconds.
"""

from __future__ import annotations

import numpy as np
from pydantic import Field

from imiqsim.regimen import (
    FREEZE,
    GATE_ALWAYS,
    HOURS_PER_WEEK,
    DoseEvents,
    StrictFloat,
    StrictInt,
    _InputModel,
)

#: rim (mm) of normal skin frozen around the lesion in the reference protocol (Thai 2004)
REFERENCE_RIM_MM = 1.0


class CryoSpec(_InputModel):
    """A cryotherapy protocol applied by a clinician to every visible lesion.

    Parameters
    ----------
    freeze_seconds : float
        Spray time of one freeze (0 < s <= 60).
    freeze_thaw_cycles : int
        Freeze-thaw cycles per session (1-3).
    sessions : int
        Number of clinic sessions (1-6).
    interval_weeks : float
        Weeks between sessions (1-26).
    rim_mm : float
        Rim of normal-looking skin frozen around each lesion (0-5 mm). A rim below the 1 mm of the
        reference protocol leaves the lesion margin less frozen (effective freeze time scaled by
        (0.5 + rim) / 1.5, assumed).
    session_hour : float
        Clock hour of the clinic visit on day 0 (0-24).
    """

    _error_prefix = "cryotherapy"

    freeze_seconds: StrictFloat = Field(gt=0, le=60)
    freeze_thaw_cycles: StrictInt = Field(default=1, ge=1, le=3)
    sessions: StrictInt = Field(default=1, ge=1, le=6)
    interval_weeks: StrictFloat = Field(default=4.0, ge=1, le=26)
    rim_mm: StrictFloat = Field(default=1.0, ge=0, le=5)
    session_hour: StrictFloat = Field(default=10.0, ge=0, lt=24)

    def effective_freeze_seconds(self) -> float:
        return self.freeze_seconds * min(1.0, (0.5 + self.rim_mm) / (0.5 + REFERENCE_RIM_MM))

    def describe(self) -> str:
        s = (
            f"cryotherapy (liquid nitrogen spray) on each visible lesion with a {self.rim_mm:g} mm rim: "
            f"{self.freeze_thaw_cycles} freeze-thaw cycle{'s' if self.freeze_thaw_cycles > 1 else ''} of "
            f"{self.freeze_seconds:g} s"
        )
        if self.sessions > 1:
            s += f", {self.sessions} sessions {self.interval_weeks:g} weeks apart"
        else:
            s += ", one session"
        return s + ", performed in clinic"


def build_freeze_events(spec: CryoSpec) -> DoseEvents:
    """One FREEZE event per freeze-thaw cycle per session (cycles a few minutes apart)."""
    times, amounts = [], []
    for s in range(spec.sessions):
        t0 = s * spec.interval_weeks * HOURS_PER_WEEK + spec.session_hour
        for c in range(spec.freeze_thaw_cycles):
            times.append(t0 + c * 0.05)  # thaw between cycles: ~3 minutes
            amounts.append(spec.effective_freeze_seconds())
    n = len(times)
    return DoseEvents(
        np.array(times, float),
        np.full(n, FREEZE, dtype=np.int64),
        np.array(amounts, float),
        np.full(n, GATE_ALWAYS, dtype=np.int64),
        np.zeros(n, dtype=np.int64),
    )
