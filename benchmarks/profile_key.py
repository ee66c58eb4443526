"""Profile of the joint calibration objective along one calibrated key, the others at their tables.

A local fit (Gauss-Newton, or CMA-ES with a small step) can stop where a row moves in steps and
the gradient is near zero: ``lsr_rest_threshold`` stopped at LSR 9.4, inside the cluster of
peak LSRs at 9-12. A profile evaluates the same objective as ``imiqsim calibrate`` (binomial and
tolerance terms plus the weak prior; :meth:`imiqsim.calibrate.Problem.objective`) at each value,
with common random numbers, and lists the rows inside their CI.

Usage (from the repository root)::

    NUMBA_NUM_THREADS=1 PYTHONPATH=src .venv/bin/python benchmarks/profile_key.py \\
        lsr_rest_threshold 4.5 5 6 6.5 7 8 9.40623 --patients 300 --seed 2024

Research and teaching software, not a medical device.
"""

from __future__ import annotations

import argparse

from imiqsim.calibrate import Evaluator, Problem, current_values, evaluate, row_hit


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("key", help="a calibrated key (name or name@IND)")
    ap.add_argument("values", nargs="+", type=float, help="values of the key to evaluate")
    ap.add_argument("--patients", type=int, default=300)
    ap.add_argument("--seed", type=int, default=2024)
    ap.add_argument("--workers", type=int, default=2)
    args = ap.parse_args()

    problem = Problem.from_package()
    if args.key not in problem.keys:
        ap.error(f"key {args.key!r} is not calibrated; allowed: {', '.join(problem.keys)}")
    base = current_values(problem.params)
    thetas = [problem.to_theta({**base, args.key: v}) for v in args.values]
    with Evaluator(problem.simulator, workers=args.workers) as ev:
        results = evaluate(problem, thetas, args.patients, args.seed, ev)
    print(f"{args.key}: {args.patients} patients per arm, seed {args.seed}")
    for v, theta, res in zip(args.values, thetas, results, strict=True):
        sims = problem.row_values(res)
        hits = sum(bool(row_hit(r, problem.targets[r.id], sims[r.id])) for r in problem.rows)
        obj = problem.objective(sims, args.patients, theta)
        print(f"  {v:10.4g}  objective {obj:7.2f}  rows inside {hits}/{len(problem.rows)}")


if __name__ == "__main__":
    main()
