"""Virtual populations and trials (issue 3)."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from imiqsim.cli import main
from imiqsim.model import get_model
from imiqsim.model.lesions import N_SLOTS
from imiqsim.population import sample_population
from imiqsim.trial.stats import median_ci, newcombe_diff_ci, proportion, wilson_ci
from imiqsim.trial import endpoints, run_trial

MODEL = get_model()


# ----------------------------------------------------------------------------- population


def test_patient_is_the_same_whatever_the_batch():
    base = MODEL.parameter_vector("AK", "face", 25.0)
    a = sample_population(base, "AK", 10, seed=5)
    b = sample_population(base, "AK", 4, seed=5, start=6)
    np.testing.assert_array_equal(a.P[6:], b.P)
    c = sample_population(base, "AK", 10, seed=6)
    assert not np.array_equal(a.P, c.P)


def test_ak_fields_have_4_to_8_visible_lesions():
    base = MODEL.parameter_vector("AK", "face", 25.0)
    pop = sample_population(base, "AK", 200, seed=1)
    thr = base[MODEL.parameter_index("visible_threshold_cells")]
    cols = [MODEL.parameter_index(f"lesion_initial_cells_{k}") for k in range(1, N_SLOTS + 1)]
    n_vis = (pop.P[:, cols] > thr).sum(axis=1)
    assert n_vis.min() >= 4 and n_vis.max() <= 8
    n_sub = ((pop.P[:, cols] > 0) & (pop.P[:, cols] <= thr)).sum(axis=1)
    assert n_sub.max() > 0  # subclinical lesions in the field


# ----------------------------------------------------------------------------- determinism


def test_same_seed_same_outcomes_whatever_workers_and_chunks():
    kw = dict(patients=12, seed=3, followup_years=0.0)
    a = run_trial(["sbcc-5pct"], workers=1, chunk_size=12, **kw).arms[0].outcomes
    b = run_trial(["sbcc-5pct"], workers=2, chunk_size=5, **kw).arms[0].outcomes
    c = run_trial(["sbcc-5pct"], workers=1, chunk_size=1, **kw).arms[0].outcomes
    pd.testing.assert_frame_equal(a, b)
    pd.testing.assert_frame_equal(a, c)
    assert a["patient"].tolist() == list(range(12))


# ----------------------------------------------------------------------------- statistics


def test_wilson_interval_covers_95_percent():
    rng = np.random.default_rng(0)
    for p, n in ((0.03, 221), (0.45, 215), (0.8, 50)):
        k = rng.binomial(n, p, size=4000)
        cover = np.mean([wilson_ci(int(x), n)[0] <= p <= wilson_ci(int(x), n)[1] for x in k])
        assert 0.93 <= cover <= 0.975, (p, n, cover)


def test_newcombe_difference_and_median_interval():
    d, lo, hi = newcombe_diff_ci(97, 215, 7, 221)
    assert lo < d < hi
    assert d == pytest.approx(97 / 215 - 7 / 221)
    # Lebwohl 2004 report 41.9% (34.9-49) for 45.1% vs 3.2%
    assert lo == pytest.approx(0.349, abs=0.01) and hi == pytest.approx(0.49, abs=0.01)
    x = np.random.default_rng(1).normal(size=2001)
    med, mlo, mhi = median_ci(x)
    assert mlo < med < mhi and mlo < 0 < mhi


@pytest.fixture(scope="module")
def ak_trial():
    return run_trial(["ak-5pct", "ak-5pct-vehicle"], patients=150, seed=11, followup_years=0.0)


def test_endpoints_recomputed_from_outcomes_match(ak_trial):
    for arm in ak_trial.arms:
        again = endpoints(arm.outcomes)
        for name, e in arm.endpoints.items():
            assert again[name]["value"] == e["value"], name
        cc = arm.outcomes["complete_clearance"].astype(float).mean()
        assert arm.endpoints["complete_clearance"]["value"] == pytest.approx(cc)


def test_trial_summary_shape(ak_trial):
    d = ak_trial.to_dict()
    assert d["seed"] == 11 and "version" in d
    for arm in d["arms"]:
        for name in (
            "complete_clearance",
            "partial_clearance",
            "histological_clearance",
            "recurrence_12mo",
            "severe_erythema",
            "flu_like",
        ):
            assert name in arm["endpoints"]
            e = arm["endpoints"][name]
            assert set(e) >= {"value", "ci95"}
    diff = d["differences"][0]["endpoints"]["complete_clearance"]
    assert diff["ci95"][0] <= diff["value"] <= diff["ci95"][1]


# ----------------------------------------------------------------------------- mechanistic ordering


def test_more_intense_lsr_goes_with_more_clearance(ak_trial):
    df = ak_trial.arms[0].outcomes
    high = df["lsr_max"] >= df["lsr_max"].median()
    assert df.loc[high, "complete_clearance"].mean() > df.loc[~high, "complete_clearance"].mean()


def test_treated_beats_vehicle(ak_trial):
    t, v = ak_trial.arms
    assert (
        t.endpoints["complete_clearance"]["value"]
        > v.endpoints["complete_clearance"]["value"] + 0.2
    )
    assert t.endpoints["severe_erythema"]["value"] > v.endpoints["severe_erythema"]["value"]


def test_sbcc_clearance_rises_with_frequency():
    """Issue 3: sBCC clearance rises with frequency (3x < 5x < daily), 6 weeks, 200 patients per arm."""
    from imiqsim.scenario import load_preset

    sc = load_preset("sbcc-5pct")
    arms = [
        sc.with_overrides(
            name=f"sbcc-{n}x",
            regimen=sc.regimen.model_copy(update={"applications_per_week": n, "weekdays": None}),
        )
        for n in (3, 5, 7)
    ]
    tr = run_trial(arms, patients=200, seed=4, followup_years=0.0)
    cc = [a.endpoints["composite_clearance"]["value"] for a in tr.arms]
    assert cc[0] < cc[1] < cc[2], cc


def test_immunosuppressed_clear_less():
    kw = dict(patients=150, seed=8, followup_years=0.0)
    normal = run_trial(["egw-5pct"], **kw).arms[0].endpoints["complete_clearance"]["value"]
    supp = (
        run_trial(["egw-5pct"], immunosuppressed_fraction=1.0, **kw)
        .arms[0]
        .endpoints["complete_clearance"]["value"]
    )
    assert supp < normal - 0.1


# ----------------------------------------------------------------------------- CLI


def test_trial_cli_json(capsys):
    code = main(
        [
            "trial",
            "sbcc-5pct",
            "sbcc-5pct-vehicle",
            "--patients",
            "20",
            "--seed",
            "2",
            "--json",
            "--followup-years",
            "0",
        ]
    )
    out, err = capsys.readouterr()
    assert code == 0, err
    d = json.loads(out)
    assert [a["name"] for a in d["arms"]] == ["sbcc-5pct", "sbcc-5pct-vehicle"]
    assert d["seed"] == 2 and d["arms"][0]["n"] == 20
    assert d["arms"][0]["endpoints"]["complete_clearance"]["ci95"][0] is not None


@pytest.mark.parametrize(
    "argv, field",
    [
        (["trial", "ak-5pct", "--patients", "0"], "patients"),
        (["trial", "ak-5pct", "--patients", "-5"], "patients"),
        (["trial", "ak-5pct", "--patients", "200000"], "patients"),
        (["trial", "nonexistent-arm"], "scenario"),
        (["trial", "ak-5pct", "--followup-years", "-1"], "followup_years"),
        (["trial", "ak-5pct", "--followup-years", "50"], "followup_years"),
        (["trial", "ak-5pct", "--workers", "0"], "workers"),
    ],
)
def test_trial_bad_input_exit_2(argv, field, capsys):
    code = main(argv)
    out, err = capsys.readouterr()
    assert code == 2
    assert field in err and "Traceback" not in err


def test_proportion_excludes_missing():
    e = proportion(np.array([1.0, 0.0, np.nan, 1.0]))
    assert e["n"] == 3 and e["k"] == 2


def test_trial_cli_streams_and_resumes(tmp_path, capsys):
    argv = [
        "trial",
        "sbcc-5pct",
        "--patients",
        "12",
        "--seed",
        "5",
        "--followup-years",
        "0",
        "--stream",
        "--chunk-size",
        "5",
        "--out",
        str(tmp_path / "run"),
        "--json",
        "--workers",
        "1",
    ]
    assert main(argv) == 0
    first = json.loads(capsys.readouterr().out)
    assert main(argv) == 2  # refuses to overwrite a run without --resume
    assert "resume" in capsys.readouterr().err
    assert main(argv + ["--resume"]) == 0
    again = json.loads(capsys.readouterr().out)
    assert again["arms"][0]["endpoints"] == first["arms"][0]["endpoints"]
    direct = run_trial(["sbcc-5pct"], patients=12, seed=5, followup_years=0.0).to_dict()
    assert (
        first["arms"][0]["endpoints"]["complete_clearance"]
        == direct["arms"][0]["endpoints"]["complete_clearance"]
    )
