"""A million-patient virtual trial in bounded memory: wall time, patients/s and peak memory.

Usage (from the repository root, with .venv):

    .venv/bin/python benchmarks/bench_million.py                    # 1,000,000 patients of ak-5pct
    .venv/bin/python benchmarks/bench_million.py --patients 20000   # a quick look, to extrapolate
    .venv/bin/python benchmarks/bench_million.py --out big --resume # continue an interrupted run
    .venv/bin/python benchmarks/bench_million.py --scheduler tcp://host:8786 --out /shared/big

Runs :func:`imiqsim.trial.streaming.run_streaming` on the ak-5pct preset (16 weeks of treatment,
8 weeks to the assessment visit, one year of follow-up by default), chunks streamed to Parquet
under ``--out``. Printed: the command, wall time, patients/s (patients simulated by this call),
chunks computed and skipped, the peak resident memory of this process (ru_maxrss, RUSAGE_SELF)
and of the largest local worker process (RUSAGE_CHILDREN; dask workers on a cluster are not
counted), the size of the output, and the complete-clearance endpoint. With ``--json`` the same
numbers as one JSON object on stdout.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shlex
import sys
import tempfile
import time
from pathlib import Path


def _rss_mib(who: int) -> float:
    # ru_maxrss is in KiB on Linux (bytes on macOS)
    r = resource.getrusage(who).ru_maxrss
    return r / (1024.0 * 1024.0) if sys.platform == "darwin" else r / 1024.0


def _dir_mib(path: Path) -> float:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file()) / 2**20


class _Progress:
    def __init__(self, quiet: bool):
        self.quiet = quiet
        self.t0 = time.perf_counter()
        self.first: int | None = None
        self.last_print = 0.0

    def __call__(self, done: int, total: int) -> None:
        if self.first is None:
            self.first = done
        now = time.perf_counter()
        if self.quiet or (now - self.last_print < 2.0 and done < total):
            return
        self.last_print = now
        new = done - self.first
        el = now - self.t0
        eta = (total - done) * el / new if new else float("nan")
        print(
            f"\r  chunks {done}/{total}  {el:7.0f} s elapsed  ETA {eta:7.0f} s   ",
            end="",
            file=sys.stderr,
            flush=True,
        )
        if done == total:
            print(file=sys.stderr)


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--patients", type=int, default=1_000_000, help="patients (default 1,000,000)")
    ap.add_argument("--arm", default="ak-5pct", help="preset (default ak-5pct)")
    ap.add_argument(
        "--workers", type=int, default=os.cpu_count() or 1, help="local worker processes"
    )
    ap.add_argument("--chunk-size", type=int, default=2000, help="patients per chunk file")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--followup-years", type=float, default=1.0)
    ap.add_argument(
        "--out", type=Path, default=None, help="output directory (default: a new temporary one)"
    )
    ap.add_argument("--resume", action="store_true", help="continue the run in --out")
    ap.add_argument("--scheduler", default=None, help="dask scheduler address (tcp://host:8786)")
    ap.add_argument("--keep", action="store_true", help="keep the temporary output directory")
    ap.add_argument("--quiet", action="store_true", help="no progress line")
    ap.add_argument("--json", action="store_true", help="print the numbers as one JSON object")
    args = ap.parse_args(argv)

    from imiqsim.trial.streaming import run_streaming

    out = args.out if args.out is not None else Path(tempfile.mkdtemp(prefix="imiqsim-million-"))
    cmd = " ".join(shlex.quote(a) for a in [sys.executable, *sys.argv])
    print(f"command: {cmd}", file=sys.stderr)
    print(
        f"run_streaming([{args.arm!r}], patients={args.patients}, seed={args.seed}, "
        f"out_dir={str(out)!r}, "
        f"chunk_size={args.chunk_size}, workers={args.workers}, scheduler={args.scheduler!r}, "
        f"followup_years={args.followup_years}, resume={args.resume})",
        file=sys.stderr,
    )
    t0 = time.perf_counter()
    res = run_streaming(
        [args.arm],
        patients=args.patients,
        seed=args.seed,
        out_dir=out,
        chunk_size=args.chunk_size,
        workers=args.workers,
        scheduler=args.scheduler,
        followup_years=args.followup_years,
        resume=args.resume,
        progress=_Progress(args.quiet),
    )
    wall = time.perf_counter() - t0
    computed_patients = args.patients * res.chunks_computed / max(res.chunks_total, 1)
    ep = res.summary["arms"][0]["endpoints"]["complete_clearance"]
    numbers = {
        "command": cmd,
        "arm": args.arm,
        "patients": args.patients,
        "patients_simulated": round(computed_patients),
        "workers": args.workers,
        "scheduler": args.scheduler,
        "chunk_size": args.chunk_size,
        "followup_years": args.followup_years,
        "chunks_computed": res.chunks_computed,
        "chunks_skipped": res.chunks_skipped,
        "wall_s": round(wall, 2),
        "patients_per_s": round(computed_patients / wall, 1) if wall > 0 else None,
        "peak_rss_main_mib": round(_rss_mib(resource.RUSAGE_SELF), 1),
        "peak_rss_largest_child_mib": round(_rss_mib(resource.RUSAGE_CHILDREN), 1),
        "output_mib": round(_dir_mib(out), 1),
        "out_dir": str(out),
        "complete_clearance": ep,
        "cpu_count": os.cpu_count(),
    }
    if args.json:
        print(json.dumps(numbers))
    else:
        for k, v in numbers.items():
            print(f"{k:28s} {v}")
    if args.out is None and not args.keep:
        import shutil

        shutil.rmtree(out, ignore_errors=True)
    return numbers


if __name__ == "__main__":  # needed: worker processes are spawned and re-import this file
    main()
