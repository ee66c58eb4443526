"""Global sensitivity: Ishigami through the analysis code path, and the real model on ak-5pct."""

from __future__ import annotations

import math

import numpy as np
import pytest

from imiqsim.analysis.evaluate import FunctionModel
from imiqsim.analysis.factors import Range, default_ranges, parameter_table_rows
from imiqsim.analysis.sensitivity import sensitivity
from imiqsim.errors import InputError

# Ishigami function, a = 7, b = 0.1 (Ishigami & Homma 1990; Saltelli et al. 2008, 4.6):
# analytic first-order and total indices
ISHIGAMI_S1 = {"x1": 0.3139, "x2": 0.4424, "x3": 0.0}
ISHIGAMI_ST = {"x1": 0.5576, "x2": 0.4424, "x3": 0.2437}


def _ishigami(p):
    x1, x2, x3 = p["x1"], p["x2"], p["x3"]
    return {"y": math.sin(x1) + 7.0 * math.sin(x2) ** 2 + 0.1 * x3**4 * math.sin(x1)}


def test_sobol_recovers_the_analytic_ishigami_indices():
    # the one stand-in for the model: the same sampling, range transform, analysis and
    # convergence code as a model run, with a function of known indices instead of the engine
    ranges = {k: Range(-math.pi, math.pi, "linear") for k in ("x1", "x2", "x3")}
    res = sensitivity(
        model=FunctionModel(_ishigami, ["x1", "x2", "x3"]),
        method="sobol",
        outputs=["y"],
        n=1024,
        ranges=ranges,
        bootstrap=100,
        seed=3,
    )
    ds = res.dataset
    for k in ranges:
        assert ds["S1"].sel(output="y", parameter=k) == pytest.approx(ISHIGAMI_S1[k], abs=0.04)
        assert ds["ST"].sel(output="y", parameter=k) == pytest.approx(ISHIGAMI_ST[k], abs=0.04)
        # the bootstrap CI covers the analytic value
        half = float(ds["ST_conf"].sel(output="y", parameter=k))
        assert abs(float(ds["ST"].sel(output="y", parameter=k)) - ISHIGAMI_ST[k]) < 2 * half
    assert ds.attrs["points"] == 1024 * (3 + 2)
    assert res.ranking("y") == ["x1", "x2", "x3"]
    conv = res.convergence()
    assert conv.loc[0, "n_half"] == 512 and conv.loc[0, "max_abs_change"] < 0.1


def test_default_ranges_follow_provenance_and_keep_fractions_inside_0_1():
    r, excluded = default_ranges("ak-5pct")
    # literature narrow, assumed wide
    ec50 = r["tlr7_ec50_ug_ml"]
    assert ec50.high / ec50.low == pytest.approx(4.0)
    assert r["k_nk_kill"].high / r["k_nk_kill"].low == pytest.approx(16.0)
    for name, rng in r.items():
        if rng.scale == "logit":
            assert 0 < rng.value(0.0) < rng.value(1.0) < 1, name
    assert r["cd8_fraction"].scale == "logit"
    assert excluded["tlr7_expression"].startswith("a switch")
    assert "nk_present" not in r and "treated_area_cm2" not in r
    assert "lesion_susceptibility_3" in excluded
    r2, _ = default_ranges("ak-5pct", include_switches=True)
    assert "nk_present" in r2
    with pytest.raises(InputError):
        default_ranges("ak-5pct", ["no_such_parameter"])


def test_bad_sensitivity_input_is_refused_with_an_input_error():
    with pytest.raises(InputError, match="power of 2"):
        sensitivity("ak-5pct", method="sobol", n=100)
    with pytest.raises(InputError, match="method"):
        sensitivity("ak-5pct", method="fast")


def test_tlr7_ec50_drives_clearance_on_ak_in_a_morris_screen():
    # Morris screening on the real engine, default ranges, over the TLR7 stage plus every
    # parameter with a literature, derived or calibrated value (35 parameters); few patients per
    # point, but the same patients at every point.
    # Issue 13 expected the EC50 among the top 5 drivers of clearance. Here it ranks 5th, but
    # that is not robust across designs: 11th of 42 (pk and tlr7 stages, n=4, 16 patients), 38th
    # of all 174 sampled parameters (n=2, 20 patients), where assumed parameters with x/÷4
    # ranges (tlr7_hill, k_nfkb_off, k_nfkb_on) lead. What is tested: a real driver (top 10 of
    # 35, mu* above the median) in the mechanistic direction (a higher EC50 clears fewer).
    rows = parameter_table_rows("ak-5pct")
    r, _ = default_ranges("ak-5pct")
    names = [
        x["name"]
        for x in rows
        if x["name"] in r
        and (x["module"] == "tlr7" or x["status"] in ("literature", "derived", "calibrated"))
    ]
    assert "tlr7_ec50_ug_ml" in names and len(names) >= 30
    res = sensitivity(
        "ak-5pct",
        method="morris",
        parameters=names,
        outputs=["complete_clearance"],
        trajectories=["lesion_burden"],
        n=2,
        patients=12,
        seed=1,
        times=6,
        bootstrap=50,
    )
    ds = res.dataset
    ms = ds["mu_star"].sel(output="complete_clearance")
    ec50 = ds.sel(output="complete_clearance", parameter="tlr7_ec50_ug_ml")
    assert "tlr7_ec50_ug_ml" in res.ranking("complete_clearance")[:10]
    assert float(ec50["mu_star"]) > float(ms.median())
    assert float(ec50["mu"]) < 0
    assert "common random numbers" in ds.attrs["common_random_numbers"]
    ot = ds["index_over_time"].sel(trajectory="lesion_burden")
    assert ot.sizes["time_days"] == 6
    assert np.isfinite(ot.isel(time_days=-1)).all()


def test_sobol_on_the_engine_labels_indices_and_serialises(tmp_path):
    import json

    import xarray as xr

    res = sensitivity(
        "sbcc-5pct",
        method="sobol",
        parameters=["tlr7_ec50_ug_ml", "k_ctl_kill"],
        outputs=["complete_clearance", "lsr_max"],
        n=4,
        patients=6,
        seed=2,
        bootstrap=20,
    )
    ds = res.dataset
    assert ds["ST"].dims == ("output", "parameter") and ds.attrs["points"] == 4 * (2 + 2)
    assert ds["X"].sel(parameter="tlr7_ec50_ug_ml").min() >= 1.0
    assert ds["X"].sel(parameter="tlr7_ec50_ug_ml").max() <= 4.0
    assert set(res.convergence()["n_half"]) == {2}
    json.dumps(res.to_dict(), default=float)
    res.write(tmp_path)
    back = xr.load_dataset(tmp_path / "sensitivity.nc", engine="h5netcdf")
    assert list(back["parameter"].values) == ["tlr7_ec50_ug_ml", "k_ctl_kill"]
