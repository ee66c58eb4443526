"""Cream treatments: regimen models -> timed events -> plain words.

A regimen is data (:class:`RegimenSpec`); :func:`build_events` turns it into a sorted table of
events (:class:`~imiqsim.treatments.events.DoseEvents`) that the engine integrates between;
:func:`describe_regimen` says it in words. :class:`CreamTreatment` is the treatment protocol
shared by every cream (a product from a catalogue plus a regimen); :class:`ImiquimodCream`
is imiquimod and its vehicles. Units: hours, mg, cm2. Time 0 is midnight at the start of day
0, which is a Monday, so weekday ``d % 7`` of day ``d`` is ``0 = mon ... 6 = sun`` and week
boundaries fall on multiples of 168 h.

Examples
--------
>>> from imiqsim.treatments.cream import RegimenSpec, build_events
>>> from imiqsim.treatments.products import PRODUCTS
>>> spec = RegimenSpec(applications_per_week=2, max_weeks=16, leave_on_hours=8,
...                    amount={"sachets": 1})
>>> ev = build_events(spec, PRODUCTS["imiquimod-5%"])
>>> ev.n_applications
32
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import ClassVar

import numpy as np
from pydantic import Field, field_validator, model_validator

from imiqsim.treatments.base import Delivery, Finding, Treatment
from imiqsim.treatments.events import DoseEvents, readonly
from imiqsim.treatments.products import (
    CREAM_MG_PER_UNIT,
    IMIQUIMOD_LABEL_SITES,
    IMIQUIMOD_LABEL_TEXT,
    IMIQUIMOD_LESION_TYPE_TEXT,
    PRODUCTS,
    Product,
)
from imiqsim.validation import MISSING, InputModel, StrictBool, StrictFloat, StrictInt, fail
from imiqsim.vocabulary import (
    APPLY,
    CHECK,
    GATE_ALWAYS,
    GATE_NOT_CLEAR_AT_CHECK,
    GATE_UNTIL_CLEAR,
    HOURS_PER_DAY,
    HOURS_PER_WEEK,
    WASH,
)

__all__ = [
    "DEFAULT_WEEKDAYS",
    "MAX_DOSE_MULTIPLE",
    "WEEKDAYS",
    "Amount",
    "CreamTreatment",
    "ImiquimodCream",
    "RegimenSpec",
    "build_events",
    "describe_regimen",
    "drug_mg_per_application",
]

WEEKDAYS: tuple[str, ...] = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_WEEKDAY_LABEL = {d: d.capitalize() for d in WEEKDAYS}
_FULL_WEEKDAY = {
    full: d
    for full, d in zip(
        ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday"),
        WEEKDAYS,
        strict=True,
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


# --------------------------------------------------------------------------- regimen models


class Amount(InputModel):
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
    cream_mg: StrictFloat | None = Field(default=None, ge=1)  # physical floor: 1 mg

    @model_validator(mode="after")
    def _exactly_one(self) -> Amount:
        given = {k: v for k, v in self.model_dump().items() if v is not None}
        if len(given) != 1:
            raise fail("give exactly one of sachets, pump_actuations, cream_mg", given or MISSING)
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


class RegimenSpec(InputModel):
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
    leave_on_hours: StrictFloat = Field(ge=0.1, le=24)  # physical floor: 6 minutes
    application_hour: StrictFloat = Field(default=22.0, ge=0, lt=24)
    amount: Amount

    @field_validator("weekdays")
    @classmethod
    def _check_weekdays(cls, v: list[str] | None) -> list[str] | None:
        if v is None:
            return v
        if len(v) == 0:
            raise fail("give at least one weekday (mon .. sun)", v)
        out: list[str] = []
        for day in v:
            d = day.strip().lower()
            d = _FULL_WEEKDAY.get(d, d)  # accept "Monday" as well as "mon"
            if d not in WEEKDAYS:
                raise fail(f"unknown weekday; allowed: {', '.join(WEEKDAYS)}", day)
            if d in out:
                raise fail("each weekday may appear only once", v)
            out.append(d)
        # keep calendar order so descriptions and events are canonical
        return sorted(out, key=WEEKDAYS.index)

    @model_validator(mode="after")
    def _check_consistency(self) -> RegimenSpec:
        if self.applications_per_week is not None and self.weekdays is not None:
            raise fail(
                "give either applications_per_week or weekdays, not both",
                self.weekdays,
                field="weekdays",
            )
        if self.applications_per_week is None and self.weekdays is None:
            raise fail(
                "one of applications_per_week (1..7) or weekdays (list of mon..sun) is required",
                MISSING,
                field="applications_per_week",
            )
        if (self.cycle_on_weeks is None) != (self.cycle_off_weeks is None):
            which = "cycle_off_weeks" if self.cycle_off_weeks is None else "cycle_on_weeks"
            raise fail(
                "cycle_on_weeks and cycle_off_weeks must be given together (or neither)",
                MISSING,
                field=which,
            )
        if self.repeat_courses > 0 and self.repeat_check_weeks is None:
            raise fail(
                "required when repeat_courses > 0: weeks after a course at which a check "
                "visit decides on the next course",
                MISSING,
                field="repeat_check_weeks",
            )
        offsets = _course_apply_offsets(self)
        if offsets.size == 0:
            raise fail(
                "the schedule gives no application within max_weeks; lengthen max_weeks "
                "or change the dosing days",
                self.max_weeks,
                field="max_weeks",
            )
        if offsets.size > 1:
            gap = float(np.min(np.diff(offsets)))
            if self.leave_on_hours >= gap - 1e-9:
                raise fail(
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
    """Drug mg in one application (0 for a vehicle).

    Examples
    --------
    >>> spec = RegimenSpec(applications_per_week=2, max_weeks=16, leave_on_hours=8,
    ...                    amount={"sachets": 1})
    >>> drug_mg_per_application(spec, PRODUCTS["imiquimod-5%"])
    12.5
    """
    return regimen.amount.cream_mg_total() * product.drug_fraction


def build_events(regimen: RegimenSpec, product: Product, apply_kind: int = APPLY) -> DoseEvents:
    """Expand a regimen into timed APPLY / WASH / CHECK events.

    Parameters
    ----------
    regimen : RegimenSpec
        The schedule.
    product : Product
        The cream; sets the drug mg per application.
    apply_kind : int
        Event kind of an application (``APPLY`` for imiquimod; another cream's own kind).

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
        kinds += [np.full(n, apply_kind), np.full(n, WASH)]
        amounts += [np.full(n, dose_mg), np.zeros(n)]
        gates += [np.full(n, gate), np.full(n, GATE_ALWAYS)]
        courses += [np.full(n, k), np.full(n, k)]
        course_end = float(apply_t[-1] + leave_on)

    t = np.concatenate(times).astype(np.float64)
    kd = np.concatenate(kinds).astype(np.int64)
    order = np.lexsort((kd, t))  # primary key time, then kind; lexsort is stable
    return DoseEvents(
        times_h=readonly(t[order]),
        kinds=readonly(kd[order]),
        amounts_mg=readonly(np.concatenate(amounts).astype(np.float64)[order]),
        gates=readonly(np.concatenate(gates).astype(np.int64)[order]),
        course=readonly(np.concatenate(courses).astype(np.int64)[order]),
        dose_kinds=(apply_kind,),
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
        no_drug = f"no {product.drug}"
        inner = no_drug if key == "cream_mg" else f"{cream:g} mg cream, {no_drug}"
    else:
        inner = f"{drug_mg_per_application(regimen, product):g} mg {product.drug}"
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


# --------------------------------------------------------------------------- the treatment

#: Cream per application above this multiple of the label maximum is refused.
MAX_DOSE_MULTIPLE = 10.0


class CreamTreatment(Treatment):
    """A cream from a product catalogue, put on the whole treated field by the patient.

    Subclasses name their catalogue (:attr:`catalogue`), the model parameter that carries the
    cream's drug strength (:attr:`strength_parameters`), the event kind of an application
    (:meth:`apply_kind`) and their mechanism in words.

    Parameters
    ----------
    product : str
        A key of the catalogue.
    regimen : RegimenSpec
        The dosing schedule.
    """

    #: the products this cream treatment handles, keyed by the name used in scenario files
    catalogue: ClassVar[Mapping[str, Product]] = {}
    required_tables: ClassVar[Mapping[str, str]] = {
        "regimen": "a cream product needs a [regimen] table"
    }

    regimen: RegimenSpec

    @classmethod
    def product_keys(cls) -> tuple[str, ...]:
        return tuple(cls.catalogue)

    @field_validator("product")
    @classmethod
    def _in_catalogue(cls, v: str) -> str:
        if v not in cls.catalogue:
            raise fail(f"unknown product; allowed: {', '.join(cls.catalogue)}", v)
        return v

    def apply_kind(self) -> int:
        """Event kind of one application of this cream."""
        return APPLY

    @property
    def product_info(self) -> Product:
        """The :class:`~imiqsim.treatments.products.Product` named by ``product``."""
        return self.catalogue[self.product]

    @property
    def is_vehicle(self) -> bool:
        return self.product_info.vehicle

    @property
    def stops_when_clear(self) -> bool:
        return bool(self.regimen.until_clear)

    @property
    def drug_mg_per_application(self) -> float:
        return drug_mg_per_application(self.regimen, self.product_info)

    def events(self) -> DoseEvents:
        return build_events(self.regimen, self.product_info, self.apply_kind())

    def last_dose_h(self) -> float:
        return self.events().last_application_h()

    def describe(self) -> str:
        return describe_regimen(self.regimen, self.product_info)

    def delivery(self, area_cm2: float) -> Delivery:
        prod = self.product_info
        return Delivery(
            drug="none" if prod.vehicle else prod.drug,
            strength_pct=0.0 if prod.vehicle else prod.strength_pct,
            amount=_amount_text(self.regimen, prod),
            drug_mg_per_application=self.drug_mg_per_application,
            applied_by="patient",
            setting="at home",
            directed="field",
            target=f"the whole treated field ({area_cm2:g} cm2)",
        )

    def model_inputs(self) -> dict[str, float]:
        return {name: self.product_info.drug_fraction for name in self.strength_parameters}

    # ------------------------------------------------------------------ label and dose

    def label_findings(self, indication: str, site: str, lesion_type: str) -> list[Finding]:
        out = super().label_findings(indication, site, lesion_type)
        if indication not in self.product_info.approved_indications:
            approved = [
                k
                for k, p in self.catalogue.items()
                if not p.vehicle and indication in p.approved_indications
            ]
            out.append(
                (
                    "product",
                    self.product,
                    (
                        f"off-label: {self.product} is not approved for {indication} "
                        f"(approved: {', '.join(approved) or 'none'})"
                    ),
                )
            )
        return out

    def _dose_multiple(self) -> float:
        return self.regimen.amount.cream_mg_total() / self.product_info.label_max_cream_mg

    def _dose_text(self, multiple: float, refused: bool) -> str:
        prod = self.product_info
        units = f"{prod.label_max_units:g} {prod.unit}" + ("" if prod.label_max_units == 1 else "s")
        # a label maximum of less than one dose unit (a tube) is stated in mg only
        units = f" = {units}" if prod.label_max_units >= 1 else ""
        label = f"{prod.label_max_cream_mg:g} mg cream{units}" + (
            "" if prod.vehicle else f" = {prod.label_max_drug_mg:g} mg {prod.drug}"
        )
        this = f"{self.regimen.amount.cream_mg_total():g} mg cream per application"
        if not prod.vehicle:
            this += f" ({self.drug_mg_per_application:g} mg {prod.drug})"
        if refused:
            return (
                f"{this} is {multiple:.3g}x the label maximum of {label}; at most "
                f"{MAX_DOSE_MULTIPLE:g}x is accepted"
            )
        return f"{this} is {multiple:.3g}x the label maximum per application ({label})"

    def dose_refusal(self) -> Finding | None:
        multiple = self._dose_multiple()
        if multiple <= MAX_DOSE_MULTIPLE + 1e-9:
            return None
        key, value = self.regimen.amount.given
        return f"regimen.amount.{key}", value, self._dose_text(multiple, refused=True)

    def warnings(self, days: float | None) -> list[str]:
        out: list[str] = []
        multiple = self._dose_multiple()
        if multiple > 1.0 + 1e-9:
            out.append(f"regimen.amount: {self._dose_text(multiple, refused=False)}")
        prod = self.product_info
        key, value = self.regimen.amount.given
        if key == "pump_actuations" and prod.unit != "pump actuation":
            out.append(
                f"regimen.amount: {prod.key} is supplied in {prod.unit}s, not pumps; "
                f"{value:g} pump actuations taken as {self.regimen.amount.cream_mg_total():g} "
                "mg cream"
            )
        if days is not None:
            last = self.last_dose_h()
            if days * 24.0 < last:
                out.append(
                    f"days = {days:g} ends before the last scheduled application "
                    f"(day {last / 24.0:.1f}); later doses are not simulated"
                )
        return out


class ImiquimodCream(CreamTreatment):
    """Imiquimod 5%, 3.75% or 2.5% cream, or the vehicle of one of them.

    Examples
    --------
    >>> t = ImiquimodCream(product="imiquimod-5%", regimen={"weekdays": ["mon", "thu"],
    ...     "max_weeks": 16, "leave_on_hours": 8, "amount": {"sachets": 1}})
    >>> t.delivery(25.0).who_and_where()
    'patient, at home: the whole treated field (25 cm2)'
    >>> t.model_inputs()
    {'cream_strength': 0.05}
    """

    kind: ClassVar[str] = "imiquimod"
    catalogue: ClassVar[Mapping[str, Product]] = PRODUCTS
    strength_parameters: ClassVar[tuple[str, ...]] = ("cream_strength",)
    calibration: ClassVar[str] = (
        "calibrated against the imiquimod trials (pharmacokinetics, clearance, local "
        "reactions; data/calibration.csv)"
    )
    label_sites: ClassVar[Mapping[str, tuple[str, ...]]] = IMIQUIMOD_LABEL_SITES
    label_site_text: ClassVar[Mapping[str, str]] = IMIQUIMOD_LABEL_TEXT
    lesion_type_text: ClassVar[str] = IMIQUIMOD_LESION_TYPE_TEXT

    def mechanism(self) -> str:
        if self.is_vehicle:
            return "no drug: background immune surveillance only"
        return "immune response modifier (TLR7 agonist): innate and adaptive immune killing"
