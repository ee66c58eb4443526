"""Stage 3: TLR7 engagement, tolerance, and MyD88 -> NF-kB / IRF7 signalling.

Fractions in 0..1. Occupancy is saturable in the local skin concentration;
repeated stimulation builds refractoriness (IRAK-M/SHIP-1 induction) that
recovers during rest.
"""

from imiqsim.model._dsl import ModuleSpec


def build() -> ModuleSpec:
    m = ModuleSpec("tlr7", "TLR7 activation and signalling")
    m.state(
        "tlr7_tolerance",
        "1",
        0.0,
        "fraction of TLR7 signalling made refractory by repeated stimulation",
        0.1,
    )
    m.state(
        "pdc_irf7", "1", 0.0, "fraction of pDC IRF7 pathway active (type I IFN transcription)", 0.1
    )
    m.state(
        "macrophage_nfkb", "1", 0.0, "fraction of monocyte/macrophage NF-kB pathway active", 0.1
    )
    m.state(
        "dc_activation",
        "1",
        0.0,
        "fraction of skin dendritic/Langerhans cells matured (CCR7+, migratory)",
        0.1,
    )

    m.obs(
        "tlr7_occupancy",
        "tlr7_expression"
        " * hill(skin_unbound_fraction * skin_conc_ug_ml, tlr7_ec50_ug_ml, tlr7_hill)",
        "1",
        "fraction of TLR7 engaged by unbound imiquimod (saturable concentration response)",
    )
    m.obs(
        "tlr7_activation",
        "tlr7_occupancy * (1 - tolerance_max * tlr7_tolerance)",
        "1",
        "effective MyD88 signal after tolerance",
    )

    m.rxn(
        "tolerance_induction",
        "k_tolerance_on * tlr7_occupancy * (1 - tlr7_tolerance)",
        None,
        "tlr7_tolerance",
        "induction of negative regulators by sustained stimulation",
    )
    m.rxn(
        "tolerance_recovery",
        "k_tolerance_off * tlr7_tolerance",
        "tlr7_tolerance",
        None,
        "recovery of responsiveness during rest",
    )
    m.rxn(
        "irf7_activation",
        "k_irf7_on * tlr7_activation * (1 - pdc_irf7)",
        None,
        "pdc_irf7",
        "MyD88 -> IRAK4/TRAF6 -> IRF7 phosphorylation in pDCs",
    )
    m.rxn("irf7_deactivation", "k_irf7_off * pdc_irf7", "pdc_irf7", None, "IRF7 inactivation")
    m.rxn(
        "nfkb_activation",
        "k_nfkb_on * tlr7_activation * (1 - macrophage_nfkb)",
        None,
        "macrophage_nfkb",
        "MyD88 -> IRAK/TRAF6 -> IKK -> NF-kB nuclear translocation",
    )
    m.rxn(
        "nfkb_deactivation",
        "k_nfkb_off * macrophage_nfkb",
        "macrophage_nfkb",
        None,
        "IkB resynthesis",
    )
    m.rxn(
        "dc_maturation",
        "k_dc_maturation * (tlr7_activation + dc_tnf_weight * tnf_alpha_signal"
        " + dc_damp_weight * cryo_danger_signal)"
        " * (1 - dc_activation)",
        None,
        "dc_activation",
        "maturation of DC/LC by TLR7, TNF-alpha and danger signals from necrotic tissue",
    )
    m.rxn(
        "dc_reversion",
        "k_dc_reversion * dc_activation",
        "dc_activation",
        None,
        "return to immature state",
    )
    return m
