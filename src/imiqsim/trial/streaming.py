"""Large virtual trials in bounded memory: chunks streamed to Parquet, resumable, local or on dask.

:func:`run_streaming` runs the same virtual trial as :func:`imiqsim.trial.run_trial`
(same patients, same per-patient outcomes, same endpoints) but never holds the
whole trial in memory: every (arm, chunk) of patients is simulated by a worker
that writes its own Parquet file and returns only a small status, so a
million-patient trial needs a few hundred MB per worker and little in the main
process. Layout of ``out_dir``::

    manifest.json                                   what the run is (checked on --resume)
    chunks.jsonl                                    one line per finished chunk: arm, patient
                                                    range, SHA-256 of its file(s)
    chunks/arm=<name>/chunk-<start:09d>.parquet     per-patient outcomes, one file per chunk
    traces/arm=<name>/chunk-<start:09d>.npz         only with keep_traces: per-chunk trace bands
    summary.json                                    endpoints, as TrialResult.to_dict()
    .lock                                           held (flock) while a run writes here

Every file is written under a temporary name and renamed into place, so a file
that exists is complete. An interrupted run (Ctrl-C, a killed job, a failing
chunk) keeps its finished chunks; ``resume=True`` (``--resume``) checks that the
manifest matches the requested run, reuses a chunk on disk only when its
SHA-256 matches its line in ``chunks.jsonl`` and its rows are exactly the
patients of its range (a damaged, truncated or swapped file is computed
again), computes the rest, and the final results are identical to an
uninterrupted run (each patient has its own random stream; chunking changes
nothing). The chunk list is never built whole: a run of a billion patients
per arm walks its chunks one at a time.

Executors: those of :mod:`imiqsim.trial.executors`, as for in-memory trials:
``workers == 1`` and no scheduler runs in this process; ``workers > 1`` uses
spawned local processes; ``scheduler="tcp://host:8786"`` submits the chunks to
an existing dask.distributed cluster (the workers must see ``out_dir`` on a
shared filesystem: they write the chunk files themselves).

Memory: a worker holds one chunk's full state trajectories, about
``chunk_size * T * 106 * 8`` bytes (T output times: ~300 for ak-5pct with one
year of follow-up, i.e. ~0.5 GB at chunk_size 2000); the main process holds only
the small statuses, and at the end the endpoint columns (~15 floats per
patient: 120 MB for a million patients per arm).

Examples
--------
>>> from imiqsim.trial.streaming import run_streaming, read_outcomes
>>> res = run_streaming(["ak-5pct"], patients=1_000_000, seed=1, out_dir="big",
...                     workers=16)  # doctest: +SKIP
>>> res.summary["arms"][0]["endpoints"]["complete_clearance"]["value"]  # doctest: +SKIP
0.44...
>>> read_outcomes("big", columns=["complete_clearance", "age"])  # doctest: +SKIP
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import IO, Any
from urllib.parse import quote

import numpy as np

from imiqsim import __version__
from imiqsim._json import json_safe
from imiqsim.errors import ImiqsimError, InputError
from imiqsim.outputs.files import LOCK_NAME, lock_dir
from imiqsim.scenario import Scenario
from imiqsim.trial import outcomes as _outcomes
from imiqsim.trial.endpoints import endpoints
from imiqsim.trial.executors import chunk_starts, execute, iter_chunk_starts
from imiqsim.trial.run import ArmSummary, TrialPlan, plan_trial, trial_summary

__all__ = [
    "CHUNKS_DIR",
    "JOURNAL_NAME",
    "MANIFEST_NAME",
    "MAX_STREAM_PATIENTS",
    "SUMMARY_NAME",
    "TRACES_DIR",
    "TRACE_PERCENTILES",
    "StreamResult",
    "arm_digest",
    "chunk_path",
    "lock_run_dir",
    "read_outcomes",
    "run_streaming",
    "trace_bands",
    "trace_path",
]

MANIFEST_NAME = "manifest.json"
SUMMARY_NAME = "summary.json"
#: one JSON line per finished chunk (arm, start, n, patient range, SHA-256): checked on resume
JOURNAL_NAME = "chunks.jsonl"
CHUNKS_DIR = "chunks"
TRACES_DIR = "traces"
FORMAT_VERSION = 2
#: the most patients per arm a streamed run accepts (a billion: 500,000 chunk files of 2,000)
MAX_STREAM_PATIENTS = 1_000_000_000
#: files of an in-memory trial's output directory (imiqsim.outputs.trial): not a streamed run's
_IN_MEMORY_FILES = ("outcomes.parquet", "traces.nc", "report.html", "comparison.json")
#: manifest fields that define the run: a resumed run must match them all
RUN_FIELDS = (
    "version",
    "arms",
    "patients",
    "seed",
    "chunk_size",
    "followup_years",
    "overrides",
    "immunosuppressed_fraction",
    "model",
)
#: per-chunk trace bands written with keep_traces
TRACE_PERCENTILES = (5, 25, 50, 75, 95)
_TMP_RE = re.compile(r"\.tmp-[0-9a-f]+$")


@dataclass
class StreamResult:
    """What :func:`run_streaming` did.

    summary : dict
        Same shape as :meth:`imiqsim.trial.TrialResult.to_dict` (JSON-safe: NaN as None);
        also written to ``out_dir/summary.json``.
    out_dir : Path
    chunks_computed, chunks_skipped, chunks_total : int
        Chunks simulated by this call, found finished on disk (resume), and in the run.
    seconds : float
        Wall time of this call.
    files : list of Path
        manifest.json and summary.json (the chunk files are under ``out_dir/chunks``).
    """

    summary: dict
    out_dir: Path
    chunks_computed: int
    chunks_skipped: int
    chunks_total: int
    seconds: float = 0.0
    files: list[Path] = field(default_factory=list)


# --------------------------------------------------------------------------- small helpers


def _write_text_atomic(path: Path, text: str) -> None:
    tmp = path.with_name(f"{path.name}.tmp-{uuid.uuid4().hex}")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


def _arm_dirname(name: str) -> str:
    # hive-style partition directory; anything unusual percent-encoded (names can come from files)
    return "arm=" + quote(name, safe="-_.+#")


def chunk_path(out_dir: Path, arm: str, start: int) -> Path:
    """Where the outcomes of patients ``start..`` of ``arm`` are stored."""
    return Path(out_dir) / CHUNKS_DIR / _arm_dirname(arm) / f"chunk-{start:09d}.parquet"


def trace_path(out_dir: Path, arm: str, start: int) -> Path:
    return Path(out_dir) / TRACES_DIR / _arm_dirname(arm) / f"chunk-{start:09d}.npz"


def file_sha256(path: str | os.PathLike) -> str:
    """SHA-256 of a file's bytes (hex)."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _patients_ok(path: Path, start: int, n: int) -> bool:
    """True when the chunk's ``patient`` column is exactly ``start .. start + n - 1``."""
    import pyarrow.parquet as pq

    try:
        col = pq.read_table(path, columns=["patient"]).column("patient").to_numpy()
    except Exception:
        return False
    return col.shape == (n,) and bool(np.array_equal(col, np.arange(start, start + n)))


def _chunk_done(path: Path, n: int) -> bool:
    """True when the chunk file exists, is readable Parquet and has ``n`` rows."""
    if not path.is_file():
        return False
    try:
        import pyarrow.parquet as pq

        return pq.read_metadata(path).num_rows == n
    except Exception:  # truncated or foreign file: compute it again
        return False


def _traces_done(path: Path) -> bool:
    if not path.is_file():
        return False
    try:
        with np.load(path) as z:
            return "t_days" in z.files
    except Exception:
        return False


def arm_digest(sc: Scenario, overrides: dict | None) -> str:
    """Fingerprint of the model definition and an arm's parameter values (16 hex digits).

    Recorded in the manifest and checked by every chunk: it catches an edited
    parameters.csv, or a dask worker running another imiqsim, between or during runs.
    """
    import hashlib

    from imiqsim.model import get_model

    model = get_model()
    base = sc.model_parameters(model, overrides)
    h = hashlib.sha256(model.fingerprint.encode())
    h.update(np.ascontiguousarray(base, dtype=float).tobytes())
    return h.hexdigest()[:16]


# --------------------------------------------------------------------------- worker side


def _trace_bands(traces: dict, ok: np.ndarray) -> dict:
    out = {}
    for v, a in traces.items():
        a = np.asarray(a, dtype=float)[ok]
        if a.shape[0] == 0:
            out[f"{v}__mean"] = np.full(a.shape[1], np.nan, dtype=np.float32)
            out[f"{v}__pct"] = np.full(
                (len(TRACE_PERCENTILES), a.shape[1]), np.nan, dtype=np.float32
            )
            continue
        out[f"{v}__mean"] = a.mean(axis=0).astype(np.float32)
        out[f"{v}__pct"] = np.percentile(a, TRACE_PERCENTILES, axis=0).astype(np.float32)
    return out


def _chunk_task(spec: dict) -> dict:
    """Simulate one (arm, chunk), write its Parquet file and trace bands, return a status."""
    t0 = time.perf_counter()
    import pyarrow as pa
    import pyarrow.parquet as pq

    if spec.get("digest") and arm_digest(spec["scenario"], spec["overrides"]) != spec["digest"]:
        raise ImiqsimError(
            f"chunk {spec['start']} of arm {spec['scenario'].name}: the model parameters here "
            "differ from those recorded when the run started (was "
            "src/imiqsim/model/parameters.csv edited, or does this worker run another imiqsim "
            "installation?); results would not be consistent"
        )
    res = _outcomes.simulate_chunk(  # looked up now: tests replace it
        spec["scenario"],
        spec["seed"],
        spec["start"],
        spec["n"],
        spec["followup_years"],
        spec["overrides"],
        spec["immunosuppressed_fraction"],
    )
    df = res["outcomes"]
    path = Path(spec["path"])
    path.parent.mkdir(parents=True, exist_ok=True)
    if spec.get("trace_path"):
        tp = Path(spec["trace_path"])
        tp.parent.mkdir(parents=True, exist_ok=True)
        ok = df["status"].to_numpy() == 0
        tmp = tp.with_name(f"{tp.name}.tmp-{uuid.uuid4().hex}")
        with open(tmp, "wb") as fh:
            np.savez(
                fh,
                t_days=np.asarray(res["t_days"], dtype=float),
                n=np.array(int(ok.sum())),
                percentiles=np.array(TRACE_PERCENTILES),
                **_trace_bands(res["traces"], ok),
            )
        os.replace(tmp, tp)
    del res
    patients = df["patient"].to_numpy()
    if not np.array_equal(patients, np.arange(spec["start"], spec["start"] + spec["n"])):
        raise ImiqsimError(
            f"chunk {spec['start']} of arm {spec['scenario'].name}: its rows are not patients "
            f"{spec['start']}..{spec['start'] + spec['n'] - 1}"
        )
    table = pa.Table.from_pandas(df, preserve_index=False)
    tmp = path.with_name(f"{path.name}.tmp-{uuid.uuid4().hex}")
    pq.write_table(table, tmp)
    sha = file_sha256(tmp)
    os.replace(tmp, path)  # the chunk exists only once it is complete
    return {
        "arm": spec["arm_index"],
        "start": spec["start"],
        "n": spec["n"],
        "path": str(path),
        "sha256": sha,
        "trace_sha256": file_sha256(spec["trace_path"]) if spec.get("trace_path") else None,
        "failed": int(np.count_nonzero(df["status"].to_numpy() != 0)),
        "seconds": time.perf_counter() - t0,
        "pid": os.getpid(),
    }


# --------------------------------------------------------------------------- reading back


def _read_manifest(out_dir: Path) -> dict:
    p = Path(out_dir) / MANIFEST_NAME
    if not p.is_file():
        raise InputError(
            "out_dir", str(out_dir), "a directory written by run_streaming (no manifest.json there)"
        )
    try:
        return json.loads(p.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise InputError("out_dir", str(out_dir), f"a readable manifest.json ({exc})") from None


def _concat_tables(tables: list):
    """Concatenate chunk tables; a column whose type differs between chunks (bool in most,
    float where a chunk had a failed patient, i.e. NaN) becomes float64 everywhere."""
    import pyarrow as pa

    if not tables:
        return None
    names = tables[0].column_names
    types = {c: {t.schema.field(c).type for t in tables if c in t.column_names} for c in names}
    mixed = [c for c, ts in types.items() if len(ts) > 1]
    if mixed:
        fixed = []
        for t in tables:
            for c in mixed:
                if c in t.column_names and t.schema.field(c).type != pa.float64():
                    i = t.column_names.index(c)
                    t = t.set_column(i, c, t.column(c).cast(pa.float64()))
            fixed.append(t)
        tables = fixed
    # pandas metadata of the first chunk would otherwise re-impose its dtypes
    tables = [t.replace_schema_metadata(None) if mixed else t for t in tables]
    return pa.concat_tables(tables, promote_options="default")


def _read_arm(
    out_dir: Path, arm: str, chunks: list[tuple[int, int]], columns, allow_incomplete: bool
):
    import pyarrow.parquet as pq

    tables, missing = [], []
    for start, n in chunks:
        p = chunk_path(out_dir, arm, start)
        if not _chunk_done(p, n):
            missing.append(p)
            continue
        t = pq.read_table(p, columns=list(columns) if columns is not None else None)
        if "patient" in t.column_names and not np.array_equal(
            t.column("patient").to_numpy(), np.arange(start, start + n)
        ):
            missing.append(p)  # a chunk swapped for another: its patients are not this range
            continue
        tables.append(t)
    if missing and not allow_incomplete:
        raise InputError(
            "out_dir",
            str(out_dir),
            f"a finished run; {len(missing)} of {len(chunks)} chunk files of arm {arm!r} are "
            "missing or damaged (first: " + str(missing[0]) + "); finish it with --resume",
        )
    return _concat_tables(tables)


def read_outcomes(
    out_dir: str | os.PathLike,
    columns: Sequence[str] | None = None,
    *,
    arms: Sequence[str] | None = None,
    allow_incomplete: bool = False,
):
    """Per-patient outcomes of a streamed trial as one pandas DataFrame.

    Parameters
    ----------
    out_dir : path
        The ``out_dir`` of :func:`run_streaming`.
    columns : list of str, optional
        Outcome columns to read (default: all). ``arm`` and ``patient`` always come first.
    arms : list of str, optional
        Arm names to read (default: all, in trial order).
    allow_incomplete : bool
        Read the chunks that exist instead of refusing an unfinished run.

    Returns
    -------
    pandas.DataFrame
        Sorted by arm (trial order) then patient, like the concatenated
        ``ArmResult.outcomes`` of :func:`imiqsim.trial.run_trial`. A boolean
        outcome becomes float (NaN for failed patients) when any chunk had a failed patient.
    """
    import pandas as pd

    out_dir = Path(out_dir)
    man = _read_manifest(out_dir)
    names = [a["name"] for a in man["arms"]]
    if arms is not None:
        for a in arms:
            if a not in names:
                raise InputError("arms", a, f"one of the run's arms: {', '.join(names)}")
        names = [a for a in names if a in set(arms)]
    cols = None
    if columns is not None:
        cols = ["patient"] + [c for c in columns if c not in ("arm", "patient")]
    chunks = chunk_starts(int(man["patients"]), int(man["chunk_size"]))
    if cols is not None:
        import pyarrow.parquet as pq

        first = next(
            (
                chunk_path(out_dir, nm, s)
                for nm in names
                for s, n in chunks
                if _chunk_done(chunk_path(out_dir, nm, s), n)
            ),
            None,
        )
        if first is not None:
            known = pq.read_schema(first).names
            unknown = [c for c in cols if c not in known]
            if unknown:
                raise InputError(
                    "columns", unknown, "outcome columns of this run: " + ", ".join(known)
                )
    frames = []
    for name in names:
        t = _read_arm(out_dir, name, chunks, cols, allow_incomplete)
        if t is None:
            continue
        df = t.to_pandas()
        df.insert(0, "arm", name)
        frames.append(df)
    if not frames:
        return pd.DataFrame(columns=["arm", "patient"] + list(columns or []))
    if len(frames) == 1:
        return frames[0].reset_index(drop=True)
    # same promotion across arms as within an arm
    for c in frames[0].columns:
        kinds = {f[c].dtype.kind for f in frames if c in f.columns}
        if len(kinds) > 1 and kinds <= {"b", "f", "i", "u"}:
            for f in frames:
                f[c] = f[c].astype(float)
    return pd.concat(frames, ignore_index=True)


def trace_bands(out_dir: str | os.PathLike, arm: str) -> dict:
    """Trace summary of one arm of a run made with ``keep_traces=True``.

    Returns ``{"t_days", "n", "percentiles", <var>: {"mean": (T,), "pct": (5, T)}}``: the
    mean is exact (patient-weighted over chunks); the percentile bands are the
    patient-weighted average of the per-chunk percentiles (an approximation that is
    close for chunks of a few hundred patients or more).
    """
    out_dir = Path(out_dir)
    man = _read_manifest(out_dir)
    chunks = chunk_starts(int(man["patients"]), int(man["chunk_size"]))
    acc: dict[str, dict] = {}
    t_days, total = None, 0
    for start, _ in chunks:
        p = trace_path(out_dir, arm, start)
        if not p.is_file():
            raise InputError(
                "out_dir",
                str(out_dir),
                f"trace summaries for every chunk of arm {arm!r} "
                "(run with keep_traces=True, or --resume it with keep_traces)",
            )
        with np.load(p) as z:
            n = int(z["n"])
            t_days = z["t_days"]
            for key in z.files:
                if "__" not in key:
                    continue
                v, kind = key.split("__")
                if n == 0:
                    continue
                d = acc.setdefault(v, {})
                d[kind] = d.get(kind, 0.0) + n * z[key].astype(float)
            total += n
    out: dict = {"t_days": t_days, "n": total, "percentiles": TRACE_PERCENTILES}
    for v, d in acc.items():
        out[v] = {k: arr / max(total, 1) for k, arr in d.items()}
    return out


# --------------------------------------------------------------------------- the run


def _check_manifest(old: dict, new: dict, out_dir: Path) -> None:
    norm = json.loads(json.dumps(json_safe(new)))
    for key in RUN_FIELDS:
        a, b = old.get(key), norm.get(key)
        if key == "arms" and isinstance(a, list) and isinstance(b, list):
            if [x.get("name") for x in a] != [x.get("name") for x in b]:
                raise InputError(
                    "arms",
                    [x["name"] for x in b],
                    f"the same arms as the run in {out_dir} ({[x.get('name') for x in a]}) to "
                    "resume it; or choose a new --out directory",
                )
            for x, y in zip(a, b, strict=True):  # same names, so same length
                if x.get("scenario") != y.get("scenario"):
                    diff = sorted(
                        k
                        for k in set(x.get("scenario", {})) | set(y.get("scenario", {}))
                        if x.get("scenario", {}).get(k) != y.get("scenario", {}).get(k)
                    )
                    raise InputError(
                        f"arms[{y['name']}].scenario",
                        ", ".join(diff),
                        f"the scenario of the run in {out_dir} (these fields differ) to resume it; "
                        "or choose a new --out directory",
                    )
            continue
        if key == "model" and a != b:
            raise InputError(
                "model",
                "changed parameter values",
                f"the model parameters of the run in {out_dir} to resume it (the parameter table "
                "src/imiqsim/model/parameters.csv changed since it started); restore them, or "
                "choose a new --out directory",
            )
        if a != b:
            raise InputError(
                key,
                new.get(key),
                f"{old.get(key)!r} as in the run in {out_dir} to resume it; "
                "or choose a new --out directory",
            )


def _cleanup_tmp(out_dir: Path) -> None:
    for sub in (CHUNKS_DIR, TRACES_DIR):
        d = out_dir / sub
        if d.is_dir():
            for p in d.rglob("*.tmp-*"):
                if _TMP_RE.search(p.name):
                    try:
                        p.unlink()
                    except OSError:
                        pass


def _numeric_columns(out_dir: Path, arm: str, start: int) -> list[str]:
    import pyarrow as pa
    import pyarrow.parquet as pq

    schema = pq.read_schema(chunk_path(out_dir, arm, start))
    return [
        f.name
        for f in schema
        if pa.types.is_integer(f.type)
        or pa.types.is_floating(f.type)
        or pa.types.is_boolean(f.type)
    ]


def _arm_summary(out_dir: Path, name: str, sc, chunks: Callable[[], Any]) -> ArmSummary:
    # endpoints are computed from per-patient numbers: read only the numeric and boolean columns
    # (not the text covariates), ~8 bytes per patient and column; all columns if endpoints needs
    # more
    cols = _numeric_columns(out_dir, name, 0)
    df = _read_arm(out_dir, name, chunks(), cols, allow_incomplete=False).to_pandas()
    try:
        ep = endpoints(df)
    except KeyError:
        df = _read_arm(out_dir, name, chunks(), None, allow_incomplete=False).to_pandas()
        ep = endpoints(df)
    return ArmSummary(
        name=name,
        n=len(df),
        scenario=sc.name,
        indication=sc.indication,
        endpoints=ep,
        failed_patients=int((df["status"] != 0).sum()),
    )


def run_streaming(
    arms: Sequence[Any],
    *,
    patients: int,
    seed: int,
    out_dir: str | os.PathLike,
    chunk_size: int = 2000,
    workers: int = 2,
    scheduler: Any = None,
    scheduler_file: str | os.PathLike | None = None,
    followup_years: float = 1.0,
    overrides: dict | None = None,
    immunosuppressed_fraction: float | None = None,
    resume: bool = False,
    progress: Callable[[int, int], None] | None = None,
    keep_traces: bool = False,
) -> StreamResult:
    """Run a virtual trial chunk by chunk, streaming per-patient outcomes to Parquet.

    Same inputs and results as :func:`imiqsim.trial.run_trial` (per-patient outcomes
    and endpoints are identical for the same seed), in bounded memory. See the module
    docstring for the directory layout.

    Parameters
    ----------
    arms : list of str or Scenario
        Preset names, scenario files or :class:`~imiqsim.scenario.Scenario` objects.
    patients : int
        Virtual patients per arm, at most :data:`MAX_STREAM_PATIENTS`.
    seed : int
        Trial seed: patient i of seed s is the same patient in every run.
    out_dir : path
        Output directory (created). Refused when it already holds a run, unless ``resume``.
    chunk_size : int
        Patients per chunk file (changes memory per worker and file count, not results).
    workers : int
        Local worker processes; 1 runs in this process. Ignored with ``scheduler``.
    scheduler : str or dask.distributed.Client, optional
        A dask.distributed scheduler address (``tcp://host:8786``) or a client of
        your own (left open); its workers must import imiqsim and share
        ``out_dir``'s filesystem.
    scheduler_file : path, optional
        A dask scheduler file instead (dask-jobqueue, dask-mpi, ``dask scheduler
        --scheduler-file``).
    followup_years, overrides, immunosuppressed_fraction
        As for :func:`imiqsim.trial.run_trial`.
    resume : bool
        Continue the run in ``out_dir``: its manifest must match these inputs; a chunk
        file already there is kept when its SHA-256 and patient range match its line
        in ``chunks.jsonl``, anything else computed. With no run there yet, start one.
    progress : callable(done, total), optional
        Called with chunks finished (including skipped ones) after each chunk.
    keep_traces : bool
        Also write per-chunk trace bands (mean and 5/25/50/75/95th percentiles over the
        chunk's patients, every trace variable); read them with :func:`trace_bands`.
        Without it, traces are dropped.

    Returns
    -------
    StreamResult

    Raises
    ------
    InputError
        Bad inputs; an existing run without ``resume``; a manifest that does not
        match on ``resume`` (the error names the differing field); a scheduler
        that cannot be reached.
    Exception
        A chunk that fails is re-raised after the chunks already running have
        finished and been written, so ``resume`` continues from there.
    """
    t_start = time.perf_counter()
    if isinstance(patients, (int, np.integer)) and patients > MAX_STREAM_PATIENTS:
        raise InputError(
            "patients", patients, f"at most {MAX_STREAM_PATIENTS:,} per arm in a streamed run"
        )
    plan = plan_trial(
        arms,
        patients=patients,
        seed=seed,
        workers=workers,
        chunk_size=chunk_size,
        followup_years=followup_years,
        overrides=overrides,
        immunosuppressed_fraction=immunosuppressed_fraction,
    )
    # plain Python numbers: they go into the manifest and are compared on resume
    plan = replace(
        plan,
        patients=int(patients),
        seed=int(seed),
        chunk_size=int(chunk_size),
        followup_years=float(followup_years),
        overrides=dict(overrides) if overrides else None,
        immunosuppressed_fraction=(
            None if immunosuppressed_fraction is None else float(immunosuppressed_fraction)
        ),
    )
    from imiqsim.outputs.files import check_output_dir

    # also validates overrides before any work
    digests = [arm_digest(sc, plan.overrides or {}) for sc in plan.scenarios]
    manifest = _manifest(plan, digests, keep_traces)
    out = Path(out_dir).expanduser()
    if out.exists() and not out.is_dir():
        raise InputError("out_dir", str(out_dir), "a directory (this is an existing file)")
    out = out.resolve()
    mpath = out / MANIFEST_NAME
    has_run = mpath.exists() or (out / CHUNKS_DIR).exists()
    if has_run and not resume:
        raise InputError(
            "out_dir",
            str(out_dir),
            "a new directory: this one already holds a run (manifest.json); pass --resume "
            "(resume=True) to continue it, or choose a new directory",
        )
    if resume and not mpath.exists() and (out / CHUNKS_DIR).exists():
        raise InputError(
            "out_dir",
            str(out_dir),
            "a run directory with its manifest.json (chunk files are there "
            "but no manifest); choose a new directory",
        )
    foreign = [n for n in _IN_MEMORY_FILES if (out / n).exists()]
    if foreign and not mpath.exists():
        raise InputError(
            "out_dir",
            str(out_dir),
            f"a directory without another run's files (it holds {foreign[0]} of an in-memory "
            "trial); choose a new directory",
        )
    check_output_dir(out, "out_dir")
    lock = lock_dir(out, "out_dir")
    journal_fh = None
    try:
        if mpath.exists():  # only with resume (checked above)
            _check_manifest(_read_manifest(out), manifest, out)
            _cleanup_tmp(out)
        else:
            text = json.dumps(json_safe(manifest), indent=2, allow_nan=False) + "\n"
            _write_text_atomic(mpath, text)
        journal = _read_journal(out) if resume else {}
        if not resume and (out / JOURNAL_NAME).exists():
            (out / JOURNAL_NAME).unlink()
        journal_fh = open(out / JOURNAL_NAME, "a+", encoding="utf-8")
        if journal_fh.tell() > 0:  # a line cut short by a killed run: start on a fresh line
            journal_fh.seek(journal_fh.tell() - 1)
            if journal_fh.read(1) != "\n":
                journal_fh.write("\n")
        n_chunks = -(-plan.patients // plan.chunk_size)
        total = n_chunks * len(plan.names)
        counts = {"done": 0, "skipped": 0, "computed": 0}

        def tick() -> None:
            counts["done"] += 1
            if progress:
                progress(counts["done"], total)

        if progress:
            progress(0, total)

        def record(_i: int, status: dict) -> None:
            written = status["path"]
            if not Path(written).is_file():  # a dask worker on another machine wrote elsewhere
                raise ImiqsimError(
                    f"a dask worker wrote {written} but it is not visible here: --scheduler "
                    "needs the output directory on a filesystem shared by this machine and every "
                    "worker"
                )
            entry = {
                "arm": plan.names[status["arm"]],
                "start": status["start"],
                "n": status["n"],
                "first_patient": status["start"],
                "last_patient": status["start"] + status["n"] - 1,
                "sha256": status["sha256"],
                "trace_sha256": status.get("trace_sha256"),
                "failed": status["failed"],
            }
            journal_fh.write(json.dumps(entry) + "\n")
            journal_fh.flush()
            counts["computed"] += 1
            tick()

        def on_skip() -> None:
            counts["skipped"] += 1
            tick()

        execute(
            _chunk_task,
            _remaining_chunks(out, plan, digests, journal, keep_traces, on_skip),
            on_done=record,
            workers=workers,
            scheduler=scheduler,
            scheduler_file=scheduler_file,
            total=total,
        )
        # endpoints from the Parquet files (only the needed columns)
        summaries = [
            _arm_summary(out, nm, sc, lambda: iter_chunk_starts(plan.patients, plan.chunk_size))
            for nm, sc in zip(plan.names, plan.scenarios, strict=True)
        ]
        summary = json_safe(trial_summary(summaries, plan.seed, plan.patients, plan.followup_years))
        spath = out / SUMMARY_NAME
        _write_text_atomic(spath, json.dumps(summary, indent=2, allow_nan=False) + "\n")
    finally:
        if journal_fh is not None:
            journal_fh.close()
        lock.close()  # releases the lock
    return StreamResult(
        summary=summary,
        out_dir=out,
        chunks_computed=counts["computed"],
        chunks_skipped=counts["skipped"],
        chunks_total=total,
        seconds=time.perf_counter() - t_start,
        files=[mpath, out / JOURNAL_NAME, spath],
    )


def _read_journal(out: Path) -> dict[tuple[str, int], dict]:
    """The finished chunks recorded in ``chunks.jsonl``: (arm, start) -> its latest line.

    A line cut short by a killed run (or otherwise unreadable) is ignored: its
    chunk is computed again.
    """
    p = out / JOURNAL_NAME
    found: dict[tuple[str, int], dict] = {}
    if not p.is_file():
        return found
    with open(p, encoding="utf-8", errors="replace") as fh:
        for line in fh:
            try:
                e = json.loads(line)
                key = (str(e["arm"]), int(e["start"]))
                int(e["n"]), str(e["sha256"])
            except (ValueError, KeyError, TypeError):
                continue
            found[key] = e
    return found


def _reusable(out: Path, arm: str, start: int, n: int, entry: dict | None, tp: Path | None) -> bool:
    """Whether a chunk on disk may be kept on resume: its journal line, checksum and range."""
    if entry is None or int(entry["n"]) != n:
        return False
    if (entry.get("first_patient"), entry.get("last_patient")) != (start, start + n - 1):
        return False
    p = chunk_path(out, arm, start)
    if not _chunk_done(p, n):
        return False
    try:
        if file_sha256(p) != entry["sha256"]:
            return False
        if tp is not None and (not _traces_done(tp) or file_sha256(tp) != entry["trace_sha256"]):
            return False
    except OSError:
        return False
    return _patients_ok(p, start, n)


def _manifest(plan: TrialPlan, digests: list[str], keep_traces: bool) -> dict[str, Any]:
    """What the run is: written on start, compared field by field (RUN_FIELDS) on resume."""
    return {
        "format": FORMAT_VERSION,
        "tool": "imiqsim.scale.run_streaming",
        "version": __version__,
        "arms": [
            {"name": nm, "scenario": json.loads(sc.model_dump_json())}
            for nm, sc in zip(plan.names, plan.scenarios, strict=True)
        ],
        "patients": plan.patients,
        "seed": plan.seed,
        "chunk_size": plan.chunk_size,
        "followup_years": plan.followup_years,
        "overrides": plan.overrides or {},
        "immunosuppressed_fraction": plan.immunosuppressed_fraction,
        "model": {"parameters_sha256": dict(zip(plan.names, digests, strict=True))},
        "keep_traces": bool(keep_traces),
        "layout": {
            "chunks": f"{CHUNKS_DIR}/arm=<name>/chunk-<start:09d>.parquet",
            "journal": JOURNAL_NAME,
            "lock": LOCK_NAME,
            "traces": f"{TRACES_DIR}/arm=<name>/chunk-<start:09d>.npz" if keep_traces else None,
            "summary": SUMMARY_NAME,
        },
    }


def _remaining_chunks(
    out: Path,
    plan: TrialPlan,
    digests: list[str],
    journal: dict[tuple[str, int], dict],
    keep_traces: bool,
    on_skip: Callable[[], None],
):
    """The chunk tasks still to compute, one at a time (never a list of every chunk).

    A chunk on disk whose journal line, checksum and patient range all match is
    skipped (``on_skip`` is called); any other is yielded to be computed again.
    """
    for ai, nm in enumerate(plan.names):
        for start, n in iter_chunk_starts(plan.patients, plan.chunk_size):
            p = chunk_path(out, nm, start)
            tp = trace_path(out, nm, start) if keep_traces else None
            if _reusable(out, nm, start, n, journal.get((nm, start)), tp):
                on_skip()
                continue
            sc, seed, _, _, followup_years, overrides, immunosuppressed = plan.chunk_args(
                ai, start, n
            )
            yield {
                "arm_index": ai,
                "scenario": sc,
                "seed": seed,
                "start": start,
                "n": n,
                "followup_years": followup_years,
                "overrides": overrides,
                "immunosuppressed_fraction": immunosuppressed,
                "path": str(p),
                "digest": digests[ai],
                "trace_path": str(tp) if tp is not None else None,
            }


def lock_run_dir(out: Path) -> IO[str]:
    """Take the exclusive lock on ``out/.lock`` that a run holds while it writes there.

    Returns the open lock file (closing it releases the lock); see
    :func:`imiqsim.outputs.files.lock_dir`.

    Raises
    ------
    InputError
        Another run holds the lock.
    """
    return lock_dir(out, "out_dir")
