"""The treatment protocol: what every treatment tells the rest of imiqsim.

A treatment (a cream regimen, a cryotherapy protocol, ...) is a validated input model that
knows its own scenario-file keys (``product`` and its tables), and answers every question the
scenario, the trial code and the comparison table ask about it: its timed events, a plain-words
description, what it delivers (drug, strength, amount, who applies it, field- or
lesion-directed), how it kills lesion cells, which model parameters it sets, and whether a use
is on its label. Callers ask the treatment; none of them compares product names.

Each concrete subclass sets :attr:`Treatment.kind` (its tag in the scenario's discriminated
union) and registers itself on definition; :func:`treatment_classes` lists them in
registration order.

Examples
--------
>>> from imiqsim.treatments import build_treatment
>>> t = build_treatment({"product": "cryotherapy", "cryotherapy": {"freeze_seconds": 10.0}})
>>> t.kind, t.delivery(25.0).directed
('cryotherapy', 'lesion-directed')
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

from pydantic import model_validator

from imiqsim.errors import InputError
from imiqsim.treatments.events import DoseEvents
from imiqsim.validation import MISSING, InputModel, fail

__all__ = [
    "Delivery",
    "Finding",
    "Treatment",
    "build_treatment",
    "product_keys",
    "treatment_class_for",
    "treatment_classes",
    "treatment_file_keys",
]

#: (field, value, reason) of an off-label aspect or a refused dose
Finding = tuple[str, Any, str]


@dataclass(frozen=True)
class Delivery:
    """What a treatment puts on the skin, and how.

    Attributes
    ----------
    drug : str
        The active agent (``"imiquimod"``, ``"fluorouracil"``, ``"liquid nitrogen"``), or
        ``"none"`` for a vehicle.
    strength_pct : float
        Drug strength of the cream, % w/w (0 for a vehicle and for cryotherapy).
    amount : str
        Amount per application (or session) in plain words.
    drug_mg_per_application : float
        Drug mg per application (0 for a vehicle and for cryotherapy).
    applied_by : str
        ``"patient"`` or ``"clinician"``.
    setting : str
        ``"at home"`` or ``"in clinic"``.
    directed : str
        ``"field"`` (the whole treated area, subclinical lesions included) or
        ``"lesion-directed"`` (only what is visible).
    target : str
        What is treated, in plain words.
    """

    drug: str
    strength_pct: float
    amount: str
    drug_mg_per_application: float
    applied_by: str
    setting: str
    directed: str
    target: str

    def who_and_where(self) -> str:
        """E.g. ``"patient, at home: the whole treated field (25 cm2)"``."""
        return f"{self.applied_by}, {self.setting}: {self.target}"


_REGISTRY: dict[str, type[Treatment]] = {}


class Treatment(InputModel, ABC):
    """Base of every treatment: its file keys, events, words, delivery and label checks.

    A treatment's fields are scenario-file keys: ``product`` and its tables (``regimen``,
    ``cryotherapy``, ...). Validation errors therefore name the field as it is written in a
    scenario file.
    """

    #: tag in the scenario's discriminated union (set by each concrete subclass)
    kind: ClassVar[str] = ""
    #: scenario tables this treatment needs, with the message when one is missing
    required_tables: ClassVar[Mapping[str, str]] = {}
    #: model parameters this treatment may set (every other treatment sets them to 0)
    strength_parameters: ClassVar[tuple[str, ...]] = ()
    #: kill tallies (model states, kind "direct") this treatment drives
    direct_kill_tallies: ClassVar[tuple[str, ...]] = ()
    #: how the model's parameters for this treatment were obtained, in plain words
    calibration: ClassVar[str] = ""
    #: label sites per indication, why others are off-label, and the BCC lesion-type rule
    label_sites: ClassVar[Mapping[str, tuple[str, ...]]] = {}
    label_site_text: ClassVar[Mapping[str, str]] = {}
    lesion_type_text: ClassVar[str] = ""

    product: str

    @classmethod
    def __pydantic_init_subclass__(cls, **kwargs: Any) -> None:
        super().__pydantic_init_subclass__(**kwargs)
        if cls.__dict__.get("kind"):
            _REGISTRY[cls.kind] = cls

    # ------------------------------------------------------------------ file keys

    @classmethod
    @abstractmethod
    def product_keys(cls) -> tuple[str, ...]:
        """The ``product`` values this treatment handles."""

    @classmethod
    def table_keys(cls) -> tuple[str, ...]:
        """This treatment's scenario-file keys other than ``product``."""
        return tuple(k for k in cls.model_fields if k != "product")

    @classmethod
    def foreign_table(cls, key: str, product: Any) -> Any:
        """The error for a table of another treatment given with this one's product."""
        owner = next(c for c in _REGISTRY.values() if key in c.table_keys())
        return fail(
            f'[{key}] needs product = "{owner.product_keys()[0]}"', product, field="product"
        )

    @model_validator(mode="before")
    @classmethod
    def _tables_present(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            return data
        for key, text in cls.required_tables.items():
            if data.get(key) is None:
                raise fail(text, MISSING, field=key)
        others = set(treatment_file_keys()) - set(cls.model_fields)
        for key in treatment_file_keys():
            if key in others and data.get(key) is not None:
                raise cls.foreign_table(key, data.get("product"))
        # another treatment's absent table may be written as None (a scenario dump)
        return {k: v for k, v in data.items() if not (k in others and v is None)}

    # ------------------------------------------------------------------ what it is

    @abstractmethod
    def events(self) -> DoseEvents:
        """The timed events (applications, wash-offs, checks, freezes)."""

    @abstractmethod
    def describe(self) -> str:
        """The protocol in plain words."""

    @abstractmethod
    def delivery(self, area_cm2: float) -> Delivery:
        """What it delivers onto a treated area of ``area_cm2``."""

    @abstractmethod
    def mechanism(self) -> str:
        """How it clears lesions, in plain words."""

    def last_dose_h(self) -> float:
        """Time (h) of the last scheduled dose, from which the assessment visit is counted."""
        return self.events().end_h()

    @property
    def is_vehicle(self) -> bool:
        """True when it delivers no active agent (a drug-free cream)."""
        return False

    @property
    def stops_when_clear(self) -> bool:
        """True when dosing stops once the patient has no visible lesion."""
        return False

    @property
    def drug_mg_per_application(self) -> float:
        """Drug mg per application (0 when it delivers no drug)."""
        return 0.0

    def model_inputs(self) -> dict[str, float]:
        """Model parameter values this treatment sets (e.g. the cream strength)."""
        return {}

    # ------------------------------------------------------------------ label and dose

    def label_findings(self, indication: str, site: str, lesion_type: str) -> list[Finding]:
        """(field, value, reason) for every off-label aspect of this use."""
        out: list[Finding] = []
        if indication in self.label_sites and site not in self.label_sites[indication]:
            out.append(("site", site, f"off-label: {self.label_site_text[indication]}"))
        if indication == "sBCC" and lesion_type != "superficial" and self.lesion_type_text:
            out.append(("lesion_type", lesion_type, self.lesion_type_text))
        return out

    def dose_refusal(self) -> Finding | None:
        """(field, value, reason) when the dose is too high to simulate, else None."""
        return None

    def warnings(self, days: float | None) -> list[str]:
        """Accepted but noteworthy aspects of the dose and schedule, in plain words."""
        return []


def treatment_classes() -> tuple[type[Treatment], ...]:
    """Every registered treatment, in registration order."""
    return tuple(_REGISTRY.values())


def product_keys() -> tuple[str, ...]:
    """Every ``product`` a scenario may name, in registration order."""
    return tuple(k for c in _REGISTRY.values() for k in c.product_keys())


def treatment_file_keys() -> tuple[str, ...]:
    """The treatments' scenario-file tables (``regimen``, ``cryotherapy``, ...), once each."""
    return tuple(dict.fromkeys(k for c in _REGISTRY.values() for k in c.table_keys()))


def treatment_class_for(product: str) -> type[Treatment] | None:
    """The treatment that handles ``product``; None if no treatment does."""
    return next((c for c in _REGISTRY.values() if product in c.product_keys()), None)


def build_treatment(data: Mapping[str, Any]) -> Treatment:
    """Validate a treatment from scenario-file keys (``product`` and its tables).

    Raises
    ------
    InputError
        Naming the field as written in a scenario file.
    """
    product = data.get("product", MISSING)
    if product is MISSING:
        raise InputError("product", MISSING, "this key is required")
    if not isinstance(product, str):
        raise InputError("product", product, "must be a string")
    cls = treatment_class_for(product)
    if cls is None:
        raise InputError(
            "product", product, f"unknown product; allowed: {', '.join(product_keys())}"
        )
    return cls(**data)
