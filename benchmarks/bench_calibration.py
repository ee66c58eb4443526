"""Cost of the joint calibration (issue 10, part 6: the full fit within 60 minutes on 2 cores).

    python benchmarks/bench_calibration.py                 # CPU seconds per arm, fit estimate
    python benchmarks/bench_calibration.py --patients 100 300 --stages 100:18,300:2

Measures the CPU time of one evaluation (every arm of data/calibration_arms.csv simulated once
at the current tables) at each patient count, in this process (``time.process_time``: robust to
other jobs sharing the machine; the wall time and load average are printed next to it), and
estimates the wall time of ``imiqsim calibrate`` on 2 unloaded cores:

    CMA-ES: sum over stages of generations x popsize x evaluation(patients) / workers
    Jacobian: (1 + global parameters) x evaluation(last stage) + per indication parameter its arms

The full fit itself is ``imiqsim calibrate --write`` (checkpointed; ``--resume`` continues).
"""

from __future__ import annotations

import argparse
import math
import os
import time


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--patients", type=int, nargs="+", default=[100, 300])
    ap.add_argument("--stages", default="100:18,300:2")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--seed", type=int, default=2024)
    args = ap.parse_args()

    from imiqsim.calibrate import Problem, current_values
    from imiqsim.calibration_cli import parse_stages

    p = Problem.from_package()
    values = current_values(p.params)
    stages = parse_stages(args.stages)
    arms = p.arms_of()
    cost: dict[int, dict[str, float]] = {}
    p.simulator.run_arm(arms[0], values, 5, args.seed)  # load the compiled kernels once
    for n in sorted(set(args.patients) | {s[0] for s in stages}):
        c0, w0 = time.process_time(), time.perf_counter()
        cost[n] = {}
        for a in arms:
            c = time.process_time()
            p.simulator.run_arm(a, values, n, args.seed)
            cost[n][a] = time.process_time() - c
        cpu, wall = time.process_time() - c0, time.perf_counter() - w0
        print(
            f"{n:5d} patients/arm: one evaluation ({len(arms)} arms) {cpu:6.1f} CPU s "
            f"({wall:.1f} s wall, load {os.getloadavg()[0]:.1f})",
            flush=True,
        )
    slow = sorted(cost[max(cost)].items(), key=lambda kv: -kv[1])[:4]
    print("dearest arms at", max(cost), "patients:", ", ".join(f"{a} {s:.1f} s" for a, s in slow))
    lam = 4 + int(3 * math.log(len(p.params)))
    cma = sum(g * lam * sum(cost[n].values()) for n, g in stages) / args.workers
    last = stages[-1][0]
    jac = sum(cost[last].values())
    for k in p.keys:
        jac += sum(cost[last][a] for a in arms if p.simulator.depends(a, k))
    jac /= args.workers
    print(
        f"estimate for `imiqsim calibrate --stages {args.stages}` on {args.workers} unloaded "
        f"cores: CMA-ES {cma / 60:.1f} min ({lam} candidates per generation) + Jacobian "
        f"{jac / 60:.1f} min = {(cma + jac) / 60:.1f} min"
    )


if __name__ == "__main__":
    main()
