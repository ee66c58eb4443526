"""Comparator stage: 5-fluorouracil (5-FU) cream, a direct antiproliferative cytotoxic.

5-FU is not an immune response modifier. An application (event kind ``APPLY_FLUOROURACIL``,
gated like an imiquimod dose) puts drug into its own cream film; a first-order flux carries
a few per cent of it into the viable skin (about 6% of the applied dose reaches the
circulation, Efudex label), from where it is catabolised and cleared within hours. In the
skin 5-FU (as FdUMP) inhibits thymidylate synthase; cycling cells then die a thymineless
death. Dysplastic lesion cells proliferate and die directly, visible and subclinical alike
(a field treatment): the kill tally ``killed_fluorouracil`` is of kind "direct". The normal
proliferating keratinocytes of the field are injured too: that irritant injury drives the
existing vascular inflammation (erythema, oedema, and through it erosion, crusting and the
IL-1 of damaged keratinocytes) and, as a danger signal, some DC maturation; with the antigen
of the dying lesion cells that gives a little immune priming. A wash-off (WASH) empties the
5-FU film as it does imiquimod's.

Every parameter is from the literature or assumed (see parameters.csv): the calibration
targets have no 5-FU rows, so nothing in this stage is calibrated.
"""

from imiqsim.model._dsl import ModuleSpec
from imiqsim.model.lesions import slot_names


def build() -> ModuleSpec:
    m = ModuleSpec(
        "fluorouracil",
        "5-fluorouracil cream: direct cytotoxic",
        inert_without=("APPLY_FLUOROURACIL",),
    )
    for name, desc, scale in [
        ("fu_film", "5-fluorouracil in the cream film on the skin surface", 10.0),
        ("fu_skin", "5-fluorouracil in the viable skin (epidermis and upper dermis)", 0.1),
        ("fu_cleared", "cumulative 5-fluorouracil cleared from the skin (circulation, DPD)", 1.0),
        ("fu_washed_off", "cumulative 5-fluorouracil removed from the film at wash-off", 10.0),
        ("fu_applied", "cumulative 5-fluorouracil applied", 10.0),
    ]:
        m.state(name, "mg", 0.0, desc, scale=scale)
    m.state(
        "fu_irritation",
        "1",
        0.0,
        "cytotoxic injury of the normal proliferating keratinocytes of the treated field",
        0.1,
    )
    m.state(
        "killed_fluorouracil",
        "cells",
        0.0,
        "cumulative lesion cells killed directly by 5-fluorouracil",
        100.0,
    )
    m.kill_tally("killed_fluorouracil", "5-fluorouracil", "direct")

    m.event(
        "APPLY_FLUOROURACIL",
        {"fu_film": "fu_film + dose_mg", "fu_applied": "fu_applied + dose_mg"},
        amount="dose_mg",
        unit="mg",
        gated_dose=True,
        description="5-fluorouracil cream put on the treated area",
    )
    m.event(
        "WASH",
        {"fu_washed_off": "fu_washed_off + fu_film", "fu_film": "0"},
        description="what is left of the 5-fluorouracil film washed off",
    )

    m.obs(
        "fu_skin_conc_ug_ml",
        "fu_skin * 1000 / (epidermis_volume_ml + dermis_volume_ml)",
        "ug/mL",
        "5-fluorouracil concentration in the viable skin",
    )
    m.obs(
        "fu_ts_inhibition",
        "hill(fu_skin_conc_ug_ml, fu_ts_ec50_ug_ml, fu_hill)",
        "1",
        "fraction of thymidylate synthase activity blocked (FdUMP) in the treated skin",
    )
    m.obs(
        "fu_kill_hazard",
        "k_fu_kill * fu_ts_inhibition",
        "1/h",
        "per-cell death hazard of proliferating lesion cells (thymineless death)",
    )
    m.obs(
        "fu_danger_signal",
        "hill(fu_irritation, fu_danger_half, 1)",
        "1",
        "danger signal (DAMPs) from keratinocytes injured by 5-fluorouracil",
    )

    m.rxn(
        "fu_penetration",
        "k_fu_penetration * site_permeability * lesion_barrier_factor * fu_film",
        "fu_film",
        "fu_skin",
        "uptake of 5-fluorouracil from the film into the viable skin",
    )
    m.rxn(
        "fu_skin_clearance",
        "k_fu_skin_clearance * fu_skin",
        "fu_skin",
        "fu_cleared",
        "catabolism (DPD) and dermal uptake of 5-fluorouracil",
    )
    for s in slot_names():
        m.rxn(
            f"{s}_fluorouracil_kill",
            f"fu_kill_hazard * {s}",
            s,
            "apoptotic_cells",
            "direct death of proliferating lesion cells under thymidylate synthase inhibition",
        )
    m.rxn(
        "killed_fluorouracil_tally",
        "fu_kill_hazard * lesion_burden",
        None,
        "killed_fluorouracil",
        "bookkeeping: kills by 5-fluorouracil",
    )
    m.rxn(
        "fu_irritation_onset",
        "k_fu_irritation_on * fu_ts_inhibition * (1 - fu_irritation)",
        None,
        "fu_irritation",
        "injury of normal proliferating keratinocytes of the treated field",
    )
    m.rxn(
        "fu_irritation_repair",
        "k_fu_irritation_off * fu_irritation",
        "fu_irritation",
        None,
        "repair and re-epithelialisation after 5-fluorouracil",
    )
    m.rxn(
        "fu_vascular_activation",
        "k_vascular_on * fu_vascular_weight * fu_irritation",
        None,
        "vascular_inflammation",
        "irritant inflammation of the injured field (erythema, oedema)",
    )
    m.rxn(
        "fu_dc_maturation",
        "k_dc_maturation * dc_damp_weight * fu_danger_signal * (1 - dc_activation)",
        None,
        "dc_activation",
        "maturation of DC/LC by danger signals from keratinocytes injured by 5-fluorouracil",
    )
    return m
