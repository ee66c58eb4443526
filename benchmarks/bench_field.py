"""Wall time of the spatial field model (imiqsim.spatial) at several grid resolutions.

Usage (from the repository root, with .venv):

    .venv/bin/python benchmarks/bench_field.py                  # 1, 0.5, 0.25 mm; whole-field cream
    .venv/bin/python benchmarks/bench_field.py --quick          # 2.5 and 1 mm, and cream on the
                                                                # visible lesions at 2.5 mm (~30 s)
    .venv/bin/python benchmarks/bench_field.py --resolutions 1 0.25
    .venv/bin/python benchmarks/bench_field.py --lesion-directed
        # also: cream on visible lesions only (lateral gradients; group_tol 1 and 100)
    .venv/bin/python benchmarks/bench_field.py --reference 2.5
        # also: grouping off (every site integrated), and the accuracy of grouping
    NUMBA_NUM_THREADS=2 .venv/bin/python benchmarks/bench_field.py   # the issue's "2 cores"

Scenario: ak-5pct (25 cm2 AK field, 5% cream 2x/week for 16 weeks, assessed 8 weeks after the
last dose), typical patient (5 visible, 3 subclinical lesions, 2 slots for new lesions) placed
with seed 0, and ``--followup-days`` (default 365) after the assessment visit: 24 weeks + 12
months simulated. Target (issue 4): 0.25 mm (200 x 200 = 40,000 sites) in under 2 minutes on 2
cores.

Printed per run: grid, sites, wall time (the first, compiling run is reported apart), CPU time
of the process (all threads; steadier than wall time on a shared machine), coupling
steps, distinct site groups integrated per step (mean/max), integrator steps, and the lesion
outcome. With ``--reference R`` the grid at R mm is also run with grouping off
(``group_tol=None``: every site integrated) and the largest relative difference in the
per-lesion cells and the maps is printed.
"""

from __future__ import annotations

import argparse
import os
import shlex
import sys
import time


def _row(label, res, wall, cpu):
    i = res.info
    les = res.lesions
    vis = les[les["visible_baseline"]]
    cleared = int(vis["cleared_at_assessment"].fillna(False).astype(bool).sum())
    print(
        f"  {label:<24} {i['ny']:>4} x {i['nx']:<4} {i['n_sites']:>8,}  {wall:8.1f} s"
        f"  {cpu:8.1f} s"
        f"  {i['coupling_steps']:>6}  {i['mean_groups_per_step']:>8.1f} / "
        f"{i['max_groups_per_step']:<6}  {i['integrator_steps']:>7}"
        f"   {cleared}/{len(vis)} visible cleared",
        flush=True,
    )


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--resolutions", type=float, nargs="+", default=[1.0, 0.5, 0.25])
    ap.add_argument("--followup-days", type=float, default=365.0)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument(
        "--lesion-directed",
        action="store_true",
        help="also run cream on the visible lesions (+5 mm) only: lateral gradients, many groups",
    )
    ap.add_argument("--lesion-directed-resolutions", type=float, nargs="+", default=[2.5, 1.0])
    ap.add_argument(
        "--lesion-directed-tols",
        type=float,
        nargs="+",
        default=[1.0, 100.0],
        help="group_tol values for the lesion-directed runs (1: below the integrator tolerance)",
    )
    ap.add_argument(
        "--reference",
        type=float,
        default=None,
        metavar="MM",
        help="also run this resolution with grouping off and compare",
    )
    ap.add_argument(
        "--quick",
        action="store_true",
        help="a short check: 2.5 and 1 mm whole field, and lesion-directed at 2.5 mm (tol 1)",
    )
    args = ap.parse_args(argv)
    if args.quick:
        args.resolutions = [2.5, 1.0]
        args.lesion_directed = True
        args.lesion_directed_resolutions = [2.5]
        args.lesion_directed_tols = [1.0]

    import numba
    import numpy as np

    from imiqsim.spatial import FieldSpec, simulate_field
    from imiqsim.vocabulary import DISCLAIMER_SHORT

    print("command:", shlex.join([os.path.basename(sys.executable), *sys.argv]))
    print(
        f"numba threads: {numba.get_num_threads()}  cpus: {os.cpu_count()}  load average: "
        f"{', '.join(f'{x:.2f}' for x in os.getloadavg())}"
    )
    t0 = time.perf_counter()
    simulate_field(FieldSpec("ak-5pct", resolution_mm=10.0, days=2))
    print(f"first call (imports, Numba compile or cache load): {time.perf_counter() - t0:.1f} s")
    head = (
        f"  {'case':<24} {'grid':>11} {'sites':>8}  {'wall':>10}  {'cpu':>10}  {'steps':>6}"
        f"  {'groups mean / max':>17}  {'integ.':>7}   lesions"
    )
    print(head)

    def run(label, **kw):
        spec = FieldSpec("ak-5pct", seed=args.seed, followup_days=args.followup_days, **kw)
        t, c = time.perf_counter(), time.process_time()
        res = simulate_field(spec)
        wall, cpu = time.perf_counter() - t, time.process_time() - c
        _row(label, res, wall, cpu)
        return res

    for r in args.resolutions:
        run(f"whole field {r:g} mm", resolution_mm=r)
    if args.lesion_directed:
        for r in args.lesion_directed_resolutions:
            for tol in args.lesion_directed_tols:
                run(
                    f"lesions {r:g} mm tol {tol:g}",
                    resolution_mm=r,
                    application="lesions",
                    group_tol=tol,
                )
    if args.reference is not None:
        r = args.reference
        for app in ("field", "lesions"):
            a = run(f"{app} {r:g} mm grouped", resolution_mm=r, application=app)
            b = run(f"{app} {r:g} mm every site", resolution_mm=r, application=app, group_tol=None)
            la, lb = a.timecourses["lesion_cells"].values, b.timecourses["lesion_cells"].values
            d_les = float(np.max(np.abs(la - lb) / np.maximum(np.abs(lb), 1.0)))
            d_map = max(
                float(
                    np.max(np.abs(a.maps[v].values - b.maps[v].values))
                    / max(float(np.abs(b.maps[v].values).max()), 1e-12)
                )
                for v in ("erythema_score", "immune_infiltrate", "skin_conc_ug_ml")
            )
            print(
                f"    grouping error ({app}): lesion cells {d_les:.2e} (relative, floor 1 cell), "
                f"maps {d_map:.2e} (relative to the map maximum)"
            )
    print(DISCLAIMER_SHORT)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
