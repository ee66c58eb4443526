"""Command-line glue of the joint calibration and the cross-validation.

``register(app)`` adds ``imiqsim calibrate`` (the joint CMA-ES fit, its Jacobian and Laplace
posterior; replaces an earlier ``calibrate`` command of the app) and ``imiqsim validate``
(leave-one-trial-out cross-validation, :mod:`imiqsim.cv`). User errors raise
:class:`~imiqsim.errors.InputError` (the app's ``main`` turns them into exit code 2).
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import typer

from imiqsim.errors import InputError

__all__ = [
    "UNCERTAINTY_HELP",
    "calibrate_command",
    "check_uncertainty",
    "parse_fixed",
    "parse_stages",
    "register",
    "validate_command",
]

#: help text of ``--uncertainty`` on ``imiqsim trial`` and ``imiqsim compare``
UNCERTAINTY_HELP = (
    "Parameter draws from the calibration's posterior (data/posterior.json): 0 uses the "
    "calibrated values; K >= 2 splits the patients across K draws and widens the 95% CIs by "
    "the parameter uncertainty."
)


def check_uncertainty(uncertainty: int, patients: int, streamed: bool = False) -> int:
    """Validate ``--uncertainty`` (0, or 2 to 200 draws, at most one per patient; not streamed).

    Examples
    --------
    >>> check_uncertainty(0, 100), check_uncertainty(8, 100)
    (0, 8)
    """
    if uncertainty == 0:
        return 0
    if not 2 <= uncertainty <= 200:
        raise InputError("--uncertainty", uncertainty, "0, or 2 to 200 parameter draws")
    if uncertainty > patients:
        raise InputError(
            "--uncertainty", uncertainty, f"at most one draw per patient (--patients {patients})"
        )
    if streamed:
        raise InputError(
            "--uncertainty", uncertainty, "0 for streamed runs (--stream, --resume, --scheduler)"
        )
    return uncertainty


def parse_stages(text: str) -> tuple[tuple[int, int], ...]:
    """``"100:24,300:6"`` -> ``((100, 24), (300, 6))`` (patients per arm : generations).

    Examples
    --------
    >>> parse_stages("100:24, 300:6")
    ((100, 24), (300, 6))
    """
    out = []
    for part in text.split(","):
        bits = part.strip().split(":")
        try:
            if len(bits) != 2:
                raise ValueError
            pts, gens = int(bits[0]), int(bits[1])
        except ValueError:
            raise InputError(
                "--stages",
                text,
                "PATIENTS:GENERATIONS pairs separated by commas, e.g. 100:24,300:6",
            ) from None
        if pts < 10 or pts > 100_000 or gens < 1 or gens > 1000:
            raise InputError(
                "--stages", part.strip(), "patients 10 to 100,000 and generations 1 to 1,000"
            )
        out.append((pts, gens))
    return tuple(out)


def parse_fixed(items: list[str]) -> dict[str, float]:
    """Repeated ``--fix NAME=VALUE`` (or ``NAME@IND=VALUE``): parsed and bounds-checked as
    ``--set`` is (:func:`imiqsim.cli.parse_set`), plus the indication of ``@IND``.

    Examples
    --------
    >>> parse_fixed(["skin_unbound_fraction=0.02", "baseline_surveillance@AK=0.001"])
    {'skin_unbound_fraction': 0.02, 'baseline_surveillance@AK': 0.001}
    """
    from imiqsim.cli import parse_set
    from imiqsim.model import get_model

    indications = get_model().indication_parameters
    out: dict[str, float] = {}
    for item in items:
        name, sep, text = item.partition("=")
        base, _, ind = name.strip().partition("@")
        if ind and ind not in indications:
            raise InputError(
                "--fix", name.strip(), f"NAME@IND, IND one of {', '.join(indications)}"
            )
        key = f"{base}@{ind}" if ind else base
        if key in out:
            raise InputError(f"--fix {key}", text, "each parameter may be held only once")
        out[key] = parse_set([f"{base}{sep}{text}"], flag="--fix")[base]
    return out


def _bar(label: str):
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    prog = Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        TextColumn("{task.fields[msg]}"),
        console=Console(stderr=True),
    )
    task = prog.add_task(label, total=None, msg="")

    def cb(done: int, total: int, msg: str) -> None:
        prog.update(task, completed=done, total=total, msg=msg[-70:])

    return prog, cb


def calibrate_command(
    stages: str = typer.Option(
        "100:18,300:2",
        "--stages",
        help="Virtual patients per arm : most CMA-ES generations, per stage, in order.",
    ),
    seed: int = typer.Option(2024, "--seed", help="Seed of the calibration population (CRN)."),
    budget_minutes: float = typer.Option(
        50.0, "--budget-minutes", help="Wall-clock budget of the CMA-ES fit, all sessions together."
    ),
    workers: int = typer.Option(2, "--workers", help="Processes simulating arms."),
    popsize: int = typer.Option(0, "--popsize", help="CMA-ES candidates per generation (0: auto)."),
    sigma0: float = typer.Option(0.1, "--sigma0", help="Initial step on the unit-scaled box."),
    jacobian_patients: int = typer.Option(
        0, "--jacobian-patients", help="Patients per arm of the Jacobian (0: the last stage's)."
    ),
    checkpoint_dir: Path = typer.Option(
        Path("out/calibration"), "--checkpoint-dir", help="Checkpoints and the result JSON."
    ),
    resume: bool = typer.Option(False, "--resume", help="Continue from the checkpoints."),
    gauss_newton_step: float = typer.Option(
        0.0,
        "--gauss-newton-step",
        help="After the fit (with --posterior-only: from the tables): this fraction (0 to 1; "
        "0 none) of a Gauss-Newton step on the Jacobian, kept only if the simulated objective "
        "falls.",
    ),
    posterior_only: bool = typer.Option(
        False,
        "--posterior-only",
        help="Skip the fit: Jacobian and Laplace posterior at the current table values.",
    ),
    write: bool = typer.Option(
        False,
        "--write",
        help="Write the fitted values (with provenance) into the parameter tables and the "
        "posterior into data/posterior.json (with --posterior-only: the posterior only, and the "
        "stepped values if a --gauss-newton-step was kept; with --only: the fitted values "
        "only).",
    ),
    only: str = typer.Option(
        "",
        "--only",
        help="Block fit: fit only these calibrated keys (comma-separated, e.g. "
        "erythema_half,lesion_immune_susceptibility@AK); the others keep their table values.",
    ),
    fix: list[str] = typer.Option(
        [],
        "--fix",
        help="NAME=VALUE held in every arm during the fit (any model parameter, or name@IND; "
        "repeatable), for screening a structure; not written.",
    ),
):
    """Fit every calibrated parameter jointly against every published row (CMA-ES; slow)."""
    from importlib import resources

    from imiqsim import calibrate as cal

    st = parse_stages(stages)
    if not 0 < budget_minutes <= 24 * 60:
        raise InputError("--budget-minutes", budget_minutes, "more than 0 and at most 1440")
    if not 1 <= workers <= 64:
        raise InputError("--workers", workers, "a whole number from 1 to 64")
    if popsize and not 4 <= popsize <= 200:
        raise InputError("--popsize", popsize, "0 (automatic) or 4 to 200")
    if not 0 < sigma0 <= 0.5:
        raise InputError("--sigma0", sigma0, "more than 0 and at most 0.5")
    if not 0 <= gauss_newton_step <= 1:
        raise InputError("--gauss-newton-step", gauss_newton_step, "from 0 (none) to 1")
    if jacobian_patients and jacobian_patients < 10:
        raise InputError("--jacobian-patients", jacobian_patients, "0 or at least 10")
    if resume and not posterior_only and not (checkpoint_dir / "fit_checkpoint.json").exists():
        raise InputError(
            "--resume", str(checkpoint_dir / "fit_checkpoint.json"), "an existing fit checkpoint"
        )
    keys = [k.strip() for k in only.split(",") if k.strip()] or None
    fixed = parse_fixed(fix)
    if posterior_only and (keys or fixed):
        raise InputError(
            "--posterior-only", "with --only/--fix", "alone: the posterior covers every key"
        )
    if write and fixed:
        raise InputError(
            "--write",
            "with --fix",
            "without --fix: values fitted under held values that are "
            "not in the tables would not reproduce",
        )
    problem = cal.Problem.from_package().restricted(keys, fixed)
    command = (
        f"imiqsim calibrate --stages {stages.replace(' ', '')} --seed {seed} "
        f"--budget-minutes {budget_minutes:g} --workers {workers}"
        + (f" --gauss-newton-step {gauss_newton_step:g}" if gauss_newton_step else "")
        + (f" --only {','.join(keys)}" if keys else "")
        + "".join(f" --fix {k}={v:g}" for k, v in fixed.items())
    )
    run = cal.CalibrationRun(
        stages=st,
        seed=seed,
        budget_s=budget_minutes * 60.0,
        workers=workers,
        sigma0=sigma0,
        popsize=popsize or None,
        jacobian_patients=jacobian_patients or None,
        checkpoint_dir=checkpoint_dir,
        resume=resume,
        gauss_newton_step=gauss_newton_step,
    )
    if posterior_only:
        jp = jacobian_patients or st[-1][0]
        command = f"imiqsim calibrate --posterior-only --jacobian-patients {jp} --seed {seed}" + (
            f" --gauss-newton-step {gauss_newton_step:g}" if gauss_newton_step else ""
        )
    prog, cb = _bar("calibrating")
    t0 = time.monotonic()
    with prog:
        if posterior_only:
            res = cal.posterior_at_tables(run, progress=cb, command=command)
        else:
            res = cal.calibrate(run, problem=problem, progress=cb, command=command)
    wall = time.monotonic() - t0
    res["wall_s_this_session"] = wall
    out = checkpoint_dir / "calibration_result.json"
    out.write_text(json.dumps(res, indent=1))
    typer.echo(
        f"objective {res['objective']:.3f} ({res['rows_patients']} patients/arm); "
        f"{sum(1 for h in res['hits'].values() if h)} of "
        f"{len(res['hits'])} rows inside their tolerance; {res['evaluations']} evaluations; "
        f"fit {res['fit_s'] / 60:.1f} min + Jacobian {res['jacobian_s'] / 60:.1f} min "
        f"this session"
    )
    for iv in res["posterior"]["intervals"]:
        typer.echo(
            f"  {iv['key']:34s} {iv['value']:<10.4g} 95% {iv['ci95'][0]:.3g}-{iv['ci95'][1]:.3g}"
        )
    if res.get("gauss_newton"):
        g = res["gauss_newton"]
        typer.echo(
            f"Gauss-Newton step x{g['weight']:g}: objective {g['objective_before']:.3f} -> "
            f"{g['objective_after']:.3f} ({'kept' if g['kept'] else 'not kept'})"
        )
    typer.echo(f"wrote {out}")
    if write:
        model_dir = Path(str(resources.files("imiqsim.model")))
        stepped = bool(res.get("gauss_newton", {}).get("kept"))
        # --posterior-only keeps the tables (and their provenance) unless its step was kept
        if not posterior_only or stepped:
            changed = cal.write_values(
                res["values"], model_dir, command, problem.params, block=keys is not None
            )
            typer.echo(f"updated {len(changed)} parameters in {model_dir}")
        if keys is not None:
            typer.echo(
                "data/posterior.json not updated (a block fit's posterior covers only its keys): "
                "run `imiqsim calibrate --posterior-only --write` for the tables as they are now"
            )
            return
        import numpy as np

        path = cal.write_posterior(
            cal.posterior_path(),
            problem,
            np.asarray(res["posterior"]["theta"]),
            np.asarray(res["posterior"]["cov"]),
            res["jacobian"],
            command,
            {"objective": res["objective"], "evaluations": res["evaluations"]},
        )
        typer.echo(f"wrote {path}")


def validate_command(
    out: Path = typer.Option(Path("docs"), "--out", help="Where validation.md and the plot go."),
    patients: int = typer.Option(400, "--patients", "-n", help="Virtual patients per arm."),
    seed: int = typer.Option(11, "--seed", help="Seed (not the fitting seed)."),
    workers: int = typer.Option(2, "--workers", help="Processes simulating arms."),
    checkpoint: Path = typer.Option(
        Path("out/validation/checkpoint.json"), "--checkpoint", help="Progress file."
    ),
    resume: bool = typer.Option(False, "--resume", help="Continue from --checkpoint."),
    fresh_jacobian: bool = typer.Option(
        False,
        "--fresh-jacobian",
        help="Compute the emulator's Jacobian here instead of reusing the fit's "
        "(data/posterior.json, when it was taken at the current tables).",
    ),
):
    """Leave-one-trial-out cross-validation: refit without each source, predict its rows."""
    from imiqsim import cv

    if not 20 <= patients <= 100_000:
        raise InputError("--patients", patients, "a whole number from 20 to 100,000")
    if not 1 <= workers <= 64:
        raise InputError("--workers", workers, "a whole number from 1 to 64")
    if seed < 0:
        raise InputError("--seed", seed, "a non-negative whole number")
    if resume and not checkpoint.exists():
        raise InputError("--resume", str(checkpoint), "an existing validation checkpoint")
    command = f"imiqsim validate --patients {patients} --seed {seed} --out {out}"
    prog, cb = _bar("validating")
    with prog:
        res = cv.validate(
            patients=patients,
            seed=seed,
            workers=workers,
            checkpoint=checkpoint,
            resume=resume,
            progress=cb,
            reuse_jacobian=not fresh_jacobian,
        )
    paths = cv.write_validation(res, out, command=command)
    typer.echo(
        f"leave-one-trial-out: {res.n_inside} of {res.n_rows} rows inside their published 95% CI "
        f"or tolerance (in-sample {res.n_inside_in_sample} of {res.n_rows})"
    )
    for p in paths:
        typer.echo(f"wrote {p}")


def register(app: typer.Typer) -> None:
    """Add ``calibrate`` and ``validate`` to ``app`` (an earlier ``calibrate`` is replaced)."""
    app.registered_commands[:] = [
        c
        for c in app.registered_commands
        if (c.name or getattr(c.callback, "__name__", "")) != "calibrate"
    ]
    app.command("calibrate")(calibrate_command)
    app.command("validate")(validate_command)
