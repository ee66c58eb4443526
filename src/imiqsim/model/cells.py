"""Stage 5: recruitment, activation and departure of immune cells; T-cell priming and memory.

Skin densities in cells/mm2 of treated skin; the lesion-specific T-cell pools
(effector, memory) in cells/uL blood. Each cell type has a ``*_present``
switch (1 normally, 0 when knocked out or depleted).
"""

from imiqsim.model._dsl import ModuleSpec


def build() -> ModuleSpec:
    m = ModuleSpec("cells", "Immune cells")
    m.state(
        "macrophage",
        "cells/mm2",
        "macrophage_present * macrophage_baseline",
        "monocytes/macrophages in treated skin",
        100.0,
    )
    m.state(
        "pdc",
        "cells/mm2",
        "pdc_present * pdc_baseline",
        "plasmacytoid dendritic cells in treated skin",
        1.0,
    )
    m.state(
        "dendritic_cells",
        "cells/mm2",
        "dc_present * dc_baseline",
        "dendritic and Langerhans cells in treated skin",
        100.0,
    )
    m.state(
        "dc_lymph_node",
        "cells/mm2",
        0.0,
        "antigen-loaded DCs that migrated to the draining lymph node (per mm2 of treated skin)",
        1.0,
        systemic=True,
    )
    m.state("nk_cells", "cells/mm2", "nk_present * nk_baseline", "NK cells in treated skin", 1.0)
    m.state("cd4_th1", "cells/mm2", 0.0, "lesion-specific CD4 Th1 cells in treated skin", 1.0)
    m.state(
        "cd8_ctl", "cells/mm2", 0.0, "lesion-specific cytotoxic CD8 T cells in treated skin", 1.0
    )
    m.state(
        "t_effector",
        "cells/uL",
        0.0,
        "circulating lesion-specific effector T cells",
        0.1,
        systemic=True,
    )
    m.state(
        "memory_t",
        "cells/uL",
        "memory_present * memory_baseline",
        "lesion-specific memory T cells (circulating and skin-resident)",
        0.1,
        systemic=True,
    )

    m.obs(
        "inflammatory_signal",
        "(tnf_alpha_signal + il1_signal) / 2",
        "1",
        "TNF-alpha/IL-1 driven endothelial activation and monocyte chemokines (CCL2)",
    )
    m.obs(
        "chemokine_signal",
        "1 - (1 - (ifn_alpha_signal + tnf_alpha_signal) / 2)"
        " * (1 - ifn_gamma_chemokine_weight * ifn_gamma_signal)",
        "1",
        "IFN-induced CXCL9/10/11 and chemerin: recruits pDCs, NK and T cells (CXCL9/10 are"
        " induced by IFN-alpha and most strongly by IFN-gamma, so effector T cells recruit more"
        " of their kind while they recognise antigen)",
    )
    m.obs(
        "t_skin_retention",
        "t_retention_max * antigen_recognition",
        "1",
        "fraction of T-cell egress from the skin prevented by cognate antigen (effectors that"
        " keep meeting their antigen stay in the tissue)",
    )
    m.obs(
        "nk_activation",
        "1 - (1 - ifn_alpha_signal) * (1 - il12_signal)",
        "1",
        "NK activation by IFN-alpha and IL-12",
    )
    m.obs(
        "th1_polarisation",
        "th1_basal + (1 - th1_basal) * il12_signal",
        "1",
        "fraction of primed CD4 T cells polarised to Th1 (IL-12)",
    )
    m.obs(
        "t_homing",
        "t_homing_basal + (1 - t_homing_basal) * chemokine_signal",
        "1",
        "homing of circulating effector T cells into the treated skin",
    )
    m.obs(
        "antigen_load",
        "hill(apoptotic_cells, antigen_half_cells, 1)",
        "1",
        "lesion antigen available to DCs from dying lesion cells",
    )
    m.obs(
        "dc_ln_stimulus",
        "hill(dc_lymph_node, dc_ln_half, 1)",
        "1",
        "antigen presentation in the lymph node",
    )
    m.obs(
        "memory_signal",
        "hill(memory_t, memory_half, 1)",
        "1",
        "lesion-specific memory T-cell protection",
    )

    # macrophages
    m.rxn(
        "macrophage_influx",
        "macrophage_present * (k_macrophage_turnover * macrophage_baseline"
        " + macrophage_recruit_max * inflammatory_signal)",
        None,
        "macrophage",
        "monocyte influx and differentiation",
    )
    m.rxn(
        "macrophage_loss",
        "k_macrophage_turnover * macrophage",
        "macrophage",
        None,
        "death and emigration",
    )
    # pDCs
    m.rxn(
        "pdc_influx",
        "pdc_present * (k_pdc_turnover * pdc_baseline + pdc_recruit_max * chemokine_signal)",
        None,
        "pdc",
        "pDC recruitment from blood (chemerin, CXCR3 ligands)",
    )
    m.rxn("pdc_loss", "k_pdc_turnover * pdc", "pdc", None, "pDC death and emigration")
    # dendritic cells
    m.rxn(
        "dc_influx",
        "dc_present * (k_dc_turnover * dc_baseline + dc_recruit_max * inflammatory_signal)",
        None,
        "dendritic_cells",
        "replenishment of skin DCs/LCs from precursors",
    )
    m.rxn(
        "dc_turnover_loss", "k_dc_turnover * dendritic_cells", "dendritic_cells", None, "DC death"
    )
    m.rxn(
        "dc_emigration_loaded",
        "k_dc_emigration * dc_activation * dendritic_cells * antigen_load",
        "dendritic_cells",
        "dc_lymph_node",
        "matured DCs carrying lesion antigen migrate to the lymph node",
    )
    m.rxn(
        "dc_emigration_unloaded",
        "k_dc_emigration * dc_activation * dendritic_cells * (1 - antigen_load)",
        "dendritic_cells",
        None,
        "matured DCs without lesion antigen leave the skin",
    )
    m.rxn(
        "dc_lymph_node_death",
        "k_dc_lymph_node_death * dc_lymph_node",
        "dc_lymph_node",
        None,
        "DC death in the lymph node",
    )
    # T cells
    m.rxn(
        "t_priming",
        "k_t_priming * dc_lymph_node * (1 + il12_priming_help * il12_signal)",
        None,
        "t_effector",
        "naive T-cell priming by antigen-loaded DCs (IL-12 help)",
    )
    m.rxn(
        "t_expansion",
        "k_t_expansion * dc_ln_stimulus * t_effector * (1 - t_effector / t_effector_max)",
        None,
        "t_effector",
        "antigen-driven clonal expansion",
    )
    m.rxn(
        "memory_recall",
        "k_memory_recall * dc_ln_stimulus * memory_t",
        None,
        "t_effector",
        "recall: memory T cells re-expand on antigen",
    )
    m.rxn(
        "t_contraction",
        "k_t_contraction * t_effector",
        "t_effector",
        None,
        "effector death after the peak",
    )
    m.rxn(
        "memory_formation",
        "memory_present * k_memory_formation * t_effector",
        "t_effector",
        "memory_t",
        "effector-to-memory transition",
    )
    m.rxn(
        "memory_decay",
        "k_memory_decay * memory_t",
        "memory_t",
        None,
        "memory attrition (half-life ~10 years)",
    )
    m.rxn(
        "cd8_infiltration",
        "k_t_infiltration * cd8_fraction * t_effector * t_homing",
        None,
        "cd8_ctl",
        "CTL homing into the treated skin",
    )
    m.rxn(
        "cd8_loss",
        "k_t_skin_loss * (1 - t_skin_retention) * cd8_ctl",
        "cd8_ctl",
        None,
        "CTL death and egress (slowed while antigen is present)",
    )
    m.rxn(
        "cd4_infiltration",
        "k_t_infiltration * (1 - cd8_fraction) * t_effector * t_homing * th1_polarisation",
        None,
        "cd4_th1",
        "Th1 homing into the treated skin",
    )
    m.rxn(
        "cd4_loss",
        "k_t_skin_loss * (1 - t_skin_retention) * cd4_th1",
        "cd4_th1",
        None,
        "Th1 death and egress (slowed while antigen is present)",
    )
    # NK cells
    m.rxn(
        "nk_influx",
        "nk_present * (k_nk_turnover * nk_baseline + nk_recruit_max * chemokine_signal)",
        None,
        "nk_cells",
        "NK recruitment (CXCR3 ligands)",
    )
    m.rxn("nk_loss", "k_nk_turnover * nk_cells", "nk_cells", None, "NK death and egress")
    return m


#: immune cells in the treated skin (the stage's local cells/mm2 states), in declaration order
SKIN_CELLS: tuple[str, ...] = tuple(
    s.name for s in build().states if s.unit == "cells/mm2" and not s.systemic
)
