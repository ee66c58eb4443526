"""Million-patient trials: streamed to Parquet, resumable, local processes or dask.

imiqsim.trial.streaming (formerly imiqsim.scale, still importable) on the executors of
imiqsim.trial.executors.
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from imiqsim.errors import ImiqsimError, InputError
from imiqsim.trial import endpoints, executors, outcomes, run_trial, streaming
from imiqsim.trial.streaming import (
    chunk_path,
    lock_run_dir,
    read_outcomes,
    run_streaming,
    trace_bands,
)

ARMS = ["sbcc-5pct", "sbcc-5pct-vehicle"]  # the fastest preset; no follow-up
KW = dict(patients=24, seed=3, followup_years=0.0)
CHUNK = 5  # 5 chunks per arm, the last one short


def _trial_outcomes(tr) -> pd.DataFrame:
    return pd.concat([a.outcomes for a in tr.arms], ignore_index=True)


def _as_json(d: dict) -> dict:
    """``d`` as it reads back from strict JSON (NaN becomes null)."""
    return json.loads(json.dumps(d), parse_constant=lambda _: None)


@pytest.fixture(scope="module")
def reference():
    """The in-memory trial and an uninterrupted in-process streamed run of it."""
    tr = run_trial(ARMS, chunk_size=7, **KW)
    return tr


@pytest.fixture(scope="module")
def streamed(tmp_path_factory, reference):
    out = tmp_path_factory.mktemp("stream") / "run"
    calls = []
    res = run_streaming(
        ARMS,
        out_dir=out,
        chunk_size=CHUNK,
        workers=1,
        progress=lambda d, t: calls.append((d, t)),
        **KW,
    )
    return res, calls


# -------------------------------------------------------------------------- equality with run_trial


def test_streamed_outcomes_and_endpoints_equal_run_trial(streamed, reference):
    res, calls = streamed
    assert res.chunks_computed == 10 and res.chunks_skipped == 0 and res.chunks_total == 10
    assert calls[0] == (0, 10) and calls[-1] == (10, 10)
    got = read_outcomes(res.out_dir)
    want = _trial_outcomes(reference)
    assert list(got.columns) == list(want.columns)
    pd.testing.assert_frame_equal(got, want)  # every column, dtypes included
    # the summary is TrialResult.to_dict(), on disk too
    assert res.summary == _as_json(reference.to_dict())
    on_disk = json.loads((res.out_dir / "summary.json").read_text())
    assert on_disk == res.summary
    for a, b in zip(res.summary["arms"], reference.arms, strict=True):
        assert a["endpoints"] == _as_json(endpoints(b.outcomes))


def test_layout_manifest_and_column_subset(streamed):
    res, _ = streamed
    out = res.out_dir
    for arm in ARMS:
        files = sorted(p.name for p in (out / "chunks" / f"arm={arm}").iterdir())
        assert files == [f"chunk-{s:09d}.parquet" for s in range(0, 24, CHUNK)]
    assert not list(out.rglob("*.tmp-*"))
    man = json.loads((out / "manifest.json").read_text())
    assert [a["name"] for a in man["arms"]] == ARMS
    assert man["arms"][0]["scenario"]["indication"] == "sBCC"
    assert (man["patients"], man["seed"], man["chunk_size"], man["followup_years"]) == (
        24,
        3,
        CHUNK,
        0.0,
    )
    assert man["overrides"] == {} and man["immunosuppressed_fraction"] is None and man["version"]
    sub = read_outcomes(out, columns=["complete_clearance", "age"], arms=["sbcc-5pct-vehicle"])
    assert list(sub.columns) == ["arm", "patient", "complete_clearance", "age"]
    assert sub["patient"].tolist() == list(range(24)) and set(sub["arm"]) == {"sbcc-5pct-vehicle"}
    with pytest.raises(InputError) as e:
        read_outcomes(out, arms=["nope"])
    assert e.value.field == "arms"
    with pytest.raises(InputError) as e:
        read_outcomes(out, columns=["age", "nope"])
    assert e.value.field == "columns" and e.value.value == ["nope"]


# -------------------------------------------------------------------------- resume


def test_resume_after_deleted_chunks_recomputes_only_those(tmp_path, streamed):
    ref, _ = streamed
    out = tmp_path / "run"
    run_streaming(ARMS, out_dir=out, chunk_size=CHUNK, workers=1, **KW)
    chunk_path(out, "sbcc-5pct", 5).unlink()
    chunk_path(out, "sbcc-5pct-vehicle", 20).unlink()
    chunk_path(out, "sbcc-5pct", 15).write_bytes(b"not parquet")  # a damaged file is computed again
    with pytest.raises(InputError) as e:  # reading an unfinished run is refused
        read_outcomes(out)
    assert e.value.field == "out_dir" and "--resume" in str(e.value)
    assert len(read_outcomes(out, allow_incomplete=True)) == 48 - 5 - 4 - 5
    res = run_streaming(ARMS, out_dir=out, chunk_size=CHUNK, workers=1, resume=True, **KW)
    assert (res.chunks_computed, res.chunks_skipped) == (3, 7)
    pd.testing.assert_frame_equal(read_outcomes(out), read_outcomes(ref.out_dir))
    assert res.summary == ref.summary
    again = run_streaming(ARMS, out_dir=out, chunk_size=CHUNK, workers=1, resume=True, **KW)
    assert (again.chunks_computed, again.chunks_skipped) == (0, 10)
    assert again.summary == ref.summary


def test_interrupted_run_keeps_finished_chunks_and_resumes_identically(
    tmp_path, monkeypatch, streamed
):
    ref, _ = streamed
    out = tmp_path / "run"
    real = outcomes.simulate_chunk
    done = []

    def flaky(*args, **kw):
        if len(done) == 3:
            raise RuntimeError("node lost")
        done.append(args[2])
        return real(*args, **kw)

    monkeypatch.setattr(outcomes, "simulate_chunk", flaky)
    with pytest.raises(RuntimeError, match="node lost"):
        run_streaming(ARMS, out_dir=out, chunk_size=CHUNK, workers=1, **KW)
    assert sorted(p.name for p in out.rglob("*.parquet")) == [
        f"chunk-{s:09d}.parquet" for s in (0, 5, 10)
    ]
    assert not (out / "summary.json").exists()
    monkeypatch.setattr(outcomes, "simulate_chunk", real)
    with pytest.raises(InputError) as e:  # a run is there: resume it or use another directory
        run_streaming(ARMS, out_dir=out, chunk_size=CHUNK, workers=1, **KW)
    assert e.value.field == "out_dir" and "--resume" in str(e.value)
    res = run_streaming(ARMS, out_dir=out, chunk_size=CHUNK, workers=1, resume=True, **KW)
    assert (res.chunks_computed, res.chunks_skipped) == (7, 3)
    pd.testing.assert_frame_equal(read_outcomes(out), read_outcomes(ref.out_dir))
    assert res.summary == ref.summary


@pytest.mark.parametrize(
    "change, field",
    [
        (dict(seed=4), "seed"),
        (dict(patients=25), "patients"),
        (dict(chunk_size=6), "chunk_size"),
        (dict(followup_years=0.5), "followup_years"),
        (dict(overrides={"ec50": 2.0}), "overrides"),
        (dict(arms=["sbcc-5pct"]), "arms"),
    ],
)
def test_resume_refuses_a_different_run(streamed, change, field):
    res, _ = streamed
    args = dict(KW, chunk_size=CHUNK, arms=ARMS)
    args.update(change)
    arms = args.pop("arms")
    if field == "overrides":
        from imiqsim.model import get_model

        name = get_model().parameters[0].name
        args["overrides"] = {name: 1.2345}
    with pytest.raises(InputError) as e:
        run_streaming(arms, out_dir=res.out_dir, workers=1, resume=True, **args)
    assert e.value.field == field
    assert "new --out directory" in str(e.value)


def test_resume_refuses_changed_scenario_or_model(tmp_path, streamed):
    res, _ = streamed
    out = tmp_path / "copy"
    import shutil

    shutil.copytree(res.out_dir, out)
    from imiqsim.scenario import resolve

    other = resolve("sbcc-5pct").with_overrides(area_cm2=9.0)
    with pytest.raises(InputError) as e:
        run_streaming(
            [other, "sbcc-5pct-vehicle"],
            out_dir=out,
            chunk_size=CHUNK,
            workers=1,
            resume=True,
            **KW,
        )
    assert e.value.field == "arms[sbcc-5pct].scenario" and "area_cm2" in str(e.value)
    man = json.loads((out / "manifest.json").read_text())
    man["model"]["parameters_sha256"]["sbcc-5pct"] = "0" * 16  # as if parameters.csv had changed
    (out / "manifest.json").write_text(json.dumps(man))
    with pytest.raises(InputError) as e:
        run_streaming(ARMS, out_dir=out, chunk_size=CHUNK, workers=1, resume=True, **KW)
    assert e.value.field == "model"


def test_bad_inputs_name_the_field(tmp_path):
    for kw, field in (
        (dict(patients=0), "patients"),
        (dict(chunk_size=0), "chunk_size"),
        (dict(seed=-1), "seed"),
        (dict(workers=0), "workers"),
        (dict(followup_years=11.0), "followup_years"),
        (dict(immunosuppressed_fraction=2.0), "immunosuppressed_fraction"),
    ):
        args = dict(KW, chunk_size=CHUNK, workers=1)
        args.update(kw)
        with pytest.raises(InputError) as e:
            run_streaming(ARMS, out_dir=tmp_path / "x", **args)
        assert e.value.field == field
    assert not (tmp_path / "x").exists()


def test_two_runs_cannot_write_one_directory(tmp_path):
    out = tmp_path / "busy"
    out.mkdir()
    held = lock_run_dir(out)  # as if another run were writing there
    try:
        with pytest.raises(InputError) as e:
            run_streaming(
                ["sbcc-5pct"], out_dir=out, chunk_size=CHUNK, workers=1, resume=True, **KW
            )
        assert e.value.field == "out_dir" and "another imiqsim run" in str(e.value)
    finally:
        held.close()
    res = run_streaming(["sbcc-5pct"], out_dir=out, chunk_size=CHUNK, workers=1, resume=True, **KW)
    assert res.chunks_computed == 5  # resume with nothing there yet starts the run


# -------------------------------------------------------------------------- failed patients, traces


def test_a_chunk_with_a_failed_patient_reads_back_like_run_trial(tmp_path, monkeypatch):
    real = outcomes.simulate_chunk

    def with_failure(sc, seed, start, n, *a, **k):
        r = real(sc, seed, start, n, *a, **k)
        if start == 5:  # what simulate_chunk does for a patient the integrator gave up on
            df = r["outcomes"]
            bad = (df["patient"] == 6).to_numpy()
            df["status"] = np.where(bad, 1, df["status"])
            for c in (
                "complete_clearance",
                "lesion_reduction",
                "applications_given",
                "severe_erythema",
            ):
                df[c] = df[c].astype(float)
                df.loc[bad, c] = np.nan
        return r

    monkeypatch.setattr(outcomes, "simulate_chunk", with_failure)
    tr = run_trial(["sbcc-5pct"], chunk_size=CHUNK, **KW)
    res = run_streaming(["sbcc-5pct"], out_dir=tmp_path / "r", chunk_size=CHUNK, workers=1, **KW)
    got = read_outcomes(tmp_path / "r")
    want = _trial_outcomes(tr)
    for c in ("complete_clearance", "applications_given", "severe_erythema"):
        assert got[c].dtype == np.float64  # bool/int in the other chunks: promoted, NaN kept
        want[c] = want[c].astype(float)
    pd.testing.assert_frame_equal(got, want)
    assert res.summary["arms"][0]["failed_patients"] == 1
    assert res.summary == _as_json(tr.to_dict())


def test_keep_traces_writes_trace_bands(tmp_path, reference):
    res = run_streaming(
        ["sbcc-5pct"], out_dir=tmp_path / "r", chunk_size=CHUNK, workers=1, keep_traces=True, **KW
    )
    assert len(list((tmp_path / "r" / "traces").rglob("*.npz"))) == 5
    tb = trace_bands(tmp_path / "r", "sbcc-5pct")
    arm = reference.arms[0]
    np.testing.assert_allclose(tb["t_days"], arm.t_days)
    assert tb["n"] == 24
    for v in ("lesion_burden", "ifn_alpha"):
        np.testing.assert_allclose(
            tb[v]["mean"], arm.traces[v].astype(float).mean(axis=0), rtol=1e-5, atol=1e-9
        )
        assert tb[v]["pct"].shape == (5, arm.t_days.size)
    # resuming a run without trace bands with keep_traces recomputes the chunks for them
    out2 = tmp_path / "r2"
    run_streaming(["sbcc-5pct"], out_dir=out2, chunk_size=CHUNK, workers=1, **KW)
    again = run_streaming(
        ["sbcc-5pct"],
        out_dir=out2,
        chunk_size=CHUNK,
        workers=1,
        resume=True,
        keep_traces=True,
        **KW,
    )
    assert again.chunks_computed == 5
    assert again.summary == res.summary


# -------------------------------------------------------------------------- executors


def test_local_processes_equal_in_process(tmp_path, streamed):
    ref, _ = streamed
    res = run_streaming(ARMS, out_dir=tmp_path / "p", chunk_size=CHUNK, workers=2, **KW)
    assert res.chunks_computed == 10
    pd.testing.assert_frame_equal(read_outcomes(tmp_path / "p"), read_outcomes(ref.out_dir))
    assert res.summary == ref.summary


def test_a_failing_chunk_in_a_worker_process_keeps_the_finished_ones(tmp_path, monkeypatch):
    # the worker checks the model parameters against the run's: a mismatch fails the second arm
    real = streaming.arm_digest
    monkeypatch.setattr(
        streaming,
        "arm_digest",
        lambda sc, ov: "0" * 16 if sc.name == "sbcc-5pct-vehicle" else real(sc, ov),
    )
    out = tmp_path / "f"
    with pytest.raises(ImiqsimError, match="model parameters"):
        run_streaming(ARMS, out_dir=out, chunk_size=CHUNK, workers=2, **KW)
    # every chunk of the first arm was submitted before the failure and was written
    assert len(list((out / "chunks" / "arm=sbcc-5pct").glob("*.parquet"))) == 5
    assert not list((out / "chunks").rglob("*.tmp-*"))


def test_dask_cluster_equals_local_run(tmp_path, streamed):
    distributed = pytest.importorskip("distributed")
    ref, _ = streamed
    with distributed.LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None
    ) as cluster:
        res = run_streaming(
            ARMS,
            out_dir=tmp_path / "d",
            chunk_size=CHUNK,
            scheduler=cluster.scheduler_address,
            **KW,
        )
    assert res.chunks_computed == 10
    pd.testing.assert_frame_equal(read_outcomes(tmp_path / "d"), read_outcomes(ref.out_dir))
    assert res.summary == ref.summary


def test_unreachable_scheduler_is_an_input_error(tmp_path, monkeypatch):
    pytest.importorskip("distributed")
    monkeypatch.setattr(executors, "CONNECT_TIMEOUT", "1s")
    with pytest.raises(InputError) as e:
        run_streaming(
            ["sbcc-5pct"],
            out_dir=tmp_path / "u",
            chunk_size=CHUNK,
            scheduler="tcp://127.0.0.1:9",
            **KW,
        )
    assert e.value.field == "scheduler"
