"""The ``imiqsim export omex`` command, registered on the CLI's ``export`` sub-app.

``imiqsim.cli`` wires it with::

    from imiqsim.export.cli import register as _register_export
    _register_export(export_app)
"""

from __future__ import annotations

from pathlib import Path

import typer

__all__ = ["register"]


def register(export_app: typer.Typer) -> None:
    """Add the ``omex`` command to the ``export`` sub-app.

    Parameters
    ----------
    export_app : typer.Typer
        The CLI's ``export`` group (``imiqsim.cli.export_app``).
    """

    @export_app.command("omex")
    def export_omex(
        scenario: str = typer.Argument(
            "ak-5pct", help="Preset or scenario file whose patient and dosing to export."
        ),
        out: Path = typer.Option(Path("model.omex"), "--out", help="Output COMBINE archive."),
        step_h: float = typer.Option(
            6.0, "--step-hours", help="Report interval of the SED-ML time course (hours, > 0)."
        ),
    ) -> None:
        """Write a COMBINE archive: SBML, a SED-ML time course (lesion burden, cytokines,
        LSR, serum drug) and the manifest."""
        from imiqsim.errors import InputError
        from imiqsim.export.omex import write_omex
        from imiqsim.scenario import resolve

        if not (step_h > 0):
            raise InputError("--step-hours", step_h, "a positive number of hours")
        sc = resolve(scenario)
        if step_h >= sc.assessment_time_h() - 0.5:
            raise InputError(
                "--step-hours",
                step_h,
                f"less than the course length to assessment ({sc.assessment_time_h():g} h)",
            )
        write_omex(sc, out, step_h=step_h)
        typer.echo(f"wrote {out}")
