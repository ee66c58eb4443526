"""Stage 4: the seven cytokines, locally (pg/mL of treated tissue) and in serum (pg/mL).

Each cytokine is made by the activated cell types that make it, decays with
its own half-life, and drains by lymph into blood. Downstream effects read a
*signal*: the saturable response to the level above baseline, so an
untreated skin sits exactly at its baseline steady state.

IFN-gamma is the adaptive arm's own cytokine: T cells make it only while they
recognise lesion antigen (``antigen_recognition``), so it outlasts the drug
by as long as lesion cells and effector cells remain, and it falls when the
antigen runs out (Th1/CTL IFN-gamma downstream of IL-12; Groom & Luster 2011
Immunol Cell Biol 89:207 for the CXCR3-ligand loop it drives).
"""

from imiqsim.model._dsl import ModuleSpec

#: cytokine -> (production expression, description of producers)
PRODUCTION = {
    "ifn_alpha": (
        "q_ifn_alpha_pdc * pdc * pdc_irf7 + q_ifn_alpha_macrophage * macrophage * macrophage_nfkb",
        "pDCs via IRF7 (dominant), monocytes/macrophages via NF-kB",
    ),
    "tnf_alpha": (
        "q_tnf_alpha_macrophage * macrophage * macrophage_nfkb"
        " + q_tnf_alpha_dc * dendritic_cells * dc_activation"
        " + q_tnf_alpha_pdc * pdc * pdc_irf7",
        "macrophages, dendritic cells, pDCs",
    ),
    "il1": (
        "q_il1_macrophage * macrophage * macrophage_nfkb + q_il1_keratinocyte * epidermal_damage",
        "macrophages; IL-1alpha released by damaged keratinocytes",
    ),
    "il6": (
        "q_il6_macrophage * macrophage * macrophage_nfkb + q_il6_keratinocyte * il1_signal",
        "macrophages; keratinocytes and fibroblasts under IL-1",
    ),
    "il8": (
        "q_il8_macrophage * macrophage * macrophage_nfkb"
        " + q_il8_keratinocyte * (tnf_alpha_signal + il1_signal)",
        "macrophages; keratinocytes under TNF-alpha and IL-1",
    ),
    "il12": (
        "q_il12_dc * dendritic_cells * dc_activation"
        " + q_il12_macrophage * macrophage * macrophage_nfkb",
        "matured dendritic cells, macrophages",
    ),
    "ifn_gamma": (
        "q_ifn_gamma_t * (cd8_ctl + cd4_th1) * antigen_recognition"
        " + q_ifn_gamma_nk * nk_cells * nk_activation",
        "lesion-specific CTL and Th1 cells while they recognise lesion antigen; activated NK cells",
    ),
}

CYTOKINES = tuple(PRODUCTION)
LABELS = {
    "ifn_alpha": "IFN-alpha",
    "tnf_alpha": "TNF-alpha",
    "il1": "IL-1",
    "il6": "IL-6",
    "il8": "IL-8",
    "il12": "IL-12",
    "ifn_gamma": "IFN-gamma",
}


def build() -> ModuleSpec:
    m = ModuleSpec("cytokines", "Cytokine cascade")
    m.obs(
        "tissue_volume_ml",
        "epidermis_volume_ml + dermis_volume_ml",
        "mL",
        "treated viable-skin volume",
    )
    for c in CYTOKINES:
        lab = LABELS[c]
        m.state(c, "pg/mL", f"{c}_baseline", f"{lab} in treated tissue", scale=10.0)
        m.state(
            f"{c}_serum",
            "pg/mL",
            f"{c}_serum_baseline",
            f"{lab} in serum",
            scale=1.0,
            systemic=True,
        )
        m.obs(
            f"{c}_signal",
            f"hill({c} - {c}_baseline, {c}_k_signal, 1)",
            "1",
            f"saturable local {lab} response above baseline",
        )
        prod, who = PRODUCTION[c]
        m.rxn(
            f"{c}_baseline_production",
            f"{c}_baseline * ({c}_decay_rate + k_lymph_drainage)",
            None,
            c,
            f"constitutive {lab} production keeping the untreated baseline",
        )
        m.rxn(f"{c}_production", f"{c}_present * ({prod})", None, c, f"{lab} made by {who}")
        m.rxn(
            f"{c}_decay", f"{c}_decay_rate * {c}", c, None, f"local {lab} degradation/consumption"
        )
        m.rxn(f"{c}_drainage", f"k_lymph_drainage * {c}", c, None, f"lymphatic drainage of {lab}")
        m.rxn(
            f"{c}_spillover",
            f"k_lymph_drainage * ({c} - {c}_baseline) * tissue_volume_ml / plasma_volume_ml",
            None,
            f"{c}_serum",
            f"excess {lab} from the treated area reaching serum",
        )
        m.rxn(
            f"{c}_serum_baseline_production",
            f"{c}_serum_decay_rate * {c}_serum_baseline",
            None,
            f"{c}_serum",
            f"whole-body {lab} production (baseline)",
        )
        m.rxn(
            f"{c}_serum_elimination",
            f"{c}_serum_decay_rate * {c}_serum",
            f"{c}_serum",
            None,
            f"systemic {lab} elimination",
        )
    excess = " + ".join(
        f"({c}_serum - {c}_serum_baseline) / {c}_serum_symptom_level"
        for c in ("ifn_alpha", "il6", "tnf_alpha", "il1")
    )
    m.obs(
        "systemic_cytokine_index",
        excess,
        "1",
        "serum IFN-alpha, IL-6, TNF-alpha and IL-1 above baseline, each relative to a level "
        "known to cause flu-like symptoms when given systemically",
    )
    m.obs(
        "flu_like_probability",
        "hill(systemic_cytokine_index, flu_index_half, flu_hill)",
        "1",
        "probability of flu-like symptoms (fatigue, fever, headache, myalgia)"
        " at this systemic exposure",
    )
    return m
