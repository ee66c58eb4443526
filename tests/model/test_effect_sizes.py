"""Effect sizes of each mechanism stage, on the typical patient (issue 10, part 7).

Each test measures how much one stage does (not only which way) and holds it in a band that a
10x change of the stage's key rate leaves; ``benchmarks/mutation.py`` shows which tests go red
for which mutation. Bands come from biology where a number is known, otherwise from the current
model with the margin stated next to the band (measured values: the figures after "model:").
Where a lesion outcome is used it is a ratio between two simulations or a share of the kills, not
a calibrated clinical figure, so recalibration moves it little.

Stage and key rate of each test:

========== ============================= ==================================================
stage      key rate                      test
========== ============================= ==================================================
pk         kp_cream_cm_h                 ``test_pk_*`` (and the label Cmax test)
tlr7       tlr7_ec50_ug_ml               ``test_tlr7_*``
cytokines  ifn_alpha_decay_rate          ``test_cytokines_*``
cells      k_t_infiltration              ``test_cells_*``
lesions    k_ctl_kill, k_nk_kill,        ``test_lesions_*``
           k_memory_kill,
           ifn_growth_inhibition,
           death_receptor_kill_max
reactions  k_vascular_on                 ``test_reactions_*``
cryo       cryo_log_kill_max             ``test_cryo_*``
endpoints  visible/histology thresholds  ``test_detection_limits_*``
========== ============================= ==================================================
"""

from __future__ import annotations

import numpy as np
import pytest

import imiqsim
from imiqsim.model import get_model

MODEL = get_model()
PRESETS = ("ak-5pct", "sbcc-5pct", "egw-5pct")
IMMUNE_TALLIES = tuple(s for s, (_, kind) in MODEL.kill_tallies.items() if kind == "immune")
ALL_IMMUNE = ["tlr7", "pdc", "macrophage", "dendritic", "nk", "cd8", "memory"]


@pytest.fixture(scope="module")
def typical():
    """The typical patient of each imiquimod preset, over its course and assessment."""
    return {p: imiqsim.simulate(p) for p in PRESETS}


def _dose_hours(ds) -> np.ndarray:
    """Hours of the applications (the steps where the applied total rises)."""
    t = ds["time"].values * 24.0
    return t[np.nonzero(np.diff(ds["applied"].values) > 0)[0] + 1]


def _resolved(preset: str, name: str) -> float:
    from imiqsim.scenario import load_preset

    return float(load_preset(preset).model_parameters(MODEL)[MODEL.parameter_index(name)])


# ----------------------------------------------------------------------------------------- pk


def test_pk_one_application_delivers_a_few_percent_of_the_dose_into_the_skin():
    """Share of one 8-h application that crosses into the stratum corneum (face, 5%, 25 cm2).

    Imiquimod penetrates poorly: in vitro human skin takes up a few percent of a finite dose, and
    the label's systemic recovery after 16 weeks is < 1% of the applied dose. Band 0.5-6%
    (model: 1.7%): kp x10 gives 17%, kp x0.1 0.17%.
    """
    ds = imiqsim.simulate("ak-5pct", days=2.0, output_every_hours=0.25).dataset
    t = ds["time"].values * 24.0
    first = _dose_hours(ds)[0]
    k = int(np.searchsorted(t, first + 12.0))  # after the 8-h leave-on and the wash
    applied = float(ds["applied"].values[k])
    left = float(ds["washed_off"].values[k] + ds["film"].values[k])
    assert 0.005 <= (applied - left) / applied <= 0.06


# --------------------------------------------------------------------------------------- tlr7


def test_tlr7_first_application_engages_the_receptor_without_saturating_it():
    """Peak TLR7 occupancy during the first day (AK face, 5%).

    The label strengths give a graded response (2.5% < 3.75% < 5% in the dose-ranging trials), so
    occupancy at 5% is well below saturation; the free drug is bounded by imiquimod's aqueous
    solubility (a few ug/mL), so it is a few to tens of percent, not negligible. Band 0.02-0.25
    (model: 0.070; 0.34 before the free fraction fell from 0.2 to 0.02): EC50 x10 gives 0.0074,
    x0.1 0.43.
    """
    ds = imiqsim.simulate("ak-5pct", days=2.0, output_every_hours=0.25).dataset
    t = ds["time"].values * 24.0
    first = _dose_hours(ds)[0]
    day1 = (t >= first) & (t < first + 24.0)
    occ = float(ds["tlr7_occupancy"].values[day1].max())
    assert 0.02 <= occ <= 0.25


# ---------------------------------------------------------------------------------- cytokines


@pytest.mark.parametrize("preset", PRESETS)
def test_cytokines_local_ifn_alpha_reaches_a_graded_level(typical, preset):
    """Peak local IFN-alpha excess over the course, relative to its half-signal level.

    ``ifn_alpha_k_signal`` (100 pg/mL: half-maximal ISG/CXCL10 induction) is where the tissue
    response is graded; imiquimod gives a clear IFN signature in treated skin (Urosevic 2005), so
    the peak excess is a sizeable fraction of it, and not many times it (responses are graded,
    not saturated, at label doses). Band 0.1-2.5x (model: AK 0.46, sBCC 1.13, EGW 0.91): the
    IFN-alpha decay rate x10 gives AK 0.04, x0.1 gives 3.4.
    """
    ds = typical[preset].dataset
    excess = ds["ifn_alpha"].values - MODEL.parameter("ifn_alpha_baseline").value
    half = _resolved(preset, "ifn_alpha_k_signal")
    assert 0.1 <= float(excess.max()) / half <= 2.5


# -------------------------------------------------------------------------------------- cells


_DENSE_INFILTRATE = pytest.mark.xfail(
    reason="issue 10's IFN-gamma recruitment loop makes the infiltrate denser than reported: peak "
    "CTL 1,750 (AK) and 4,200 (EGW) /mm2 against hundreds (a miss, README Known limitations)",
    strict=True,
)


@pytest.mark.parametrize(
    "preset",
    [p if p == "sbcc-5pct" else pytest.param(p, marks=_DENSE_INFILTRATE) for p in PRESETS],
)
def test_cells_ctl_infiltrate_reaches_hundreds_per_square_millimetre(typical, preset):
    """Peak density of lesion-specific CD8 CTLs in treated skin, cells/mm2.

    Imiquimod-treated AK and sBCC show dense T-cell infiltrates (Urosevic 2003 Arch Dermatol
    139:1325; Ooi 2006 Br J Dermatol 154:72), hundreds of cells per mm2 of dermis. Band 80-1500
    (model now: sBCC 541; AK 1,747 and EGW 4,219 are misses): the T-cell homing rate
    k_t_infiltration x0.1 gives sBCC 33, x10 4,881.
    """
    peak = float(typical[preset].dataset["cd8_ctl"].values.max())
    assert 80.0 <= peak <= 1500.0


# ------------------------------------------------------------------------------------ lesions


def _immune_shares(ds) -> dict[str, float]:
    kills = {s: float(ds[s].values[-1]) for s in IMMUNE_TALLIES}
    total = sum(kills.values())
    return {s: v / total for s, v in kills.items()}


#: in sBCC the death-receptor route does nearly all the killing since its refit
_SBCC_DEATH_RECEPTOR = pytest.mark.xfail(
    strict=True,
    reason="model miss (README Known limitations): in the typical sBCC patient death-receptor"
    " apoptosis does 99.9% of the immune killing; the fit put the sBCC susceptibility to"
    " antigen-specific effectors at the floor of its box (0.023), so CTLs, NK cells and memory"
    " do almost none, where biopsies show a CTL infiltrate with perforin/granzyme",
)
_AK_EGW_SBCC = [
    p if p != "sbcc-5pct" else pytest.param(p, marks=_SBCC_DEATH_RECEPTOR) for p in PRESETS
]


@pytest.mark.parametrize("preset", _AK_EGW_SBCC)
def test_lesions_ctls_do_a_large_share_of_the_immune_killing(typical, preset):
    """CD8 CTLs' share of the lesion cells killed by immune effectors.

    Regression under imiquimod goes with a CD8 infiltrate carrying perforin and granzyme B
    (Urosevic 2003); CTLs are the largest effector, doing about half or more of the killing. Band
    0.45-0.95 (model: AK 0.71, EGW 0.83; sBCC 0.00, a miss): k_ctl_kill x0.1 gives AK 0.29, EGW
    0.39 (NK cells and memory take over part of it).
    """
    share = _immune_shares(typical[preset].dataset)["killed_ctl"]
    assert 0.45 <= share <= 0.95


@pytest.mark.parametrize("preset", _AK_EGW_SBCC)
def test_lesions_nk_cells_do_a_minor_but_real_share(typical, preset):
    """NK cells' share of the lesion cells killed by immune effectors.

    NK cells are recruited by imiquimod but are a small part of the infiltrate next to T cells and
    macrophages (Urosevic 2003). Band 0.05-0.5 (model: AK 0.096, EGW 0.086; sBCC 0.00, a miss):
    k_nk_kill x0.1 gives about a tenth.
    """
    share = _immune_shares(typical[preset].dataset)["killed_nk"]
    assert 0.05 <= share <= 0.5


_EGW_MEMORY_MISS = pytest.mark.xfail(
    reason="after issue 10's joint fit memory surveillance no longer outpaces wart growth in the "
    "typical EGW patient; the population recurrence egw5-3x16-recur (17% vs 13%) is inside its CI",
    strict=False,
)


@pytest.mark.parametrize(
    "preset",
    [
        pytest.param(p, marks=_EGW_MEMORY_MISS)
        if p == "egw-5pct"
        else pytest.param(p, marks=_SBCC_DEATH_RECEPTOR)
        if p == "sbcc-5pct"
        else p
        for p in PRESETS
    ],
)
def test_lesions_memory_outpaces_lesion_growth_after_the_course(typical, preset):
    """Memory T-cell hazard on residual lesion cells 4 weeks after the last dose / growth rate.

    Most clearers stay clear for months without drug (EGW: 13% recurrence in 12 weeks, Edwards
    1998); with the drug's milieu gone, memory surveillance is what keeps a residue from
    regrowing, so its hazard at least matches the lesion's own proliferation. It cannot be many
    times it, or nothing would ever recur. Band 1-100 (model: AK 7.8, sBCC 14.7, EGW 1.7):
    k_memory_kill x0.1 gives 0.17-1.5 (EGW and AK below 1), x10 gives 17-143.
    """
    ds = typical[preset].dataset
    day = ds["time"].values
    k = int(np.searchsorted(day, _dose_hours(ds)[-1] / 24.0 + 28.0))
    growth = _resolved(preset, "lesion_growth_rate")
    assert 1.0 <= float(ds["memory_hazard"].values[k]) / growth <= 100.0


def test_lesions_death_receptors_alone_can_clear_a_typical_superficial_bcc(typical):
    """Log-kill the death-receptor route delivers over the sBCC course (typical patient).

    Fas appears on BCC cells under imiquimod and apoptosis follows (Berman 2003, Sullivan 2003);
    TNF-alpha primes it, ligands on the infiltrating effectors trigger it. Its hazard integrated
    over the 6-week course, in e-folds: a tumour of ~1e7 cells is 16, so the route the sBCC rows
    ask for clears it with room to spare, without being a certainty whatever the dose. Band
    20-300 (model: 74): death_receptor_kill_max x10 gives 568, x0.1 14. Knocked out, the tumour
    stays (4.9e6 cells at assessment: the other routes do little, see the CTL-share miss).
    """
    ds = typical["sbcc-5pct"].dataset
    t = ds["time"].values * 24.0
    on = t <= _dose_hours(ds)[-1]
    efolds = float(np.trapezoid(ds["death_receptor_hazard"].values[on], t[on]))
    assert 20.0 <= efolds <= 300.0
    ko = imiqsim.simulate("sbcc-5pct", knockouts=["death_receptor"]).summary
    assert ko["lesion_burden_final"] > 0.1 * ko["lesion_burden_initial"]
    # it is immune killing: without TNF-alpha (the priming) it does not happen at all
    no_tnf = imiqsim.simulate("sbcc-5pct", knockouts=["tnf_alpha"]).dataset
    assert float(np.max(no_tnf["death_receptor_hazard"].values)) == 0.0
    assert typical["sbcc-5pct"].summary["lesion_burden_final"] < 1e-6 * ko["lesion_burden_final"]


@pytest.mark.parametrize(
    "preset, lowest", [("egw-5pct", 0.0026), ("sbcc-5pct", 0.0023), ("ak-5pct", 0.0007)]
)
def test_lesions_ifn_alpha_slows_lesion_growth_by_a_measured_factor(preset, lowest):
    """IFN-alpha's antiproliferative arm alone: lesions with NK, CD8 and macrophages depleted.

    Without the killers the only effect of imiquimod on the lesion is IFN-alpha's slowing of
    proliferation (antiviral state in HPV warts, antiproliferative in tumour cells); the net
    log-growth of the lesions over 4 weeks with IFN-alpha present, over the same with IFN-alpha
    knocked out, measures it. Strongest in warts (indications.csv: 0.8 vs 0.5 AK, 0.3 sBCC).
    Band: slowed by ``lowest``-50%, ``lowest`` a third of the model's value (model: EGW 0.79%,
    sBCC 0.69%, AK 0.21%; 5.0 / 3.6 / 1.6% before the free fraction fell from 0.2 to 0.02, which
    lowers IFN-alpha in the typical patient): ifn_growth_inhibition x0.1 gives a tenth of it.
    """
    depleted = ["nk", "cd8", "macrophage"]
    with_ifn = imiqsim.simulate(preset, knockouts=depleted, days=28).dataset
    without = imiqsim.simulate(preset, knockouts=depleted + ["ifn_alpha"], days=28).dataset

    def log_growth(ds):
        lb = ds["lesion_burden"].values
        return float(np.log(lb[-1] / lb[0]))

    assert log_growth(without) > 0  # the depleted lesions do grow
    slowed = 1.0 - log_growth(with_ifn) / log_growth(without)
    assert lowest <= slowed <= 0.5


# ---------------------------------------------------------------------------------- reactions


def test_reactions_lsr_peak_is_moderate_and_follows_the_dose(typical):
    """Peak LSR sum score (0-18) of the typical AK patient, and its fall with the cream strength.

    Present, and falling with the strength. Band 1-6 (model: 2.0; 3.75% 1.4, 2.5% 0.5; 7.4 before
    the free fraction fell from 0.2 to 0.02): k_vascular_on x10 gives 17.4, x0.1 0.04. A
    vehicle gives at most 1. The biology asks for more in the typical patient (next test).
    """
    lsr = typical["ak-5pct"].summary["lsr_max"]
    assert 1.0 <= lsr <= 6.0
    assert imiqsim.simulate("ak-3.75pct").summary["lsr_max"] < lsr
    assert imiqsim.simulate("ak-5pct-vehicle").summary["lsr_max"] <= 1.0


@pytest.mark.xfail(
    strict=True,
    reason="model miss (README Known limitations): the typical AK patient's peak LSR is 2.0; the"
    " population's severe erythema (18.8%) comes from the patients above the median",
)
def test_reactions_typical_patient_has_a_clear_reaction(typical):
    """In the 2x/week 16-week AK trial severe erythema (score 3) occurs in a minority (17.7%,
    Lebwohl 2004) and most patients have some reaction, so the typical patient's reaction is
    clearly present but not maximal on most components: peak LSR 4-13."""
    assert 4.0 <= typical["ak-5pct"].summary["lsr_max"] <= 13.0


# --------------------------------------------------------------------------------------- cryo


def test_cryo_one_ten_second_freeze_kills_one_to_three_logs():
    """log10 kill of a typical-thickness visible AK by one 10-s freeze-thaw cycle (no immunity).

    Thai 2004: a > 5 s freeze clears about 69% of AKs, so one freeze takes a typical lesion
    (about 1e5 cells) down past the visible limit (about 5000 cells: more than 1.3 logs) often but
    not always; deep follicular extensions survive, so the kill is not many logs. Band 0.5-3 logs
    (model: 1.27): cryo_log_kill_max x0.1 gives 0.13, x10 gives 12.7.
    """
    ds = imiqsim.simulate("ak-cryo", knockouts=ALL_IMMUNE).dataset
    cells = ds["lesion_1"].values
    k = int(np.nonzero(np.diff(ds["killed_cryo"].values) > 0)[0][0])
    assert 0.5 <= float(np.log10(cells[k] / cells[k + 1])) <= 3.0


# --------------------------------------------------------------------- endpoint thresholds


@pytest.mark.parametrize(
    "preset, cells_per_lesion, ratio",
    [
        # AK: a 3-8 mm lesion holds ~1e5 cells (lesion_capacity_cells / 2); visible from ~1 mm2
        ("ak-5pct", "capacity", 1 / 20),
        # EGW: a 3-6 mm wart ~5e5 cells; visible from ~1 mm (indications.csv)
        ("egw-5pct", "capacity", 1 / 50),
        # sBCC: a ~1 cm2 tumour ~1e7 cells (lesion_initial_cells_1); visible from ~1 mm2
        ("sbcc-5pct", "initial", 1 / 100),
    ],
)
def test_detection_limits_clinical_limit_is_a_fixed_fraction_of_a_typical_lesion(
    preset, cells_per_lesion, ratio
):
    """The clinical detection limit (visible_threshold_cells) against the lesion it sees.

    A pin, on purpose: the threshold is an assumption with a physical meaning (the smallest
    lesion a clinician sees, ~1 mm, against a typical lesion of the indication, indications.csv);
    a change to it changes what complete clearance means, so it must be a deliberate change of
    this test too. Band: the documented ratio within a factor 1.5 (a 2x change of the threshold
    is outside it).
    """
    thr = _resolved(preset, "visible_threshold_cells")
    ref = (
        0.5 * _resolved(preset, "lesion_capacity_cells")
        if cells_per_lesion == "capacity"
        else _resolved(preset, "lesion_initial_cells_1")
    )
    assert ratio / 1.5 <= thr / ref <= ratio * 1.5


@pytest.mark.parametrize("preset, ratio", [("ak-5pct", 25), ("sbcc-5pct", 100), ("egw-5pct", 33)])
def test_detection_limits_histology_sees_far_smaller_foci_than_the_eye(preset, ratio):
    """visible_threshold_cells / histology_threshold_cells, per indication.

    Serial sections find a dysplastic focus or tumour nest one to two orders of magnitude smaller
    than the smallest lesion seen at the bedside (indications.csv: AK 200 vs 5000 cells); the
    ratio sets how long histological clearance lags clinical clearance. A pin, as above: the
    documented ratio within a factor 1.5, so a 2x change of either threshold is outside it.
    """
    r = _resolved(preset, "visible_threshold_cells") / _resolved(
        preset, "histology_threshold_cells"
    )
    assert ratio / 1.5 <= r <= ratio * 1.5
