"""Comparator stage: cryotherapy (liquid nitrogen) and the tissue injury shared by both treatments.

Cryotherapy kills by freezing, not by the immune system: at a FREEZE event
every *visible* lesion (the clinician treats what is seen, with a rim) loses
a fraction of its cells that rises with freeze time and falls with lesion
thickness; subclinical lesions are untouched. The frozen tissue gives
blistering and pain, melanocytes (more cold-sensitive than keratinocytes)
die -> lasting hypopigmentation, and long freezes reach the dermis ->
scarring. Necrotic debris adds antigen and a small danger signal that
matures some DCs: the only immune stimulation cryotherapy gives.

Imiquimod's intense inflammation can also cause post-inflammatory pigment
loss (occasional temporary hypopigmentation), through the same state.
"""

from imiqsim.model._dsl import ModuleSpec
from imiqsim.model.lesions import N_SLOTS, slot_names

LN10 = 2.302585092994046


def build() -> ModuleSpec:
    m = ModuleSpec("cryo", "Cryotherapy and tissue injury")
    m.state(
        "cryo_injury", "1", 0.0, "frozen-tissue injury at the treated spots (blister, oedema)", 0.1
    )
    m.state("pigment_loss", "1", 0.0, "fraction of melanocytes lost in the treated spots", 0.01)
    m.state("scar", "1", 0.0, "dermal fibrosis at the treated spots", 0.01)
    m.state(
        "killed_cryo", "cells", 0.0, "cumulative lesion cells killed directly by freezing", 100.0
    )
    m.kill_tally("killed_cryo", "freezing", "direct")

    m.obs(
        "cryo_danger_signal",
        "hill(cryo_injury, cryo_injury_half, 1)",
        "1",
        "danger signal (DAMPs) from necrotic frozen tissue",
    )
    m.obs("blister_score", "3 * hill(cryo_injury, blister_half, 2)", "0-3", "blistering score")
    m.obs(
        "pain_score",
        "3 * hill(cryo_injury, pain_half, 1)",
        "0-3",
        "pain score at the treated spots",
    )
    m.obs(
        "hypopigmented",
        "step(pigment_loss - hypopigmentation_threshold)",
        "1",
        "clinically visible hypopigmentation (1) or not (0)",
    )
    m.obs(
        "scarred", "step(scar - scarring_threshold)", "1", "clinically visible scar (1) or not (0)"
    )

    m.rxn(
        "cryo_healing",
        "k_cryo_healing * cryo_injury",
        "cryo_injury",
        None,
        "healing of frozen tissue",
    )
    m.rxn(
        "post_inflammatory_pigment_loss",
        "k_post_inflammatory_pigment_loss * hill(epidermal_damage, pigment_damage_half, 2)"
        " * (1 - pigment_loss)",
        None,
        "pigment_loss",
        "melanocyte loss in intensely inflamed, eroded skin",
    )
    m.rxn(
        "repigmentation",
        "k_repigmentation * pigment_loss",
        "pigment_loss",
        None,
        "slow repigmentation from surviving melanocytes",
    )

    # FREEZE event: freeze_s seconds of liquid-nitrogen spray on every visible lesion (+ rim)
    frozen = "step(visible_lesions - 0.5)"
    assign: dict[str, str] = {}
    kills = []
    for i, s in enumerate(slot_names(N_SLOTS), start=1):
        surv = (
            f"exp(-{LN10!r} * cryo_log_kill_max"
            f" * hill(freeze_s, cryo_t50_s * lesion_thickness_{i}, cryo_hill))"
        )
        kill = f"step({s} - visible_threshold_cells) * (1 - {surv}) * {s}"
        assign[s] = f"{s} - {kill}"
        kills.append(kill)
    total = " + ".join(f"({k})" for k in kills)
    assign["killed_cryo"] = f"killed_cryo + {total}"
    assign["apoptotic_cells"] = f"apoptotic_cells + {total}"
    assign["cryo_injury"] = f"cryo_injury + {frozen} * hill(freeze_s, cryo_injury_t50_s, 1)"
    assign["pigment_loss"] = (
        f"pigment_loss + {frozen} * (1 - pigment_loss)"
        " * hill(freeze_s, melanocyte_t50_s, melanocyte_hill)"
    )
    assign["scar"] = f"scar + {frozen} * (1 - scar) * hill(freeze_s, scar_t50_s, scar_hill)"
    m.event(
        "FREEZE",
        assign,
        amount="freeze_s",
        unit="s",
        description="liquid-nitrogen spray on every visible lesion",
    )
    return m
