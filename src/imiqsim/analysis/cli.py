"""The analysis commands: ``imiqsim sensitivity``, ``imiqsim scan``, ``imiqsim optimise``.

:func:`register` adds them to the main Typer app. Heavy imports (SALib, Optuna, the engine)
happen inside the commands, so ``imiqsim --help`` stays fast.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import typer

__all__ = ["optimise_command", "register", "scan_command", "sensitivity_command"]


def _split(values: list[str] | None) -> list[str]:
    """Repeated and comma-separated values, in order."""
    out: list[str] = []
    for v in values or []:
        out += [x.strip() for x in v.split(",") if x.strip()]
    return out


class _LazyProgress:
    """A rich progress bar on stderr that appears with the first point (so an input error
    found before any simulation prints only its one line)."""

    def __init__(self, label: str, quiet: bool) -> None:
        self.label, self.quiet, self.prog, self.task = label, quiet, None, None

    def __enter__(self) -> _LazyProgress:
        return self

    def __exit__(self, *exc: Any) -> None:
        if self.prog is not None:
            self.prog.stop()

    def __call__(self, *args: Any) -> None:
        if self.quiet:
            return
        if self.prog is None:
            from rich.console import Console
            from rich.progress import (
                BarColumn,
                MofNCompleteColumn,
                Progress,
                TextColumn,
                TimeElapsedColumn,
                TimeRemainingColumn,
            )

            self.prog = Progress(
                TextColumn("[bold]{task.description}"),
                BarColumn(),
                MofNCompleteColumn(),
                TimeElapsedColumn(),
                TimeRemainingColumn(),
                console=Console(stderr=True),
            )
            self.task = self.prog.add_task(self.label, total=None)
            self.prog.start()
        *stage, done, total = args
        if stage:
            self.prog.update(self.task, description=str(stage[0]))
        self.prog.update(self.task, completed=done, total=total)


def _progress(label: str, quiet: bool) -> tuple[_LazyProgress, _LazyProgress]:
    p = _LazyProgress(label, quiet)
    return p, p


def _write(res: Any, out: Path | None, json_out: bool, default: Any) -> list[Path] | None:
    """Write the result's files under ``out``; with ``--json`` print it (and return None)."""
    written = res.write(out) if out is not None else []
    if json_out:
        d = res.to_dict()
        d["files"] = [str(p) for p in written]
        typer.echo(json.dumps(d, default=default))
        return None
    return written


def _echo_files(paths: list[Path]) -> None:
    for p in paths:
        typer.echo(f"wrote {p}")


def _table(title: str, columns: list[str], rows: list[list[str]]) -> None:
    from rich.console import Console
    from rich.table import Table

    t = Table(title=title)
    for c in columns:
        t.add_column(c, overflow="fold")
    for r in rows:
        t.add_row(*r)
    Console().print(t)


def sensitivity_command(
    scenario: str = typer.Argument(..., help="Preset name or scenario .toml file."),
    method: str = typer.Option("morris", "--method", help="sobol or morris."),
    parameters: list[str] | None = typer.Option(
        None,
        "--parameters",
        help="Parameters to vary, comma-separated (default: every one with a default range).",
    ),
    module: list[str] | None = typer.Option(
        None, "--module", help="Only parameters of these stages (pk, tlr7, cytokines, ...)."
    ),
    output: list[str] | None = typer.Option(
        None,
        "--output",
        help="Outputs, comma-separated: endpoints or outcome columns (default complete_clearance).",
    ),
    trajectory: list[str] | None = typer.Option(
        None,
        "--trajectory",
        help="Time-resolved indices of these traces (lesion_burden, ifn_alpha, lsr_score, ...).",
    ),
    n: int | None = typer.Option(
        None,
        "--n",
        help="Sobol base samples (power of 2, default 64) or Morris trajectories "
        "(even, default 4).",
    ),
    patients: int = typer.Option(100, "--patients", help="Virtual patients per sample point."),
    seed: int = typer.Option(1, "--seed", help="Seed (the same virtual patients at every point)."),
    followup_years: float = typer.Option(
        0.0, "--followup-years", help="Follow-up after assessment (for recurrence outputs)."
    ),
    range_: list[str] | None = typer.Option(
        None, "--range", help="Range of one parameter: NAME=LO:HI[:log|logit|linear] (repeatable)."
    ),
    width: list[str] | None = typer.Option(
        None,
        "--width",
        help="Default range half-width by provenance, e.g. assumed=4 "
        "(literature, derived, calibrated, assumed).",
    ),
    include_switches: bool = typer.Option(
        False, "--include-switches", help="Vary switch parameters too."
    ),
    out: str | None = typer.Option(
        None, "--out", help="Directory for NetCDF, JSON, CSV and figures."
    ),
    workers: int = typer.Option(
        1,
        "--workers",
        help="Processes evaluating points side by side, one point per core, one pool for the "
        "whole run (1: this process, the engine's threads sharing each point). The numbers do "
        "not depend on it.",
    ),
    json_out: bool = typer.Option(False, "--json", help="Print the result as JSON."),
) -> None:
    """Global sensitivity (Sobol or Morris) of virtual-trial outputs to model parameters."""
    import numpy as np

    from imiqsim.analysis import _backend as be
    from imiqsim.analysis.factors import parse_range
    from imiqsim.analysis.sensitivity import MAIN_INDEX, sensitivity

    widths = {}
    for w in _split(width):
        k, sep, v = w.partition("=")
        try:
            widths[k.strip()] = float(v)
        except ValueError:
            raise be.InputError("--width", w, "PROVENANCE=FACTOR, e.g. assumed=4") from None
        if not sep:
            raise be.InputError("--width", w, "PROVENANCE=FACTOR, e.g. assumed=4")
    ranges = dict(parse_range(r) for r in range_ or [])
    names = _split(parameters) or None
    if module:
        from imiqsim.analysis.factors import parameter_table_rows

        rows = parameter_table_rows(scenario)
        mods = sorted({r["module"] for r in rows})
        wanted = _split(module)
        for m in wanted:
            if m not in mods:
                raise be.InputError("--module", m, f"one of {mods}")
        names = [
            r["name"]
            for r in rows
            if r["module"] in wanted and (names is None or r["name"] in names)
        ]
    outputs = _split(output) or ["complete_clearance"]
    from imiqsim.cli import out_dir_option

    with out_dir_option(out) as out_path:  # checked, created and locked up front
        prog, cb = _progress(f"{method}: sample points", quiet=json_out)
        with prog:
            res = sensitivity(
                scenario,
                method=method,
                parameters=names,
                outputs=outputs,
                trajectories=_split(trajectory),
                n=n,
                patients=patients,
                seed=seed,
                followup_years=followup_years,
                ranges=ranges,
                widths=widths,
                include_switches=include_switches,
                workers=workers,
                progress=cb,
            )
        written = _write(res, out_path, json_out, float)
        if written is None:
            return
        idx = MAIN_INDEX[res.method]
        tab = res.table()
        for o in outputs:
            sub = tab[tab["output"] == o].head(15)
            cols = ["S1", "ST"] if res.method == "sobol" else ["mu_star", "sigma"]
            rows = []
            for _, r in sub.iterrows():
                interval = (
                    f"{int(r['rank_low'])}-{int(r['rank_high'])}"
                    if np.isfinite(r["rank_low"])
                    else "n/a"
                )
                cells = [f"{int(r['rank'])}", interval, f"{r['p_top']:.2f}", r["parameter"]]
                for c in cols:
                    conf = r.get(f"{c}_conf")
                    cells.append(
                        f"{r[c]:.3g}"
                        + (
                            f" +/- {conf:.2g}"
                            if conf is not None and c in ("S1", "ST", "mu_star")
                            else ""
                        )
                    )
                rows.append(cells)
            top = int(res.dataset.attrs["top"])
            _table(
                f"{o}: strongest drivers ({idx})",
                ["rank", "90% interval", f"P(top {top})", "parameter", *cols],
                rows,
            )
        conv = res.convergence()
        for _, r in conv.iterrows():
            typer.echo(
                f"convergence {r['output']}: n {r['n_half']} -> {r['n']}, max change of "
                f"{r['index']} {r['max_abs_change']:.3g}, top 5 in common {r['top5_in_common']}"
            )
        typer.echo(res.dataset.attrs["rank_interval"])
        typer.echo(res.dataset.attrs["common_random_numbers"])
        if res.excluded:
            typer.echo(
                f"{len(res.excluded)} parameters left out (switches, scenario inputs, "
                "per-lesion values, zero nominal values): see the JSON output"
            )
        _echo_files(written)
        typer.echo(be.DISCLAIMER)


def scan_command(
    scenario: str = typer.Argument(..., help="Preset name or scenario .toml file."),
    set_: list[str] = typer.Option(
        ...,
        "--set",
        help="A scanned factor: NAME=LO:HI:N or NAME=a,b,c (repeatable; the grid "
        "is their product). Regimen fields: strength, applications_per_week, weeks, "
        "leave_on_hours, cycle_on_weeks, cycle_off_weeks, area_cm2; or any model parameter.",
    ),
    output: list[str] | None = typer.Option(
        None, "--output", help="Outputs, comma-separated (default complete_clearance)."
    ),
    patients: int = typer.Option(200, "--patients", help="Virtual patients per point."),
    seed: int = typer.Option(1, "--seed", help="Seed (the same virtual patients at every point)."),
    followup_years: float = typer.Option(
        0.0, "--followup-years", help="Follow-up after assessment."
    ),
    out: str | None = typer.Option(None, "--out", help="Directory for NetCDF, CSV, JSON, PNG."),
    workers: int = typer.Option(
        1,
        "--workers",
        help="Processes evaluating points side by side, one point per core, one pool for the "
        "whole run (1: this process, the engine's threads sharing each point). The numbers do "
        "not depend on it.",
    ),
    json_out: bool = typer.Option(False, "--json", help="Print the result as JSON."),
) -> None:
    """Scan parameters or regimen fields: a virtual trial with CIs at every grid point."""
    from imiqsim.analysis import _backend as be
    from imiqsim.analysis.scan import scan

    outputs = _split(output) or ["complete_clearance"]
    from imiqsim.cli import out_dir_option

    with out_dir_option(out) as out_path:  # checked, created and locked up front
        prog, cb = _progress("scan points", quiet=json_out)
        with prog:
            res = scan(
                scenario,
                list(set_),
                outputs=outputs,
                patients=patients,
                seed=seed,
                followup_years=followup_years,
                workers=workers,
                progress=cb,
            )
        written = _write(res, out_path, json_out, float)
        if written is None:
            return
        df = res.to_dataframe()
        rows = []
        for _, r in df.iterrows():
            rows.append(
                [
                    *(f"{r[f]:g}" for f in res.factors),
                    r["output"],
                    f"{r['value']:.3f} ({r['ci95_low']:.3f}-{r['ci95_high']:.3f})",
                ]
            )
        _table(
            f"scan of {res.dataset.attrs['scenario']}",
            [*res.factors, "output", "value (95% CI)"],
            rows,
        )
        typer.echo(res.dataset.attrs["common_random_numbers"])
        _echo_files(written)
        typer.echo(be.DISCLAIMER)


def optimise_command(
    target: str = typer.Argument(
        ..., help="Indication (AK, sBCC, EGW: its label preset) or a preset / scenario file."
    ),
    objective: str = typer.Option(
        "complete_clearance", "--objective", help="Endpoint to maximise."
    ),
    limit: list[str] | None = typer.Option(
        None,
        "--limit",
        help="Tolerability limit METRIC<=X or METRIC>=X (repeatable; default "
        "severe_erythema<=0.2 and rest_needed<=0.25).",
    ),
    space: list[str] | None = typer.Option(
        None,
        "--space",
        help="Searched regimen field NAME=LO..HI or NAME=a,b,c (repeatable; "
        "default applications_per_week=2..7, weeks=4..16, strength=2.5,3.75,5).",
    ),
    trials: int = typer.Option(40, "--trials", help="Candidate regimens to evaluate."),
    patients: int = typer.Option(100, "--patients", help="Virtual patients per candidate."),
    seed: int = typer.Option(1, "--seed", help="Search and trial seed."),
    validate_patients: int = typer.Option(
        500, "--validate-patients", help="Patients for re-evaluating the front."
    ),
    validate_seed: int | None = typer.Option(
        None, "--validate-seed", help="Fresh seed for the re-evaluation (seed + 1)."
    ),
    out: str | None = typer.Option(
        None, "--out", help="Directory for the report, JSON, CSV and figure."
    ),
    json_out: bool = typer.Option(False, "--json", help="Print the result as JSON."),
) -> None:
    """Search regimens: Pareto front of efficacy vs tolerability under limits (research use)."""
    from imiqsim.analysis.optimise import optimise

    kw: dict[str, Any] = {}
    if limit:
        kw["limits"] = list(limit)
    if space:
        kw["space"] = list(space)
    from imiqsim.cli import out_dir_option

    with out_dir_option(out) as out_path:  # checked, created and locked up front
        prog, cb = _progress("search", quiet=json_out)
        with prog:
            res = optimise(
                target,
                objective=objective,
                n_trials=trials,
                patients=patients,
                seed=seed,
                validate_patients=validate_patients,
                validate_seed=validate_seed,
                progress=cb,
                **kw,
            )
        written = _write(res, out_path, json_out, str)
        if written is None:
            return
        typer.echo(res.report())
        _echo_files(written)


def register(app: typer.Typer) -> None:
    """Add the three analysis commands to ``app``."""
    app.command("sensitivity")(sensitivity_command)
    app.command("scan")(scan_command)
    app.command("optimise")(optimise_command)
