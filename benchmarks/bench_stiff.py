"""The engine's integration methods on normal and made-stiff patients: patients/s, steps, statuses.

Usage (from the repository root, with .venv):

    .venv/bin/python benchmarks/bench_stiff.py            # 200 + 200 patients of ak-5pct
    .venv/bin/python benchmarks/bench_stiff.py --patients 50 --followup-years 0
    .venv/bin/python benchmarks/bench_stiff.py --stiff k_irf7_off=1e6 --json

Samples ``--patients`` virtual patients of the preset (trial seed ``--seed``), once as sampled
("normal") and once with ``--stiff`` parameter overrides applied to every patient ("stiff"; default
``k_nfkb_off=1e5``: NF-kB inactivation 10^5 /h instead of 1 /h, an eigenvalue near -1e5 /h). Each
population is run through :func:`imiqsim.engine.run.run_batch` with ``method`` dp5, rosenbrock and
auto over the preset's course, assessment and ``--followup-years`` of follow-up (daily outputs),
with ``max_steps`` = ``--max-steps`` for every run: small enough that DP5 gives up on a stiff
patient (status 1) in seconds instead of grinding through millions of steps, ample for a normal one
(3,000-7,000). Each method is called once on two patients first, so compilation (or loading the
on-disk cache) is not timed. Printed per population and method: wall time, patients/s, median and
maximum step attempts (accepted + rejected), status counts (0 ok / 1 too many steps / 2 non-finite /
3 step underflow) and how many patients ran implicit steps (switched_at_h >= 0).
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import sys
import time

import numpy as np

METHODS = ("dp5", "rosenbrock", "auto")


def _overrides(items: list[str]) -> dict[str, float]:
    out = {}
    for it in items:
        name, sep, value = it.partition("=")
        if not sep:
            raise SystemExit(f"--stiff expects NAME=VALUE, got {it!r}")
        out[name.strip()] = float(value)
    return out


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument(
        "--patients", type=int, default=200, help="patients per population (default 200)"
    )
    ap.add_argument("--arm", default="ak-5pct", help="preset (default ak-5pct)")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--followup-years", type=float, default=1.0)
    ap.add_argument(
        "--stiff",
        action="append",
        default=None,
        metavar="NAME=VALUE",
        help="override making the stiff population (repeatable; default k_nfkb_off=1e5)",
    )
    ap.add_argument(
        "--max-steps", type=int, default=20_000, help="run_batch max_steps (default 20,000)"
    )
    ap.add_argument("--json", action="store_true", help="print the numbers as one JSON object")
    args = ap.parse_args(argv)

    from imiqsim.engine.run import run_batch
    from imiqsim.model import get_model
    from imiqsim.population import sample_population
    from imiqsim.scenario import resolve
    from imiqsim.trial import HOURS_PER_YEAR

    stiff = _overrides(args.stiff or ["k_nfkb_off=1e5"])
    model = get_model()
    sc = resolve(args.arm)
    base = sc.model_parameters(model)
    pop = sample_population(
        base, sc.indication, args.patients, args.seed, model=model, site=sc.site
    )
    P_stiff = pop.P.copy()
    for name, value in stiff.items():
        P_stiff[:, model.parameter_index(name)] = value
    end = sc.horizon_hours() + args.followup_years * HOURS_PER_YEAR
    t = np.arange(0.0, end + 1e-9, 24.0)
    ev = sc.events()

    compile_s = {}
    for m in METHODS:
        t0 = time.perf_counter()
        run_batch(model, pop.P[:2], ev, t[:3], method=m)
        compile_s[m] = time.perf_counter() - t0

    cmd = "python benchmarks/bench_stiff.py " + shlex.join(sys.argv[1:] if argv is None else argv)
    out = {
        "command": cmd.strip(),
        "arm": sc.name,
        "patients": args.patients,
        "seed": args.seed,
        "horizon_days": float(t[-1] / 24.0),
        "stiff_overrides": stiff,
        "max_steps": args.max_steps,
        "cpus": os.cpu_count(),
        "numba_threads": int(os.environ.get("NUMBA_NUM_THREADS", os.cpu_count() or 1)),
        "first_call_s": compile_s,
        "runs": [],
    }
    if not args.json:
        print(out["command"])
        print(
            f"{sc.name}: {args.patients} patients, {out['horizon_days']:.0f} days, daily outputs; "
            f"stiff = {stiff}; max_steps {args.max_steps}; {os.cpu_count()} CPUs"
        )
        print(
            f"{'population':10s} {'method':10s} {'wall s':>8s} {'patients/s':>10s} "
            f"{'steps med':>10s} "
            f"{'steps max':>10s}  status 0/1/2/3   implicit"
        )
    for label, P in (("normal", pop.P), ("stiff", P_stiff)):
        for m in METHODS:
            t0 = time.perf_counter()
            res = run_batch(model, P, ev, t, method=m, max_steps=args.max_steps)
            wall = time.perf_counter() - t0
            row = {
                "population": label,
                "method": m,
                "wall_s": wall,
                "patients_per_s": args.patients / wall,
                "steps_median": float(np.median(res.steps)),
                "steps_max": int(res.steps.max()),
                "status_counts": np.bincount(res.status, minlength=4).tolist(),
                "implicit": int(np.count_nonzero(res.switched_at_h >= 0)),
            }
            out["runs"].append(row)
            if not args.json:
                sc_ = "/".join(str(c) for c in row["status_counts"])
                print(
                    f"{label:10s} {m:10s} {wall:8.2f} {row['patients_per_s']:10.1f} "
                    f"{row['steps_median']:10.0f} "
                    f"{row['steps_max']:10d}  {sc_:15s} {row['implicit']:8d}",
                    flush=True,
                )
    if args.json:
        print(json.dumps(out, indent=2))
    return out


if __name__ == "__main__":
    main()
