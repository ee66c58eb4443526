"""Command-line interface: ``imiqsim --help``.

User errors (bad scenario, flag or value) print one clear message and exit
with code 2, never a traceback. Files already written are kept when a later
step fails.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import typer

from imiqsim import __version__
from imiqsim.errors import ImiqsimError, InputError
from imiqsim.model import KNOCKOUTS, get_model
from imiqsim.vocabulary import DISCLAIMER, DISCLAIMER_SHORT

#: the model's vocabulary, for the help texts
_KNOCKOUT_NAMES = ", ".join(KNOCKOUTS)
_STAGE_NAMES = ", ".join(m.name for m in get_model().modules)

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    help="imiqsim: mechanistic simulator of topical imiquimod therapy. "
    f"{DISCLAIMER_SHORT[0].upper()}{DISCLAIMER_SHORT[1:]}.",
)
export_app = typer.Typer(no_args_is_help=True, help="Export the model to other tools.")
app.add_typer(export_app, name="export")


def _err(msg: str) -> None:
    typer.echo(f"error: {msg}", err=True)


def _info(msg: str, quiet: bool = False) -> None:
    if not quiet:
        typer.echo(msg, err=True)


def parse_set(values: list[str] | None) -> dict[str, float]:
    """Parse repeated ``--set name=value`` flags."""
    out: dict[str, float] = {}
    for v in values or []:
        if "=" not in v:
            raise InputError(
                "--set", v, "NAME=VALUE, e.g. --set tlr7_ec50_ug_ml=3 (see `imiqsim parameters`)"
            )
        name, _, val = v.partition("=")
        name = name.strip()
        try:
            out[name] = float(val)
        except ValueError:
            raise InputError(f"--set {name}", val, "a number") from None
    return out


def _version_cb(value: bool):
    if value:
        typer.echo(f"imiqsim {__version__}")
        raise typer.Exit()


@app.callback()
def _main(
    version: bool = typer.Option(
        False, "--version", callback=_version_cb, is_eager=True, help="Show the version and exit."
    ),
):
    pass


@app.command()
def presets(json_out: bool = typer.Option(False, "--json", help="Print JSON instead of a table.")):
    """List the preset scenarios with their regimen in words."""
    from imiqsim.scenario import list_presets, load_preset

    rows = []
    for name in list_presets():
        sc = load_preset(name)
        rows.append(
            {
                "name": name,
                "indication": sc.indication,
                "site": sc.site,
                "area_cm2": sc.area_cm2,
                "regimen": sc.treatment_text(),
                "assessment_weeks_after_last_dose": sc.assessment_weeks_after_last_dose,
            }
        )
    if json_out:
        typer.echo(json.dumps(rows, indent=2))
        return
    from rich.console import Console
    from rich.table import Table

    t = Table(title="imiqsim presets")
    for col in ("name", "indication", "site", "regimen"):
        t.add_column(col, overflow="fold")
    for r in rows:
        t.add_row(r["name"], r["indication"], f"{r['site']}, {r['area_cm2']:g} cm2", r["regimen"])
    Console().print(t)


@app.command()
def simulate(
    scenario: str = typer.Argument(
        ..., help="Preset name (see `imiqsim presets`) or a scenario .toml file."
    ),
    days: float | None = typer.Option(
        None, "--days", help="Simulated days (default: course + assessment)."
    ),
    set_: list[str] | None = typer.Option(
        None, "--set", help="Override a parameter: NAME=VALUE (repeatable)."
    ),
    knockout: list[str] | None = typer.Option(
        None,
        "--knockout",
        help=f"Knock out/deplete a stage (repeatable): {_KNOCKOUT_NAMES}.",
    ),
    out: Path | None = typer.Option(
        None, "--out", help="Directory for time courses (NetCDF, CSV), PNG, JSON."
    ),
    json_out: bool = typer.Option(
        False, "--json", help="Print the summary as one JSON object on stdout."
    ),
    every: float = typer.Option(1.0, "--every", help="Output spacing in hours."),
):
    """Simulate one typical patient through the whole cascade."""
    from imiqsim.outputs.patient import write_patient_outputs
    from imiqsim.simulation import simulate as run

    overrides = parse_set(set_)
    res = run(
        scenario, days=days, set=overrides, knockouts=knockout or [], output_every_hours=every
    )
    for w in res.scenario.warnings():
        _info(f"warning: {w}")
    written = []
    if out is not None:
        written = write_patient_outputs(res, out, on_figure_error=_err)
    if json_out:
        summary = dict(res.summary)
        if written:
            summary["files"] = [str(p) for p in written]
        typer.echo(json.dumps(summary))
        return
    _print_summary(res.summary)
    for p in written:
        typer.echo(f"wrote {p}")
    typer.echo(DISCLAIMER)


def _print_summary(s: dict) -> None:
    from rich.console import Console
    from rich.table import Table

    t = Table(title=f"imiqsim simulate {s['scenario']} ({s['indication']}, {s['days']:.0f} days)")
    t.add_column("outcome")
    t.add_column("value", justify="right")
    t.add_row(
        "lesion burden (cells) initial -> final",
        f"{s['lesion_burden_initial']:.3g} -> {s['lesion_burden_final']:.3g}",
    )
    t.add_row(
        "visible lesions initial -> final",
        f"{s['visible_lesions_initial']} -> {s['visible_lesions_final']}",
    )
    ttc = s["time_to_clearance_days"]
    t.add_row(
        "cleared (no visible lesion)",
        f"{'yes' if s['lesion_cleared'] else 'no'}"
        + (f", day {ttc:.0f}" if ttc is not None else ""),
    )
    t.add_row("histologically clear", "yes" if s["histologically_clear"] else "no")
    t.add_row(
        "applications given (skipped for rest)",
        f"{s['applications_given']} ({s['doses_skipped_for_rest']})",
    )
    t.add_row("serum Cmax (ng/mL)", f"{s['serum_cmax_ng_ml']:.3g}")
    t.add_row("urine (fraction of applied)", f"{s['urine_fraction_of_applied']:.2%}")
    for c, v in s["peak"].items():
        t.add_row(f"peak local {c} (pg/mL)", f"{v:.3g}")
    t.add_row("LSR max (0-18)", f"{s['lsr_max']:.1f}")
    t.add_row("flu-like symptom probability", f"{s['flu_like_probability']:.1%}")
    t.add_row("memory T cells at end (cells/uL)", f"{s['memory_t_cells_final']:.3g}")
    Console().print(t)


@app.command()
def parameters(
    module: str | None = typer.Option(None, "--module", help=f"Only this stage: {_STAGE_NAMES}."),
    json_out: bool = typer.Option(False, "--json", help="Print JSON."),
):
    """The parameter table: value, unit, description, provenance."""
    m = get_model()
    rows = m.parameter_table()
    mods = sorted({r["module"] for r in rows})
    if module is not None:
        if module not in mods:
            raise InputError("--module", module, f"one of {mods}")
        rows = [r for r in rows if r["module"] == module]
    if json_out:
        typer.echo(json.dumps(rows, indent=2))
        return
    from rich.console import Console
    from rich.table import Table

    t = Table(title="imiqsim parameters")
    for c in ("name", "value", "unit", "status", "source"):
        t.add_column(c, overflow="fold")
    for r in rows:
        t.add_row(r["name"], f"{r['value']:.4g}", r["unit"], r["status"], r["source"])
    Console().print(t)


@app.command()
def equations(
    markdown: bool = typer.Option(
        False, "--markdown", help="Accepted for older scripts: the listing is always Markdown."
    ),
):
    """Print the model's equations (Markdown), generated from the one model definition."""
    from imiqsim.docs import equations_markdown

    del markdown  # one format only
    typer.echo(equations_markdown())


@export_app.command("sbml")
def export_sbml(
    scenario: str = typer.Argument(
        "ak-5pct", help="Preset or scenario file whose patient and dosing to export."
    ),
    out: Path = typer.Option(Path("model.xml"), "--out", help="Output SBML file."),
    set_: list[str] | None = typer.Option(None, "--set", help="Override a parameter: NAME=VALUE."),
    knockout: list[str] | None = typer.Option(
        None, "--knockout", help=f"Knock out a stage (repeatable): {_KNOCKOUT_NAMES}."
    ),
):
    """Write SBML Level 3 Version 2 (with the preset's dosing as events)."""
    from imiqsim.export.sbml import write_sbml
    from imiqsim.scenario import resolve
    from imiqsim.simulation import parameters_for

    sc = resolve(scenario)
    m = get_model()
    p = parameters_for(m, sc, parse_set(set_), knockout or [])
    write_sbml(out, m, p, sc.events(), name=sc.name.replace("-", "_").replace(".", "_"))
    typer.echo(f"wrote {out}")


def _progress_bar(total_label: str, quiet: bool):
    """A rich progress bar on stderr; returns (context manager, callback)."""
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    prog = Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=Console(stderr=True),
        disable=quiet,
        transient=False,
    )
    task = prog.add_task(total_label, total=None)

    def cb(done: int, total: int) -> None:
        prog.update(task, completed=done, total=total)

    return prog, cb


@app.command()
def trial(
    arms: list[str] = typer.Argument(..., help="Arms: preset names or scenario .toml files."),
    patients: int = typer.Option(1000, "--patients", "-n", help="Virtual patients per arm."),
    seed: int = typer.Option(
        1, "--seed", help="Seed: patient i of seed s is the same patient in every run."
    ),
    workers: int = typer.Option(1, "--workers", help="Worker processes."),
    chunk_size: int | None = typer.Option(
        None,
        "--chunk-size",
        help="Patients per chunk (does not change "
        "results; default 250 in memory, 2000 when streaming).",
    ),
    followup_years: float = typer.Option(
        1.0, "--followup-years", help="Follow-up after the assessment visit."
    ),
    immunosuppressed: float = typer.Option(
        0.0,
        "--immunosuppressed-fraction",
        help="Fraction of organ-transplant immunosuppressed patients.",
    ),
    set_: list[str] | None = typer.Option(None, "--set", help="Override a parameter: NAME=VALUE."),
    out: Path | None = typer.Option(
        None,
        "--out",
        help="Directory for outcomes (Parquet), traces (NetCDF), summary JSON and the HTML report.",
    ),
    json_out: bool = typer.Option(
        False, "--json", help="Print the endpoints as one JSON object on stdout."
    ),
    force: bool = typer.Option(
        False, "--force", help="Allow more patients than the documented cap."
    ),
    stream: bool = typer.Option(
        False,
        "--stream",
        help="Stream chunks to Parquet under --out (bounded memory; "
        "automatic above 100,000 patients or with --resume/--scheduler).",
    ),
    resume: bool = typer.Option(
        False, "--resume", help="Continue an interrupted streamed run in --out."
    ),
    scheduler: str | None = typer.Option(
        None, "--scheduler", help="dask.distributed scheduler address; default: local processes."
    ),
):
    """Run a virtual trial: endpoints per arm with 95% confidence intervals."""
    from imiqsim.trial import MAX_PATIENTS, run_trial

    if seed < 0:
        raise InputError("--seed", seed, "a non-negative whole number")
    if stream or resume or scheduler or patients > MAX_PATIENTS:
        if out is None:
            raise InputError(
                "--out",
                None,
                "a directory: streamed runs (--stream, --resume, --scheduler or more "
                f"than {MAX_PATIENTS} patients) write their chunks there",
            )
        _trial_streaming(
            arms,
            patients,
            seed,
            workers,
            chunk_size or 2000,
            followup_years,
            immunosuppressed,
            parse_set(set_),
            out,
            json_out,
            resume,
            scheduler,
        )
        return
    chunk_size = chunk_size or 250
    prog, cb = _progress_bar("simulating", quiet=False)
    with prog:
        tr = run_trial(
            arms,
            patients=patients,
            seed=seed,
            workers=workers,
            chunk_size=chunk_size,
            followup_years=followup_years,
            overrides=parse_set(set_),
            immunosuppressed_fraction=immunosuppressed,
            force=force,
            progress=cb,
        )
    summary = tr.to_dict()
    written = []
    if out is not None:
        written = _write_trial(
            tr,
            out,
            " ".join(["imiqsim", "trial", *arms, "--patients", str(patients), "--seed", str(seed)]),
        )
    if json_out:
        if written:
            summary["files"] = [str(p) for p in written]
        typer.echo(json.dumps(summary))
        return
    _print_trial(summary)
    for p in written:
        typer.echo(f"wrote {p}")
    typer.echo(DISCLAIMER)


def _trial_streaming(
    arms,
    patients,
    seed,
    workers,
    chunk_size,
    followup_years,
    immunosuppressed,
    overrides,
    out,
    json_out,
    resume,
    scheduler,
) -> None:
    from imiqsim.trial.streaming import run_streaming

    if patients <= 0:
        raise InputError("patients", patients, "a positive whole number")
    prog, cb = _progress_bar("simulating (streamed)", quiet=False)
    try:
        with prog:
            res = run_streaming(
                arms,
                patients=patients,
                seed=seed,
                out_dir=out,
                chunk_size=chunk_size,
                workers=workers,
                scheduler=scheduler,
                followup_years=followup_years,
                overrides=overrides,
                immunosuppressed_fraction=immunosuppressed,
                resume=resume,
                progress=cb,
            )
    except (ImiqsimError, typer.Exit):
        raise
    except KeyboardInterrupt:
        _err(f"interrupted: finished chunks are kept in {out}; continue with --resume")
        raise typer.Exit(130) from None
    except Exception as exc:
        _err(
            f"{type(exc).__name__}: {exc}; finished chunks are kept in {out}; "
            "continue with --resume"
        )
        raise typer.Exit(1) from exc
    summary = dict(res.summary)
    files = [str(p) for p in res.files] + [str(out / "chunks")]
    if json_out:
        summary["files"] = files
        typer.echo(json.dumps(summary, default=str))
        return
    _print_trial(summary)
    typer.echo(f"{res.chunks_computed} chunks computed, {res.chunks_skipped} reused")
    for f in files:
        typer.echo(f"wrote {f}")


def _write_trial(tr, out: Path, command: str) -> list[Path]:
    """The trial's data files, then its report; lists the data files and report.html."""
    from imiqsim.outputs.trial_report import FIGURE_NAMES, write_trial_bundle

    paths = write_trial_bundle(tr, out, command=command, on_figure_error=_err)
    return [p for p in paths if p.name not in FIGURE_NAMES]  # the figures are inside the report


def _print_trial(summary: dict) -> None:
    from rich.console import Console
    from rich.table import Table

    from imiqsim.outputs.formatting import plain_estimate
    from imiqsim.trial.endpoints import endpoint

    t = Table(
        title=f"imiqsim trial (seed {summary['seed']}, "
        f"{summary['n_patients_per_arm']} patients/arm)"
    )
    t.add_column("endpoint")
    for a in summary["arms"]:
        t.add_column(a["name"], justify="right")
    names = list(summary["arms"][0]["endpoints"])
    for n in names:
        t.add_row(
            n,
            *[
                plain_estimate(a["endpoints"][n], percent=endpoint(n).is_percent)
                for a in summary["arms"]
            ],
        )
    Console().print(t)
    for d in summary.get("differences", []):
        e = d["endpoints"].get("complete_clearance")
        if e:
            typer.echo(
                f"complete clearance difference {d['arms'][0]} - {d['arms'][1]}: "
                f"{plain_estimate(e)}"
            )


@app.command()
def calibrate(
    patients: int = typer.Option(300, "--patients", "-n", help="Virtual patients per evaluation."),
    rounds: int = typer.Option(3, "--rounds", help="Coordinate-descent rounds."),
    seed: int = typer.Option(2024, "--seed", help="Seed of the calibration population."),
    checkpoint: Path = typer.Option(
        Path("out/calibration/checkpoint.json"),
        "--checkpoint",
        help="Progress file (written after every evaluation).",
    ),
    resume: bool = typer.Option(
        False, "--resume", help="Continue an interrupted run from --checkpoint."
    ),
    write: bool = typer.Option(
        False,
        "--write",
        help="Write the fitted values (with provenance) into the package's parameter tables.",
    ),
):
    """Refit the calibrated parameters to the published targets (slow: minutes)."""
    from imiqsim import calibrate as cal

    if rounds < 1 or rounds > 10:
        raise InputError("--rounds", rounds, "a whole number from 1 to 10")
    checkpoint.parent.mkdir(parents=True, exist_ok=True)
    steps = len(cal.STEPS) * rounds
    prog, cb = _progress_bar("calibrating", quiet=False)
    count = [0]

    def report(msg: str) -> None:
        count[0] += 1
        cb(count[0], steps)
        prog.console.print(msg)

    with prog:
        state = cal.calibrate(
            patients=patients,
            seed=seed,
            rounds=rounds,
            checkpoint=checkpoint,
            resume=resume,
            progress=report,
        )
    result = checkpoint.with_name("calibration_result.json")
    result.write_text(json.dumps(state, indent=1))
    typer.echo(f"wrote {result}")
    if write:
        from importlib import resources

        model_dir = Path(str(resources.files("imiqsim.model")))
        note = f"imiqsim calibrate --patients {patients} --rounds {rounds} --seed {seed}"
        changed = cal.write_values(state["values"], model_dir, note)
        typer.echo(f"updated {len(changed)} parameters in {model_dir}")


@app.command("calibration-report")
def calibration_report(
    out: Path = typer.Option(Path("out/calibration"), "--out", help="Output directory."),
    patients: int = typer.Option(1000, "--patients", "-n", help="Virtual patients per arm."),
    seed: int = typer.Option(7, "--seed", help="Seed (different from the calibration seed)."),
):
    """HTML page: every published target next to its simulated value and CI."""
    from imiqsim.calibration_report import build_rows, write_report

    if patients < 20:
        raise InputError("--patients", patients, "at least 20")
    rows = build_rows(patients=patients, seed=seed, progress=lambda m: _info(m))
    path = write_report(rows, out, patients=patients, seed=seed)
    n_hit = sum(1 for r in rows if r.hit)
    n_sim = sum(1 for r in rows if r.hit is not None)
    for r in rows:
        sim = "-" if r.simulated is None else f"{r.simulated:.3g}"
        flag = "not simulated" if r.hit is None else ("hit" if r.hit else "MISS")
        typer.echo(f"{r.id:28s} published {r.published:<8.3g} simulated {sim:<8s} {flag}")
    typer.echo(f"{n_hit}/{n_sim} simulated rows hit their target")
    typer.echo(f"wrote {path}")


@app.command()
def population(
    scenario: str = typer.Argument(..., help="Preset or scenario file."),
    patients: int = typer.Option(100, "--patients", "-n", help="Number of virtual patients."),
    seed: int = typer.Option(
        1, "--seed", help="Seed (patient i of seed s is always the same patient)."
    ),
    out: Path = typer.Option(
        Path("population.csv"), "--out", help="CSV file: one row per patient."
    ),
    immunosuppressed: float = typer.Option(
        0.0, "--immunosuppressed-fraction", help="Fraction of immunosuppressed patients."
    ),
):
    """Write a virtual population by SBML id (parameters and initial amounts),
    to re-run it in any SBML tool."""
    from imiqsim.export.population import write_population

    if patients <= 0 or patients > 1_000_000:
        raise InputError("--patients", patients, "a whole number from 1 to 1,000,000")
    path = write_population(
        scenario, patients, seed, out, immunosuppressed_fraction=immunosuppressed
    )
    typer.echo(f"wrote {path}")


@app.command()
def compare(
    arms: list[str] = typer.Argument(..., help="Two or more arms, e.g. ak-5pct ak-cryo."),
    patients: int = typer.Option(1000, "--patients", "-n", help="Virtual patients per arm."),
    seed: int = typer.Option(1, "--seed", help="Seed."),
    workers: int = typer.Option(2, "--workers", help="Worker processes."),
    followup_years: float = typer.Option(
        1.0, "--followup-years", help="Follow-up after the assessment visit."
    ),
    out: Path | None = typer.Option(
        None, "--out", help="Directory for comparison.html/json and trial data."
    ),
    json_out: bool = typer.Option(
        False, "--json", help="Print one JSON object: arms and the table rows."
    ),
):
    """Side-by-side comparison (e.g. imiquimod vs cryotherapy), every cell simulated."""
    from imiqsim.compare import comparison_dict
    from imiqsim.outputs.compare import write_comparison
    from imiqsim.outputs.trial import write_trial_outputs
    from imiqsim.trial import run_trial

    if len(arms) < 2:
        raise InputError("arms", list(arms), "at least two arms to compare, e.g. ak-5pct ak-cryo")
    prog, cb = _progress_bar("comparing", quiet=False)
    with prog:
        tr = run_trial(
            arms,
            patients=patients,
            seed=seed,
            workers=workers,
            followup_years=followup_years,
            progress=cb,
        )
    d = comparison_dict(tr)
    written = []
    if out is not None:
        command = "imiqsim compare " + " ".join(arms) + f" --patients {patients} --seed {seed}"
        written = write_trial_outputs(tr, out) + write_comparison(tr, out, command)
    if json_out:
        if written:
            d["files"] = [str(p) for p in written]
        typer.echo(json.dumps(d, default=str))
        return
    from rich.console import Console
    from rich.table import Table

    t = Table(
        title=f"imiqsim compare ({patients} virtual patients per arm, seed {seed})", show_lines=True
    )
    t.add_column("feature")
    for a in tr.arms:
        t.add_column(a.name, overflow="fold")
    for r in d["rows"]:
        t.add_row(r["feature"], *[str(r[a.name]) for a in tr.arms])
    Console().print(t)
    for p in written:
        typer.echo(f"wrote {p}")
    typer.echo(DISCLAIMER)


@app.command()
def field(
    scenario: str = typer.Argument("ak-5pct", help="Preset or scenario file."),
    resolution_mm: float = typer.Option(
        1.0, "--resolution-mm", help="Grid spacing in mm (0.25 = 40,000 sites for 25 cm2; slower)."
    ),
    seed: int = typer.Option(0, "--seed", help="Seeds lesion placement."),
    followup_days: float = typer.Option(
        365.0, "--followup-days", help="Days simulated after the assessment."
    ),
    out: Path = typer.Option(
        Path("out/field"), "--out", help="Output directory (maps, PNG strip, GIF)."
    ),
    no_gif: bool = typer.Option(False, "--no-gif", help="Skip the animation."),
):
    """Simulate the treated skin as a 2-D field of sites: maps of lesions, erythema and
    infiltrate over time."""
    from imiqsim.outputs.field import write_field_outputs
    from imiqsim.spatial.field import FieldSpec, simulate_field

    if seed < 0:
        raise InputError("--seed", seed, "a non-negative whole number")
    spec = FieldSpec(
        scenario=scenario, resolution_mm=resolution_mm, seed=seed, followup_days=followup_days
    )
    _info(f"simulating the field at {resolution_mm:g} mm resolution ...")
    res = simulate_field(spec)
    written = write_field_outputs(res, out, gif=not no_gif, on_figure_error=_err)
    for p in written.values():
        typer.echo(f"wrote {p}")
    typer.echo(DISCLAIMER)


@app.command()
def demo(
    out: Path = typer.Option(Path("out/demo"), "--out", help="Output directory."),
    patients: int = typer.Option(1000, "--patients", "-n", help="Virtual patients per arm."),
    workers: int = typer.Option(2, "--workers", help="Worker processes."),
):
    """The main job: a virtual trial of AK 5% (label regimen) against vehicle, with an HTML
    report."""
    from imiqsim.outputs.patient import write_patient_outputs
    from imiqsim.simulation import simulate as run
    from imiqsim.trial import run_trial

    single = run("ak-5pct")
    written = write_patient_outputs(single, out / "typical_patient", on_figure_error=_err)
    prog, cb = _progress_bar("AK 5% vs vehicle", quiet=False)
    with prog:
        tr = run_trial(
            ["ak-5pct", "ak-5pct-vehicle"],
            patients=patients,
            seed=1,
            workers=workers,
            followup_years=1.0,
            progress=cb,
        )
    written += _write_trial(
        tr, out, f"imiqsim trial ak-5pct ak-5pct-vehicle --patients {patients} --seed 1"
    )
    _print_trial(tr.to_dict())
    for p in written:
        typer.echo(f"wrote {p}")
    report = out / "report.html"
    if report.exists():
        typer.echo(f"\nReport: {report.resolve()}")
    typer.echo(DISCLAIMER)


@app.command()
def serve(
    host: str = typer.Option(
        "127.0.0.1", "--host", help="Interface to bind (default: this machine only)."
    ),
    port: int = typer.Option(5006, "--port", help="TCP port."),
    workers: int | None = typer.Option(
        None, "--workers", help="Simulation worker processes (default: CPU cores, at most 8)."
    ),
    show: bool = typer.Option(False, "--show", help="Open the dashboard in a browser."),
):
    """The browser dashboard: patient, trial, compare, field and model pages."""
    from imiqsim.web import serve as run

    run(host=host, port=port, workers=workers, show=show)


# analysis commands (issue 13): sensitivity, scan, optimise
from imiqsim.analysis.cli import register as _register_analysis  # noqa: E402

_register_analysis(app)


def main(argv: list[str] | None = None) -> int:
    """Entry point; maps user errors to exit code 2 without a traceback."""
    try:
        app(args=argv, prog_name="imiqsim", standalone_mode=False)
    except InputError as exc:
        _err(str(exc))
        return 2
    except ImiqsimError as exc:
        _err(str(exc))
        return 1
    except KeyboardInterrupt:
        _err("interrupted")
        return 130
    except Exception as exc:  # click/typer usage errors (typer may vendor its own click)
        name = type(exc).__name__
        if hasattr(exc, "show") and hasattr(exc, "exit_code"):  # UsageError and subclasses: exit 2
            exc.show()
            return int(exc.exit_code)
        if name == "Exit":
            return int(getattr(exc, "exit_code", 0))
        if name == "Abort":
            return 1
        raise
    return 0


if __name__ == "__main__":
    sys.exit(main())
