"""Stage 6/7: bystander inflammation of normal skin -> local skin reaction (LSR) score.

Four tissue processes (dimensionless intensities) give the six LSR
components of the Zyclara/Aldara LSR scale, each scored 0-3 (sum 0-18):
erythema and oedema from vascular inflammation, weeping/exudate from leak
through damaged epidermis, erosion/ulceration from epidermal damage,
scabbing/crusting from dried exudate, flaking/scaling from hyperproliferative
repair.
"""

from imiqsim.model._dsl import ModuleSpec

LSR_COMPONENTS = ("erythema", "oedema", "weeping", "erosion", "crusting", "flaking")


def build() -> ModuleSpec:
    m = ModuleSpec("reactions", "Local skin reactions")
    m.state(
        "vascular_inflammation", "1", 0.0, "vasodilation and vascular leak in treated skin", 0.1
    )
    m.state("epidermal_damage", "1", 0.0, "bystander keratinocyte damage (erosion, weeping)", 0.1)
    m.state("crust", "1", 0.0, "dried exudate (scabbing/crusting)", 0.1)
    m.state("scaling", "1", 0.0, "hyperproliferative repair (flaking/scaling)", 0.1)

    m.obs(
        "vascular_drive",
        "(tnf_alpha_signal + il1_signal + il8_signal + ifn_alpha_signal) / 4"
        " + ifn_gamma_vascular_weight * ifn_gamma_signal"
        " + cryo_vascular_weight * cryo_danger_signal",
        "1",
        "cytokine (and frozen-tissue) drive of vasodilation, leak and neutrophil influx; the"
        " IFN-gamma of the antigen-driven infiltrate inflames the skin where lesions are",
    )
    m.rxn(
        "vascular_activation",
        "k_vascular_on * vascular_drive",
        None,
        "vascular_inflammation",
        "endothelial activation",
    )
    m.rxn(
        "vascular_resolution",
        "k_vascular_off * vascular_inflammation",
        "vascular_inflammation",
        None,
        "resolution of inflammation",
    )
    m.rxn(
        "damage_onset",
        "k_damage_on * hill(vascular_inflammation, damage_half, damage_hill)",
        None,
        "epidermal_damage",
        "bystander keratinocyte apoptosis at intense inflammation",
    )
    m.rxn(
        "re_epithelialisation",
        "k_damage_off * epidermal_damage",
        "epidermal_damage",
        None,
        "healing",
    )
    m.rxn("crust_formation", "k_crust_on * epidermal_damage", None, "crust", "exudate drying")
    m.rxn("crust_shedding", "k_crust_off * crust", "crust", None, "crust shedding")
    m.rxn(
        "scaling_onset",
        "k_scaling_on * (vascular_inflammation + epidermal_damage)",
        None,
        "scaling",
        "hyperproliferative repair",
    )
    m.rxn(
        "scaling_resolution",
        "k_scaling_off * scaling",
        "scaling",
        None,
        "normalisation of turnover",
    )

    m.obs(
        "erythema_score",
        "3 * hill(vascular_inflammation, erythema_half, lsr_hill)",
        "0-3",
        "erythema score",
    )
    m.obs(
        "oedema_score",
        "3 * hill(vascular_inflammation, oedema_half, lsr_hill)",
        "0-3",
        "oedema/induration score",
    )
    m.obs(
        "weeping_score",
        "3 * hill(vascular_inflammation * epidermal_damage, weeping_half, lsr_hill)",
        "0-3",
        "weeping/exudate score",
    )
    m.obs(
        "erosion_score",
        "3 * hill(epidermal_damage, erosion_half, lsr_hill)",
        "0-3",
        "erosion/ulceration score",
    )
    m.obs(
        "crusting_score",
        "3 * hill(crust, crusting_half, lsr_hill)",
        "0-3",
        "scabbing/crusting score",
    )
    m.obs(
        "flaking_score", "3 * hill(scaling, flaking_half, lsr_hill)", "0-3", "flaking/scaling score"
    )
    m.obs(
        "lsr_score",
        "erythema_score + oedema_score + weeping_score + erosion_score + crusting_score"
        " + flaking_score",
        "0-18",
        "local skin reaction sum score",
    )
    return m
