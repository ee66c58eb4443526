"""Virtual patients: covariates and between-patient variability, seeded per patient.

Patient ``i`` of seed ``s`` draws every random number from its own stream
``numpy.random.default_rng([s, i])``, so it is the same patient in every run
whatever the chunk size or worker count.

Variability (log-normal multipliers with median 1 unless stated):

========================  ==========================================  =========
factor                    multiplies                                   log-SD
========================  ==========================================  =========
skin permeability         kp_cream_cm_h                                0.5
TLR7 sensitivity          tlr7_ec50_ug_ml (divides)                    0.8
inflammatory response     every cytokine production rate q_*           0.4
immune competence         baseline surveillance, NK/CTL/macrophage/    0.3
                          memory killing, T-cell priming
lesion growth             lesion_growth_rate                           0.3
lesion susceptibility     lesion_susceptibility_k (each lesion)        lesion_heterogeneity_sd
patient susceptibility    every lesion_susceptibility_k of a patient   patient_susceptibility_sd
lesion size               lesion_initial_cells_k (each lesion)         0.5
field / latent HPV        field_reservoir_initial                      1.0 (EGW), 0.5 (AK)
pre-existing memory       memory_baseline                              1.5
spontaneous control       baseline_surveillance                        spontaneous_control_sd
lesion thickness          lesion_thickness_k (each lesion; cryo kill)  0.5
melanocyte sensitivity    melanocyte_t50_s                             0.4
========================  ==========================================  =========

Inflammatory response and immune competence are correlated (rho 0.3), since
both reflect the same innate immune tone; so is the patient-level lesion susceptibility
(the IFN/TNF-driven MHC-I and death-receptor display of his lesions), with the same rho.
Covariates: sex, age, anatomical site (from the scenario), immune status (immunocompetent or
organ-transplant immunosuppressed). The values in ``VARIABILITY`` are assumptions with reasons
(README); the three spreads read from parameters (lesion, patient, spontaneous control) are
calibrated jointly with the model (``model/calibrated.csv``).
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from importlib import resources

import numpy as np
import pandas as pd

from imiqsim.errors import InputError, ModelDefinitionError
from imiqsim.model import INDICATIONS, Model, get_model
from imiqsim.model.lesions import N_SLOTS

#: name -> (log-SD, reason)
VARIABILITY = {
    "permeability": (
        0.5,
        "assumed: inter-individual skin permeability CV ~50%"
        " (Potts & Guy order-of-magnitude spread)",
    ),
    "tlr7_sensitivity": (
        0.8,
        "assumed: TLR7 agonist EC50 varies strongly between subjects (Wu 2023; Jones 2012)",
    ),
    "inflammatory_response": (
        0.4,
        "assumed: inter-individual cytokine output of stimulated PBMC varies ~40%",
    ),
    "immune_competence": (0.3, "assumed"),
    "lesion_growth": (0.3, "assumed"),
    "lesion_size": (0.5, "assumed"),
    "pre_existing_memory": (
        1.5,
        "assumed: lesion-specific T cells are found in only some patients",
    ),
    "lesion_thickness": (
        0.5,
        "assumed: AK and wart thickness varies (hyperkeratotic vs flat lesions)",
    ),
    "melanocyte_sensitivity": (0.4, "assumed: melanocyte cold sensitivity varies with skin type"),
}
RHO_INFLAMMATION_IMMUNITY = 0.3


@dataclass(frozen=True)
class EnrolmentRule:
    """Who a trial enrols: one row of ``model/populations.csv``, or a scenario's [population].

    :meth:`imiqsim.scenario.Scenario.enrolment` starts from the indication's row and applies
    the scenario's ``[population]`` table on top.
    """

    female_fraction: float
    immunosuppressed_fraction: float
    age_mean: float
    age_sd: float
    visible_law: str
    visible_a: float
    visible_b: float
    subclinical_mean: float
    size_reference: str
    field_sd: float
    female_permeability_factor: float
    female_susceptibility_factor: float
    source: str


VISIBLE_LAWS = ("uniform", "one_plus_poisson", "fixed")
SIZE_REFERENCES = ("typical", "slot1")
#: lesion slots a patient's lesions at entry may fill; the others stay empty for new lesions
ENTRY_SLOTS = N_SLOTS - 2


def _read_enrolment() -> dict[str, EnrolmentRule]:
    text = resources.files("imiqsim.model").joinpath("populations.csv").read_text(encoding="utf-8")
    rows = csv.DictReader(line for line in text.splitlines() if line.strip() and line[0] != "#")
    out = {}
    for r in rows:
        num = {
            k: float(v) if v else float("nan")
            for k, v in r.items()
            if k not in ("indication", "visible_law", "size_reference", "source")
        }
        rule = EnrolmentRule(
            visible_law=r["visible_law"],
            size_reference=r["size_reference"],
            source=r["source"],
            **num,
        )
        if rule.visible_law not in VISIBLE_LAWS or rule.size_reference not in SIZE_REFERENCES:
            raise ModelDefinitionError(f"populations.csv ({r['indication']}): unknown law or size")
        out[r["indication"]] = rule
    missing = set(INDICATIONS) - set(out)
    if missing:
        raise ModelDefinitionError(f"populations.csv has no row for {sorted(missing)}")
    return out


#: per indication: the enrolled population (demography, lesions at entry), from the table
ENROLMENT: dict[str, EnrolmentRule] = _read_enrolment()
#: fraction female, age mean/sd, by indication (default trial populations)
DEMOGRAPHY = {k: (r.female_fraction, r.age_mean, r.age_sd) for k, r in ENROLMENT.items()}
IMMUNOSUPPRESSION = {  # organ-transplant recipients on calcineurin inhibitors (assumed factors)
    "k_t_priming": 0.3,
    "k_ctl_kill": 0.5,
    "k_memory_kill": 0.5,
    "k_nk_kill": 0.7,
    "baseline_surveillance": 0.5,
}
IMMUNE_COMPETENCE_PARAMS = (
    "baseline_surveillance",
    "k_nk_kill",
    "k_ctl_kill",
    "k_macrophage_kill",
    "k_memory_kill",
    "k_t_priming",
)


@dataclass(frozen=True)
class Population:
    """Parameter matrix (patient x parameter) and covariates for a batch."""

    P: np.ndarray
    covariates: pd.DataFrame
    patient_index: np.ndarray


def slot_plan(n_visible: int, n_subclinical: int) -> tuple[list[int], list[int]]:
    """How many lesions each slot stands for (``lesion_count_k``), visible slots first.

    While the lesions at entry fit in :data:`ENTRY_SLOTS` slots (two slots stay empty for new
    lesions), each has its own slot. Beyond that they share the :data:`ENTRY_SLOTS` slots: the
    slots are split between visible and subclinical lesions in proportion to their numbers
    (visible rounded up, each kind keeps at least one slot), and each kind's lesions are spread
    as evenly as possible over its slots (counts differ by at most one, larger first).

    Parameters
    ----------
    n_visible, n_subclinical : int
        Lesions at entry of each kind (>= 0).

    Returns
    -------
    visible, subclinical : list of int
        The lesion count of each slot of that kind (their sums are the inputs).

    Examples
    --------
    >>> slot_plan(6, 2)
    ([1, 1, 1, 1, 1, 1], [1, 1])
    >>> slot_plan(20, 0)
    ([2, 2, 2, 2, 2, 2, 2, 2, 1, 1, 1, 1], [])
    >>> slot_plan(18, 4)
    ([2, 2, 2, 2, 2, 2, 2, 2, 1, 1], [2, 2])
    """
    if n_visible + n_subclinical <= ENTRY_SLOTS:
        return [1] * n_visible, [1] * n_subclinical
    if n_subclinical == 0:
        n_vis_slots = ENTRY_SLOTS
    elif n_visible == 0:
        n_vis_slots = 0
    else:
        share = -(-ENTRY_SLOTS * n_visible // (n_visible + n_subclinical))  # ceiling
        n_vis_slots = min(max(share, 1), ENTRY_SLOTS - 1, n_visible)
    n_sub_slots = min(n_subclinical, ENTRY_SLOTS - n_vis_slots)
    return _spread(n_visible, n_vis_slots), _spread(n_subclinical, n_sub_slots)


def _spread(n: int, slots: int) -> list[int]:
    if slots == 0:
        return []
    q, r = divmod(n, slots)
    return [q + 1] * r + [q] * (slots - r)


def lesions_at_entry(rule: EnrolmentRule, rng: np.random.Generator) -> tuple[int, int]:
    """Visible and subclinical lesion counts of one patient at entry, drawn from ``rule``."""
    if rule.visible_law == "uniform":
        n_vis = int(rng.integers(int(rule.visible_a), int(rule.visible_b) + 1))
    elif rule.visible_law == "one_plus_poisson":
        n_vis = int(1 + rng.poisson(rule.visible_a))
    else:
        n_vis = int(rule.visible_a)
    n_sub = int(rng.poisson(rule.subclinical_mean)) if rule.subclinical_mean > 0 else 0
    return n_vis, n_sub


def _lesion_layout(
    rule: EnrolmentRule, rng: np.random.Generator, model: Model, base: np.ndarray
) -> dict[str, float]:
    """Per-slot initial sizes, lesion counts and seeding for one patient."""
    pidx = model.parameter_index
    typ = base[pidx("lesion_capacity_cells")] * 0.5
    out: dict[str, float] = {}
    n_vis, n_sub = lesions_at_entry(rule, rng)
    vis_counts, sub_counts = slot_plan(n_vis, n_sub)
    n_vis_slots = len(vis_counts)
    size_sd = VARIABILITY["lesion_size"][0]
    # sizes are drawn per slot: the lesions a slot stands for share its size
    if rule.size_reference == "typical":
        sizes = list(typ * rng.lognormal(0.0, size_sd, n_vis_slots))
    else:  # the indication's own reference size, one draw per slot
        ref = base[pidx("lesion_initial_cells_1")]
        sizes = [ref * rng.lognormal(0.0, size_sd) for _ in range(n_vis_slots)]
    if sub_counts:
        thr = base[pidx("visible_threshold_cells")]
        sizes += list(thr * rng.uniform(0.05, 0.5, len(sub_counts)))
    counts = vis_counts + sub_counts
    n_used = len(sizes)
    seed_total = float(sum(base[pidx(f"lesion_seed_rate_{k}")] for k in range(1, N_SLOTS + 1)))
    n_empty = N_SLOTS - n_used
    for k in range(1, N_SLOTS + 1):
        out[f"lesion_initial_cells_{k}"] = float(sizes[k - 1]) if k <= n_used else 0.0
        out[f"lesion_count_{k}"] = float(counts[k - 1]) if k <= n_used else 1.0
        out[f"lesion_seed_rate_{k}"] = (
            (seed_total / n_empty) if (k > n_used and n_empty > 0) else 0.0
        )
        out[f"lesion_susceptibility_{k}"] = float(
            rng.lognormal(0.0, base[pidx("lesion_heterogeneity_sd")])
        )
        out[f"lesion_thickness_{k}"] = float(rng.lognormal(0.0, VARIABILITY["lesion_thickness"][0]))
        # memory is raised mainly against the visible lesions (the bulk of the antigen); it
        # recognises a subclinical or new lesion only through shared antigens (AK: other UV
        # clones; warts: the same HPV)
        out[f"lesion_memory_overlap_{k}"] = (
            1.0 if k <= n_vis_slots else float(base[pidx("memory_cross_protection")])
        )
    return out


def sample_patient(
    model: Model,
    base: np.ndarray,
    indication: str,
    seed: int,
    index: int,
    immunosuppressed_fraction: float | None = None,
    variability: bool = True,
    enrolment: EnrolmentRule | None = None,
) -> tuple[np.ndarray, dict]:
    """Parameters and covariates of patient ``index`` (its own random stream).

    Parameters
    ----------
    model : Model
    base : ndarray
        The scenario's parameter vector (:meth:`imiqsim.scenario.Scenario.model_parameters`).
    indication : str
        Selects the default enrolment rule (``model/populations.csv``) when ``enrolment`` is
        None.
    seed, index : int
        The patient's stream is ``numpy.random.default_rng([seed, index])``.
    immunosuppressed_fraction : float, optional
        Overrides the enrolment rule's share of immunosuppressed patients.
    variability : bool
        False: the typical patient (no between-patient variability, the base lesion layout).
    enrolment : EnrolmentRule, optional
        Who the trial enrols (:meth:`imiqsim.scenario.Scenario.enrolment`); default the
        indication's row.

    Returns
    -------
    p : ndarray
        The patient's parameter vector.
    covariates : dict
        Sex, age, immune status and the variability factors.
    """
    rng = np.random.default_rng([int(seed), int(index)])
    p = base.copy()
    pidx = model.parameter_index
    rule = enrolment if enrolment is not None else ENROLMENT[indication]
    if immunosuppressed_fraction is None:
        immunosuppressed_fraction = rule.immunosuppressed_fraction
    female = bool(rng.random() < rule.female_fraction)
    age = float(np.clip(rng.normal(rule.age_mean, rule.age_sd), 18, 95))
    immunosuppressed = bool(rng.random() < immunosuppressed_fraction)
    z = rng.standard_normal(10)
    if not variability:
        z[:] = 0.0
    # correlated innate tone: inflammatory response and immune competence
    z_inf = z[2]

    def with_innate_tone(z_own: float) -> float:
        # a standard normal correlated rho 0.3 with the inflammatory response's
        return RHO_INFLAMMATION_IMMUNITY * z_inf + np.sqrt(1 - RHO_INFLAMMATION_IMMUNITY**2) * z_own

    z_imm = with_innate_tone(z[3])
    f_perm = np.exp(VARIABILITY["permeability"][0] * z[0])
    f_ec50 = np.exp(VARIABILITY["tlr7_sensitivity"][0] * z[1])
    f_inf = np.exp(VARIABILITY["inflammatory_response"][0] * z_inf)
    f_imm = np.exp(VARIABILITY["immune_competence"][0] * z_imm)
    f_growth = np.exp(VARIABILITY["lesion_growth"][0] * z[4])
    # immunosenescence: assumed -0.5% immune competence per year over 60
    f_imm *= 1.0 - 0.005 * max(age - 60.0, 0.0)
    p[pidx("kp_cream_cm_h")] *= f_perm
    if female and rule.female_permeability_factor != 1.0:
        # e.g. EGW: vulvar/mucosal warts are less keratinised than penile ones (populations.csv)
        p[pidx("site_permeability")] *= rule.female_permeability_factor
    if female and rule.female_susceptibility_factor != 1.0:
        # e.g. EGW: lesion cells of moist, non-keratinised epithelium are more accessible to
        # the infiltrate (populations.csv)
        p[pidx("lesion_immune_susceptibility")] *= rule.female_susceptibility_factor
    p[pidx("tlr7_ec50_ug_ml")] *= f_ec50
    for name in model.parameter_names:
        if name.startswith("q_"):
            p[pidx(name)] *= f_inf
    for name in IMMUNE_COMPETENCE_PARAMS:
        p[pidx(name)] *= f_imm
    if immunosuppressed:
        for name, f in IMMUNOSUPPRESSION.items():
            p[pidx(name)] *= f
    p[pidx("lesion_growth_rate")] *= f_growth
    field_sd = rule.field_sd
    p[pidx("field_reservoir_initial")] *= np.exp(field_sd * z[5]) if variability else 1.0
    p[pidx("memory_baseline")] *= np.exp(VARIABILITY["pre_existing_memory"][0] * z[6])
    p[pidx("baseline_surveillance")] *= np.exp(base[pidx("spontaneous_control_sd")] * z[7])
    p[pidx("melanocyte_t50_s")] *= np.exp(VARIABILITY["melanocyte_sensitivity"][0] * z[8])
    if variability:
        for name, v in _lesion_layout(rule, rng, model, base).items():
            p[pidx(name)] = v
        # the susceptibility all of one patient's lesions share (HLA type, mutational load, and
        # the IFN/TNF-driven MHC-I and death-receptor display his innate tone sets, hence
        # correlated with the inflammatory response like immune competence): multiplies each
        # lesion's own draw, so lesions of a patient respond together
        f_patient = np.exp(base[pidx("patient_susceptibility_sd")] * with_innate_tone(z[9]))
        for k in range(1, N_SLOTS + 1):
            p[pidx(f"lesion_susceptibility_{k}")] *= f_patient
    else:
        f_patient = 1.0
    cov = dict(
        patient=int(index),
        sex="F" if female else "M",
        age=round(age, 1),
        immune_status="immunosuppressed" if immunosuppressed else "immunocompetent",
        permeability_factor=f_perm,
        tlr7_ec50_factor=f_ec50,
        inflammatory_factor=f_inf,
        immune_competence_factor=f_imm,
        growth_factor=f_growth,
        lesion_susceptibility_factor=f_patient,
    )
    return p, cov


def sample_population(
    base: np.ndarray,
    indication: str,
    n: int,
    seed: int,
    *,
    start: int = 0,
    immunosuppressed_fraction: float | None = None,
    site: str | None = None,
    model: Model | None = None,
    enrolment: EnrolmentRule | None = None,
) -> Population:
    """Patients ``start .. start+n-1`` of seed ``seed``.

    Parameters
    ----------
    base : ndarray
        The scenario's parameter vector.
    indication : str
        Selects the default enrolment rule when ``enrolment`` is None.
    n, seed : int
        Number of patients and the trial seed.
    start : int
        Index of the first patient.
    immunosuppressed_fraction : float, optional
        Overrides the enrolment rule's share of immunosuppressed patients (0..1).
    site : str, optional
        Added as a covariate column.
    model : Model, optional
    enrolment : EnrolmentRule, optional
        Who the trial enrols (:meth:`imiqsim.scenario.Scenario.enrolment`).

    Returns
    -------
    Population
    """
    if n <= 0:
        raise InputError("patients", n, "a positive number of patients")
    if immunosuppressed_fraction is not None and not (0.0 <= immunosuppressed_fraction <= 1.0):
        raise InputError(
            "immunosuppressed_fraction", immunosuppressed_fraction, "a fraction in [0, 1]"
        )
    model = model or get_model()
    rows, covs = [], []
    for i in range(start, start + n):
        p, c = sample_patient(
            model, base, indication, seed, i, immunosuppressed_fraction, enrolment=enrolment
        )
        if site is not None:
            c["site"] = site
        rows.append(p)
        covs.append(c)
    return Population(np.array(rows), pd.DataFrame(covs), np.arange(start, start + n))
