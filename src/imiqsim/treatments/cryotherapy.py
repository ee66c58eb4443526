"""Cryotherapy (liquid nitrogen): a clinic protocol -> FREEZE events, and its treatment protocol.

The biology (direct kill of visible lesions by freeze time and lesion thickness, blistering, pain,
pigment loss, scarring, the small danger signal of necrosis) is part of the model
(``imiqsim.model.cryo``); this module turns a clinic protocol into timed events and answers the
treatment questions. A FREEZE event's ``amounts_mg`` slot carries the effective freeze time in
seconds.

Examples
--------
>>> spec = CryoSpec(freeze_seconds=10.0)
>>> build_freeze_events(spec).times_h.tolist()
[10.0]
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

import numpy as np
from pydantic import Field

from imiqsim.treatments.base import Delivery, Treatment
from imiqsim.treatments.events import DoseEvents
from imiqsim.treatments.products import (
    IMIQUIMOD_LABEL_SITES,
    IMIQUIMOD_LABEL_TEXT,
    IMIQUIMOD_LESION_TYPE_TEXT,
)
from imiqsim.validation import InputModel, StrictFloat, StrictInt, fail
from imiqsim.vocabulary import FREEZE, GATE_ALWAYS, HOURS_PER_WEEK

__all__ = ["CRYOTHERAPY", "REFERENCE_RIM_MM", "CryoSpec", "Cryotherapy", "build_freeze_events"]

#: the ``product`` of the cryotherapy comparator in scenario files
CRYOTHERAPY = "cryotherapy"

#: rim (mm) of normal skin frozen around the lesion in the reference protocol (Thai 2004)
REFERENCE_RIM_MM = 1.0


class CryoSpec(InputModel):
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

    _error_prefix: ClassVar[str] = "cryotherapy"

    freeze_seconds: StrictFloat = Field(gt=0, le=60)
    freeze_thaw_cycles: StrictInt = Field(default=1, ge=1, le=3)
    sessions: StrictInt = Field(default=1, ge=1, le=6)
    interval_weeks: StrictFloat = Field(default=4.0, ge=1, le=26)
    rim_mm: StrictFloat = Field(default=1.0, ge=0, le=5)
    session_hour: StrictFloat = Field(default=10.0, ge=0, lt=24)

    def effective_freeze_seconds(self) -> float:
        """Freeze time (s) after the rim correction."""
        return self.freeze_seconds * min(1.0, (0.5 + self.rim_mm) / (0.5 + REFERENCE_RIM_MM))

    def describe(self) -> str:
        """The protocol in plain words."""
        cycles = "s" if self.freeze_thaw_cycles > 1 else ""
        s = (
            f"cryotherapy (liquid nitrogen spray) on each visible lesion with a {self.rim_mm:g} mm "
            f"rim: {self.freeze_thaw_cycles} freeze-thaw cycle{cycles} of "
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


class Cryotherapy(Treatment):
    """The cryotherapy comparator: ``product = "cryotherapy"`` with a ``[cryotherapy]`` table.

    Cryotherapy has no label of its own; a cryotherapy arm is held to the imiquimod label's
    sites and BCC type so that a comparison treats the same skin.

    Examples
    --------
    >>> t = Cryotherapy(product="cryotherapy", cryotherapy={"freeze_seconds": 10.0})
    >>> t.delivery(25.0).who_and_where()
    'clinician, in clinic: each visible lesion plus a rim'
    """

    kind: ClassVar[str] = "cryotherapy"
    required_tables: ClassVar[Mapping[str, str]] = {
        "cryotherapy": "product cryotherapy needs a [cryotherapy] table (freeze_seconds, ...)"
    }
    direct_kill_tallies: ClassVar[tuple[str, ...]] = ("killed_cryo",)
    calibration: ClassVar[str] = (
        "freeze-time response calibrated against Thai 2004 (lesion complete response)"
    )
    label_sites: ClassVar[Mapping[str, tuple[str, ...]]] = IMIQUIMOD_LABEL_SITES
    label_site_text: ClassVar[Mapping[str, str]] = IMIQUIMOD_LABEL_TEXT
    lesion_type_text: ClassVar[str] = IMIQUIMOD_LESION_TYPE_TEXT

    cryotherapy: CryoSpec

    @classmethod
    def product_keys(cls) -> tuple[str, ...]:
        return (CRYOTHERAPY,)

    @classmethod
    def foreign_table(cls, key: str, product: Any) -> Any:
        if key == "regimen":
            return fail(
                "a cryotherapy scenario has no cream regimen; remove [regimen]",
                "regimen",
                field="regimen",
            )
        return super().foreign_table(key, product)

    def events(self) -> DoseEvents:
        return build_freeze_events(self.cryotherapy)

    def describe(self) -> str:
        return self.cryotherapy.describe()

    def delivery(self, area_cm2: float) -> Delivery:
        spec = self.cryotherapy
        return Delivery(
            drug="liquid nitrogen",
            strength_pct=0.0,
            amount=f"{spec.freeze_thaw_cycles} x {spec.freeze_seconds:g} s freeze per lesion",
            drug_mg_per_application=0.0,
            applied_by="clinician",
            setting="in clinic",
            directed="lesion-directed",
            target="each visible lesion plus a rim",
        )

    def mechanism(self) -> str:
        return "direct destruction by freezing; little immune stimulation"
