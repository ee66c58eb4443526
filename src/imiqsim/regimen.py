"""Products and dosing schedules, kept for existing imports: the code is in imiqsim.treatments.

The product catalogue is :mod:`imiqsim.treatments.products`, the regimen models, event expansion
and prose :mod:`imiqsim.treatments.cream`, the events table :mod:`imiqsim.treatments.events`;
event kinds, gates and time units come from :mod:`imiqsim.vocabulary`.

Examples
--------
>>> from imiqsim.regimen import PRODUCTS, RegimenSpec, build_events
>>> spec = RegimenSpec(applications_per_week=2, max_weeks=16, leave_on_hours=8,
...                    amount={"sachets": 1})
>>> build_events(spec, PRODUCTS["imiquimod-5%"]).n_applications
32
"""

from __future__ import annotations

from imiqsim.treatments.cream import (
    DEFAULT_WEEKDAYS,
    WEEKDAYS,
    Amount,
    RegimenSpec,
    build_events,
    describe_regimen,
    drug_mg_per_application,
)
from imiqsim.treatments.events import DoseEvents
from imiqsim.treatments.products import CREAM_MG_PER_UNIT, PRODUCTS, Product
from imiqsim.validation import MISSING, StrictBool, StrictFloat, StrictInt
from imiqsim.vocabulary import (
    APPLY,
    CHECK,
    FREEZE,
    GATE_ALWAYS,
    GATE_NOT_CLEAR_AT_CHECK,
    GATE_UNTIL_CLEAR,
    HOURS_PER_DAY,
    HOURS_PER_WEEK,
    WASH,
)

__all__ = [
    "APPLY",
    "CHECK",
    "CREAM_MG_PER_UNIT",
    "DEFAULT_WEEKDAYS",
    "FREEZE",
    "GATE_ALWAYS",
    "GATE_NOT_CLEAR_AT_CHECK",
    "GATE_UNTIL_CLEAR",
    "HOURS_PER_DAY",
    "HOURS_PER_WEEK",
    "MISSING",
    "PRODUCTS",
    "WASH",
    "WEEKDAYS",
    "Amount",
    "DoseEvents",
    "Product",
    "RegimenSpec",
    "StrictBool",
    "StrictFloat",
    "StrictInt",
    "build_events",
    "describe_regimen",
    "drug_mg_per_application",
]
