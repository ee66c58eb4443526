"""Runtimes of the analysis tools (issue 13 targets) and the README figures.

Targets on 2 cores: Morris over all parameters with 100 patients per point in under 30 minutes;
a 2-D scan of ak-5pct over 10 x 10 points x 500 patients in under 5 minutes; the optimiser in
under 30 minutes.

    python benchmarks/bench_analysis.py --full            # the three headline runs
    python benchmarks/bench_analysis.py --figures docs    # smaller runs -> docs/analysis_*.png
    python benchmarks/bench_analysis.py --only scan --full             # 10 x 10 x 500 alone
    python benchmarks/bench_analysis.py --only scan --grid 10 --patients 50 --workers 2
                                                          # scaled down, a pool of 2 processes

Every run prints its wall time, the CPU time of this process and its workers, how many cores
that kept busy on average, points and patients per second, and the load average (the machine
is often shared: say how loaded it was next to any figure you quote). CPU time per patient is
the figure that survives a loaded machine; wall time on a quiet one is about CPU / cores.
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import tempfile
import time
from pathlib import Path

from imiqsim.analysis.optimise import optimise
from imiqsim.analysis.scan import scan
from imiqsim.analysis.sensitivity import sensitivity


def _cpu() -> float:
    """CPU seconds of this process and of its finished worker processes."""
    me = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    return me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime


_CPU0 = [0.0]


def _start() -> float:
    _CPU0[0] = _cpu()
    return time.perf_counter()


def _report(label: str, t0: float, patients: int) -> None:
    dt = time.perf_counter() - t0
    cpu = _cpu() - _CPU0[0]
    load = os.getloadavg()
    print(
        f"{label}: {dt:.1f} s ({dt / 60:.1f} min), {patients} patients, "
        f"{patients / dt:.0f} patients/s; CPU {cpu:.1f} s ({1000 * cpu / patients:.2f} ms a "
        f"patient, {cpu / dt:.2f} cores busy); load average "
        f"{load[0]:.1f} {load[1]:.1f} {load[2]:.1f}",
        flush=True,
    )


def morris_all(patients: int, n: int, out: Path | None) -> None:
    t0 = _start()
    res = sensitivity(
        "ak-5pct",
        method="morris",
        outputs=["complete_clearance", "severe_erythema", "lsr_max"],
        n=n,
        patients=patients,
        seed=1,
    )
    pts = int(res.dataset.attrs["points"])
    _report(
        f"Morris, {res.dataset.sizes['parameter']} parameters, {pts} points", t0, pts * patients
    )
    print(res.table().groupby("output").head(8).to_string(index=False))
    print(res.convergence().to_string(index=False))
    if out is not None:
        _keep(res.write, out, {"sensitivity.png": "analysis_morris.png"})


def sensitivity_over_time(patients: int, n: int, out: Path | None) -> None:
    params = [
        "tlr7_ec50_ug_ml",
        "kp_cream_cm_h",
        "skin_unbound_fraction",
        "k_tolerance_on",
        "q_ifn_alpha_pdc",
        "q_tnf_alpha_macrophage",
        "k_nk_kill",
        "k_ctl_kill",
        "k_t_priming",
        "erythema_half",
        "lesion_immune_susceptibility",
        "lesion_growth_rate",
    ]
    t0 = _start()
    res = sensitivity(
        "ak-5pct",
        method="morris",
        parameters=params,
        outputs=["complete_clearance", "lsr_max"],
        trajectories=["lesion_burden", "ifn_alpha", "lsr_score"],
        n=n,
        patients=patients,
        seed=1,
    )
    pts = int(res.dataset.attrs["points"])
    _report(f"Morris over time, {len(params)} parameters, {pts} points", t0, pts * patients)
    if out is not None:
        _keep(res.write, out, {"sensitivity_over_time.png": "analysis_sensitivity_time.png"})


def scan_2d(specs: list[str], patients: int, out: Path | None, workers: int | None) -> None:
    _warm()
    t0 = _start()
    res = scan(
        "ak-5pct",
        specs,
        outputs=["complete_clearance", "severe_erythema"],
        patients=patients,
        seed=1,
        workers=workers,
    )
    n_pts = int(res.dataset["regimen"].size)
    _report(f"2-D scan {res.factors}, {n_pts} points", t0, n_pts * patients)
    if out is not None:
        _keep(res.write, out, {"scan.png": "analysis_scan.png"})


def optimiser(trials: int, patients: int, validate: int, out: Path | None) -> None:
    t0 = _start()
    res = optimise(
        "AK",
        objective="complete_clearance",
        limits=["severe_erythema<=0.2", "rest_needed<=0.25"],
        space=["applications_per_week=2..7", "weeks=4..16", "strength=2.5,3.75,5"],
        n_trials=trials,
        patients=patients,
        validate_patients=validate,
        seed=1,
    )
    _report(
        f"optimiser, {trials} candidates, front of {len(res.front)}",
        t0,
        trials * patients + (len(res.front) + 1) * validate,
    )
    print(res.report())
    if out is not None:
        _keep(res.write, out, {"front.png": "analysis_front.png"})


def _warm() -> None:
    """Compile (or load) the kernels here first, so a timing does not include it."""
    from imiqsim.trial import run_trial

    run_trial(["ak-5pct"], patients=2, seed=1, followup_years=0.0)


def _keep(write, out: Path, names: dict[str, str]) -> None:
    with tempfile.TemporaryDirectory() as d:
        write(Path(d))
        out.mkdir(parents=True, exist_ok=True)
        for src, dst in names.items():
            shutil.copy(Path(d) / src, out / dst)
            print(f"wrote {out / dst}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--full", action="store_true", help="the headline sizes of the issue")
    ap.add_argument("--figures", type=Path, default=None, help="write docs figures here")
    ap.add_argument("--only", choices=["morris", "time", "scan", "optimise"], default=None)
    ap.add_argument(
        "--grid", type=int, default=None, help="scan: K x K points of the --full factors"
    )
    ap.add_argument("--patients", type=int, default=None, help="scan: patients per point")
    ap.add_argument(
        "--workers", type=int, default=1, help="scan: processes (1: this process, threads)"
    )
    a = ap.parse_args()
    k = a.grid or (10 if a.full else None)
    scan_specs = (
        [f"tlr7_ec50_ug_ml=0.5:8:{k}", f"weeks=4:16:{k}"]
        if k
        else ["applications_per_week=2:7:6", "weeks=4:16:4"]
    )
    jobs = {
        "morris": lambda: morris_all(100 if a.full else 20, 4 if a.full else 2, a.figures),
        "time": lambda: sensitivity_over_time(100 if a.full else 30, 4, a.figures),
        "scan": lambda: scan_2d(
            scan_specs, a.patients or (500 if a.full else 100), a.figures, a.workers
        ),
        "optimise": lambda: optimiser(
            40 if a.full else 30, 100 if a.full else 60, 500 if a.full else 200, a.figures
        ),
    }
    for name, job in jobs.items():
        if a.only in (None, name):
            job()


if __name__ == "__main__":
    main()
