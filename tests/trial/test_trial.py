"""Virtual populations and trials (issue 3)."""

from __future__ import annotations

import json
import math
from dataclasses import replace

import numpy as np
import pandas as pd
import pytest

from imiqsim.cli import main
from imiqsim.errors import InputError
from imiqsim.model import CYTOKINES, SKIN_CELLS, get_model
from imiqsim.model.lesions import N_SLOTS
from imiqsim.population import sample_population
from imiqsim.trial import (
    ENDPOINTS,
    MAX_WORKERS,
    TRACE_VARIABLES,
    comparison_endpoints,
    endpoint,
    execute,
    report_endpoints,
    run_streaming,
    run_trial,
)
from imiqsim.trial.endpoints import KINDS
from imiqsim.trial.outcomes import kill_tally_sums
from imiqsim.trial.stats import median_ci, newcombe_diff_ci, proportion, wilson_ci

MODEL = get_model()


# -------------------------------------------------------------------------- population


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


# -------------------------------------------------------------------------- determinism


def test_same_seed_same_outcomes_whatever_workers_and_chunks():
    kw = dict(patients=12, seed=3, followup_years=0.0)
    a = run_trial(["sbcc-5pct"], workers=1, chunk_size=12, **kw).arms[0].outcomes
    b = run_trial(["sbcc-5pct"], workers=2, chunk_size=5, **kw).arms[0].outcomes
    c = run_trial(["sbcc-5pct"], workers=1, chunk_size=1, **kw).arms[0].outcomes
    pd.testing.assert_frame_equal(a, b)
    pd.testing.assert_frame_equal(a, c)
    assert a["patient"].tolist() == list(range(12))


# -------------------------------------------------------------------------- statistics


def test_wilson_interval_covers_95_percent():
    rng = np.random.default_rng(0)
    for p, n in ((0.03, 221), (0.45, 215), (0.8, 50)):
        k = rng.binomial(n, p, size=4000)
        cover = np.mean([wilson_ci(int(x), n)[0] <= p <= wilson_ci(int(x), n)[1] for x in k])
        assert 0.93 <= cover <= 0.975, (p, n, cover)


def test_newcombe_difference_and_median_interval():
    d, lo, hi = newcombe_diff_ci(97, 215, 7, 221)
    assert d == pytest.approx(97 / 215 - 7 / 221)
    # Lebwohl 2004 report 41.9% (34.9-49) for 45.1% vs 3.2%
    assert lo == pytest.approx(0.349, abs=0.01) and hi == pytest.approx(0.49, abs=0.01)
    x = np.random.default_rng(1).normal(size=2001)
    med, mlo, mhi = median_ci(x)
    # the true median (0) is inside, and the width is that of a median of 2001 normal draws:
    # 2 x 1.96 x sqrt(pi/2) / sqrt(2001) = 0.110
    assert mlo < 0 < mhi
    assert 0.08 < mhi - mlo < 0.14


@pytest.fixture(scope="module")
def ak_trial():
    return run_trial(["ak-5pct", "ak-5pct-vehicle"], patients=150, seed=11, followup_years=0.0)


def test_clearance_endpoints_follow_their_published_definitions():
    """Complete clearance = no visible lesion; partial = at least 75% fewer (Lebwohl 2004).

    An 8-week AK course gives every kind of response, and the sample is checked to hold patients
    just either side of the partial threshold (50-75% and 75-87.5% fewer lesions), so a threshold
    moved 2x either way turns the test red.
    """
    from imiqsim.scenario import load_preset

    sc = load_preset("ak-5pct")
    short = sc.with_overrides(name="ak-8w", regimen=sc.regimen.model_copy(update={"max_weeks": 8}))
    df = run_trial([short], patients=60, seed=21, followup_years=0.0).arms[0].outcomes
    df = df[(df["status"] == 0) & (df["baseline_visible_lesions"] > 0)]
    vis0 = df["baseline_visible_lesions"].to_numpy()
    left = df["visible_lesions_at_assessment"].to_numpy()
    fewer = 1.0 - left / vis0
    assert ((fewer >= 0.5) & (fewer < 0.75)).any() and ((fewer >= 0.75) & (fewer < 0.875)).any()
    np.testing.assert_array_equal(df["partial_clearance"].astype(bool), fewer >= 0.75 - 1e-12)
    np.testing.assert_array_equal(df["complete_clearance"].astype(bool), left < 0.5)
    np.testing.assert_allclose(df["lesion_reduction"], fewer, rtol=0, atol=1e-12)


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
    # treated minus vehicle, in that order
    cc = [arm["endpoints"]["complete_clearance"]["value"] for arm in d["arms"]]
    assert diff["value"] == pytest.approx(cc[0] - cc[1]) and diff["value"] > 0


# -------------------------------------------------------------------------- mechanistic ordering


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
    """Issue 3: sBCC clearance rises with frequency (3x < 5x < daily), 6 weeks, 200 per arm.

    It did not before the TNF-alpha death-receptor route (flat at 0.74-0.75: the patient-level
    susceptibility spread swamped a regimen effect the saturated chain kept small).
    """
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


# -------------------------------------------------------------------------- CLI


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


# -------------------------------------------------------------------------- endpoint registry


def test_every_registered_endpoint_reads_an_outcome_column_and_is_computed(ak_trial):
    arm = ak_trial.arms[0]
    for e in ENDPOINTS:
        assert e.kind in KINDS, e.name
        assert e.column in arm.outcomes.columns, e.name
        if e.count_column is not None:
            assert e.count_column in arm.outcomes.columns, e.name
    # the arm's endpoint table is the registry, in registry order
    assert list(arm.endpoints) == [e.name for e in ENDPOINTS]
    # differenced: the registry's newcombe endpoints with a denominator in both arms (no follow-up
    # here, so no recurrence at 12 months)
    diffed = {
        e.name
        for e in ENDPOINTS
        if e.difference == "newcombe" and all(a.endpoints[e.name]["n"] for a in ak_trial.arms)
    }
    assert "complete_clearance" in diffed and "recurrence_12mo" not in diffed
    assert set(ak_trial.to_dict()["differences"][0]["endpoints"]) == diffed


def test_report_and_compare_rows_come_from_the_registry():
    assert [e.name for e in report_endpoints()] == [
        "complete_clearance",
        "partial_clearance",
        "median_lesion_reduction",
        "histological_clearance",
        "composite_clearance",
        "time_to_clearance_days",
        "recurrence_12wk",
        "recurrence_12mo",
        "recurrence_5y",
        "sustained_clearance_12mo",
        "severe_erythema",
        "rest_needed",
        "flu_like",
        "headache",
    ]
    optional = {e.name for e in report_endpoints() if e.report_optional}
    assert optional == {
        "time_to_clearance_days",
        "recurrence_12wk",
        "recurrence_12mo",
        "recurrence_5y",
        "sustained_clearance_12mo",
    }
    # no two rows share a place
    assert len({e.report_row for e in report_endpoints()}) == len(report_endpoints())
    assert len({e.compare_row for e in comparison_endpoints()}) == len(comparison_endpoints())
    rows = comparison_endpoints()
    assert rows[0].name == "subclinical_cleared" and rows[-1].name == "flu_like"
    assert all(e.compare_label for e in rows)
    assert endpoint("time_to_clearance_days").unit == "days"
    assert not endpoint("time_to_clearance_days").is_percent
    assert endpoint("complete_clearance").is_percent


def test_each_kind_of_endpoint_counts_only_its_denominator():
    df = pd.DataFrame(
        {
            "status": [0, 0, 0, 0, 1],  # the failed patient never counts
            "complete_clearance": [1.0, 0.0, 1.0, np.nan, 1.0],
            "visible_lesions_cleared": [2, 1, 0, 3, 5],
            "baseline_visible_lesion_count": [4, 2, 1, 3, 5],
            "time_to_clearance_days": [10.0, np.nan, 30.0, 20.0, 1.0],
            "fraction_killed_immune": [0.5, 1.0, np.nan, 0.75, 0.0],
        }
    )
    ok = df[df["status"] == 0]
    p = endpoint("complete_clearance").compute(ok)
    assert (p["k"], p["n"], p["value"]) == (2, 3, 2 / 3)
    # Wilson 95% interval for 2/3, worked by hand: 0.2077-0.9385
    assert p["ci95"] == pytest.approx([0.2077, 0.9385], abs=5e-4)
    pooled = endpoint("lesion_complete_response").compute(ok)
    assert (pooled["k"], pooled["n"], pooled["unit"]) == (6, 10, "lesions")
    med = endpoint("time_to_clearance_days").compute(ok)
    assert (med["value"], med["n"]) == (20.0, 3)
    mean = endpoint("fraction_killed_by_immune").compute(ok)
    assert mean["value"] == pytest.approx(0.75) and mean["n"] == 3
    # normal interval: 0.75 +/- 1.96 x 0.25 / sqrt(3)
    assert mean["ci95"] == pytest.approx([0.4671, 1.0329], abs=5e-4)
    empty = endpoint("time_to_clearance_days").compute(ok.iloc[:0])
    assert empty["value"] is None and empty["n"] == 0


def test_unknown_endpoint_is_an_input_error():
    with pytest.raises(InputError) as e:
        endpoint("cure")
    assert e.value.field == "endpoint" and "complete_clearance" in e.value.allowed


# -------------------------------------------------------------------------- outcomes


def test_kill_tallies_are_summed_by_the_kind_the_model_declares():
    rng = np.random.default_rng(0)
    y = rng.random((3, len(MODEL.state_names)))
    by_kind, total = kill_tally_sums(MODEL, y)
    col = {s: y[:, MODEL.state_index(s)] for s in MODEL.kill_tallies}
    direct = [s for s, (_, k) in MODEL.kill_tallies.items() if k == "direct"]
    assert direct == ["killed_cryo", "killed_fluorouracil"]  # in declaration (MODULES) order
    np.testing.assert_array_equal(
        by_kind["direct"], col["killed_cryo"] + col["killed_fluorouracil"]
    )
    np.testing.assert_allclose(total, sum(col.values()))
    # a stage declaring another direct tally counts in killed_direct with no change in trial code
    tallies = dict(MODEL.kill_tallies)
    tallies["killed_memory"] = ("a new cytotoxic cream", "direct")
    other = replace(MODEL, kill_tallies=tallies)
    by_kind2, total2 = kill_tally_sums(other, y)
    np.testing.assert_allclose(by_kind2["direct"], by_kind["direct"] + col["killed_memory"])
    np.testing.assert_allclose(by_kind2["immune"], by_kind["immune"] - col["killed_memory"])
    np.testing.assert_allclose(total2, total)


def test_freezing_kills_directly_and_cream_through_the_immune_system():
    tr = run_trial(["ak-5pct", "ak-cryo"], patients=20, seed=5, followup_years=0.0)
    cream, cryo = (a.outcomes for a in tr.arms)
    assert (cream["killed_direct"] == 0).all() and (cryo["killed_direct"] > 0).all()
    for df in (cream, cryo):
        total = df["killed_baseline"] + df["killed_immune"] + df["killed_direct"]
        np.testing.assert_allclose(
            df["fraction_killed_immune"], (total - df["killed_direct"]) / total, rtol=1e-12
        )
    assert (
        tr.arms[1].endpoints["fraction_killed_by_immune"]["value"]
        < tr.arms[0].endpoints["fraction_killed_by_immune"]["value"]
    )


def test_traces_cover_every_cytokine_and_skin_cell_of_the_model(ak_trial):
    assert set(CYTOKINES) <= set(TRACE_VARIABLES) and set(SKIN_CELLS) <= set(TRACE_VARIABLES)
    arm = ak_trial.arms[0]
    assert list(arm.traces) == list(TRACE_VARIABLES)
    assert arm.traces["il6"].shape == (150, arm.t_days.size)
    assert float(arm.traces["il6"].max()) > 0


# -------------------------------------------------------------------------- executors


@pytest.mark.parametrize(
    "bad, field",
    [
        (dict(patients=True), "patients"),
        (dict(seed=-1), "seed"),
        (dict(workers=0), "workers"),
        (dict(workers=MAX_WORKERS + 1), "workers"),
        (dict(chunk_size=0), "chunk_size"),
        (dict(followup_years=float("nan")), "followup_years"),
        (dict(immunosuppressed_fraction=1.5), "immunosuppressed_fraction"),
    ],
)
def test_in_memory_and_streamed_trials_refuse_the_same_inputs(tmp_path, bad, field):
    kw = dict(patients=4, seed=1, workers=1, chunk_size=2, followup_years=0.0)
    kw.update(bad)
    with pytest.raises(InputError) as mem:
        run_trial(["sbcc-5pct"], **kw)
    with pytest.raises(InputError) as streamed:
        run_streaming(["sbcc-5pct"], out_dir=tmp_path / "x", **kw)
    assert mem.value.field == streamed.value.field == field
    assert str(mem.value) == str(streamed.value)
    assert not (tmp_path / "x").exists()


def test_a_failure_in_a_worker_process_is_raised_after_the_others_finish():
    got = {}
    with pytest.raises(ValueError, match="math domain error"):
        execute(math.sqrt, [4.0, -1.0, 9.0], on_done=got.__setitem__, workers=2)
    assert got[0] == 2.0 and 1 not in got


def test_in_memory_trial_on_a_dask_cluster_equals_in_process():
    distributed = pytest.importorskip("distributed")
    kw = dict(patients=6, seed=2, chunk_size=4, followup_years=0.0)
    here = run_trial(["sbcc-5pct"], **kw)
    with distributed.LocalCluster(
        n_workers=1, threads_per_worker=1, processes=True, dashboard_address=None
    ) as cluster:
        there = run_trial(["sbcc-5pct"], scheduler=cluster.scheduler_address, **kw)
    pd.testing.assert_frame_equal(here.arms[0].outcomes, there.arms[0].outcomes)
    assert here.to_dict() == there.to_dict()


def test_old_module_names_still_import():
    import imiqsim.scale
    import imiqsim.stats
    import imiqsim.trial.stats
    import imiqsim.trial.streaming

    assert imiqsim.scale.run_streaming is imiqsim.trial.streaming.run_streaming
    assert imiqsim.stats.wilson_ci is imiqsim.trial.stats.wilson_ci
