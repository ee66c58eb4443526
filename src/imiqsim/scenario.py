"""Validated scenarios: what to simulate, read from TOML files, presets or the API.

A :class:`Scenario` bundles the indication, the treated site and area, one treatment (a
cream regimen, cryotherapy, ...: see :mod:`imiqsim.treatments`), the assessment visit,
mechanism knockouts and parameter overrides. In a scenario file the treatment's keys sit at
the top level (``product = "..."`` with a ``[regimen]`` or ``[cryotherapy]`` table). Every
bad input is refused here, at the boundary, with an :class:`~imiqsim.errors.InputError`
whose message names the field (dotted path as in the scenario file), echoes the value and
says what is allowed.

Examples
--------
>>> from imiqsim.scenario import load_preset
>>> sc = load_preset("ak-5pct")
>>> sc.events().n_applications
32
>>> sc.treatment.kind
'imiquimod'
>>> sc.with_overrides(area_cm2=50.0).area_cm2
50.0
"""

from __future__ import annotations

import dataclasses
import os
import re
import tomllib
from importlib import resources
from pathlib import Path
from typing import Any, ClassVar, Literal

from pydantic import Field, field_validator, model_serializer, model_validator

from imiqsim import model as _model
from imiqsim.errors import InputError
from imiqsim.population import ENROLMENT, EnrolmentRule
from imiqsim.treatments import (
    CryoSpec,
    DoseEvents,
    RegimenSpec,
    TreatmentChoice,
    build_treatment,
    treatment_classes,
    treatment_file_keys,
)
from imiqsim.treatments.cream import MAX_DOSE_MULTIPLE, CreamTreatment
from imiqsim.treatments.products import Product
from imiqsim.validation import MISSING, InputModel, StrictBool, StrictFloat, StrictInt, fail
from imiqsim.vocabulary import HOURS_PER_WEEK, HOURS_PER_YEAR

__all__ = [
    "ASSESSMENT_LEVELS",
    "ASSESSMENT_METHODS",
    "INDICATIONS",
    "KNOCKOUTS",
    "LESION_TYPES",
    "MAX_DOSE_MULTIPLE",
    "MAX_RECURRENCE_MONTHS",
    "MAX_RECURRENCE_WEEKS",
    "MAX_VISIBLE_LESIONS",
    "SITES",
    "AssessmentSpec",
    "PopulationSpec",
    "Scenario",
    "list_presets",
    "load_preset",
    "load_scenario",
    "resolve",
]

#: Mechanism parts that can be switched off (the model's knockouts).
KNOCKOUTS: tuple[str, ...] = tuple(_model.KNOCKOUTS)
#: Indications with lesion biology in the model's tables.
INDICATIONS: tuple[str, ...] = _model.INDICATIONS
#: Treated body sites with a permeability in the model's tables.
SITES: tuple[str, ...] = _model.SITES

# the allowed values are read from the model's tables (a Literal of a tuple lists its items)
Indication = Literal[INDICATIONS]  # type: ignore[valid-type]
Site = Literal[SITES]  # type: ignore[valid-type]
LesionType = Literal["superficial", "nodular", "infiltrative", "melanoma"]
LESION_TYPES: tuple[str, ...] = ("superficial", "nodular", "infiltrative", "melanoma")

_OFF_LABEL_HINT = "; set off_label_ok = true to simulate it anyway"

_PRESET_PACKAGE = "imiqsim"
_PRESET_DIR = "presets"


# --------------------------------------------------------------------------- trial design tables

#: most visible lesions at entry a [population] table may ask for (trials: up to ~50 on the
#: forearms and hands; beyond 12 lesions share slots, see imiqsim.population.slot_plan)
MAX_VISIBLE_LESIONS = 100
#: longest recurrence follow-up an [assessment] table may ask for, months after clearance
MAX_RECURRENCE_MONTHS = 120
#: the same in weeks
MAX_RECURRENCE_WEEKS = 520
#: how clearance is judged at the assessment visit
ASSESSMENT_METHODS: tuple[str, ...] = ("clinical", "histological", "composite")
#: what the trial's primary clearance counts
ASSESSMENT_LEVELS: tuple[str, ...] = ("patient", "lesion")


class PopulationSpec(InputModel):
    """Who the trial enrols: the scenario file's ``[population]`` table.

    Every key is optional; an absent key takes the indication's row of
    ``model/populations.csv`` (see :meth:`Scenario.enrolment`).

    Parameters
    ----------
    visible_lesions : [int, int], optional
        ``[min, max]`` visible lesions at entry, drawn uniformly (whole numbers,
        1 <= min <= max <= :data:`MAX_VISIBLE_LESIONS`). Default: the indication's law
        (AK 4-8 uniform, sBCC 1, EGW 1 + Poisson(5)).
    subclinical_lesions_mean : float, optional
        Poisson mean of subclinical (sub-visible) lesions at entry (0..50).
    female_fraction : float, optional
        Share of women (0..1).
    immunosuppressed_fraction : float, optional
        Share of organ-transplant immunosuppressed patients (0..1). The
        ``immunosuppressed_fraction`` argument of a trial run overrides it.
    age_mean, age_sd : float, optional
        Age at entry, years (normal, clipped to 18..95): mean 18..95, SD 0..30.
    """

    _error_prefix: ClassVar[str] = "population"

    visible_lesions: list[StrictInt] | None = None
    subclinical_lesions_mean: StrictFloat | None = Field(default=None, ge=0, le=50)
    female_fraction: StrictFloat | None = Field(default=None, ge=0, le=1)
    immunosuppressed_fraction: StrictFloat | None = Field(default=None, ge=0, le=1)
    age_mean: StrictFloat | None = Field(default=None, ge=18, le=95)
    age_sd: StrictFloat | None = Field(default=None, ge=0, le=30)

    @field_validator("visible_lesions")
    @classmethod
    def _min_max(cls, v: list[int] | None) -> list[int] | None:
        if v is None:
            return v
        allowed = (
            "a pair [min, max] of whole numbers of visible lesions at entry with "
            f"1 <= min <= max <= {MAX_VISIBLE_LESIONS}"
        )
        if len(v) != 2 or not 1 <= v[0] <= v[1] <= MAX_VISIBLE_LESIONS:
            raise fail(allowed, v)
        return v

    def apply_to(self, rule: EnrolmentRule) -> EnrolmentRule:
        """``rule`` with this table's keys on top (absent keys keep the rule's values)."""
        changes: dict[str, Any] = {
            k: float(v)
            for k, v in (
                ("female_fraction", self.female_fraction),
                ("immunosuppressed_fraction", self.immunosuppressed_fraction),
                ("age_mean", self.age_mean),
                ("age_sd", self.age_sd),
                ("subclinical_mean", self.subclinical_lesions_mean),
            )
            if v is not None
        }
        if self.visible_lesions is not None:
            lo, hi = self.visible_lesions
            changes.update(visible_law="uniform", visible_a=float(lo), visible_b=float(hi))
        if not changes:
            return rule
        return dataclasses.replace(rule, **changes, source=rule.source + "; scenario [population]")


class AssessmentSpec(InputModel):
    """How the trial judges its outcome: the scenario file's ``[assessment]`` table.

    The visit itself is ``weeks_after_last_dose`` in this table or, as before, the top-level
    ``assessment_weeks_after_last_dose`` (one of the two, not both).

    Parameters
    ----------
    method : {"clinical", "histological", "composite"}
        Clearance judged by inspection (no visible lesion), by histology (no
        lesion above the histological detection limit: excision or biopsy) or
        both. Sets the ``assessed_clearance`` endpoints.
    level : {"patient", "lesion"}
        The trial's primary clearance: share of patients cleared
        (``assessed_clearance``) or share of baseline lesions cleared, pooled over
        patients (``assessed_lesion_clearance``); see :attr:`primary_endpoint`.
    recurrence_after_months : list of int
        Follow-up visits after clearance, months (whole, 1..:data:`MAX_RECURRENCE_MONTHS`,
        each once): each gives the endpoints ``recurrence_<N>mo`` (a visible lesion again N
        months after clearance, among complete clearers) and ``sustained_clearance_<N>mo``
        (cleared and no visible lesion N months later). The simulated follow-up extends
        to cover the longest.
    recurrence_after_weeks : list of int
        The same in whole weeks (1..:data:`MAX_RECURRENCE_WEEKS`): ``recurrence_<N>wk`` and
        ``sustained_clearance_<N>wk`` (e.g. Edwards 1998: 12 weeks after clearance).
    """

    _error_prefix: ClassVar[str] = "assessment"

    method: Literal["clinical", "histological", "composite"] = "clinical"
    level: Literal["patient", "lesion"] = "patient"
    recurrence_after_months: list[StrictInt] = Field(default_factory=list)
    recurrence_after_weeks: list[StrictInt] = Field(default_factory=list)

    @field_validator("recurrence_after_months", "recurrence_after_weeks")
    @classmethod
    def _follow_up_times(cls, v: list[int], info: Any) -> list[int]:
        unit, most = (
            ("months", MAX_RECURRENCE_MONTHS)
            if info.field_name == "recurrence_after_months"
            else ("weeks", MAX_RECURRENCE_WEEKS)
        )
        for i, m in enumerate(v):
            if not 1 <= m <= most:
                raise fail(f"whole {unit} after clearance from 1 to {most}", m, field=f"[{i}]")
        if len(set(v)) != len(v):
            raise fail(f"each follow-up time may be listed only once (in {unit})", v)
        return sorted(v)

    @property
    def primary_endpoint(self) -> str:
        """Name of the endpoint this assessment makes primary (see ``level``)."""
        return "assessed_clearance" if self.level == "patient" else "assessed_lesion_clearance"

    @property
    def recurrence_columns(self) -> dict[str, float]:
        """``recurrence_<N>wk`` / ``recurrence_<N>mo`` -> that time in hours, weeks first."""
        out = {f"recurrence_{w}wk": w * HOURS_PER_WEEK for w in self.recurrence_after_weeks}
        out.update(
            {f"recurrence_{m}mo": m * HOURS_PER_YEAR / 12.0 for m in self.recurrence_after_months}
        )
        return out

    def max_recurrence_h(self) -> float:
        """Longest follow-up after clearance asked for, hours (0 without any)."""
        return max(self.recurrence_columns.values(), default=0.0)


def _assessment_weeks_from_table(data: dict[str, Any]) -> dict[str, Any]:
    """Move ``[assessment].weeks_after_last_dose`` to the top-level field (one of the two)."""
    table = data.get("assessment")
    if not isinstance(table, dict) or "weeks_after_last_dose" not in table:
        return data
    weeks = table["weeks_after_last_dose"]
    field = "assessment.weeks_after_last_dose"
    if "assessment_weeks_after_last_dose" in data:
        raise fail(
            "give the assessment visit once: either assessment.weeks_after_last_dose or the "
            "top-level assessment_weeks_after_last_dose",
            weeks,
            field=field,
        )
    if isinstance(weeks, bool) or not isinstance(weeks, (int, float)) or not 0 <= weeks <= 260:
        raise fail("a number of weeks from 0 to 260", weeks, field=field)
    rest = {k: v for k, v in table.items() if k != "weeks_after_last_dose"}
    return {**data, "assessment": rest, "assessment_weeks_after_last_dose": float(weeks)}


class Scenario(InputModel):
    """A complete, validated description of one treatment to simulate.

    Parameters
    ----------
    name : str
        Short identifier (preset name or file stem).
    indication : str
        One of :data:`INDICATIONS`: actinic keratosis (AK), superficial basal cell carcinoma
        (sBCC), external genital warts (EGW).
    site : str
        Treated body site, one of :data:`SITES` (face, scalp, forearm_hand, trunk, extremity,
        genital, perianal).
    lesion_type : {"superficial", "nodular", "infiltrative", "melanoma"}
        Only meaningful for sBCC; anything but superficial is off-label.
    treatment : Treatment
        What is done to the skin (:data:`imiqsim.treatments.TreatmentChoice`). In a scenario
        file (and as keyword arguments) it is written as its own keys at the top level:
        ``product`` (a cream of :data:`imiqsim.treatments.products.PRODUCTS`, or
        ``"cryotherapy"``, ...) with its table (``regimen`` for a cream, ``cryotherapy``
        for the freeze protocol).
    area_cm2 : float
        Treated skin area, cm2 (> 0, <= 500).
    assessment_weeks_after_last_dose : float
        Weeks from the last scheduled application to the assessment visit
        (0..260; trials: AK 8, sBCC 12, EGW 0). In a file it may instead be written
        ``weeks_after_last_dose`` in the ``[assessment]`` table.
    population : PopulationSpec
        Who the trial enrols (``[population]``: lesions at entry, sex, age,
        immunosuppression); absent keys take the indication's defaults.
    assessment : AssessmentSpec
        How the outcome is judged (``[assessment]``: clinical/histological/composite,
        patient or lesion level, recurrence follow-up visits).
    days : float, optional
        Simulated horizon in days (> 0, <= 3650). Default: until the
        assessment visit (see :meth:`horizon_hours`).
    knockouts : list of str
        Mechanism parts switched off, from :data:`KNOCKOUTS`.
    parameters : dict of str to float
        Model parameter overrides (finite numbers; names are checked by the model).
    off_label_ok : bool
        Accept off-label uses (with a warning) instead of refusing them.
    description : str
        Free text, e.g. the source of the regimen.
    """

    _error_prefix: ClassVar[str] = ""

    name: str = Field(min_length=1)
    indication: Indication
    site: Site
    lesion_type: LesionType = "superficial"
    treatment: TreatmentChoice
    area_cm2: StrictFloat = Field(gt=0, le=500)
    assessment_weeks_after_last_dose: StrictFloat = Field(default=0.0, ge=0, le=260)
    population: PopulationSpec = Field(default_factory=PopulationSpec)
    assessment: AssessmentSpec = Field(default_factory=AssessmentSpec)
    days: StrictFloat | None = Field(default=None, gt=0, le=3650)
    knockouts: list[str] = Field(default_factory=list)
    parameters: dict[str, StrictFloat] = Field(default_factory=dict)
    off_label_ok: StrictBool = False
    description: str = ""

    def __init__(self, **data: Any) -> None:
        try:
            super().__init__(**data)
        except InputError as exc:
            raise _in_file_terms(exc) from None

    # ------------------------------------------------------------------ validators

    @model_validator(mode="before")
    @classmethod
    def _assessment_visit(cls, data: Any) -> Any:
        """Accept the visit as ``[assessment].weeks_after_last_dose`` (the top-level key's twin)."""
        return _assessment_weeks_from_table(data) if isinstance(data, dict) else data

    @model_validator(mode="before")
    @classmethod
    def _gather_treatment(cls, data: Any) -> Any:
        """Collect the treatment's top-level file keys (product and its table) into one value."""
        if not isinstance(data, dict):
            return data
        keys = ("product", *treatment_file_keys())
        given = {k: data[k] for k in keys if k in data}
        if not given:
            return data
        if "treatment" in data:
            raise fail("give either treatment or product with its table, not both", given)
        rest = {k: v for k, v in data.items() if k not in keys}
        return {**rest, "treatment": given}

    @field_validator("treatment", mode="before")
    @classmethod
    def _build_treatment(cls, v: Any) -> Any:
        if isinstance(v, dict):
            try:
                return build_treatment(v)
            except InputError as exc:
                raise fail(exc.allowed, exc.value, field=exc.field) from None
        return v

    @field_validator("knockouts")
    @classmethod
    def _known_knockouts(cls, v: list[str]) -> list[str]:
        seen: set[str] = set()
        for k in v:
            if k not in KNOCKOUTS:
                raise fail(f"unknown knockout; allowed: {', '.join(KNOCKOUTS)}", k)
            if k in seen:
                raise fail("each knockout may be listed only once", k)
            seen.add(k)
        return v

    @model_validator(mode="after")
    def _check_label_and_dose(self) -> Scenario:
        for field, value, allowed in self._off_label_findings():
            if not self.off_label_ok:
                raise fail(allowed + _OFF_LABEL_HINT, value, field=field)
        if self.lesion_type != "superficial" and self.indication != "sBCC":
            # the model has lesion-type biology only for BCC; refusing beats ignoring it
            raise fail(
                "lesion_type applies only to indication sBCC; AK and EGW take 'superficial'",
                self.lesion_type,
                field="lesion_type",
            )
        refusal = self.treatment.dose_refusal()
        if refusal is not None:
            field, value, allowed = refusal
            raise fail(allowed, value, field=field)
        if self.days is None and self._default_horizon_h() > 3650 * 24:
            raise fail(
                f"the default horizon (schedule plus assessment) is "
                f"{self._default_horizon_h() / 24:.0f} days, over the 3650-day limit; "
                "shorten the schedule or the assessment, or set days",
                MISSING,
                field="days",
            )
        return self

    @model_serializer(mode="wrap")
    def _dump_in_file_terms(self, handler: Any) -> dict[str, Any]:
        """Dump the treatment as its top-level file keys, so a dump loads back as a scenario."""
        d = handler(self)
        t = d.pop("treatment", None) or {}
        out: dict[str, Any] = {}
        for key, value in d.items():
            if key == "area_cm2":  # the file keys sit where the treatment field is
                out["product"] = t.get("product")
                for table in treatment_file_keys():
                    out[table] = t.get(table)
            out[key] = value
        return out

    def _off_label_findings(self) -> list[tuple[str, Any, str]]:
        """(field, value, reason) for every off-label aspect of this scenario."""
        return self.treatment.label_findings(self.indication, self.site, self.lesion_type)

    # ------------------------------------------------------------------ the treatment, by name

    @property
    def product(self) -> str:
        """The treatment's ``product`` key, as in the scenario file."""
        return self.treatment.product

    @property
    def regimen(self) -> RegimenSpec | None:
        """The cream regimen (None for a treatment without one, e.g. cryotherapy)."""
        return getattr(self.treatment, "regimen", None)

    @property
    def cryotherapy(self) -> CryoSpec | None:
        """The freeze protocol (None unless the treatment is cryotherapy)."""
        return getattr(self.treatment, "cryotherapy", None)

    def product_obj(self) -> Product | None:
        """The cream :class:`~imiqsim.treatments.products.Product` (None without a cream)."""
        return self.treatment.product_info if isinstance(self.treatment, CreamTreatment) else None

    @property
    def is_vehicle(self) -> bool:
        """True when the treatment is a drug-free vehicle cream."""
        return self.treatment.is_vehicle

    @property
    def cream_strength(self) -> float:
        """Drug mass fraction of the cream put on the skin (0 for a vehicle or cryotherapy)."""
        return self.treatment.delivery(self.area_cm2).strength_pct / 100.0

    # ------------------------------------------------------------------ public API

    def model_parameters(
        self, model: Any, overrides: dict[str, float] | None = None, knockouts: Any = ()
    ) -> Any:
        """The model's parameter vector for this scenario's typical patient.

        The one place where a scenario becomes parameters: indication, site, treated area,
        what the treatment sets (cream strength; every other treatment's strength 0), the
        scenario's knockouts and parameter overrides, then ``overrides`` and extra
        ``knockouts`` on top. ``model`` is a :class:`imiqsim.model.Model`.
        """
        from imiqsim.model.bounds import check_parameter, check_parameters
        from imiqsim.validation import require_unique

        kos = list(self.knockouts) + [
            k for k in require_unique(knockouts, "knockouts") if k not in self.knockouts
        ]
        check_parameters({**self.parameters, **(overrides or {})})  # parameter_bounds.csv
        check_parameter("treated_area_cm2", self.area_cm2, "area_cm2")  # floor: 1 mm2
        inputs = {name: 0.0 for cls in treatment_classes() for name in cls.strength_parameters}
        inputs.update(self.treatment.model_inputs())
        return model.parameter_vector(
            self.indication,
            self.site,
            self.area_cm2,
            {**inputs, **self.parameters, **(overrides or {})},
            kos,
        )

    def enrolment(self) -> EnrolmentRule:
        """Who this scenario's trial enrols: the indication's default row with ``[population]``.

        Examples
        --------
        >>> r = load_preset("ak-3.75pct").enrolment()
        >>> r.visible_law, r.visible_a, r.visible_b
        ('uniform', 5.0, 20.0)
        """
        return self.population.apply_to(ENROLMENT[self.indication])

    def events(self) -> DoseEvents:
        """Timed events of the treatment: applications/wash-offs, freezes, ..."""
        return self.treatment.events()

    def treatment_text(self) -> str:
        """The treatment protocol in plain words."""
        return self.treatment.describe()

    def drug_mg_per_application(self) -> float:
        """Drug mg per application (0 for a vehicle and for cryotherapy)."""
        return self.treatment.drug_mg_per_application

    def dose_mg_per_cm2(self) -> float:
        """Drug mg per cm2 of treated skin per application."""
        return self.drug_mg_per_application() / self.area_cm2

    def assessment_time_h(self) -> float:
        """Scheduled assessment visit: last scheduled dose + assessment weeks, hours.

        With ``until_clear`` or repeat courses a patient may stop earlier; this
        is the visit of a patient who receives every scheduled application.
        """
        last = self.treatment.last_dose_h()
        return last + self.assessment_weeks_after_last_dose * HOURS_PER_WEEK

    def _default_horizon_h(self) -> float:
        # never stop before the last wash-off, even with a 0-week assessment
        return max(self.assessment_time_h(), self.events().end_h())

    def horizon_hours(self) -> float:
        """Simulated horizon in hours.

        ``days * 24`` when ``days`` is set; otherwise the later of the scheduled
        assessment visit (:meth:`assessment_time_h`) and the last event (the
        final wash-off), which covers every course including repeats.
        """
        if self.days is not None:
            return float(self.days) * 24.0
        return self._default_horizon_h()

    def describe(self) -> str:
        """One line in plain words: indication, site, area and treatment."""
        text = (
            f"{self.indication} on {self.site.replace('_', '/')} ({self.area_cm2:g} cm2): "
            f"{self.treatment_text()}"
        )
        if self.assessment_weeks_after_last_dose > 0:
            text += (
                f"; assessed {self.assessment_weeks_after_last_dose:g} weeks after the last dose"
            )
        if self.population.visible_lesions is not None:
            lo, hi = self.population.visible_lesions
            text += f"; {lo}-{hi} visible lesions at entry"
        if self.assessment.method != "clinical" or self.assessment.level != "patient":
            text += f"; {self.assessment.method} clearance per {self.assessment.level}"
        visits = [f"{w} weeks" for w in self.assessment.recurrence_after_weeks]
        visits += [f"{m} months" for m in self.assessment.recurrence_after_months]
        if visits:
            text += f"; recurrence looked for {', '.join(visits)} after clearance"
        if self.knockouts:
            text += f"; knocked out: {', '.join(self.knockouts)}"
        return text

    def warnings(self) -> list[str]:
        """Accepted but noteworthy aspects of this scenario, in plain words.

        Off-label uses accepted with ``off_label_ok``, then what the treatment notes: for a
        cream a dose above the label maximum (refused above :data:`MAX_DOSE_MULTIPLE` times),
        a pump count for a sachet-only product, and a horizon that ends before the schedule.
        """
        out: list[str] = []
        for field, value, reason in self._off_label_findings():
            out.append(f"{field} = {value!r} is {reason} (accepted: off_label_ok = true)")
        out += self.treatment.warnings(self.days)
        return out

    def with_overrides(self, **changes: Any) -> Scenario:
        """Return a new, validated Scenario with some fields changed.

        Parameters
        ----------
        **changes
            Field values. A mapping given for ``regimen`` is merged into the
            current regimen (``amount`` inside it is replaced whole; giving
            ``weekdays`` drops ``applications_per_week`` and vice versa).
            Other fields are replaced. Dotted names set one nested value, e.g.
            ``**{"regimen.leave_on_hours": 6, "parameters.ec50": 2.0}``
            (a dotted ``parameters.x`` adds to the existing overrides).

        Returns
        -------
        Scenario

        Raises
        ------
        InputError
            If the result is not a valid scenario.

        Examples
        --------
        >>> sc = load_preset("ak-5pct")
        >>> sc.with_overrides(regimen={"leave_on_hours": 6}).regimen.leave_on_hours
        6.0
        """
        data = self.model_dump()
        if "treatment" in changes:  # a whole treatment replaces the file keys of the old one
            for key in ("product", *treatment_file_keys()):
                data.pop(key, None)
        for key, value in changes.items():
            parts = key.split(".")
            if len(parts) == 1:
                if key == "regimen" and isinstance(value, dict):
                    data["regimen"] = _merge_regimen(data["regimen"], value)
                else:
                    data[key] = value
                continue
            # dotted path: descend through existing mappings, then set the leaf
            head, rest = parts[0], parts[1:]
            target = data.get(head)
            if head == "regimen" and isinstance(target, dict):
                nested: dict[str, Any] = {}
                node = nested
                for p in rest[:-1]:
                    node = node.setdefault(p, {})
                node[rest[-1]] = value
                data["regimen"] = _merge_regimen(target, nested)
            elif isinstance(target, dict) and len(rest) == 1:
                data[head] = {**target, rest[0]: value}
            else:
                raise InputError(key, value, "a dotted name must point into regimen or parameters")
        return Scenario(**data)


def _in_file_terms(exc: InputError) -> InputError:
    """Name a field as in a scenario file: the treatment's keys sit at the top level."""
    field = exc.field.removeprefix("treatment.")
    allowed = exc.allowed
    if allowed.startswith("unknown key; allowed keys: ") and "." not in field:
        keys = [k for k in Scenario.model_fields if k != "treatment"]
        at = keys.index("area_cm2")
        keys[at:at] = ["product", *treatment_file_keys()]
        allowed = f"unknown key; allowed keys: {', '.join(keys)}"
    if field == exc.field and allowed == exc.allowed:
        return exc
    return InputError(field, exc.value, allowed)


def _merge_regimen(current: dict[str, Any], change: dict[str, Any]) -> dict[str, Any]:
    merged = dict(current)
    merged.update(change)
    # the two ways of naming dosing days exclude each other: the newer one wins
    if change.get("weekdays") is not None and "applications_per_week" not in change:
        merged["applications_per_week"] = None
    if change.get("applications_per_week") is not None and "weekdays" not in change:
        merged["weekdays"] = None
    if isinstance(merged.get("amount"), dict):
        # the dumped amount carries None for the unused units; drop them
        merged["amount"] = {k: v for k, v in merged["amount"].items() if v is not None}
    return merged


# --------------------------------------------------------------------------- files and presets


def _toml_error_position(exc: tomllib.TOMLDecodeError) -> str:
    m = re.search(r"\(at line (\d+), column (\d+)\)", str(exc))
    if m:
        return f"line {m.group(1)}, column {m.group(2)}"
    return "end of file" if "end of document" in str(exc) else "unknown position"


def _scenario_from_toml_text(text: str, source: str, default_name: str) -> Scenario:
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise InputError(
            "scenario",
            source,
            f"a valid TOML file; syntax error at {_toml_error_position(exc)} of {source}: {exc}",
        ) from None
    data.setdefault("name", default_name)
    try:
        return Scenario(**data)
    except InputError as exc:
        # keep the field path, but say which file it came from
        raise InputError(exc.field, exc.value, f"{exc.allowed} (in {source})") from None


def load_scenario(path: str | os.PathLike[str]) -> Scenario:
    """Read and validate a scenario TOML file.

    Parameters
    ----------
    path : str or path-like
        A ``.toml`` file. A missing ``name`` key defaults to the file stem.

    Returns
    -------
    Scenario

    Raises
    ------
    InputError
        If the file is missing, is not valid TOML (the message gives the line)
        or does not describe a valid scenario.
    """
    p = Path(path)
    if not p.is_file():
        raise InputError(
            "scenario", str(path), "an existing .toml file or a preset name (see `imiqsim presets`)"
        )
    try:
        text = p.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError("scenario", str(path), f"a readable UTF-8 TOML file ({exc})") from None
    return _scenario_from_toml_text(text, str(p), p.stem)


def _preset_root() -> Any:
    return resources.files(_PRESET_PACKAGE).joinpath(_PRESET_DIR)


def list_presets() -> list[str]:
    """Names of the shipped presets, sorted.

    Examples
    --------
    >>> "ak-5pct" in list_presets()
    True
    """
    root = _preset_root()
    return sorted(
        entry.name[: -len(".toml")]
        for entry in root.iterdir()
        if entry.name.endswith(".toml") and entry.is_file()
    )


def load_preset(name: str) -> Scenario:
    """Load a shipped preset by name (see :func:`list_presets`).

    Raises
    ------
    InputError
        If no preset has that name.
    """
    names = list_presets()
    if name not in names:
        raise InputError("preset", name, f"one of: {', '.join(names)}")
    text = _preset_root().joinpath(f"{name}.toml").read_text(encoding="utf-8")
    return _scenario_from_toml_text(text, f"preset {name}", name)


def resolve(name_or_path: str | os.PathLike[str]) -> Scenario:
    """A Scenario from a preset name or a path to a ``.toml`` file.

    A string that names a preset loads the preset; anything else is treated
    as a file path.

    Raises
    ------
    InputError
        If it is neither a preset name nor an existing file.
    """
    if isinstance(name_or_path, str) and name_or_path in list_presets():
        return load_preset(name_or_path)
    p = Path(name_or_path)
    if p.is_file() or p.suffix == ".toml":
        return load_scenario(p)
    raise InputError(
        "scenario",
        str(name_or_path),
        f"a preset name ({', '.join(list_presets())}) or an existing .toml file",
    )
