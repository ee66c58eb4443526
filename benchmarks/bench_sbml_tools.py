"""Every preset's exported SBML in libRoadRunner (BDF and Adams defaults), COPASI and Tellurium.

Usage (from the repository root):

    .venv/bin/python benchmarks/bench_sbml_tools.py                      # all presets, 4 patients
    .venv/bin/python benchmarks/bench_sbml_tools.py --presets ak-5pct --patients 0
    .venv/bin/python benchmarks/bench_sbml_tools.py --tools roadrunner roadrunner-adams

For each preset: the nominal patient and ``--patients`` virtual patients (seed 1), each exported
as its own SBML document (``to_sbml(model, P[i], events)``), run to the assessment visit in each
tool with its default settings, output every 6 h (between events), compared with imiqsim's engine
at rtol 1e-9 on lesion burden, the local cytokines, LSR and serum drug
(:mod:`imiqsim.export.crosscheck`: relative, absolute floor 1e-9 of each variable's scale).
Printed per run: wall time (simulation only, the model already loaded), the worst relative
difference and the variable; then failures, runs over 1e-4, and the BDF/Adams time ratio.
"""

from __future__ import annotations

import argparse
import time

import numpy as np

TOOLS = ("roadrunner", "roadrunner-adams", "copasi", "tellurium")


def _run(tool: str, sbml: str, times: np.ndarray, names: tuple[str, ...]):
    from imiqsim.export import crosscheck

    if tool == "roadrunner-adams":
        return crosscheck.run_roadrunner(sbml, times, names, stiff=False)
    return crosscheck.RUNNERS[tool](sbml, times, names)


def main() -> None:
    from imiqsim.export.crosscheck import COMPARED, compare, reference
    from imiqsim.export.sbml import to_sbml
    from imiqsim.model import get_model
    from imiqsim.population import sample_population
    from imiqsim.scenario import list_presets, resolve

    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--presets", nargs="+", default=None)
    ap.add_argument("--patients", type=int, default=4)
    ap.add_argument("--tools", nargs="+", default=list(TOOLS), choices=TOOLS)
    ap.add_argument("--step-hours", type=float, default=6.0)
    args = ap.parse_args()
    m = get_model()
    presets = args.presets or list_presets()
    rows = []
    for preset in presets:
        sc = resolve(preset)
        ev = sc.events()
        base = sc.model_parameters(m)
        times = np.arange(0.5, sc.assessment_time_h(), args.step_hours)
        pats = [("nominal", base)]
        if args.patients:
            pop = sample_population(base, sc.indication, args.patients, 1, model=m)
            pats += [(f"patient {i}", pop.P[i]) for i in range(args.patients)]
        for label, p in pats:
            sbml = to_sbml(m, p, ev, name=preset)
            ref = reference(m, p, ev, times, COMPARED)
            for tool in args.tools:
                t0 = time.perf_counter()
                try:
                    got = _run(tool, sbml, times, COMPARED)
                    d = compare(m, got, ref)
                    worst = max(d, key=lambda k: d[k])
                    rows.append((preset, label, tool, time.perf_counter() - t0, d[worst], worst))
                except Exception as exc:  # noqa: BLE001 - a failed run is reported, not fatal
                    rows.append((preset, label, tool, time.perf_counter() - t0, np.inf, str(exc)))
                r = rows[-1]
                print(f"{r[0]:20s} {r[1]:10s} {r[2]:17s} {r[3]:7.1f} s  {r[4]:.2e}  {r[5][:60]}")
    print()
    for tool in args.tools:
        sel = [r for r in rows if r[2] == tool]
        failed = sum(not np.isfinite(r[4]) for r in sel)
        over = sum(np.isfinite(r[4]) and r[4] >= 1e-4 for r in sel)
        worst = max((r[4] for r in sel if np.isfinite(r[4])), default=float("nan"))
        print(
            f"{tool:17s} runs {len(sel):3d}  failed {failed:3d}  over 1e-4 {over:3d}  "
            f"worst {worst:.2e}  median time {np.median([r[3] for r in sel]):.1f} s "
            "(load + simulate)"
        )
    if {"roadrunner", "roadrunner-adams"} <= set(args.tools):
        bdf = sum(r[3] for r in rows if r[2] == "roadrunner")
        adams = sum(r[3] for r in rows if r[2] == "roadrunner-adams")
        print(f"libRoadRunner BDF / Adams total time: {bdf / adams:.2f}")


if __name__ == "__main__":
    main()
