"""The product catalogue: every marketed imiquimod cream and its vehicle, and their labels.

A :class:`Product` is a cream as supplied: drug, strength, dose unit, label maximum per
application and the indications on its label. Other creams (5-fluorouracil) declare their
products in their own treatment module with the same class.

Examples
--------
>>> from imiqsim.treatments.products import PRODUCTS
>>> p = PRODUCTS["imiquimod-3.75%"]
>>> p.unit, p.label_max_units, p.label_max_drug_mg
('pump actuation', 2.0, 18.75)
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

__all__ = [
    "CREAM_MG_PER_UNIT",
    "IMIQUIMOD_LABEL_SITES",
    "IMIQUIMOD_LABEL_TEXT",
    "IMIQUIMOD_LESION_TYPE_TEXT",
    "PRODUCTS",
    "Product",
]

# Every unit dose form on the market (sachet, packet, pump actuation) holds 250 mg cream.
CREAM_MG_PER_UNIT = 250.0


@dataclass(frozen=True)
class Product:
    """A marketed cream (or its vehicle).

    Parameters
    ----------
    key : str
        Name used in scenario files, e.g. ``"imiquimod-5%"``.
    name : str
        Human-readable name.
    strength_pct : float
        Nominal drug strength of the cream, % w/w (the vehicle keeps the
        strength of its active twin so that cream amounts and label limits match).
    vehicle : bool
        True for the drug-free cream base used as trial comparator.
    unit : str
        Name of the dose unit the product is supplied in (``"sachet"``, ``"pump actuation"``
        or ``"tube"``).
    cream_mg_per_unit : float
        Cream mass in one unit (250 mg for every imiquimod presentation).
    label_max_cream_mg : float
        Label maximum of cream per application (imiquimod 5%: 1 sachet; 3.75% and 2.5%:
        2 pump actuations); for a product whose label gives none, the reference amount
        against which a dose is judged.
    approved_indications : tuple of str
        Indications on the label (for a vehicle: those of its active twin).
    drug : str
        The active ingredient (of the active twin for a vehicle).
    """

    key: str
    name: str
    strength_pct: float
    vehicle: bool
    unit: str
    cream_mg_per_unit: float = CREAM_MG_PER_UNIT
    label_max_cream_mg: float = CREAM_MG_PER_UNIT
    approved_indications: tuple[str, ...] = ()
    drug: str = "imiquimod"

    @property
    def drug_fraction(self) -> float:
        """Drug mass per cream mass (0 for a vehicle)."""
        return 0.0 if self.vehicle else self.strength_pct / 100.0

    @property
    def label_max_drug_mg(self) -> float:
        """Label maximum of drug per application in mg (of the active twin for a vehicle)."""
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
    for vehicle in (False, True):  # every imiquimod cream, then its drug-free vehicle twin
        for strength, unit, max_mg, indications in specs:
            s = f"{strength:g}%"
            key = f"vehicle-{s}" if vehicle else f"imiquimod-{s}"
            out[key] = Product(
                key=key,
                name=f"vehicle cream (imiquimod {s} cream base, no drug)"
                if vehicle
                else f"imiquimod {s} cream",
                strength_pct=strength,
                vehicle=vehicle,
                unit=unit,
                label_max_cream_mg=max_mg,
                approved_indications=indications,
            )
    return out


#: Every imiquimod cream and vehicle, keyed by the name used in scenario files.
PRODUCTS: Mapping[str, Product] = _make_products()

#: Label sites per indication (Aldara / Zyclara prescribing information).
IMIQUIMOD_LABEL_SITES: Mapping[str, tuple[str, ...]] = {
    "AK": ("face", "scalp", "forearm_hand", "trunk", "extremity"),
    "sBCC": ("trunk", "extremity", "forearm_hand"),  # trunk, neck and extremities
    "EGW": ("genital", "perianal"),
}
#: Why a site is off the imiquimod label, per indication.
IMIQUIMOD_LABEL_TEXT: Mapping[str, str] = {
    "AK": "the label covers AK on face, scalp and other sun-exposed skin, not genital or "
    "perianal skin",
    "sBCC": "the label covers superficial BCC only on the trunk, neck and extremities "
    "(not face, scalp, genital or perianal skin)",
    "EGW": "the label covers external genital and perianal warts only (site genital or perianal)",
}
#: Why a BCC other than superficial is off the imiquimod label.
IMIQUIMOD_LESION_TYPE_TEXT = (
    "off-label: imiquimod is approved only for superficial BCC, not nodular "
    "or infiltrative BCC, melanoma or other invasive cancers"
)
