"""Global sensitivity: Ishigami through the analysis code path, and the real model on ak-5pct."""

from __future__ import annotations

import math

import numpy as np
import pytest

from imiqsim.analysis.evaluate import FunctionModel
from imiqsim.analysis.factors import Range, default_ranges, parameter_table_rows
from imiqsim.analysis.sensitivity import morris_effects, rank_bootstrap, sensitivity
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
    # every default range lies inside the values the parameter may take (an LSR threshold near
    # the top of the 0-18 scale is cut at 18, not taken to 1.5 x its value): every sampled point
    # is a valid scenario
    from imiqsim.model.bounds import bound_for

    for name, rng in r.items():
        b = bound_for(name)
        assert b is None or (b.allows(rng.low) and b.allows(rng.high)), (name, rng)
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


def test_elementary_effects_are_salibs():
    from SALib.analyze import morris as morris_analyze
    from SALib.sample import morris as morris_sample

    problem = {"num_vars": 4, "names": list("abcd"), "bounds": [[0.0, 1.0]] * 4}
    U = morris_sample.sample(problem, 6, num_levels=4, seed=2)
    y = np.exp(U[:, 0]) + U[:, 1] * U[:, 2] - 3 * U[:, 3] ** 2
    ref = morris_analyze.analyze(problem, U, y, num_levels=4, seed=2)
    ee = morris_effects(U, y, 4)
    assert ee.shape == (6, 4)
    np.testing.assert_allclose(np.abs(ee).mean(axis=0), ref["mu_star"], rtol=1e-12)
    np.testing.assert_allclose(ee.mean(axis=0), ref["mu"], rtol=1e-12)


def _noisy_trial(U, patients, seed=0):
    # a stand-in virtual trial with common random numbers: patient i clears at a point when its
    # own uniform draw is below a probability that rises with a, b (a little less), c (weakly)
    # and not at all with d; the same draws at every point
    u = np.random.default_rng(seed).random(patients)
    prob = 1 / (1 + np.exp(-(-1.5 + 2.0 * U[:, 0] + 1.5 * U[:, 1] + 0.5 * U[:, 2])))
    return (u[None, :] < prob[:, None]).astype(float)


def test_rank_intervals_hold_the_monte_carlo_noise_of_the_virtual_patients():
    from SALib.sample import morris as morris_sample

    problem = {"num_vars": 4, "names": list("abcd"), "bounds": [[0.0, 1.0]] * 4}
    U = morris_sample.sample(problem, 20, num_levels=4, seed=1)
    many = _noisy_trial(U, 4000)
    r = rank_bootstrap("morris", U, many.mean(axis=1), 4, per_patient=many, top=2, seed=3)
    # 4000 patients, 20 trajectories: the order a > b > c, d is certain
    assert r["rank_low"][0] == r["rank_high"][0] == 1
    assert r["rank_low"][1] == r["rank_high"][1] == 2
    assert r["p_top"][:2].tolist() == [1.0, 1.0] and r["p_top"][3] == 0.0
    few = _noisy_trial(U, 8)
    f = rank_bootstrap("morris", U, few.mean(axis=1), 4, per_patient=few, top=2, seed=3)
    # 8 patients: a and b may swap; the resampled patients widen the intervals, the design alone
    # (the same 20 trajectories) would not
    fixed = rank_bootstrap("morris", U, few.mean(axis=1), 4, top=2, seed=3)
    width = (f["rank_high"] - f["rank_low"]).sum()
    assert width > (r["rank_high"] - r["rank_low"]).sum()
    assert width > (fixed["rank_high"] - fixed["rank_low"]).sum()
    assert np.all(f["rank_low"] <= f["rank_high"])


def test_sobol_rank_intervals_come_from_the_base_samples():
    ranges = {k: Range(-math.pi, math.pi, "linear") for k in ("x1", "x2", "x3")}
    res = sensitivity(
        model=FunctionModel(_ishigami, ["x1", "x2", "x3"]),
        method="sobol",
        outputs=["y"],
        n=256,
        ranges=ranges,
        bootstrap=100,
        seed=3,
        top=1,
    )
    ds = res.dataset.sel(output="y")
    # ST: x1 0.56 > x2 0.44 > x3 0.24: x1 first in most resamples, x3 last in every one
    assert ds["rank"].values.tolist() == [1.0, 2.0, 3.0]
    assert float(ds["p_top"].sel(parameter="x1")) > 0.8
    assert float(ds["rank_low"].sel(parameter="x3")) == 3.0
    assert "virtual patients" in res.dataset.attrs["rank_interval"]
    assert "(none)" in res.dataset.attrs["rank_interval"]


def test_tlr7_ec50_drives_clearance_on_ak_in_a_morris_screen():
    # Morris screening on the real engine, default ranges (literature x/÷2, assumed x/÷4), over
    # the TLR7 stage plus every parameter with a literature, derived or calibrated value, the
    # same virtual patients at every point. Issue 13 asks for the EC50 among the top 5 drivers of
    # clearance. A point rank from a small design is mostly noise (earlier designs put the EC50
    # anywhere from 5th to 38th; with 2 trajectories of 12 patients one design saw no patient
    # change at any EC50 step), so the claim is tested with its uncertainty, on 4 trajectories of
    # 24 patients: the 90% bootstrap interval of the EC50's rank (trajectories and patients
    # resampled) must reach the top 5 and must exclude the lower half of the parameters, and a
    # higher EC50 must clear fewer.
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
        n=4,
        patients=24,
        seed=1,
        times=6,
        bootstrap=200,
    )
    ds = res.dataset
    cc = ds.sel(output="complete_clearance")
    ec50 = cc.sel(parameter="tlr7_ec50_ug_ml")
    assert (cc["rank_low"] <= cc["rank_high"]).all()
    seen = {k: float(ec50[k]) for k in ("rank", "rank_low", "rank_high", "p_top", "mu_star", "mu")}
    assert seen["rank_low"] <= 5, seen
    assert seen["rank_high"] <= len(names) // 2, seen
    assert seen["mu"] < 0, seen
    assert "complete_clearance), of the virtual patients" in ds.attrs["rank_interval"]
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
