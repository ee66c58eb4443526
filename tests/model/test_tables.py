"""The model's CSV tables parse as tables: every row has exactly its header's columns."""

from __future__ import annotations

import csv
from importlib import resources

import pytest

TABLES = sorted(
    p.name for p in resources.files("imiqsim.model").iterdir() if p.name.endswith(".csv")
)


@pytest.mark.parametrize("name", TABLES)
def test_every_row_has_the_headers_columns(name):
    # an unquoted comma in a description shifts the source and status into extra columns: the
    # loaders then read a truncated description, and writing a calibrated value back fails
    text = resources.files("imiqsim.model").joinpath(name).read_text(encoding="utf-8")
    lines = [ln for ln in text.splitlines() if ln.strip() and not ln.startswith("#")]
    header, *rows = list(csv.reader(lines))
    bad = [(i, len(r)) for i, r in enumerate(rows, start=2) if len(r) != len(header)]
    assert not bad, f"{name}: rows with other than {len(header)} columns: {bad}"


def test_the_model_tables_are_all_checked():
    # an empty or short listing would leave the check above with nothing to run on
    assert {"parameters.csv", "indications.csv", "calibrated.csv", "populations.csv"} <= set(TABLES)
