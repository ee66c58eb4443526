"""Who a trial enrols as scenario data: the [population] table and lesion multiplicity."""

from __future__ import annotations

import numpy as np
import pytest

from imiqsim import population
from imiqsim.errors import InputError
from imiqsim.model import get_model
from imiqsim.model.lesions import N_SLOTS
from imiqsim.population import ENTRY_SLOTS, sample_population, slot_plan
from imiqsim.scenario import load_preset

MODEL = get_model()
SLOTS = range(1, N_SLOTS + 1)


def _pop(sc, n, seed=7, **kw):
    return sample_population(
        sc.model_parameters(MODEL),
        sc.indication,
        n,
        seed,
        model=MODEL,
        enrolment=sc.enrolment(),
        **kw,
    )


def _entry_counts(pop) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Visible and subclinical lesions at entry per patient, and slots used."""
    P = pop.P
    thr = P[:, MODEL.parameter_index("visible_threshold_cells")][:, None]
    cells = P[:, [MODEL.parameter_index(f"lesion_initial_cells_{k}") for k in SLOTS]]
    counts = P[:, [MODEL.parameter_index(f"lesion_count_{k}") for k in SLOTS]]
    vis = (counts * (cells >= thr)).sum(axis=1)
    sub = (counts * ((cells > 0) & (cells < thr))).sum(axis=1)
    return vis, sub, (cells > 0).sum(axis=1)


def test_a_1000_patient_sample_respects_and_covers_the_visible_range():
    sc = load_preset("ak-5pct").with_overrides(population={"visible_lesions": [10, 30]})
    vis, sub, used = _entry_counts(_pop(sc, 1000))
    assert vis.min() == 10 and vis.max() == 30
    assert set(vis.astype(int)) == set(range(10, 31))  # every count in [min, max] occurs
    assert used.max() <= ENTRY_SLOTS  # two slots always stay empty for new lesions
    # subclinical lesions are no longer cut off when the slots are full (Poisson mean 2)
    assert 1.8 < sub.mean() < 2.2


def test_slot_plan_keeps_every_lesion_and_spreads_them_evenly():
    for n_vis in range(0, 60, 3):
        for n_sub in range(0, 25, 4):
            v, s = slot_plan(n_vis, n_sub)
            assert sum(v) == n_vis and sum(s) == n_sub
            assert len(v) + len(s) <= ENTRY_SLOTS
            assert (len(v) > 0) == (n_vis > 0) and (len(s) > 0) == (n_sub > 0)
            for group in (v, s):
                if group:
                    assert max(group) - min(group) <= 1
    assert slot_plan(8, 4) == ([1] * 8, [1] * 4)  # fits: one lesion per slot, as before
    assert slot_plan(40, 10) == ([4] * 10, [5] * 2)


def test_lesions_in_one_slot_share_its_size_and_empty_slots_seed_new_ones():
    sc = load_preset("ak-5pct").with_overrides(population={"visible_lesions": [40, 40]})
    pop = _pop(sc, 5)
    P = pop.P
    counts = P[:, [MODEL.parameter_index(f"lesion_count_{k}") for k in SLOTS]]
    seed = P[:, [MODEL.parameter_index(f"lesion_seed_rate_{k}") for k in SLOTS]]
    cells = P[:, [MODEL.parameter_index(f"lesion_initial_cells_{k}") for k in SLOTS]]
    assert (counts[:, ENTRY_SLOTS:] == 1).all() and (cells[:, ENTRY_SLOTS:] == 0).all()
    assert (seed[:, ENTRY_SLOTS:] > 0).all() and (seed[:, :ENTRY_SLOTS] == 0).all()
    assert (counts[:, :ENTRY_SLOTS].sum(axis=1) >= 40).all() and counts.max() >= 3


def test_a_population_table_with_the_defaults_changes_nobody():
    sc = load_preset("ak-5pct")
    same = sc.with_overrides(
        population={"visible_lesions": [4, 8], "female_fraction": 0.15, "age_mean": 66.0}
    )
    a, b = _pop(sc, 60), _pop(same, 60)
    assert np.array_equal(a.P, b.P)
    assert a.covariates.equals(b.covariates)


def test_demography_keys_change_who_is_enrolled():
    sc = load_preset("ak-5pct").with_overrides(
        population={
            "female_fraction": 1.0,
            "age_mean": 40.0,
            "age_sd": 0.0,
            "immunosuppressed_fraction": 0.5,
        }
    )
    cov = _pop(sc, 400).covariates
    assert (cov["sex"] == "F").all() and (cov["age"] == 40.0).all()
    share = (cov["immune_status"] == "immunosuppressed").mean()
    assert 0.42 < share < 0.58
    # the API argument overrides the scenario's value
    cov0 = _pop(sc, 100, immunosuppressed_fraction=0.0).covariates
    assert (cov0["immune_status"] == "immunocompetent").all()
    default = _pop(load_preset("ak-5pct"), 100).covariates
    assert (default["immune_status"] == "immunocompetent").all()
    assert 0.05 < (default["sex"] == "F").mean() < 0.3


def test_subclinical_mean_key_sets_the_subclinical_count():
    sc = load_preset("ak-5pct").with_overrides(population={"subclinical_lesions_mean": 10.0})
    _, sub, _ = _entry_counts(_pop(sc, 300))
    assert 9.3 < sub.mean() < 10.7
    _, none, _ = _entry_counts(
        _pop(
            load_preset("ak-5pct").with_overrides(population={"subclinical_lesions_mean": 0.0}), 50
        )
    )
    assert (none == 0).all()


def test_sample_population_refuses_a_bad_fraction():
    with pytest.raises(InputError, match="immunosuppressed_fraction"):
        _pop(load_preset("ak-5pct"), 3, immunosuppressed_fraction=1.5)


def test_the_table_has_no_area_rule_left():
    # lesion counts by treated area live in the presets' [population] tables, not in code
    fields = set(population.EnrolmentRule.__dataclass_fields__)
    assert not {f for f in fields if "large" in f}
    assert load_preset("ak-3.75pct-vehicle").enrolment().visible_b == 20
