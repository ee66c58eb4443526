"""imiqsim's population engine vs libRoadRunner (and scipy) on the same model and population.

Usage (from the repository root, after `make demo` or `make test` created .venv):

    .venv/bin/python benchmarks/bench_vs_roadrunner.py                 # N = 1,000 and 10,000
    .venv/bin/python benchmarks/bench_vs_roadrunner.py --sizes 200     # quick look

For each N: the ak-5pct preset (16 weeks of treatment + 8 weeks to assessment), a virtual population
of N patients (seed 1) exported by SBML id, and the exported SBML model. imiqsim integrates all
patients with its compiled batched engine (2 threads); libRoadRunner integrates the exported SBML
patient by patient in 2 processes (CVODE Adams by default, ``--integrator bdf`` for its default
BDF; rtol 1e-6 like imiqsim, absolute tolerance 1e-8); each worker loads the model once, in an
untimed warm-up (loading compiles it with LLVM), as imiqsim's compile is untimed. BDF used to
stall at the first dose; the export's round-off event fixed that (see
imiqsim.export.sbml.NEGLIGIBLE_FRACTION). Both report the state at the assessment visit.
Printed: patients/second for both, the ratio, the maximum relative difference in final lesion
burden, the fraction of patients whose clearance classification (no visible lesion) agrees, and
scipy's solve_ivp per patient (LSODA, with the compiled right-hand side) as the naive baseline.
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import time

import numpy as np

RTOL = 1e-6
ATOL_RR = 1e-8


#: per worker process: the loaded model of each SBML text (loading compiles it with LLVM, 15-35 s
#: for this model), so the timed run reuses what the warm-up loaded, as imiqsim's timed run
#: reuses its compiled kernel
_LOADED: dict[int, object] = {}


def _rr_worker(args):
    sbml, params, names, t_end, n_points, stiff = args
    import roadrunner

    key = hash(sbml)
    if key not in _LOADED:
        _LOADED[key] = roadrunner.RoadRunner(sbml)
    rr = _LOADED[key]
    rr.setIntegrator("cvode")
    integ = rr.getIntegrator()
    integ.setValue("stiff", stiff)
    integ.setValue("relative_tolerance", RTOL)
    integ.setValue("absolute_tolerance", ATOL_RR)
    integ.setValue("maximum_time_step", 24.0)
    rr.timeCourseSelections = ["time", "lesion_burden", "visible_lesions"]
    out = np.full((params.shape[0], 2), np.nan)
    for i in range(params.shape[0]):
        rr.resetAll()
        for j, nm in enumerate(names):
            rr.setValue(nm, float(params[i, j]))
        rr.reset()  # re-evaluates initial assignments with this patient's parameters
        try:
            res = rr.simulate(0.0, t_end, n_points)
            out[i] = res[-1, 1], res[-1, 2]
        except Exception:  # noqa: BLE001 - a failed patient is reported as NaN
            pass
    return out


def bench(n: int, procs: int = 2, stiff: bool = False) -> dict:
    from imiqsim.engine.run import run_batch
    from imiqsim.export.population import population_table
    from imiqsim.export.sbml import to_sbml
    from imiqsim.model import get_model
    from imiqsim.population import sample_population
    from imiqsim.scenario import load_preset

    m = get_model()
    sc = load_preset("ak-5pct")
    ev = sc.events()
    t_end = sc.assessment_time_h()
    base = sc.model_parameters(m)
    pop = sample_population(base, sc.indication, n, 1, model=m)
    table = population_table(sc, n, 1)
    varied = [c for c in table.columns if c in m.parameter_names]
    sbml = to_sbml(m, base, ev, name="ak_5pct")

    # imiqsim (warm: compile cache already on disk after the first call)
    run_batch(m, pop.P[:2], ev, np.array([0.0, t_end]))
    t0 = time.perf_counter()
    res = run_batch(m, pop.P, ev, np.array([0.0, t_end]), rtol=RTOL)
    t_imiq = time.perf_counter() - t0
    lb_imiq = res.observables[:, -1, m.observable_index("lesion_burden")]
    vis_imiq = res.observables[:, -1, m.observable_index("visible_lesions")]

    # libRoadRunner, 2 processes
    chunks = np.array_split(np.arange(n), procs)
    params = table[varied].to_numpy()
    jobs = [(sbml, params[c], varied, t_end, 2, stiff) for c in chunks]
    ctx = mp.get_context("spawn")
    with ctx.Pool(procs) as pool:
        pool.map(
            _rr_worker, [(sbml, params[:1], varied, 24.0, 2, stiff)] * procs
        )  # load libraries in workers
        t0 = time.perf_counter()
        parts = pool.map(_rr_worker, jobs)
        t_rr = time.perf_counter() - t0
    rr = np.concatenate(parts)
    lb_rr, vis_rr = rr[:, 0], rr[:, 1]

    ok = np.isfinite(lb_rr)
    rel = np.abs(lb_imiq[ok] - lb_rr[ok]) / np.maximum(np.abs(lb_rr[ok]), 1.0)
    agree = np.mean((vis_imiq[ok] < 0.5) == (vis_rr[ok] < 0.5))

    # naive baseline: scipy solve_ivp per patient with the compiled RHS, on a few patients
    from scipy.integrate import solve_ivp

    from imiqsim.engine.codegen import compiled
    from imiqsim.engine.run import initial_states

    mod = compiled(m)
    n_sp = min(20, n)
    y0s = initial_states(m, pop.P[:n_sp])
    t0 = time.perf_counter()
    for i in range(n_sp):
        p = pop.P[i]
        y = y0s[i].copy()
        t = 0.0
        dy = np.empty_like(y)

        def f(tt, yy, p=p, dy=dy):
            mod.rhs(tt, yy, p, dy)
            return dy.copy()

        for te, kind, amt in zip(ev.times_h, ev.kinds, ev.amounts_mg, strict=True):
            if te > t:
                y = solve_ivp(f, (t, te), y, method="LSODA", rtol=RTOL, atol=1e-8).y[:, -1]
                t = te
            mod.event_effect(int(kind), y, p, float(amt))  # the model's own event (no gates here)
        solve_ivp(f, (t, t_end), y, method="LSODA", rtol=RTOL, atol=1e-8)
    t_sp = (time.perf_counter() - t0) / n_sp

    return {
        "n": n,
        "imiqsim_s": t_imiq,
        "imiqsim_patients_per_s": n / t_imiq,
        "roadrunner_s": t_rr,
        "roadrunner_patients_per_s": n / t_rr,
        "ratio": t_rr / t_imiq,
        "max_rel_diff_final_lesion_burden": float(rel.max()) if rel.size else float("nan"),
        "p99_rel_diff_final_lesion_burden": float(np.percentile(rel, 99))
        if rel.size
        else float("nan"),
        "fraction_within_1e-3": float(np.mean(rel <= 1e-3)) if rel.size else float("nan"),
        "clearance_agreement": float(agree),
        "roadrunner_failed": int((~ok).sum()),
        "imiqsim_median_steps": float(np.median(res.steps)),
        "scipy_solve_ivp_s_per_patient": t_sp,
        "scipy_patients_per_s": 1.0 / t_sp,
    }


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--sizes", type=int, nargs="+", default=[1000, 10000])
    ap.add_argument("--procs", type=int, default=2)
    ap.add_argument(
        "--integrator",
        choices=["adams", "bdf"],
        default="adams",
        help="libRoadRunner CVODE mode (BDF is its default; Adams was the faster here)",
    )
    args = ap.parse_args()
    print(
        f"machine: {os.cpu_count()} cores; imiqsim threads: "
        f"NUMBA_NUM_THREADS={os.environ.get('NUMBA_NUM_THREADS', 'default')}"
    )
    for n in args.sizes:
        r = bench(n, args.procs, stiff=args.integrator == "bdf")
        print(f"\nN = {n}")
        print(
            f"  imiqsim       {r['imiqsim_s']:8.2f} s   "
            f"{r['imiqsim_patients_per_s']:9.1f} patients/s"
        )
        print(
            f"  libRoadRunner {r['roadrunner_s']:8.2f} s   "
            f"{r['roadrunner_patients_per_s']:9.1f} patients/s"
            f"  ({args.procs} processes, CVODE {args.integrator}, {r['roadrunner_failed']} failed)"
        )
        print(f"  imiqsim median steps per patient   {r['imiqsim_median_steps']:.0f}")
        print(f"  ratio (imiqsim speed-up)           {r['ratio']:.1f}x")
        print(
            f"  scipy solve_ivp (LSODA)           "
            f"{r['scipy_patients_per_s']:9.1f} patients/s (1 process)"
        )
        print(
            f"  final lesion burden: max rel diff {r['max_rel_diff_final_lesion_burden']:.2e}, "
            f"99th pct {r['p99_rel_diff_final_lesion_burden']:.2e}, "
            f"within 1e-3: {r['fraction_within_1e-3']:.4f}"
        )
        print(f"  clearance classification agreement {r['clearance_agreement']:.4f}")


if __name__ == "__main__":
    main()
