"""Scans: each point is the virtual trial a separate `trial` run of that regimen gives."""

from __future__ import annotations

import numpy as np
import pytest
import xarray as xr

from imiqsim.analysis.scan import scan
from imiqsim.errors import InputError
from imiqsim.scenario import resolve
from imiqsim.trial import run_trial

PATIENTS = 60
SEED = 4


def test_scan_of_applications_per_week_on_sbcc_reproduces_separate_trials():
    res = scan(
        "sbcc-5pct",
        ["applications_per_week=3:7:3"],
        outputs=["complete_clearance", "lsr_max"],
        patients=PATIENTS,
        seed=SEED,
    )
    ds = res.dataset
    assert list(ds["applications_per_week"].values) == [3.0, 5.0, 7.0]
    assert ds["value"].dims == ("output", "applications_per_week")
    cc = ds.sel(output="complete_clearance")
    # the scanned axis is the regimen's: more frequent dosing gives a stronger reaction and, since
    # the death-receptor route, more clearance at each point (0.72 / 0.85 / 0.90 here: the Geisse
    # 2002 ordering), each point equal to a separate trial below
    lsr = ds["value"].sel(output="lsr_max").values
    assert lsr[0] < lsr[1] < lsr[2]
    assert cc["value"].values[0] < cc["value"].values[1] < cc["value"].values[2]
    base = resolve("sbcc-5pct")
    for k in (3, 5, 7):
        sc = base.with_overrides(regimen={"applications_per_week": k})
        arm = run_trial([sc], patients=PATIENTS, seed=SEED, followup_years=0.0).arms[0]
        e = arm.endpoints["complete_clearance"]
        point = cc.sel(applications_per_week=k)
        assert float(point["value"]) == e["value"]
        assert [float(point["ci95_low"]), float(point["ci95_high"])] == e["ci95"]
        assert int(point["n"]) == e["n"] == PATIENTS
        assert float(ds["value"].sel(output="lsr_max", applications_per_week=k)) == (
            pytest.approx(arm.outcomes["lsr_max"].mean(), rel=1e-12)
        )
    assert "common random numbers" in ds.attrs["common_random_numbers"]


def test_two_dimensional_scan_is_labelled_and_written(tmp_path):
    res = scan(
        "sbcc-5pct",
        {"weeks": [4, 6], "tlr7_ec50_ug_ml": [1.0, 4.0]},
        patients=8,
        seed=2,
    )
    assert res.factors == ["weeks", "tlr7_ec50_ug_ml"]
    assert res.dataset["value"].shape == (1, 2, 2)
    assert "4 weeks" in str(res.dataset["regimen"].sel(weeks=4, tlr7_ec50_ug_ml=1.0).values)
    paths = res.write(tmp_path)
    assert {p.name for p in paths} == {"scan.nc", "scan.csv", "scan.json", "scan.png"}
    back = xr.load_dataset(tmp_path / "scan.nc", engine="h5netcdf")
    np.testing.assert_array_equal(back["value"].values, res.dataset["value"].values)
    # a lower EC50 (more TLR7 engagement) never clears fewer of the same patients
    v = res.dataset["value"].sel(output="complete_clearance")
    assert (v.sel(tlr7_ec50_ug_ml=1.0) >= v.sel(tlr7_ec50_ug_ml=4.0)).all()


def test_bad_scan_input_names_the_field():
    with pytest.raises(InputError, match="factor"):
        scan("sbcc-5pct", ["no_such_thing=1:2:2"], patients=4)
    with pytest.raises(InputError, match="applications_per_week"):
        scan("sbcc-5pct", ["applications_per_week=9,15"], patients=4)
    with pytest.raises(InputError, match="output"):
        scan("sbcc-5pct", ["weeks=6"], outputs=["no_such_output"], patients=4)


def test_scan_numbers_do_not_depend_on_the_worker_count():
    # one pool of 2 single-threaded processes for the whole scan (points sent longest course
    # first) against this process with the engine's threads: the same numbers, bit for bit
    grid = {"weeks": [4, 8], "tlr7_ec50_ug_ml": [1.0, 4.0]}
    kw = dict(outputs=["complete_clearance", "lsr_max"], patients=6, seed=2)
    here = scan("sbcc-5pct", grid, workers=1, **kw)
    pool = scan("sbcc-5pct", grid, workers=2, **kw)
    xr.testing.assert_identical(here.dataset, pool.dataset)
    # an input error found in a worker process comes back as the same one-line InputError
    with pytest.raises(InputError, match="output: got 'no_such_output'"):
        scan("sbcc-5pct", grid, outputs=["no_such_output"], patients=4, workers=2)
    with pytest.raises(InputError, match="workers"):
        scan("sbcc-5pct", grid, patients=4, workers=0)
