"""Results pinned bit for bit: refactors must leave every number unchanged.

``tests/data/pins.json`` was computed by ``tests/pins_generate.py`` before the
layout change (issue "one place per concept"). A commit that changes the model
on purpose regenerates it and says what moved and why.
"""

from __future__ import annotations

import json

import pytest

from pins_generate import PIN_FILE, compute_pins


@pytest.fixture(scope="module")
def pins():
    return json.loads(PIN_FILE.read_text()), compute_pins()


def test_trial_outcomes_are_bit_identical_to_the_pins(pins):
    want, got = pins
    for preset, ref in want["trials"].items():
        for col, values in ref["columns"].items():
            assert got["trials"][preset]["columns"][col] == values, (preset, col)
        assert got["trials"][preset]["endpoints"] == ref["endpoints"], preset


def test_typical_patient_summary_is_bit_identical_to_the_pins(pins):
    want, got = pins
    assert got["simulate"] == want["simulate"]


def test_field_run_is_bit_identical_to_the_pins(pins):
    want, got = pins
    for key, values in want["field"].items():
        assert got["field"][key] == values, key
