"""Treatments as plug-ins: every way of treating the skin behind one protocol.

:mod:`~imiqsim.treatments.base` declares the protocol (:class:`Treatment`: events, plain
words, what it delivers, what it kills directly, label checks) and the registry;
:mod:`~imiqsim.treatments.products` the imiquimod product catalogue;
:mod:`~imiqsim.treatments.cream` cream regimens -> events -> words (:class:`ImiquimodCream`);
:mod:`~imiqsim.treatments.cryotherapy` the cryotherapy comparator;
:mod:`~imiqsim.treatments.fluorouracil` 5-fluorouracil 5% cream (a direct cytotoxic). A scenario
holds one treatment (:data:`TreatmentChoice`, a discriminated union of the registered treatments).

Examples
--------
>>> from imiqsim.treatments import product_keys
>>> product_keys()[:2], product_keys()[-2:]
(('imiquimod-5%', 'imiquimod-3.75%'), ('cryotherapy', 'fluorouracil-5%'))
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any, Union

from pydantic import Discriminator, Tag

from imiqsim.treatments.base import (
    Delivery,
    Finding,
    Treatment,
    build_treatment,
    product_keys,
    treatment_class_for,
    treatment_classes,
    treatment_file_keys,
)
from imiqsim.treatments.cream import CreamTreatment, ImiquimodCream, RegimenSpec
from imiqsim.treatments.cryotherapy import CryoSpec, Cryotherapy
from imiqsim.treatments.events import DoseEvents
from imiqsim.treatments.fluorouracil import FluorouracilCream

__all__ = [
    "CreamTreatment",
    "CryoSpec",
    "Cryotherapy",
    "Delivery",
    "DoseEvents",
    "Finding",
    "FluorouracilCream",
    "ImiquimodCream",
    "RegimenSpec",
    "Treatment",
    "TreatmentChoice",
    "build_treatment",
    "product_keys",
    "treatment_class_for",
    "treatment_classes",
    "treatment_file_keys",
]


def _tag(value: Any) -> str | None:
    if isinstance(value, Treatment):
        return value.kind
    if isinstance(value, dict):
        cls = treatment_class_for(value.get("product", ""))
        return cls.kind if cls is not None else None
    return None


if TYPE_CHECKING:  # a static checker sees the protocol; pydantic sees the tagged union
    TreatmentChoice = Treatment
else:
    #: One treatment of any registered kind (pydantic discriminated union, tagged by ``kind``),
    #: built from the registry so that a new treatment module joins it by being imported here
    TreatmentChoice = Annotated[
        Union[tuple(Annotated[c, Tag(c.kind)] for c in treatment_classes())],  # noqa: UP007
        Discriminator(_tag),
    ]
