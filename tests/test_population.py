"""Virtual patients: enrolment rules come from model/populations.csv, one row per indication."""

from __future__ import annotations

import dataclasses

import numpy as np

from imiqsim import population
from imiqsim.model import INDICATIONS, get_model
from imiqsim.model.lesions import N_SLOTS
from imiqsim.scenario import resolve

MODEL = get_model()


def _visible_counts(preset: str, n: int = 200) -> np.ndarray:
    """Visible lesions at entry per patient: each slot counts the lesions it stands for."""
    sc = resolve(preset)
    pop = population.sample_population(
        sc.model_parameters(MODEL), sc.indication, n, 5, model=MODEL, enrolment=sc.enrolment()
    )
    thr = pop.P[:, MODEL.parameter_index("visible_threshold_cells")][:, None]
    cells = pop.P[:, [MODEL.parameter_index(f"lesion_initial_cells_{k}") for k in range(1, 15)]]
    counts = pop.P[:, [MODEL.parameter_index(f"lesion_count_{k}") for k in range(1, 15)]]
    return (counts * (cells >= thr)).sum(axis=1)


def test_every_indication_has_an_enrolment_row_with_a_source():
    assert set(population.ENROLMENT) == set(INDICATIONS)
    for rule in population.ENROLMENT.values():
        assert rule.source and 0 <= rule.female_fraction <= 1


def test_lesion_counts_at_entry_follow_the_table_and_the_presets_population():
    small, large = _visible_counts("ak-5pct"), _visible_counts("ak-3.75pct")  # 25 vs 200 cm2
    ak = population.ENROLMENT["AK"]
    assert small.min() >= ak.visible_a and small.max() <= ak.visible_b
    # the full-face preset enrols 5-20 AKs through its own [population] table (Swanson 2010)
    assert resolve("ak-3.75pct").population.visible_lesions == [5, 20]
    assert large.min() >= 5 and large.max() <= 20 and large.max() > N_SLOTS
    assert large.mean() > small.mean() + 4
    assert (_visible_counts("sbcc-5pct") == 1).all()
    egw = _visible_counts("egw-5pct")
    assert egw.min() >= 1 and 4 < egw.mean() < 8


def test_changing_the_rule_changes_who_is_enrolled(monkeypatch):
    rule = dataclasses.replace(population.ENROLMENT["AK"], visible_a=10, visible_b=12)
    monkeypatch.setitem(population.ENROLMENT, "AK", rule)
    counts = _visible_counts("ak-5pct", 50)
    assert counts.min() >= 10 and counts.max() <= 12
