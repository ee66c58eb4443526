"""5-fluorouracil 5% cream: a direct antiproliferative cytotoxic, the standard AK field comparator.

The product (``product = "fluorouracil-5%"`` with a ``[regimen]`` table, as for any cream) and
its treatment protocol. Its applications are events of the model's own kind
``APPLY_FLUOROURACIL`` (declared by the mechanism stage :mod:`imiqsim.model.fluorouracil`),
gated and rested like imiquimod doses; the wash-off before the next application is a WASH.
The label (Efudex / Efudix) course for actinic keratoses is twice daily for 2-4 weeks, until
the lesions erode.

Nothing of 5-FU is calibrated: its parameters are from the literature or assumed, because the
calibration targets hold no 5-FU trial.

Examples
--------
>>> t = FluorouracilCream(product="fluorouracil-5%", regimen={"applications_per_week": 7,
...     "times_per_day": 2, "max_weeks": 4, "leave_on_hours": 11, "amount": {"cream_mg": 100}})
>>> t.events().n_applications, t.drug_mg_per_application
(56, 5.0)
>>> t.delivery(25.0).directed, t.direct_kill_tallies
('field', ('killed_fluorouracil',))
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import ClassVar

from imiqsim.treatments.cream import CreamTreatment
from imiqsim.treatments.products import Product

__all__ = ["APPLY_FLUOROURACIL", "FLUOROURACIL_PRODUCTS", "FluorouracilCream"]

#: the model's event kind of one 5-FU application (its code is numbered by the model)
APPLY_FLUOROURACIL = "APPLY_FLUOROURACIL"

#: the 5-fluorouracil creams, keyed by the name used in scenario files
FLUOROURACIL_PRODUCTS: Mapping[str, Product] = {
    "fluorouracil-5%": Product(
        key="fluorouracil-5%",
        name="5-fluorouracil 5% cream",
        strength_pct=5.0,
        vehicle=False,
        unit="tube",
        cream_mg_per_unit=40_000.0,  # supplied in 40 g tubes
        # the label gives no maximum per application ("sufficient to cover the lesions"):
        # doses are judged against 250 mg cream, about half a fingertip unit
        label_max_cream_mg=250.0,
        approved_indications=("AK", "sBCC"),  # sBCC: 5% only, when other methods are impractical
        drug="fluorouracil",
    )
}

_LABEL_SITES = ("face", "scalp", "forearm_hand", "trunk", "extremity")


class FluorouracilCream(CreamTreatment):
    """5-fluorouracil 5% cream on the whole treated field, applied by the patient.

    It kills proliferating lesion cells directly (thymidylate synthase inhibition), with
    intense irritant inflammation of the treated field; the immune system takes little part.
    """

    kind: ClassVar[str] = "fluorouracil"
    catalogue: ClassVar[Mapping[str, Product]] = FLUOROURACIL_PRODUCTS
    direct_kill_tallies: ClassVar[tuple[str, ...]] = ("killed_fluorouracil",)
    calibration: ClassVar[str] = (
        "NOT calibrated: 5-fluorouracil parameters are from the literature or assumed "
        "(the calibration targets hold no 5-FU trial)"
    )
    label_sites: ClassVar[Mapping[str, tuple[str, ...]]] = {
        "AK": _LABEL_SITES,
        "sBCC": _LABEL_SITES,
    }
    label_site_text: ClassVar[Mapping[str, str]] = {
        "AK": "the label covers actinic keratoses of the skin, not genital or perianal skin",
        "sBCC": "the label covers superficial BCC of the skin, not genital or perianal skin",
    }
    lesion_type_text: ClassVar[str] = (
        "off-label: 5-fluorouracil cream is approved only for superficial BCC; nodular or "
        "infiltrative BCC and melanoma do not respond to topical treatment"
    )

    def apply_kind(self) -> int:
        from imiqsim.model import get_model  # the model numbers the kinds its stages declare

        return get_model().event_kind(APPLY_FLUOROURACIL)

    def mechanism(self) -> str:
        return (
            "antimetabolite cytotoxic (thymidylate synthase inhibitor): direct killing of "
            "proliferating lesion cells, with intense irritant inflammation"
        )
