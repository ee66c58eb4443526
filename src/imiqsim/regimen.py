"""Products and dosing schedules, turned into timed dose events.

A regimen is data (:class:`RegimenSpec`); :func:`build_events` turns it into a
sorted table of events (:class:`DoseEvents`) that the engine integrates
between. Units inside this module: hours, mg, cm2. Time 0 is midnight at the
start of day 0, which is a Monday, so weekday ``d % 7`` of day ``d`` is
``0 = mon ... 6 = sun`` and week boundaries fall on multiples of 168 h.

Examples
--------
>>> from imiqsim.regimen import PRODUCTS, RegimenSpec, build_events
>>> spec = RegimenSpec(applications_per_week=2, max_weeks=16, leave_on_hours=8,
...                    amount={"sachets": 1})
>>> ev = build_events(spec, PRODUCTS["imiquimod-5%"])
>>> ev.n_applications
32
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import ClassVar

import numpy as np
from pydantic import Field, field_validator, model_validator

from imiqsim.validation import (  # re-exported: scenario and cryotherapy still use these names
    MISSING,
    StrictBool,
    StrictFloat,
    StrictInt,
)
from imiqsim.validation import InputModel as _InputModel
from imiqsim.validation import fail as _fail
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
    "PRODUCTS",
    "WASH",
    "WEEKDAYS",
    "Amount",
    "DoseEvents",
    "Product",
    "RegimenSpec",
    "build_events",
    "describe_regimen",
    "drug_mg_per_application",
]

# Every unit dose form on the market (sachet, packet, pump actuation) holds 250 mg cream.
CREAM_MG_PER_UNIT = 250.0

WEEKDAYS: tuple[str, ...] = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_WEEKDAY_LABEL = {d: d.capitalize() for d in WEEKDAYS}
_FULL_WEEKDAY = {
    full: d
    for full, d in zip(
        ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday"), WEEKDAYS
    )
}

# Weekday pattern used when a regimen gives only a weekly frequency; spread the
# applications over the week the way the labels suggest (e.g. Mon/Thu for 2x/week).
DEFAULT_WEEKDAYS: dict[int, tuple[str, ...]] = {
    1: ("mon",),
    2: ("mon", "thu"),
    3: ("mon", "wed", "fri"),
    4: ("mon", "tue", "thu", "fri"),
    5: ("mon", "tue", "wed", "thu", "fri"),
    6: ("mon", "tue", "wed", "thu", "fri", "sat"),
    7: WEEKDAYS,
}


# --------------------------------------------------------------------------- products


@dataclass(frozen=True)
class Product:
    """A marketed cream (or its vehicle).

    Parameters
    ----------
    key : str
        Key in :data:`PRODUCTS`, e.g. ``"imiquimod-5%"``.
    name : str
        Human-readable name.
    strength_pct : float
        Nominal imiquimod strength of the cream, % w/w (the vehicle keeps the
        strength of its active twin so that cream amounts and label limits match).
    vehicle : bool
        True for the drug-free cream base used as trial comparator.
    unit : str
        Name of the dose unit the product is supplied in (``"sachet"`` or
        ``"pump actuation"``).
    cream_mg_per_unit : float
        Cream mass in one unit (250 mg for every presentation).
    label_max_cream_mg : float
        Label maximum of cream per application (5%: 1 sachet; 3.75% and 2.5%:
        2 pump actuations).
    approved_indications : tuple of str
        Indications on the label (for a vehicle: those of its active twin).
    """

    key: str
    name: str
    strength_pct: float
    vehicle: bool
    unit: str
    cream_mg_per_unit: float = CREAM_MG_PER_UNIT
    label_max_cream_mg: float = CREAM_MG_PER_UNIT
    approved_indications: tuple[str, ...] = ()

    @property
    def drug_fraction(self) -> float:
        """Drug mass per cream mass (0 for a vehicle)."""
        return 0.0 if self.vehicle else self.strength_pct / 100.0

    @property
    def label_max_drug_mg(self) -> float:
        """Label maximum of imiquimod per application in mg (of the active twin for a vehicle)."""
        return self.label_max_cream_mg * self.strength_pct / 100.0

    @property
    def label_max_units(self) -> float:
        """Label maximum per application, in units (sachets or pump actuations)."""
        return self.label_max_cream_mg / self.cream_mg_per_unit


def _make_products() -> dict[str, Product]:
    specs = [
        # strength, unit, label max cream mg, approved indications
        (5.0, "sachet", 250.0, ("AK", "sBCC", "EGW")),
        (3.75, "pump actuation", 500.0, ("AK", "EGW")),
        (2.5, "pump actuation", 500.0, ("AK",)),
    ]
    out: dict[str, Product] = {}
    for strength, unit, max_mg, indications in specs:
        s = f"{strength:g}%"
        out[f"imiquimod-{s}"] = Product(
            key=f"imiquimod-{s}",
            name=f"imiquimod {s} cream",
            strength_pct=strength,
            vehicle=False,
            unit=unit,
            label_max_cream_mg=max_mg,
            approved_indications=indications,
        )
    for strength, unit, max_mg, indications in specs:
        s = f"{strength:g}%"
        out[f"vehicle-{s}"] = Product(
            key=f"vehicle-{s}",
            name=f"vehicle cream (imiquimod {s} cream base, no drug)",
            strength_pct=strength,
            vehicle=True,
            unit=unit,
            label_max_cream_mg=max_mg,
            approved_indications=indications,
        )
    return out


#: Every product known to the simulator, keyed by the name used in scenario files.
PRODUCTS: dict[str, Product] = _make_products()


# --------------------------------------------------------------------------- regimen models


class Amount(_InputModel):
    """Cream amount per application: exactly one of the three ways to state it.

    Parameters
    ----------
    sachets : float, optional
        Number of single-use sachets/packets (250 mg cream each).
    pump_actuations : float, optional
        Number of full pump actuations (250 mg cream each).
    cream_mg : float, optional
        Cream mass in mg.
    """

    _error_prefix: ClassVar[str] = "regimen.amount"

    sachets: StrictFloat | None = Field(default=None, gt=0)
    pump_actuations: StrictFloat | None = Field(default=None, gt=0)
    cream_mg: StrictFloat | None = Field(default=None, gt=0)

    @model_validator(mode="after")
    def _exactly_one(self) -> Amount:
        given = {k: v for k, v in self.model_dump().items() if v is not None}
        if len(given) != 1:
            raise _fail("give exactly one of sachets, pump_actuations, cream_mg", given or MISSING)
        return self

    @property
    def given(self) -> tuple[str, float]:
        """The (key, value) pair that was given, e.g. ``("sachets", 1.0)``."""
        for k in ("sachets", "pump_actuations", "cream_mg"):
            v = getattr(self, k)
            if v is not None:
                return k, float(v)
        raise AssertionError("validated Amount has one value")  # pragma: no cover

    def cream_mg_total(self) -> float:
        """Cream mass per application in mg."""
        key, v = self.given
        return v if key == "cream_mg" else v * CREAM_MG_PER_UNIT


class RegimenSpec(_InputModel):
    """A dosing schedule, as written in a scenario file.

    Parameters
    ----------
    applications_per_week : int, optional
        1..7 dosing days per week, on the default weekdays (:data:`DEFAULT_WEEKDAYS`).
        Mutually exclusive with ``weekdays``; one of the two is required.
    weekdays : list of str, optional
        Dosing days by name (``mon`` .. ``sun``), no duplicates.
    times_per_day : int
        1, or 2 for twice daily (12 h apart: at ``application_hour`` and 12 h
        before it, or 12 h after it when ``application_hour`` < 12).
    cycle_on_weeks, cycle_off_weeks : int, optional
        Treatment cycles: ``on`` weeks dosing then ``off`` weeks rest, repeated
        from the course start until ``max_weeks``. Both or neither.
    max_weeks : float
        Length of one course, weeks (> 0, <= 52). No application falls at or
        after ``max_weeks`` from the course start.
    until_clear : bool
        Stop dosing once the patient has no visible lesion.
    repeat_courses : int
        0..3 further identical courses, each given only if the patient is not
        clear at a CHECK visit.
    repeat_check_weeks : float, optional
        Weeks after the end of a course (its last wash-off) at which the CHECK
        deciding the next course takes place. Required when ``repeat_courses`` > 0.
    leave_on_hours : float
        Hours the cream stays on before it is washed off (> 0, <= 24, and
        shorter than the gap between consecutive applications).
    application_hour : float
        Clock hour of the (evening) application, 0 <= h < 24; default 22 (bedtime).
    amount : Amount
        Cream per application.
    """

    _error_prefix: ClassVar[str] = "regimen"

    applications_per_week: StrictInt | None = Field(default=None, ge=1, le=7)
    weekdays: list[str] | None = None
    times_per_day: StrictInt = Field(default=1, ge=1, le=2)
    cycle_on_weeks: StrictInt | None = Field(default=None, ge=1, le=52)
    cycle_off_weeks: StrictInt | None = Field(default=None, ge=1, le=52)
    max_weeks: StrictFloat = Field(gt=0, le=52)
    until_clear: StrictBool = False
    repeat_courses: StrictInt = Field(default=0, ge=0, le=3)
    repeat_check_weeks: StrictFloat | None = Field(default=None, ge=0, le=52)
    leave_on_hours: StrictFloat = Field(gt=0, le=24)
    application_hour: StrictFloat = Field(default=22.0, ge=0, lt=24)
    amount: Amount

    @field_validator("weekdays")
    @classmethod
    def _check_weekdays(cls, v: list[str] | None) -> list[str] | None:
        if v is None:
            return v
        if len(v) == 0:
            raise _fail("give at least one weekday (mon .. sun)", v)
        out: list[str] = []
        for day in v:
            d = day.strip().lower()
            d = _FULL_WEEKDAY.get(d, d)  # accept "Monday" as well as "mon"
            if d not in WEEKDAYS:
                raise _fail(f"unknown weekday; allowed: {', '.join(WEEKDAYS)}", day)
            if d in out:
                raise _fail("each weekday may appear only once", v)
            out.append(d)
        # keep calendar order so descriptions and events are canonical
        return sorted(out, key=WEEKDAYS.index)

    @model_validator(mode="after")
    def _check_consistency(self) -> RegimenSpec:
        if self.applications_per_week is not None and self.weekdays is not None:
            raise _fail(
                "give either applications_per_week or weekdays, not both",
                self.weekdays,
                field="weekdays",
            )
        if self.applications_per_week is None and self.weekdays is None:
            raise _fail(
                "one of applications_per_week (1..7) or weekdays (list of mon..sun) is required",
                MISSING,
                field="applications_per_week",
            )
        if (self.cycle_on_weeks is None) != (self.cycle_off_weeks is None):
            which = "cycle_off_weeks" if self.cycle_off_weeks is None else "cycle_on_weeks"
            raise _fail(
                "cycle_on_weeks and cycle_off_weeks must be given together (or neither)",
                MISSING,
                field=which,
            )
        if self.repeat_courses > 0 and self.repeat_check_weeks is None:
            raise _fail(
                "required when repeat_courses > 0: weeks after a course at which a check "
                "visit decides on the next course",
                MISSING,
                field="repeat_check_weeks",
            )
        offsets = _course_apply_offsets(self)
        if offsets.size == 0:
            raise _fail(
                "the schedule gives no application within max_weeks; lengthen max_weeks "
                "or change the dosing days",
                self.max_weeks,
                field="max_weeks",
            )
        if offsets.size > 1:
            gap = float(np.min(np.diff(offsets)))
            if self.leave_on_hours >= gap - 1e-9:
                raise _fail(
                    f"must be shorter than the {gap:g} h between consecutive applications "
                    "(the cream is washed off before the next one is applied)",
                    self.leave_on_hours,
                    field="leave_on_hours",
                )
        return self

    @property
    def dosing_weekdays(self) -> tuple[str, ...]:
        """The dosing weekdays, in calendar order."""
        if self.weekdays is not None:
            return tuple(self.weekdays)
        assert self.applications_per_week is not None
        return DEFAULT_WEEKDAYS[self.applications_per_week]

    @property
    def daily_hours(self) -> tuple[float, ...]:
        """Clock hours of the applications on a dosing day."""
        h = float(self.application_hour)
        if self.times_per_day == 1:
            return (h,)
        # twice daily, 12 h apart, both within the same calendar day
        return (h - 12.0, h) if h >= 12.0 else (h, h + 12.0)


# --------------------------------------------------------------------------- events


def _readonly(a: np.ndarray) -> np.ndarray:
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
        :data:`APPLY`, :data:`WASH`, :data:`CHECK` (or :data:`FREEZE`).
    amounts_mg : ndarray of float64
        Imiquimod mg put on the skin by an APPLY (0 for a vehicle and for
        every other kind).
    gates : ndarray of int64
        :data:`GATE_ALWAYS`, :data:`GATE_UNTIL_CLEAR` or
        :data:`GATE_NOT_CLEAR_AT_CHECK`; only APPLY events carry a gate other
        than 0. A WASH is always performed (washing bare skin removes nothing).
    course : ndarray of int64
        0 for the first course, 1.. for repeat courses. A CHECK carries the
        number of the course it decides on.
    """

    times_h: np.ndarray
    kinds: np.ndarray
    amounts_mg: np.ndarray
    gates: np.ndarray
    course: np.ndarray

    def __post_init__(self) -> None:
        n = len(self.times_h)
        for name in ("kinds", "amounts_mg", "gates", "course"):
            if len(getattr(self, name)) != n:
                raise ValueError(f"DoseEvents.{name} has a different length from times_h")

    def __len__(self) -> int:
        return int(self.times_h.shape[0])

    @property
    def n_applications(self) -> int:
        """Number of scheduled APPLY events (gated ones included)."""
        return int(np.count_nonzero(self.kinds == APPLY))

    def times_of(self, kind: int) -> np.ndarray:
        """Times (h) of all events of one kind."""
        return self.times_h[self.kinds == kind]

    def last_application_h(self) -> float:
        """Time (h) of the last scheduled APPLY; nan if there is none."""
        t = self.times_of(APPLY)
        return float(t.max()) if t.size else math.nan

    def end_h(self) -> float:
        """Time (h) of the last event; 0 if there is none."""
        return float(self.times_h.max()) if len(self) else 0.0

    @property
    def total_drug_mg(self) -> float:
        """Drug mg over all scheduled applications (if every gated one were given)."""
        return float(self.amounts_mg.sum())


def _course_apply_offsets(spec: RegimenSpec) -> np.ndarray:
    """Application times (h) of one course, relative to its start (a Monday 00:00)."""
    limit_h = spec.max_weeks * HOURS_PER_WEEK
    days = np.arange(math.ceil(spec.max_weeks * 7.0))
    weekday_ok = np.isin(days % 7, [WEEKDAYS.index(d) for d in spec.dosing_weekdays])
    if spec.cycle_on_weeks is not None and spec.cycle_off_weeks is not None:
        period = spec.cycle_on_weeks + spec.cycle_off_weeks
        cycle_ok = (days // 7) % period < spec.cycle_on_weeks
    else:
        cycle_ok = np.ones_like(weekday_ok)
    dose_days = days[weekday_ok & cycle_ok].astype(np.float64)
    hours = np.asarray(spec.daily_hours, dtype=np.float64)
    t = (dose_days[:, None] * HOURS_PER_DAY + hours[None, :]).ravel()
    return np.sort(t[t < limit_h - 1e-9])


def _next_monday_after(t_h: float) -> float:
    """First Monday 00:00 strictly after ``t_h`` (time 0 is a Monday 00:00)."""
    week = math.floor(t_h / HOURS_PER_WEEK + 1e-12) + 1
    return week * HOURS_PER_WEEK


def drug_mg_per_application(regimen: RegimenSpec, product: Product) -> float:
    """Imiquimod mg in one application (0 for a vehicle).

    Examples
    --------
    >>> spec = RegimenSpec(applications_per_week=2, max_weeks=16, leave_on_hours=8,
    ...                    amount={"sachets": 1})
    >>> drug_mg_per_application(spec, PRODUCTS["imiquimod-5%"])
    12.5
    """
    return regimen.amount.cream_mg_total() * product.drug_fraction


def build_events(regimen: RegimenSpec, product: Product) -> DoseEvents:
    """Expand a regimen into timed APPLY / WASH / CHECK events.

    Parameters
    ----------
    regimen : RegimenSpec
        The schedule.
    product : Product
        The cream; sets the drug mg per application.

    Returns
    -------
    DoseEvents
        Sorted by time; ties ordered APPLY, WASH, CHECK.

    Notes
    -----
    One APPLY per dosing day at ``application_hour`` (two when twice daily),
    each followed by a WASH ``leave_on_hours`` later. With ``until_clear`` the
    applies carry :data:`GATE_UNTIL_CLEAR`. A course ends at its last
    scheduled wash-off; for each repeat course a CHECK is placed
    ``repeat_check_weeks`` after that, and the repeat course starts on the
    first Monday 00:00 after the CHECK with every apply gated
    :data:`GATE_NOT_CLEAR_AT_CHECK` (that gate wins over until-clear, one gate
    per event).
    """
    offsets = _course_apply_offsets(regimen)
    dose_mg = drug_mg_per_application(regimen, product)
    leave_on = float(regimen.leave_on_hours)
    n = offsets.size

    times: list[np.ndarray] = []
    kinds: list[np.ndarray] = []
    amounts: list[np.ndarray] = []
    gates: list[np.ndarray] = []
    courses: list[np.ndarray] = []

    start = 0.0
    course_end = 0.0  # end of the previous course (its last wash-off), set per course
    for k in range(regimen.repeat_courses + 1):
        if k == 0:
            gate = GATE_UNTIL_CLEAR if regimen.until_clear else GATE_ALWAYS
        else:
            gate = GATE_NOT_CLEAR_AT_CHECK
            check = course_end + float(regimen.repeat_check_weeks or 0.0) * HOURS_PER_WEEK
            times.append(np.array([check]))
            kinds.append(np.array([CHECK]))
            amounts.append(np.zeros(1))
            gates.append(np.array([GATE_ALWAYS]))
            courses.append(np.array([k]))
            start = _next_monday_after(check)
        apply_t = start + offsets
        times += [apply_t, apply_t + leave_on]
        kinds += [np.full(n, APPLY), np.full(n, WASH)]
        amounts += [np.full(n, dose_mg), np.zeros(n)]
        gates += [np.full(n, gate), np.full(n, GATE_ALWAYS)]
        courses += [np.full(n, k), np.full(n, k)]
        course_end = float(apply_t[-1] + leave_on)

    t = np.concatenate(times).astype(np.float64)
    kd = np.concatenate(kinds).astype(np.int64)
    order = np.lexsort((kd, t))  # primary key time, then kind; lexsort is stable
    return DoseEvents(
        times_h=_readonly(t[order]),
        kinds=_readonly(kd[order]),
        amounts_mg=_readonly(np.concatenate(amounts).astype(np.float64)[order]),
        gates=_readonly(np.concatenate(gates).astype(np.int64)[order]),
        course=_readonly(np.concatenate(courses).astype(np.int64)[order]),
    )


# --------------------------------------------------------------------------- description


def _plural(x: float, word: str) -> str:
    return f"{x:g} {word}" + ("" if x == 1 else "s")


def _amount_text(regimen: RegimenSpec, product: Product) -> str:
    key, v = regimen.amount.given
    cream = regimen.amount.cream_mg_total()
    if key == "sachets":
        head = _plural(v, "sachet")
    elif key == "pump_actuations":
        head = _plural(v, "pump actuation")
    else:
        head = f"{v:g} mg cream"
    if product.vehicle:
        inner = "no imiquimod" if key == "cream_mg" else f"{cream:g} mg cream, no imiquimod"
    else:
        inner = f"{drug_mg_per_application(regimen, product):g} mg imiquimod"
    return f"{head} ({inner})"


def _frequency_text(regimen: RegimenSpec) -> str:
    days = regimen.dosing_weekdays
    if len(days) == 7:
        freq = "twice daily" if regimen.times_per_day == 2 else "daily"
    else:
        per = f"{len(days)}x/week"
        label = ", ".join(_WEEKDAY_LABEL[d] for d in days)
        freq = f"{per} ({label})"
        if regimen.times_per_day == 2:
            freq = f"twice a day, {freq}"
    return freq


def describe_regimen(regimen: RegimenSpec, product: Product) -> str:
    """Describe a regimen in plain words.

    Examples
    --------
    >>> spec = RegimenSpec(weekdays=["mon", "thu"], max_weeks=16, leave_on_hours=8,
    ...                    amount={"sachets": 1})
    >>> describe_regimen(spec, PRODUCTS["imiquimod-5%"])
    'imiquimod 5% cream, 1 sachet (12.5 mg imiquimod) 2x/week (Mon, Thu) for 16 weeks, left on 8 h'
    """
    parts = [f"{product.name}, {_amount_text(regimen, product)} {_frequency_text(regimen)}"]
    weeks = _plural(regimen.max_weeks, "week")
    cycled = regimen.cycle_on_weeks is not None and regimen.cycle_off_weeks is not None
    if cycled:
        on = _plural(float(regimen.cycle_on_weeks or 0), "week")
        off = _plural(float(regimen.cycle_off_weeks or 0), "week")
        parts.append(f" in cycles of {on} on, {off} off, over {weeks}")
        if regimen.until_clear:
            parts.append(", stopping once clear")
    elif regimen.until_clear:
        parts.append(f" until clear (at most {weeks})")
    else:
        parts.append(f" for {weeks}")
    parts.append(f", left on {regimen.leave_on_hours:g} h")
    if regimen.repeat_courses > 0:
        more = _plural(float(regimen.repeat_courses), "more course")
        parts.append(
            f"; up to {more} if not clear at a check "
            f"{_plural(float(regimen.repeat_check_weeks or 0.0), 'week')} after each course"
        )
    return "".join(parts)
