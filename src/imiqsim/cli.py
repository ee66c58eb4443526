"""Command-line interface: ``imiqsim --help``.

Exit codes (one policy for every command, :class:`_Group`):

- 0: success;
- 2: a user error (bad scenario, flag, value or output path): one line
  ``error: <field>: got <value>; <what is allowed>``, never a traceback;
- 1: the run itself failed (every patient of an arm failed, a solver failure,
  an internal error): one line with a hint; ``--debug`` (or
  ``IMIQSIM_DEBUG=1``) adds the traceback;
- 130: interrupted (Ctrl-C).

Every output path is checked before any work (writable, a directory where a
directory is wanted, parents created), the output directory is locked while
a run writes there, and every file is written whole (temp + rename), so the
files already written when a later step fails are complete and are named.

Layout: the exit-code policy and the shared input helpers first, then one
function per command (a new command or option reuses :func:`parse_set`,
:func:`parse_knockouts`, :func:`check_seed`, :func:`out_dir_option` ...).
"""

from __future__ import annotations

import json
import os
import sys
import traceback
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import typer
from typer.core import TyperGroup

from imiqsim import __version__
from imiqsim.calibration_cli import UNCERTAINTY_HELP, check_uncertainty
from imiqsim.errors import ImiqsimError, InputError
from imiqsim.model import KNOCKOUTS, get_model
from imiqsim.vocabulary import DISCLAIMER, DISCLAIMER_SHORT

#: exit codes
EXIT_OK, EXIT_FAILED, EXIT_USER, EXIT_INTERRUPTED = 0, 1, 2, 130

#: the model's vocabulary, for the help texts
_KNOCKOUT_NAMES = ", ".join(KNOCKOUTS)
_STAGE_NAMES = ", ".join(m.name for m in get_model().modules)

#: the output directory of the command running now: named when a run fails part-way
_CURRENT_OUT: list[Path] = []


def _debug_wanted(argv: list[str]) -> bool:
    return "--debug" in argv or os.environ.get("IMIQSIM_DEBUG", "") not in ("", "0")


def _partial_note() -> str:
    if not _CURRENT_OUT:
        return ""
    return f"; files already in {_CURRENT_OUT[-1]} are complete (each is written whole)"


def run_guarded(call: Callable[[], Any], debug: bool) -> int:
    """Run the command line and map what it raises to an exit code (module docstring)."""
    from typer import _click

    try:
        rv = call()
    except InputError as exc:
        _err(str(exc))
        return EXIT_USER
    except _click.exceptions.NoArgsIsHelpError as exc:
        exc.show()
        return EXIT_USER
    except _click.exceptions.ClickException as exc:  # usage errors: bad flag, missing argument
        where = f" (see `{exc.ctx.command_path} --help`)" if getattr(exc, "ctx", None) else ""
        _err(" ".join(exc.format_message().split()) + where)
        return int(exc.exit_code)
    except KeyboardInterrupt:
        _err("interrupted" + _partial_note())
        return EXIT_INTERRUPTED
    except typer.Abort:
        _err("aborted")
        return EXIT_FAILED
    except ImiqsimError as exc:  # the run failed (solver, a chunk): not the user's input
        _err(str(exc) + _partial_note())
        if debug:
            traceback.print_exc()
        return EXIT_FAILED
    except MemoryError:
        _err(
            "out of memory: try fewer patients per chunk (--chunk-size) or --stream"
            + _partial_note()
        )
        if debug:
            traceback.print_exc()
        return EXIT_FAILED
    except Exception as exc:  # a bug: say so, and how to see more
        _err(
            f"internal error: {type(exc).__name__}: {exc}{_partial_note()}. This is a bug in "
            f"imiqsim {__version__}; "
            + ("the traceback follows" if debug else "rerun with --debug for the traceback")
        )
        if debug:
            traceback.print_exc()
        return EXIT_FAILED
    finally:
        _CURRENT_OUT.clear()
    if isinstance(rv, int) and not isinstance(rv, bool):
        return rv
    return EXIT_OK


class _Group(TyperGroup):
    """The top-level command group: one exit-code policy for every command.

    Used both by :func:`main` (the ``imiqsim`` executable) and by typer's test
    runner, so tests in-process see what a user sees.
    """

    def main(  # type: ignore[override]
        self,
        args: Any = None,
        prog_name: str | None = None,
        complete_var: str | None = None,
        standalone_mode: bool = True,
        **extra: Any,
    ) -> Any:
        argv = list(sys.argv[1:] if args is None else args)
        code = run_guarded(
            lambda: super(_Group, self).main(
                args=argv,
                prog_name=prog_name,
                complete_var=complete_var,
                standalone_mode=False,
                **extra,
            ),
            _debug_wanted(argv),
        )
        if standalone_mode:
            sys.exit(code)
        return code

    def invoke(self, ctx: Any) -> Any:
        try:
            return super().invoke(ctx)
        except KeyboardInterrupt:  # typer would turn it into a silent exit 130
            _err("interrupted" + _partial_note())
            raise typer.Exit(EXIT_INTERRUPTED) from None


app = typer.Typer(
    cls=_Group,
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


def parse_set(values: list[str] | None, flag: str = "--set") -> dict[str, float]:
    """Parse repeated ``--set name=value`` flags: strict numbers, bounds checked, no repeats.

    ``flag`` names the option in messages (``imiqsim calibrate --fix`` parses the same way).

    Examples
    --------
    >>> parse_set(["tlr7_ec50_ug_ml=3"])
    {'tlr7_ec50_ug_ml': 3.0}
    >>> parse_set(["nk_present=2"])  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    imiqsim.errors.InputError: --set nk_present: got 2.0; must be 0 or 1 (a switch: ...)
    """
    from imiqsim.model.bounds import check_parameter
    from imiqsim.validation import parse_number

    out: dict[str, float] = {}
    for v in values or []:
        if "=" not in v:
            raise InputError(
                flag, v, f"NAME=VALUE, e.g. {flag} tlr7_ec50_ug_ml=3 (see `imiqsim parameters`)"
            )
        name, _, val = v.partition("=")
        name = name.strip()
        if not name:
            raise InputError(flag, v, "NAME=VALUE with a parameter name before the =")
        if name in out:
            raise InputError(f"{flag} {name}", val, "each parameter may be set only once")
        if name not in get_model().parameter_names:
            get_model().parameter_vector(overrides={name: 0.0})  # the model's message: close names
        number = parse_number(val, f"{flag} {name}")
        out[name] = check_parameter(name, number, f"{flag} {name}")
    return out


def parse_knockouts(values: list[str] | None) -> list[str]:
    """Repeated ``--knockout`` flags: each a known knockout, none twice."""
    from imiqsim.validation import require_unique

    kos = require_unique(list(values or []), "--knockout")
    for k in kos:
        if k not in KNOCKOUTS:
            raise InputError("--knockout", k, f"one of {_KNOCKOUT_NAMES}")
    return kos


def check_seed(seed: int, field: str = "--seed") -> int:
    """A seed from 0 to 2**63 - 1 (stored as a signed 64-bit integer in the output files)."""
    from imiqsim.trial.executors import MAX_SEED

    if not 0 <= seed <= MAX_SEED:
        raise InputError(field, seed, f"a whole number from 0 to {MAX_SEED} (2**63 - 1)")
    return seed


def check_positive(value: int, field: str, upper: int | None = None) -> int:
    """A whole number >= 1 (and <= ``upper``)."""
    if value < 1 or (upper is not None and value > upper):
        allowed = f"a whole number from 1 to {upper:,}" if upper else "a whole number >= 1"
        raise InputError(field, value, allowed)
    return value


@contextmanager
def out_dir_option(value: str | None, field: str = "--out") -> Iterator[Path | None]:
    """An output directory checked, created and locked up front (None: no output)."""
    if value is None:
        yield None
        return
    from imiqsim.outputs.files import output_dir

    with output_dir(value, field) as p:
        _CURRENT_OUT.append(p)
        yield p


def out_file_option(value: str, field: str = "--out") -> Path:
    """An output file path checked up front (its directory created)."""
    from imiqsim.outputs.files import check_output_file

    return check_output_file(value, field)


def _far_from_table(overrides: dict[str, float]) -> list[str]:
    """Overrides more than 100-fold away from the tabled value: worth a warning."""
    m = get_model()
    out = []
    for name, v in overrides.items():
        ref = m.parameters[m.parameter_names.index(name)].value
        if ref > 0 and v > 0 and not 0.01 <= v / ref <= 100:
            out.append(f"{name}={v:g} is {v / ref:.3g} times its tabled value {ref:g}")
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
    debug: bool = typer.Option(
        False, "--debug", help="On an internal error, print the traceback (also IMIQSIM_DEBUG=1)."
    ),
):
    # exit codes: 0 done, 2 user error (one line), 1 the run failed, 130 interrupted
    del version, debug  # handled eagerly / by the exit-code policy


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
    out: str | None = typer.Option(
        None, "--out", help="Directory for time courses (NetCDF, CSV), PNG, JSON."
    ),
    json_out: bool = typer.Option(
        False, "--json", help="Print the summary as one JSON object on stdout."
    ),
    every: float = typer.Option(1.0, "--every", help="Output spacing in hours."),
):
    """Simulate one typical patient through the whole cascade."""
    from imiqsim.engine.run import check_output_grid
    from imiqsim.outputs.patient import write_patient_outputs
    from imiqsim.scenario import resolve
    from imiqsim.simulation import simulate as run
    from imiqsim.vocabulary import HOURS_PER_DAY

    sc = resolve(scenario)
    overrides = parse_set(set_)
    kos = parse_knockouts(knockout)
    if days is not None and not (days == days and 0 < days <= 3650):
        raise InputError("--days", days, "a number of days in (0, 3650]")
    if not (every == every and 0 < every <= 168):
        raise InputError("--every", every, "a number of hours in (0, 168]")
    horizon_h = days * HOURS_PER_DAY if days is not None else sc.horizon_hours()
    check_output_grid(horizon_h, every, "--every")
    for w in _far_from_table(overrides):
        _info(f"warning: {w}")
    with out_dir_option(out) as out_path:
        res = run(sc, days=days, set=overrides, knockouts=kos, output_every_hours=every)
        for w in res.scenario.warnings():
            _info(f"warning: {w}")
        written = []
        if out_path is not None:
            written = write_patient_outputs(res, out_path, on_figure_error=_err)
    from imiqsim.vocabulary import STATUS_TEXT

    status = STATUS_TEXT.get(int(res.batch.status[0]), str(res.batch.status[0]))
    if json_out:
        summary = dict(res.summary)  # a summary exists only for status "ok" (else exit 1)
        if written:
            summary["files"] = [str(p) for p in written]
        typer.echo(json.dumps(summary))
        return
    _print_summary(res.summary)
    typer.echo(f"integration status: {status}")
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
    out: str = typer.Option("model.xml", "--out", help="Output SBML file."),
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
    overrides, kos = parse_set(set_), parse_knockouts(knockout)
    path = out_file_option(out)
    m = get_model()
    p = parameters_for(m, sc, overrides, kos)
    write_sbml(path, m, p, sc.events(), name=sc.name.replace("-", "_").replace(".", "_"))
    typer.echo(f"wrote {path}")


class _LazyProgress:
    """A rich progress bar on stderr that appears with the first report, so an input error
    found before any simulation prints only its one line."""

    def __init__(self, label: str, quiet: bool) -> None:
        from rich.console import Console
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeElapsedColumn,
        )

        self.prog = Progress(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            console=Console(stderr=True),
            disable=quiet,
            transient=False,
        )
        self.console = self.prog.console
        self.task = self.prog.add_task(label, total=None)
        self.started = False

    def __enter__(self) -> _LazyProgress:
        return self

    def __exit__(self, *exc: Any) -> None:
        if self.started:
            self.prog.stop()

    def __call__(self, done: int, total: int) -> None:
        if not self.started:
            self.prog.start()
            self.started = True
        self.prog.update(self.task, completed=done, total=total)


def _progress_bar(
    total_label: str, quiet: bool
) -> tuple[_LazyProgress, Callable[[int, int], None]]:
    """A progress bar on stderr, shown from the first report; returns (context manager,
    callback)."""
    bar = _LazyProgress(total_label, quiet)
    return bar, bar


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
    immunosuppressed: float | None = typer.Option(
        None,
        "--immunosuppressed-fraction",
        help="Fraction of organ-transplant immunosuppressed patients in every arm (default: each "
        "scenario's [population] value, else 0 as in the pivotal trials).",
    ),
    set_: list[str] | None = typer.Option(None, "--set", help="Override a parameter: NAME=VALUE."),
    out: str | None = typer.Option(
        None,
        "--out",
        help="Directory for outcomes (Parquet), traces (NetCDF), summary JSON and the HTML report.",
    ),
    json_out: bool = typer.Option(
        False, "--json", help="Print the endpoints as one JSON object on stdout."
    ),
    force: bool = typer.Option(
        False,
        "--force",
        help="Hold more than 100,000 patients per arm in memory (otherwise use --stream).",
    ),
    stream: bool = typer.Option(
        False,
        "--stream",
        help="Stream chunks to Parquet under --out (bounded memory; needed above 100,000 "
        "patients per arm; implied by --resume, --scheduler and --scheduler-file).",
    ),
    resume: bool = typer.Option(
        False, "--resume", help="Continue an interrupted streamed run in --out."
    ),
    scheduler: str | None = typer.Option(
        None, "--scheduler", help="dask.distributed scheduler address; default: local processes."
    ),
    scheduler_file: str | None = typer.Option(
        None,
        "--scheduler-file",
        help="dask scheduler file (dask-jobqueue, dask-mpi, `dask scheduler --scheduler-file`).",
    ),
    uncertainty: int = typer.Option(0, "--uncertainty", help=UNCERTAINTY_HELP),
):
    """Run a virtual trial: endpoints per arm with 95% confidence intervals."""
    from imiqsim.trial import MAX_PATIENTS, run_trial
    from imiqsim.trial.executors import MAX_WORKERS, validate_run

    check_seed(seed)
    check_positive(patients, "--patients")
    check_positive(workers, "--workers", MAX_WORKERS)
    if chunk_size is not None:
        check_positive(chunk_size, "--chunk-size")
    if scheduler is not None and scheduler_file is not None:
        raise InputError(
            "--scheduler-file", scheduler_file, "either --scheduler or --scheduler-file"
        )
    if scheduler_file is not None:
        from imiqsim.trial.executors import read_scheduler_file

        read_scheduler_file(scheduler_file, "--scheduler-file")
    overrides = parse_set(set_)
    validate_run(  # before any directory is made
        arms,
        patients=patients,
        seed=seed,
        workers=workers,
        chunk_size=chunk_size or 250,
        followup_years=followup_years,
        immunosuppressed_fraction=immunosuppressed,
    )
    streamed = stream or resume or scheduler is not None or scheduler_file is not None
    uncertainty = check_uncertainty(uncertainty, patients, streamed=streamed)
    if streamed:
        if out is None:
            raise InputError(
                "--out",
                None,
                "a directory: streamed runs (--stream, --resume, --scheduler, --scheduler-file) "
                "write their chunks there",
            )
        _trial_streaming(
            arms,
            patients,
            seed,
            workers,
            chunk_size or 2000,
            followup_years,
            immunosuppressed,
            overrides,
            out,
            json_out,
            resume,
            scheduler,
            scheduler_file,
        )
        return
    if patients > MAX_PATIENTS and not force:
        raise InputError(
            "--patients",
            patients,
            f"at most {MAX_PATIENTS:,} per arm in memory: add --stream --out DIR (bounded "
            "memory, resumable) or --force to hold them all in memory",
        )
    with out_dir_option(out) as out_path:
        prog, cb = _progress_bar("simulating", quiet=False)
        with prog:
            tr = run_trial(
                arms,
                patients=patients,
                seed=seed,
                workers=workers,
                chunk_size=chunk_size or 250,
                followup_years=followup_years,
                overrides=overrides,
                immunosuppressed_fraction=immunosuppressed,
                force=force,
                progress=cb,
                uncertainty=uncertainty,
            )
        summary = tr.to_dict()
        written = []
        if out_path is not None:
            command = " ".join(
                ["imiqsim", "trial", *arms, "--patients", str(patients), "--seed", str(seed)]
            )
            written = _write_trial(tr, out_path, command)
    if json_out:
        if written:
            summary["files"] = [str(p) for p in written]
        typer.echo(json.dumps(summary))
    else:
        _print_trial(summary)
        for p in written:
            typer.echo(f"wrote {p}")
        typer.echo(DISCLAIMER)
    _exit_if_arm_failed(summary)


def _exit_if_arm_failed(summary: dict) -> None:
    """Exit 1 when every patient of an arm failed: its endpoints are empty."""
    dead = [a["name"] for a in summary["arms"] if a["n"] and a["failed_patients"] >= a["n"]]
    if dead:
        _err(
            f"every patient of arm {', '.join(dead)} failed to integrate, so its endpoints are "
            "empty; check the parameter overrides (files written are listed above)"
        )
        raise typer.Exit(EXIT_FAILED)


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
    scheduler_file,
) -> None:
    from imiqsim.outputs.files import check_output_dir
    from imiqsim.trial.streaming import MAX_STREAM_PATIENTS, run_streaming

    check_positive(patients, "--patients", MAX_STREAM_PATIENTS)
    out_path = check_output_dir(out, "--out")
    _CURRENT_OUT.append(out_path)
    prog, cb = _progress_bar("simulating (streamed)", quiet=False)
    try:
        with prog:
            res = run_streaming(
                arms,
                patients=patients,
                seed=seed,
                out_dir=out_path,
                chunk_size=chunk_size,
                workers=workers,
                scheduler=scheduler,
                scheduler_file=scheduler_file,
                followup_years=followup_years,
                overrides=overrides,
                immunosuppressed_fraction=immunosuppressed,
                resume=resume,
                progress=cb,
            )
    except InputError:
        raise
    except KeyboardInterrupt:
        _err(f"interrupted: finished chunks are kept in {out_path}; continue with --resume")
        raise typer.Exit(EXIT_INTERRUPTED) from None
    except Exception as exc:
        _err(
            f"{type(exc).__name__}: {exc}; finished chunks are kept in {out_path}; "
            "continue with --resume"
        )
        if _debug_wanted(sys.argv[1:]):
            traceback.print_exc()
        raise typer.Exit(EXIT_FAILED) from None
    summary = dict(res.summary)
    files = [str(p) for p in res.files] + [str(out_path / "chunks")]
    if json_out:
        summary["files"] = files
        typer.echo(json.dumps(summary, default=str))
    else:
        _print_trial(summary)
        typer.echo(f"{res.chunks_computed} chunks computed, {res.chunks_skipped} reused")
        for f in files:
            typer.echo(f"wrote {f}")
    _exit_if_arm_failed(summary)


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
    t.add_row(
        "patients: n (failed)",
        *[f"{a['n']} ({a.get('failed_patients', 0)} failed)" for a in summary["arms"]],
    )
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
    for a in summary["arms"]:
        k = a.get("failed_patients", 0)
        if k:
            typer.echo(
                f"warning: {k} of {a['n']} patients of {a['name']} failed to integrate and are "
                "left out of its endpoints"
            )
    for d in summary.get("differences", []):
        e = d["endpoints"].get("complete_clearance")
        if e:
            typer.echo(
                f"complete clearance difference {d['arms'][0]} - {d['arms'][1]}: "
                f"{plain_estimate(e)}"
            )


@app.command("calibration-report")
def calibration_report(
    out: str = typer.Option("out/calibration", "--out", help="Output directory."),
    patients: int = typer.Option(1000, "--patients", "-n", help="Virtual patients per arm."),
    seed: int = typer.Option(7, "--seed", help="Seed (different from the calibration seed)."),
):
    """HTML page: every published target next to its simulated value and CI."""
    from imiqsim.calibration_report import build_rows, write_report

    if patients < 20 or patients > 100_000:
        raise InputError("--patients", patients, "a whole number from 20 to 100,000")
    check_seed(seed)
    with out_dir_option(out) as out_path:
        rows = build_rows(patients=patients, seed=seed, progress=lambda m: _info(m))
        path = write_report(rows, out_path, patients=patients, seed=seed)
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
    out: str = typer.Option("population.csv", "--out", help="CSV file: one row per patient."),
    immunosuppressed: float = typer.Option(
        0.0, "--immunosuppressed-fraction", help="Fraction of immunosuppressed patients."
    ),
):
    """Write a virtual population by SBML id (parameters and initial amounts),
    to re-run it in any SBML tool."""
    from imiqsim.export.population import write_population
    from imiqsim.scenario import resolve

    if patients <= 0 or patients > 1_000_000:
        raise InputError("--patients", patients, "a whole number from 1 to 1,000,000")
    check_seed(seed)
    if not (immunosuppressed == immunosuppressed and 0 <= immunosuppressed <= 1):
        raise InputError("--immunosuppressed-fraction", immunosuppressed, "a fraction in [0, 1]")
    resolve(scenario)
    path = out_file_option(out)
    _CURRENT_OUT.append(path.parent)
    path = write_population(
        scenario, patients, seed, path, immunosuppressed_fraction=immunosuppressed
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
    out: str | None = typer.Option(
        None, "--out", help="Directory for comparison.html/json and trial data."
    ),
    json_out: bool = typer.Option(
        False, "--json", help="Print one JSON object: arms and the table rows."
    ),
    uncertainty: int = typer.Option(0, "--uncertainty", help=UNCERTAINTY_HELP),
):
    """Side-by-side comparison (e.g. imiquimod vs cryotherapy), every cell simulated."""
    from imiqsim.compare import comparison_dict
    from imiqsim.outputs.compare import write_comparison
    from imiqsim.outputs.trial import write_trial_outputs
    from imiqsim.trial import run_trial
    from imiqsim.trial.executors import MAX_WORKERS, validate_run

    if len(arms) < 2:
        raise InputError("arms", list(arms), "at least two arms to compare, e.g. ak-5pct ak-cryo")
    check_seed(seed)
    check_positive(patients, "--patients", 100_000)
    check_positive(workers, "--workers", MAX_WORKERS)
    uncertainty = check_uncertainty(uncertainty, patients)
    validate_run(
        arms,
        patients=patients,
        seed=seed,
        workers=workers,
        chunk_size=250,
        followup_years=followup_years,
        immunosuppressed_fraction=None,
    )
    with out_dir_option(out) as out_path:
        prog, cb = _progress_bar("comparing", quiet=False)
        with prog:
            tr = run_trial(
                arms,
                patients=patients,
                seed=seed,
                workers=workers,
                followup_years=followup_years,
                progress=cb,
                uncertainty=uncertainty,
            )
        d = comparison_dict(tr)
        written = []
        if out_path is not None:
            command = "imiqsim compare " + " ".join(arms) + f" --patients {patients} --seed {seed}"
            written = write_trial_outputs(tr, out_path) + write_comparison(tr, out_path, command)
    if json_out:
        if written:
            d["files"] = [str(p) for p in written]
        typer.echo(json.dumps(d, default=str))
        _exit_if_arm_failed(tr.to_dict())
        return
    from rich.console import Console
    from rich.table import Table

    t = Table(
        title=f"imiqsim compare ({patients} virtual patients per arm, seed {seed})", show_lines=True
    )
    t.add_column("feature")
    for a in tr.arms:
        t.add_column(a.name, overflow="fold")
    summary = tr.to_dict()
    t.add_row(
        "patients: n (failed)",
        *[f"{a['n']} ({a['failed_patients']} failed)" for a in summary["arms"]],
    )
    for r in d["rows"]:
        t.add_row(r["feature"], *[str(r[a.name]) for a in tr.arms])
    Console().print(t)
    for p in written:
        typer.echo(f"wrote {p}")
    typer.echo(DISCLAIMER)
    _exit_if_arm_failed(summary)


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
    out: str = typer.Option("out/field", "--out", help="Output directory (maps, PNG strip, GIF)."),
    no_gif: bool = typer.Option(False, "--no-gif", help="Skip the animation."),
):
    """Simulate the treated skin as a 2-D field of sites: maps of lesions, erythema and
    infiltrate over time."""
    from imiqsim.outputs.field import write_field_outputs
    from imiqsim.spatial.field import FieldSpec, simulate_field

    check_seed(seed)
    spec = FieldSpec(
        scenario=scenario, resolution_mm=resolution_mm, seed=seed, followup_days=followup_days
    )
    with out_dir_option(out) as out_path:
        _info(f"simulating the field at {resolution_mm:g} mm resolution ...")
        res = simulate_field(spec)
        written = write_field_outputs(res, out_path, gif=not no_gif, on_figure_error=_err)
    for p in written.values():
        typer.echo(f"wrote {p}")
    typer.echo(DISCLAIMER)


@app.command()
def demo(
    out: str = typer.Option("out/demo", "--out", help="Output directory."),
    patients: int = typer.Option(1000, "--patients", "-n", help="Virtual patients per arm."),
    workers: int = typer.Option(2, "--workers", help="Worker processes."),
):
    """The main job: a virtual trial of AK 5% (label regimen) against vehicle, with an HTML
    report."""
    from imiqsim.outputs.patient import write_patient_outputs
    from imiqsim.simulation import simulate as run
    from imiqsim.trial import run_trial
    from imiqsim.trial.executors import MAX_WORKERS

    check_positive(patients, "--patients", 100_000)
    check_positive(workers, "--workers", MAX_WORKERS)
    with out_dir_option(out) as out_path:
        single = run("ak-5pct")
        written = write_patient_outputs(single, out_path / "typical_patient", on_figure_error=_err)
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
            tr, out_path, f"imiqsim trial ak-5pct ak-5pct-vehicle --patients {patients} --seed 1"
        )
    out = out_path
    _print_trial(tr.to_dict())
    for p in written:
        typer.echo(f"wrote {p}")
    report = Path(out) / "report.html"
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
from imiqsim.calibration_cli import register as _register_calibration  # noqa: E402
from imiqsim.export.cli import register as _register_export  # noqa: E402

_register_analysis(app)
_register_calibration(app)
_register_export(export_app)


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``imiqsim`` executable; returns the exit code (module docstring)."""
    return int(app(args=argv, prog_name="imiqsim", standalone_mode=False))


if __name__ == "__main__":
    sys.exit(main())
