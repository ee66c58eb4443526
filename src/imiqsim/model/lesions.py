"""Stage 6: the targets. Lesion cells die only by immune mechanisms.

A patient's treated area holds ``N_SLOTS`` lesion slots; a slot stands for
``lesion_count_k`` identical lesions (1 unless a patient has more lesions than
slots), its state the cells of one of them. A slot is a visible
lesion when its abnormal-cell count is above ``visible_threshold_cells``, a
subclinical one when it is below, and empty at zero; empty slots can be
seeded from the field reservoir (latent HPV in EGW, UV-damaged field clones in
AK), which is how new lesions appear. The shared immune milieu acts on all
slots, each with its own susceptibility.

Killing = background surveillance + (NK, CTL, activated macrophages) x
effector function in the lesion (a small basal level in uninflamed skin,
raised by TNF-alpha death-receptor priming and IFN-alpha MHC-I/Fas
upregulation while the drug acts, and by IFN-gamma that antigen-engaged T
cells release, which sustains killing for weeks after the last dose until
the antigen runs out) + death-receptor apoptosis (TNF-alpha primes the lesion cells'
death receptors, switch-like, and ligands on the activated NK cells, CTLs and macrophages
trigger them; antigen-independent, so the lesion's immune susceptibility does not scale it; in
sBCC only, ``death_receptor_kill_max`` per indication: Fas appears on BCC cells under
imiquimod, HPV E6 blocks the route in warts) + memory T-cell surveillance (tissue-resident
memory cells bring their own IFN-gamma licensing, so they act without the drug). Memory T-cell
surveillance controls lesions below clinical size but is evaded by
established lesions (immunosuppressive microenvironment): its hazard is
scaled by threshold / (threshold + cells), so memory prevents recurrence
and new lesions rather than clearing visible ones. Memory made against the
treated lesions recognises a new lesion only as far as they share antigens
(``lesion_memory_overlap_k``: 1 for the treated lesions' own residue; for
new-lesion slots the indication's ``memory_cross_protection``: the same HPV
type in warts, different UV mutations in a new AK). IFN-alpha also slows
proliferation (antiviral / antiproliferative). With the effectors depleted
nothing kills lesion cells, whatever the cytokines do.
"""

from imiqsim.model._dsl import ModuleSpec

N_SLOTS = 14
MECHANISMS = ("baseline", "nk", "ctl", "macrophage", "death_receptor", "memory")
MECHANISM_LABELS = (
    "baseline surveillance",
    "NK cells",
    "CD8 CTL",
    "macrophages",
    "death receptors",
    "memory T cells",
)


def slot_names(n: int = N_SLOTS) -> list[str]:
    return [f"lesion_{i}" for i in range(1, n + 1)]


def build() -> ModuleSpec:
    m = ModuleSpec("lesions", "Lesion cells and immune killing")
    m.state(
        "apoptotic_cells", "cells", 0.0, "dying lesion cells awaiting phagocytic clearance", 100.0
    )
    m.state(
        "field_reservoir",
        "1",
        "field_reservoir_initial",
        "relative size of the lesion-seeding field (latent HPV / dysplastic clones)",
        0.01,
    )
    for mech in MECHANISMS:
        m.state(
            f"killed_{mech}",
            "cells",
            0.0,
            f"cumulative lesion cells killed by {mech} effectors",
            100.0,
        )
    for mech, label in zip(MECHANISMS, MECHANISM_LABELS, strict=True):
        m.kill_tally(f"killed_{mech}", label, "background" if mech == "baseline" else "immune")

    m.obs(
        "baseline_surveillance_hazard",
        "baseline_surveillance * (surveillance_weight_nk * nk_present"
        " + surveillance_weight_cd8 * cd8_present"
        " + (1 - surveillance_weight_nk - surveillance_weight_cd8) * macrophage_present)",
        "1/h",
        "background immune surveillance by resident NK, T cells and macrophages",
    )
    m.obs(
        "nk_hazard",
        "nk_present * k_nk_kill * lesion_immune_susceptibility"
        " * hill(nk_cells * nk_activation, nk_kill_half, 1)",
        "1/h",
        "NK-cell killing (no prior sensitisation)",
    )
    m.obs(
        "ctl_hazard",
        "cd8_present * k_ctl_kill * lesion_immune_susceptibility * hill(cd8_ctl, ctl_kill_half, 1)"
        " * (1 + th1_help_max * hill(cd4_th1, cd4_help_half, 1))",
        "1/h",
        "antigen-specific CTL killing with Th1 help",
    )
    m.obs(
        "macrophage_hazard",
        "macrophage_present * k_macrophage_kill * lesion_immune_susceptibility"
        " * hill(macrophage * macrophage_nfkb, macrophage_kill_half, 1)",
        "1/h",
        "killing by activated macrophages (membrane TNF, phagocytosis)",
    )
    m.obs(
        "death_ligand_effectors",
        "nk_present * nk_cells * nk_activation + cd8_present * cd8_ctl"
        " + macrophage_present * macrophage * macrophage_nfkb",
        "cells/mm2",
        "activated effector cells carrying death ligands (FasL, TRAIL, membrane TNF-alpha)",
    )
    m.obs(
        "death_receptor_hazard",
        "death_receptor_present * death_receptor_kill_max"
        " * hill(tnf_alpha - tnf_alpha_baseline, death_receptor_tnf_half, death_receptor_hill)"
        " * hill(death_ligand_effectors, death_ligand_half, 1)",
        "1/h",
        "death-receptor apoptosis of lesion cells primed by TNF-alpha (death receptors"
        " upregulated) and triggered by ligands on activated effectors; antigen-independent, so"
        " not scaled by the lesion's immune susceptibility; switch-like in TNF-alpha (caspase-8"
        " activation is bistable)",
    )
    m.obs(
        "memory_hazard",
        "cd8_present * k_memory_kill * lesion_immune_susceptibility * memory_signal",
        "1/h",
        "surveillance by lesion-specific memory T cells",
    )
    m.obs(
        "cytokine_sensitisation",
        "effector_function_basal + tnf_sensitisation * tnf_sensitivity * tnf_alpha_signal"
        " + ifn_sensitisation * ifn_alpha_signal + ifn_gamma_sensitisation * ifn_gamma_signal",
        "1",
        "effector killing in the lesion needs the inflamed milieu: without it lesion cells show"
        " little MHC-I and death-receptor priming (basal), TNF-alpha and IFN-alpha"
        " (MHC-I/Fas upregulation) raise it while the drug acts, IFN-gamma from antigen-engaged"
        " T cells keeps raising it after the drug is gone",
    )
    m.obs(
        "antigen_recognition",
        "hill(susceptible_burden, antigen_recognition_half_cells, 1)",
        "1",
        "how much lesion antigen the infiltrating T cells meet (live lesion cells weighted by"
        " their susceptibility); IFN-gamma release and T-cell retention need it",
    )
    m.obs(
        "activated_effector_hazard",
        "(nk_hazard + ctl_hazard + macrophage_hazard) * cytokine_sensitisation",
        "1/h",
        "per-cell death hazard from the activated NK cells, CTLs and macrophages in the inflamed"
        " milieu (what the drug and the adaptive arm add to background surveillance)",
    )
    m.obs(
        "effector_hazard",
        "baseline_surveillance_hazard + activated_effector_hazard",
        "1/h",
        "per-cell death hazard from innate and effector cells for a fully susceptible lesion cell",
    )
    m.obs(
        "immune_kill_hazard",
        "effector_hazard + memory_hazard",
        "1/h",
        "per-cell death hazard of a fully susceptible lesion cell below the immune-evasion size",
    )
    m.obs(
        "growth_inhibition",
        "ifn_growth_inhibition * ifn_alpha_signal",
        "1",
        "IFN-alpha antiviral/antiproliferative action",
    )
    slots = slot_names()
    m.obs(
        "susceptible_burden",
        " + ".join(
            f"lesion_count_{i + 1} * lesion_susceptibility_{i + 1} * {s}"
            for i, s in enumerate(slots)
        ),
        "cells",
        "lesion cells weighted by their susceptibility",
    )
    m.obs(
        "memory_accessible_burden",
        " + ".join(
            f"lesion_count_{i + 1} * lesion_susceptibility_{i + 1} * lesion_memory_overlap_{i + 1}"
            f" * {s} * visible_threshold_cells / (visible_threshold_cells + {s})"
            for i, s in enumerate(slots)
        ),
        "cells",
        "lesion cells within reach of memory T-cell surveillance",
    )
    m.obs(
        "lesion_burden",
        " + ".join(f"lesion_count_{i + 1} * {s}" for i, s in enumerate(slots)),
        "cells",
        "total abnormal lesion cells in the treated area",
    )
    m.obs(
        "visible_lesions",
        " + ".join(
            f"lesion_count_{i + 1} * step({s} - visible_threshold_cells)"
            for i, s in enumerate(slots)
        ),
        "lesions",
        "number of clinically visible lesions",
    )
    m.obs(
        "histological_lesions",
        " + ".join(
            f"lesion_count_{i + 1} * step({s} - histology_threshold_cells)"
            for i, s in enumerate(slots)
        ),
        "lesions",
        "number of lesions with abnormal cells above the histological detection limit",
    )

    for i, s in enumerate(slots, start=1):
        m.state(s, "cells", f"lesion_initial_cells_{i}", f"abnormal cells in lesion slot {i}", 10.0)
        m.rxn(
            f"{s}_growth",
            f"lesion_growth_rate * {s} * (1 - {s} / lesion_capacity_cells)"
            " * (1 - growth_inhibition)",
            None,
            s,
            "proliferation of lesion cells (logistic, slowed by IFN-alpha)",
        )
        kill = (
            f"(lesion_susceptibility_{i} * (effector_hazard + memory_hazard"
            f" * lesion_memory_overlap_{i} * visible_threshold_cells"
            f" / (visible_threshold_cells + {s})) + death_receptor_hazard) * {s}"
        )
        m.rxn(
            f"{s}_killing",
            kill,
            s,
            None,
            "immune-mediated death (per lesion of the slot); memory T-cell surveillance is"
            " evaded once a lesion is clinically visible",
        )
        m.rxn(
            f"{s}_apoptosis",
            f"lesion_count_{i} * {kill}",
            None,
            "apoptotic_cells",
            "dying cells of the slot's lesions (all lesion_count of them) awaiting clearance",
        )
        m.rxn(
            f"{s}_seeding",
            f"field_seed_scale * lesion_seed_rate_{i} * field_reservoir"
            f" * (1 - memory_protection * memory_signal * memory_cross_protection)",
            None,
            s,
            "new lesion cells arising from the field reservoir",
        )

    sens = "cytokine_sensitisation * susceptible_burden"
    m.rxn(
        "killed_baseline_tally",
        "baseline_surveillance_hazard * susceptible_burden",
        None,
        "killed_baseline",
        "bookkeeping: kills by background surveillance",
    )
    for mech in ("nk", "ctl", "macrophage"):
        m.rxn(
            f"killed_{mech}_tally",
            f"{mech}_hazard * {sens}",
            None,
            f"killed_{mech}",
            f"bookkeeping: kills by {mech}",
        )
    m.rxn(
        "killed_death_receptor_tally",
        "death_receptor_hazard * lesion_burden",
        None,
        "killed_death_receptor",
        "bookkeeping: kills by death-receptor apoptosis",
    )
    m.rxn(
        "killed_memory_tally",
        "memory_hazard * memory_accessible_burden",
        None,
        "killed_memory",
        "bookkeeping: kills by memory T cells",
    )
    m.rxn(
        "efferocytosis",
        "(k_apoptotic_clearance + k_efferocytosis * hill(macrophage, efferocytosis_half, 1))"
        " * apoptotic_cells",
        "apoptotic_cells",
        None,
        "phagocytic clearance of dying cells",
    )
    m.rxn(
        "field_clearance",
        "(field_susceptibility * activated_effector_hazard"
        " + k_field_memory_clearance * memory_signal) * field_reservoir",
        "field_reservoir",
        None,
        "immune clearance of the seeding field (field treatment; memory control of latent HPV)",
    )
    m.rxn(
        "field_renewal",
        "k_field_renewal * (field_reservoir_initial - field_reservoir)",
        None,
        "field_reservoir",
        "renewal of the seeding field: chronically UV-damaged epidermis keeps producing"
        " dysplastic clones from its mutated stem cells after a field treatment",
    )
    return m
