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
    sc = resolve(preset)
    pop = population.sample_population(sc.model_parameters(MODEL), sc.indication, n, 5, model=MODEL)
    thr = pop.P[:, MODEL.parameter_index("visible_threshold_cells")][:, None]
    cells = pop.P[:, [MODEL.parameter_index(f"lesion_initial_cells_{k}") for k in range(1, 15)]]
    return (cells >= thr).sum(axis=1)


def test_every_indication_has_an_enrolment_row_with_a_source():
    assert set(population.ENROLMENT) == set(INDICATIONS)
    for rule in population.ENROLMENT.values():
        assert rule.source and 0 <= rule.female_fraction <= 1


def test_lesion_counts_at_entry_follow_the_table():
    small, large = _visible_counts("ak-5pct"), _visible_counts("ak-3.75pct")  # 25 vs 200 cm2
    ak = population.ENROLMENT["AK"]
    assert small.min() >= ak.visible_a and small.max() <= ak.visible_b
    assert large.min() >= ak.visible_a_large and large.max() <= ak.visible_b_large
    assert large.mean() > small.mean() + 1
    assert (_visible_counts("sbcc-5pct") == 1).all()
    egw = _visible_counts("egw-5pct")
    assert egw.min() >= 1 and egw.max() <= N_SLOTS - 2 and 4 < egw.mean() < 8


def test_changing_the_rule_changes_who_is_enrolled(monkeypatch):
    rule = dataclasses.replace(population.ENROLMENT["AK"], visible_a=10, visible_b=12)
    monkeypatch.setitem(population.ENROLMENT, "AK", rule)
    counts = _visible_counts("ak-5pct", 50)
    assert counts.min() >= 10 and counts.max() <= 12
