"""Stage 2: cream film, stratum corneum, viable epidermis, dermis, blood, elimination.

Amounts in mg. APPLY events add drug to ``film`` (and to ``applied``, the
running total); WASH events move what is left in the film to ``washed_off``.
Every drug flux moves mass between states, so
applied = film + stratum_corneum + epidermis + dermis + blood + urine + metabolised + washed_off
holds exactly, up to round-off.
"""

from imiqsim.model._dsl import ModuleSpec


def build() -> ModuleSpec:
    m = ModuleSpec("pk", "Skin penetration and systemic exposure")
    for name, desc, scale in [
        ("film", "imiquimod in the cream film on the skin surface", 10.0),
        ("stratum_corneum", "imiquimod in the stratum corneum (barrier, reservoir)", 0.1),
        ("epidermis", "imiquimod in the viable epidermis", 0.01),
        ("dermis", "imiquimod in the upper (papillary) dermis", 0.01),
        ("blood", "imiquimod in the systemic circulation", 0.01),
        ("urine", "cumulative imiquimod (and metabolites) excreted in urine", 0.1),
        ("metabolised", "cumulative imiquimod metabolised or excreted in faeces", 0.1),
        ("washed_off", "cumulative imiquimod removed from the film at wash-off", 10.0),
        ("applied", "cumulative imiquimod applied", 10.0),
    ]:
        m.state(
            name,
            "mg",
            0.0,
            desc,
            scale=scale,
            drug_mass=name != "applied",
            systemic=name in ("blood", "urine", "metabolised"),
        )

    # the cream's events: a dose lands in the film (and the running total); wash-off empties it
    m.event(
        "APPLY",
        {"film": "film + dose_mg", "applied": "applied + dose_mg"},
        amount="dose_mg",
        unit="mg",
        gated_dose=True,
        description="imiquimod cream put on the treated area",
    )
    m.event(
        "WASH",
        {"washed_off": "washed_off + film", "film": "0"},
        description="what is left of the cream film washed off",
    )

    m.obs(
        "epidermis_volume_ml",
        "treated_area_cm2 * epidermis_thickness_um * 1e-4",
        "mL",
        "volume of viable epidermis under the treated area",
    )
    m.obs(
        "dermis_volume_ml",
        "treated_area_cm2 * dermis_thickness_um * 1e-4",
        "mL",
        "volume of upper dermis under the treated area",
    )
    m.obs(
        "skin_conc_ug_ml",
        "(epidermis + dermis) * 1000 / (epidermis_volume_ml + dermis_volume_ml)",
        "ug/mL",
        "imiquimod concentration in viable skin, where TLR7-bearing cells are",
    )
    m.obs(
        "serum_conc_ng_ml",
        "blood * 1000 / central_volume_l",
        "ng/mL",
        "serum imiquimod concentration",
    )
    m.obs(
        "k_elimination",
        "systemic_clearance_l_h / central_volume_l",
        "1/h",
        "systemic elimination rate constant",
    )
    m.obs(
        "drug_in_skin", "stratum_corneum + epidermis + dermis", "mg", "imiquimod in all skin layers"
    )

    m.obs(
        "film_drug_conc_mg_cm3",
        "cream_strength * cream_density_mg_cm3 * film / (film + film_exhaustion_mg_cm2"
        " * treated_area_cm2)",
        "mg/cm3",
        "imiquimod concentration driving penetration: the cream's strength while the film lasts,"
        " falling as the"
        " film is used up",
    )
    m.rxn(
        "penetration",
        "kp_cream_cm_h * site_permeability * lesion_barrier_factor * treated_area_cm2"
        " * film_drug_conc_mg_cm3",
        "film",
        "stratum_corneum",
        "Fickian flux from the cream film into the stratum corneum: permeability x area x"
        " concentration",
    )
    m.rxn(
        "sc_release",
        "k_sc_to_epidermis * stratum_corneum",
        "stratum_corneum",
        "epidermis",
        "slow release from the stratum-corneum reservoir (rate-limiting: flip-flop kinetics)",
    )
    m.rxn(
        "epidermis_to_dermis",
        "k_epidermis_to_dermis * epidermis",
        "epidermis",
        "dermis",
        "diffusion across the viable epidermis",
    )
    m.rxn(
        "dermal_uptake",
        "k_dermis_to_blood * dermis",
        "dermis",
        "blood",
        "uptake by dermal capillaries",
    )
    m.rxn(
        "renal_excretion",
        "fraction_excreted_urine * k_elimination * blood",
        "blood",
        "urine",
        "urinary excretion of drug and metabolites",
    )
    m.rxn(
        "metabolism",
        "(1 - fraction_excreted_urine) * k_elimination * blood",
        "blood",
        "metabolised",
        "hepatic metabolism and faecal excretion",
    )
    return m
