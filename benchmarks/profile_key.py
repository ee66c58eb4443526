"""Profile of the joint calibration objective along one calibrated key, the others at their tables.

A local fit (Gauss-Newton, or CMA-ES with a small step) can stop where a row moves in steps and
the gradient is near zero: ``lsr_rest_threshold`` stopped at LSR 9.4, inside the cluster of
peak LSRs at 9-12. A profile evaluates the same objective as ``imiqsim calibrate`` (binomial and
tolerance terms plus the weak prior; :meth:`imiqsim.calibrate.Problem.objective`) at each value,
with common random numbers, and lists the rows inside their CI.

Usage (from the repository root)::

    NUMBA_NUM_THREADS=1 PYTHONPATH=src .venv/bin/python benchmarks/profile_key.py \\
        lsr_rest_threshold 4.5 5 6 6.5 7 8 9.40623 --patients 300 --seed 2024

``--sweep F`` instead steps every calibrated key on its own, up and down (x F and / F on a log
scale; +/- (F - 1) x the box width on a linear one; clipped to the box), and lists the keys
whose step lowers the objective, largest fall first: a screen for keys a local fit left on a
plateau (2 x 23 + 1 evaluations; about 20 min at 300 patients on 2 cores)::

    NUMBA_NUM_THREADS=1 PYTHONPATH=src .venv/bin/python benchmarks/profile_key.py \\
        --sweep 1.5 --patients 300 --seed 2024

Research and teaching software, not a medical device.
"""

from __future__ import annotations

import argparse

from imiqsim.calibrate import Evaluator, Problem, current_values, evaluate, row_hit


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("key", nargs="?", help="a calibrated key (name or name@IND)")
    ap.add_argument("values", nargs="*", type=float, help="values of the key to evaluate")
    ap.add_argument("--sweep", type=float, metavar="F", help="step every key by F (> 1) instead")
    ap.add_argument("--patients", type=int, default=300)
    ap.add_argument("--seed", type=int, default=2024)
    ap.add_argument("--workers", type=int, default=2)
    args = ap.parse_args()

    problem = Problem.from_package()
    base = current_values(problem.params)
    if args.sweep is not None:
        if args.key is not None:
            ap.error("give either KEY VALUES... or --sweep F, not both")
        if not args.sweep > 1:
            ap.error(f"--sweep: got {args.sweep}; a factor above 1 (e.g. 1.5)")
        sweep(problem, base, args)
        return
    if args.key not in problem.keys:
        ap.error(f"key {args.key!r} is not calibrated; allowed: {', '.join(problem.keys)}")
    if not args.values:
        ap.error(f"give the values of {args.key} to evaluate")
    thetas = [problem.to_theta({**base, args.key: v}) for v in args.values]
    with Evaluator(problem.simulator, workers=args.workers) as ev:
        results = evaluate(problem, thetas, args.patients, args.seed, ev)
    print(f"{args.key}: {args.patients} patients per arm, seed {args.seed}")
    for v, theta, res in zip(args.values, thetas, results, strict=True):
        obj, hits = score(problem, theta, res, args.patients)
        print(f"  {v:10.4g}  objective {obj:7.2f}  rows inside {hits}/{len(problem.rows)}")


def score(problem: Problem, theta, arm_results: dict, patients: int) -> tuple[float, int]:
    """The fit's objective at ``theta`` and how many rows are inside their CI or tolerance."""
    sims = problem.row_values(arm_results)
    hits = sum(bool(row_hit(r, problem.targets[r.id], sims[r.id])) for r in problem.rows)
    return problem.objective(sims, patients, theta), hits


def sweep(problem: Problem, base: dict[str, float], args: argparse.Namespace) -> None:
    """Every key stepped alone, up and down; the steps that lower the objective, best first."""
    import numpy as np

    theta0 = problem.to_theta(base)
    lo, hi = problem.theta_bounds()
    step = np.array(
        [
            np.log(args.sweep) if p.log_scale else (args.sweep - 1) * (top - bottom)
            for p, bottom, top in zip(problem.params, lo, hi, strict=True)
        ]
    )
    moves = [(k, s) for k in range(len(theta0)) for s in (+1, -1)]
    thetas = [theta0]
    for k, s in moves:
        th = theta0.copy()
        th[k] = float(np.clip(th[k] + s * step[k], lo[k], hi[k]))
        thetas.append(th)
    with Evaluator(problem.simulator, workers=args.workers) as ev:
        results = evaluate(problem, thetas, args.patients, args.seed, ev)

    f0, h0 = score(problem, thetas[0], results[0], args.patients)
    print(f"sweep x/÷{args.sweep:g}: {args.patients} patients per arm, seed {args.seed}")
    print(f"  tables: objective {f0:7.2f}  rows inside {h0}/{len(problem.rows)}")
    out = []
    for (k, _sign), theta, res in zip(moves, thetas[1:], results[1:], strict=True):
        f, h = score(problem, theta, res, args.patients)
        out.append((f - f0, problem.keys[k], problem.params[k].from_theta(theta[k]), f, h))
    for d, key, v, f, h in sorted(out):
        print(f"  {key:36s} -> {v:10.4g}  objective {f:7.2f} ({d:+6.2f})  rows inside {h}")


if __name__ == "__main__":
    main()
