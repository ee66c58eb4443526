"""Streamed chunks cannot be silently reused when damaged or swapped; the chunk walk is lazy."""

from __future__ import annotations

import json
import shutil
import time

import pandas as pd
import pytest

from imiqsim.errors import InputError
from imiqsim.trial import streaming
from imiqsim.trial.streaming import (
    JOURNAL_NAME,
    MAX_STREAM_PATIENTS,
    chunk_path,
    read_outcomes,
    run_streaming,
)

ARMS = ["sbcc-5pct", "sbcc-5pct-vehicle"]
KW = dict(patients=12, seed=11, followup_years=0.0, chunk_size=4, workers=1)


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    out = tmp_path_factory.mktemp("ref") / "run"
    res = run_streaming(ARMS, out_dir=out, **KW)
    return res


def test_the_journal_records_each_chunk_with_its_range_and_checksum(reference):
    lines = (reference.out_dir / JOURNAL_NAME).read_text().splitlines()
    entries = [json.loads(x) for x in lines]
    assert len(entries) == 6
    for e in entries:
        assert e["last_patient"] - e["first_patient"] + 1 == e["n"] == 4
        p = chunk_path(reference.out_dir, e["arm"], e["start"])
        assert streaming.file_sha256(p) == e["sha256"]


def test_damaged_swapped_and_unrecorded_chunks_are_recomputed_identically(tmp_path, reference):
    out = tmp_path / "run"
    shutil.copytree(reference.out_dir, out)
    # one flipped bit in the middle of a chunk (the Parquet footer is intact)
    p = chunk_path(out, "sbcc-5pct", 4)
    data = bytearray(p.read_bytes())
    data[len(data) // 3] ^= 0x01
    p.write_bytes(bytes(data))
    # a chunk replaced by a copy of another (same size, other patients)
    shutil.copyfile(
        chunk_path(out, "sbcc-5pct-vehicle", 0), chunk_path(out, "sbcc-5pct-vehicle", 4)
    )
    # the last journal line (arm 2, patients 8-11) cut short, as by a kill during the append
    j = out / JOURNAL_NAME
    lines = j.read_text().splitlines()
    last = json.loads(lines[-1])
    j.write_text("\n".join(lines[:-1]) + "\n" + lines[-1][:20])
    res = run_streaming(ARMS, out_dir=out, resume=True, **KW)
    assert res.chunks_computed == 3 and res.chunks_skipped == 3
    pd.testing.assert_frame_equal(read_outcomes(out), read_outcomes(reference.out_dir))
    assert res.summary == reference.summary
    assert (last["arm"], last["start"]) in {
        (json.loads(x)["arm"], json.loads(x)["start"])
        for x in j.read_text().splitlines()
        if x.startswith("{") and x.endswith("}")
    }
    again = run_streaming(ARMS, out_dir=out, resume=True, **KW)  # and nothing left to redo
    assert (again.chunks_computed, again.chunks_skipped) == (0, 6)


def test_reading_a_swapped_chunk_is_refused(tmp_path, reference):
    out = tmp_path / "run"
    shutil.copytree(reference.out_dir, out)
    shutil.copyfile(chunk_path(out, "sbcc-5pct", 0), chunk_path(out, "sbcc-5pct", 4))
    with pytest.raises(InputError, match="--resume"):
        read_outcomes(out)


def test_the_chunk_walk_never_builds_the_whole_list(tmp_path, monkeypatch):
    # a billion chunks of one patient: a list of them would not fit; the walk hands out one
    # chunk at a time, so the first failing chunk stops the run at once
    def stop(spec):
        raise RuntimeError(f"stopped at chunk {spec['start']}")

    monkeypatch.setattr(streaming, "_chunk_task", stop)
    t0 = time.perf_counter()
    with pytest.raises(RuntimeError, match="stopped at chunk 0"):
        run_streaming(
            ["sbcc-5pct"],
            patients=MAX_STREAM_PATIENTS,
            seed=1,
            out_dir=tmp_path / "big",
            chunk_size=1,
            workers=1,
            followup_years=0.0,
        )
    assert time.perf_counter() - t0 < 60


def test_the_streamed_patient_count_is_checked(tmp_path):
    with pytest.raises(InputError) as e:
        run_streaming(["sbcc-5pct"], patients=MAX_STREAM_PATIENTS + 1, seed=1, out_dir=tmp_path)
    assert e.value.field == "patients"
