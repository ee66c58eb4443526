"""The dashboard's pages and the server: ``imiqsim serve``.

One browser session is one :class:`Dashboard`: five tabs (Patient, Trial, Compare, Field, Model)
that share the session's edited and uploaded scenarios, so a scenario edited on the Patient page
can be an arm of a trial. ``?page=trial`` (or compare, field, model) opens a page directly.

Every run is a job in the shared :class:`~imiqsim.web.jobs.WorkerPool`; the page awaits it
without blocking the server, shows progress, and can cancel it. A bad form value is refused
before anything runs, with the CLI's message (:class:`imiqsim.errors.InputError`) under the
field; results already shown stay.
"""

from __future__ import annotations

import asyncio
import html
import io
import os
import sys
from collections.abc import Callable
from concurrent.futures import CancelledError
from typing import Any

import panel as pn

from imiqsim.web import backend, figures
from imiqsim.web.embed import BokehItem
from imiqsim.web.jobs import Job, WorkerPool

__all__ = ["Dashboard", "serve"]

PAGES = ("patient", "trial", "compare", "field", "model")
_MAX_OVERLAY = len(figures.SLOTS)  # patient runs kept for overlay

_CSS = """
.imiq-banner {background:#fff4f4;border:2px solid #b00;padding:4px 10px;border-radius:4px;}
.imiq-error {color:#b00000;font-size:13px;}
.imiq-status {font-size:13px;color:#333;}
table.imiq {border-collapse:collapse;font-size:13px;}
table.imiq td, table.imiq th {border:1px solid #ccc;padding:3px 7px;vertical-align:top;}
table.imiq th {background:#f3f3f3;text-align:left;}
table.imiq td.num {text-align:right;font-variant-numeric:tabular-nums;}
"""


def _table(
    header: list[str], rows: list[list[str]], css: str = "", numeric: bool | set[int] = True
) -> str:
    """An HTML table; ``numeric``: right-align every column but the first, or these columns."""
    head = "".join(f"<th>{html.escape(h)}</th>" for h in header)
    ncols = max((len(r) for r in rows), default=0)
    right = numeric if isinstance(numeric, set) else set(range(1, ncols)) if numeric else set()
    body = "".join(
        "<tr>"
        + "".join(
            f'<td class="{"num" if i in right else ""}">{html.escape(str(c))}</td>'
            for i, c in enumerate(r)
        )
        + "</tr>"
        for r in rows
    )
    return f'<table class="imiq {css}"><tr>{head}</tr>{body}</table>'


def _raw_json(element_id: str, text: str, what: str) -> str:
    return (
        f"<details><summary>{html.escape(what)}</summary>"
        f'<pre id="{element_id}" style="white-space:pre-wrap;font-size:11px">'
        f"{html.escape(text)}</pre></details>"
    )


def _fmt(v: Any) -> str:
    if isinstance(v, bool):
        return "yes" if v else "no"
    if isinstance(v, float):
        return f"{v:.4g}"
    return "-" if v is None else str(v)


class _Errors:
    """Message panes under form fields, keyed by the form key."""

    def __init__(self, keys: list[str]):
        self.panes = {
            k: pn.pane.HTML("", css_classes=["imiq-error", f"imiq-error-{k}"], visible=False)
            for k in keys
        }

    def clear(self) -> None:
        for p in self.panes.values():
            p.object, p.visible = "", False

    def show(self, key: str, message: str) -> None:
        pane = self.panes.get(key) or self.panes["general"]
        pane.object = f'<span class="imiq-message">{html.escape(message)}</span>'
        pane.visible = True


async def _await_job(job: Job, on_progress: Callable[[int, int], None] | None = None) -> Any:
    """Wait for a job without blocking the event loop, reporting progress."""
    fut = asyncio.wrap_future(job.future)
    while True:
        done, _ = await asyncio.wait([fut], timeout=0.25)
        if on_progress is not None:
            on_progress(*job.progress)
        if done:
            return fut.result()


class _Page:
    """Shared run/cancel/status plumbing of a page."""

    def __init__(self, dash: Dashboard, name: str):
        self.dash = dash
        self.name = name
        self.job: Job | None = None
        self.status = pn.pane.HTML("", css_classes=["imiq-status", f"imiq-status-{name}"])
        self.cancel_button = pn.widgets.Button(
            name="Cancel", button_type="warning", disabled=True, css_classes=["imiq-cancel"]
        )
        self.cancel_button.on_click(self._cancel)

    def set_status(self, text: str) -> None:
        self.status.object = f'<span class="imiq-status-text">{html.escape(text)}</span>'

    def _cancel(self, _event=None) -> None:
        if self.job is not None and self.job.cancel():
            self.set_status("cancelled; the results shown are from the last completed run")

    async def run_job(
        self, run_button, fn, *args, progress: Callable[[int, int], None] | None = None
    ):
        """Submit ``fn(*args)`` and await it; returns its result, or None if it did not finish."""
        self.job = self.dash.pool.submit(fn, *args)
        run_button.disabled = True
        self.cancel_button.disabled = False
        self.set_status("running ...")
        try:
            return await _await_job(self.job, progress)
        except CancelledError:
            self.set_status("cancelled; the results shown are from the last completed run")
        except backend.InputError as exc:
            self.on_input_error(exc)
            self.set_status("not run: see the message above")
        except Exception as exc:
            self.set_status(f"failed: {exc}".splitlines()[0])
        finally:
            run_button.disabled = False
            self.cancel_button.disabled = True
            self.job = None
        return None

    def on_input_error(self, exc: backend.InputError) -> None:
        self.errors.show("general", str(exc))

    def add_uploaded_scenario(self, event) -> str | None:
        """Validate an uploaded scenario file and add it to the session; its name, or None."""
        if not event.new:
            return None
        self.errors.clear()
        try:
            sc = backend.scenario_from_upload(self.upload.filename, event.new)
        except backend.InputError as exc:
            self.errors.show("upload", str(exc))
            return None
        return self.dash.add_scenario(sc, f"file:{self.upload.filename}")


# --------------------------------------------------------------------------- Patient


class PatientPage(_Page):
    """One typical patient: edit, run, overlay, download."""

    def __init__(self, dash: Dashboard):
        super().__init__(dash, "patient")
        self.base = backend.load_scenario_named("ak-5pct")
        self.runs: list[backend.PatientRun] = []
        self.traces: list[figures.Trace] = []
        self.n_runs = 0
        self.source = pn.widgets.Select(
            name="preset or uploaded scenario",
            options=dash.scenario_names(),
            value="ak-5pct",
            css_classes=["imiq-preset"],
        )
        self.source.param.watch(self._on_source, "value")
        self.upload = pn.widgets.FileInput(accept=".toml", css_classes=["imiq-upload"])
        self.upload.param.watch(self._on_upload, "value")
        self.description = pn.pane.HTML("", styles={"font-size": "12px"}, width=330)
        w: dict[str, Any] = {}
        w["product"] = pn.widgets.Select(name="product", options=list(backend.PRODUCT_NAMES))
        w["area_cm2"] = pn.widgets.FloatInput(name="treated area (cm2)")
        w["applications_per_week"] = pn.widgets.IntInput(name="applications per week")
        w["max_weeks"] = pn.widgets.FloatInput(name="weeks of treatment")
        w["cycle_on_weeks"] = pn.widgets.IntInput(name="cycle: weeks on (0 = no cycles)")
        w["cycle_off_weeks"] = pn.widgets.IntInput(name="cycle: weeks off")
        w["repeat_courses"] = pn.widgets.IntInput(name="repeat courses if not clear")
        w["leave_on_hours"] = pn.widgets.FloatInput(name="leave-on time (hours)")
        for k, widget in w.items():
            widget.css_classes = [f"imiq-{k}"]
            widget.width = 330
        self.form = w
        self.parameters = pn.widgets.TextAreaInput(
            name="parameters (NAME=VALUE per line; see the Model page)",
            placeholder="tlr7_ec50_ug_ml=3",
            height=70,
            width=330,
            css_classes=["imiq-parameters"],
        )
        self.knockouts = pn.widgets.CheckBoxGroup(
            name="knockouts",
            options=list(backend.KNOCKOUT_NAMES),
            value=[],
            inline=True,
            width=330,
            css_classes=["imiq-knockouts"],
        )
        self.errors = _Errors(list(w) + ["parameters", "knockouts", "upload", "general"])
        self.run_button = pn.widgets.Button(
            name="Run patient", button_type="primary", css_classes=["imiq-run"]
        )
        self.run_button.on_click(self._run)
        self.clear_button = pn.widgets.Button(name="Clear overlays", css_classes=["imiq-clear"])
        self.clear_button.on_click(self._clear)
        self.arm_button = pn.widgets.Button(
            name="Use as trial arm", disabled=True, css_classes=["imiq-use-arm"]
        )
        self.arm_button.on_click(self._use_as_arm)
        self.summary = pn.pane.HTML("", css_classes=["imiq-summary"], min_width=420)
        # the empty cascade is drawn with the page; a run only sends its numbers
        self.plots = BokehItem(
            item=figures.cascade_template(), css_classes=["imiq-plots"], min_height=1150, width=1180
        )
        self.overlay_note = pn.pane.HTML("", css_classes=["imiq-overlay-note"])
        self.downloads = pn.Row(
            *[
                pn.widgets.FileDownload(
                    callback=self._file_callback(name),
                    filename=name,
                    label=f"Download {name}",
                    disabled=True,
                    css_classes=[f"imiq-download-{name.replace('.', '-')}"],
                )
                for name in ("timecourse.nc", "timecourse.csv", "summary.json")
            ]
        )
        self._last_scenario = self.base
        self._fill_form(self.base)

    # ---------------------------------------------------------------- form

    def _fill_form(self, sc) -> None:
        values = backend.regimen_form(sc)
        for k, widget in self.form.items():
            v = values.get(k)
            widget.disabled = v is None
            if k == "product":
                options = list(backend.PRODUCT_NAMES)
                if v not in options:
                    options.append(v)
                widget.options = options
            if v is not None:
                widget.value = v
        self.description.object = html.escape(sc.describe())
        self.errors.clear()

    def _on_source(self, event) -> None:
        self.base = self.dash.scenario(event.new)
        self._fill_form(self.base)

    def _on_upload(self, event) -> None:
        name = self.add_uploaded_scenario(event)
        if name is not None:
            self.source.options = self.dash.scenario_names()
            self.source.value = name

    def _form_values(self) -> dict[str, Any]:
        return {k: w.value for k, w in self.form.items() if not w.disabled}

    def _error_key(self, exc: backend.InputError) -> str:
        f = exc.field
        if f.startswith("--set") or f.startswith("parameters"):
            return "parameters"
        if f.startswith("knockout"):
            return "knockouts"
        tail = f.split(".")[-1]
        return tail if tail in self.form else "general"

    def on_input_error(self, exc: backend.InputError) -> None:
        self.errors.show(self._error_key(exc), str(exc))

    # ---------------------------------------------------------------- actions

    def build_inputs(self):
        """The edited scenario, overrides and knockouts; raises InputError for a bad field."""
        sc = backend.edit_scenario(self.base, self._form_values())
        overrides = backend.parse_parameters(self.parameters.value)
        knockouts = list(self.knockouts.value)
        backend.check_patient_inputs(sc, overrides, knockouts)
        return sc, overrides, knockouts

    async def _run(self, _event=None) -> None:
        self.errors.clear()
        try:
            sc, overrides, knockouts = self.build_inputs()
        except backend.InputError as exc:
            self.on_input_error(exc)
            self.set_status("not run: see the message next to the field")
            return
        self.n_runs += 1
        label = f"run {self.n_runs}: {sc.name}"
        if knockouts:
            label += " KO " + "+".join(knockouts)
        if overrides:
            label += " " + ", ".join(f"{k}={v:g}" for k, v in overrides.items())
        out = await self.run_job(
            self.run_button, figures.patient_job, sc, overrides, knockouts, label
        )
        if out is None:
            return
        run, trace = out
        self._last_scenario = sc
        self.runs = (self.runs + [run])[-_MAX_OVERLAY:]
        self.traces = (self.traces + [trace])[-_MAX_OVERLAY:]
        self._show(plots=False)
        self.set_status(
            f"done: {label}"
            + (f" (overlaid on {len(self.runs) - 1} earlier)" if len(self.runs) > 1 else "")
            + "".join(f"; warning: {w}" for w in run.warnings)
        )
        await asyncio.sleep(0)  # the numbers reach the browser first, then the curves to draw
        self._show_plots()

    def _clear(self, _event=None) -> None:
        if len(self.runs) > 1:
            self.runs, self.traces = self.runs[-1:], self.traces[-1:]
            self._show()
            self.set_status(f"showing {self.runs[-1].label} alone")

    def _use_as_arm(self, _event=None) -> None:
        name = self.dash.add_scenario(self._last_scenario, self._last_scenario.name)
        self.set_status(f"{name} added to the trial and compare arms")

    def _show(self, plots: bool = True) -> None:
        run = self.runs[-1]
        s = run.summary
        rows = [
            ["scenario", s["scenario"]],
            ["days simulated", f"{s['days']:.0f}"],
            ["visible lesions initial -> final",
             f"{s['visible_lesions_initial']} -> {s['visible_lesions_final']}"],
            ["lesion burden (cells) initial -> final",
             f"{s['lesion_burden_initial']:.4g} -> {s['lesion_burden_final']:.4g}"],
            ["cleared (no visible lesion)", _fmt(s["lesion_cleared"])],
            ["time to clearance (days)", _fmt(s["time_to_clearance_days"])],
            ["histologically clear", _fmt(s["histologically_clear"])],
            ["applications given (skipped for rest)",
             f"{s['applications_given']} ({s['doses_skipped_for_rest']})"],
            ["serum Cmax (ng/mL)", _fmt(s["serum_cmax_ng_ml"])],
            ["urine (fraction of applied)", _fmt(s["urine_fraction_of_applied"])],
            *[[f"peak local {c} (pg/mL)", _fmt(v)] for c, v in s["peak"].items()],
            ["LSR max (0-18)", _fmt(s["lsr_max"])],
            ["flu-like symptom probability", _fmt(s["flu_like_probability"])],
            ["memory T cells at end (cells/uL)", _fmt(s["memory_t_cells_final"])],
        ]  # fmt: skip
        self.summary.object = (
            f"<b>{html.escape(run.label)}</b>"
            + _table(["outcome", "value"], rows, "imiq-summary-table")
            + _raw_json(
                "patient-json", run.summary_json, "summary JSON (= imiqsim simulate --json)"
            )
        )
        for d in self.downloads:
            d.disabled = False
        self.arm_button.disabled = False
        if plots:
            self._show_plots()

    def _show_plots(self) -> None:
        self.plots.payload = figures.cascade_payload(self.traces)
        styles = [slot for slot, *_ in figures.SLOTS]
        legend = "; ".join(
            f"{style}: {t.label}" for style, t in zip(styles, self.traces[::-1], strict=False)
        )
        self.overlay_note.object = html.escape(f"lines — {legend}")

    def _file_callback(self, name: str):
        def make():
            return io.BytesIO(backend.patient_files(self.runs[-1])[name])

        return make

    def view(self):
        e = self.errors.panes
        fields = []
        for k, widget in self.form.items():
            fields += [widget, e[k]]
        left = pn.Column(
            self.source,
            pn.pane.HTML("<small>or upload a scenario file (.toml)</small>"),
            self.upload,
            e["upload"],
            self.description,
            *fields,
            self.parameters,
            e["parameters"],
            pn.pane.HTML("<small>knockouts / depletions</small>"),
            self.knockouts,
            e["knockouts"],
            pn.Row(self.run_button, self.cancel_button),
            e["general"],
            self.status,
            pn.Row(self.clear_button, self.arm_button),
            width=350,
        )
        return pn.Row(left, pn.Column(self.summary, self.downloads, self.overlay_note, self.plots))


# --------------------------------------------------------------------------- Trial and Compare


class TrialPage(_Page):
    """A virtual trial (or, with ``compare``, the side-by-side comparison table)."""

    def __init__(self, dash: Dashboard, compare: bool = False):
        super().__init__(dash, "compare" if compare else "trial")
        self.compare = compare
        self.result: backend.TrialRun | None = None
        self.n_runs = 0
        default = ["ak-5pct", "ak-cryo"] if compare else ["ak-5pct", "ak-5pct-vehicle"]
        self.arms = pn.widgets.MultiChoice(
            name="arms (presets, uploaded or edited scenarios)",
            options=dash.scenario_names(),
            value=default,
            width=330,
            css_classes=["imiq-arms"],
        )
        self.upload = pn.widgets.FileInput(accept=".toml", css_classes=["imiq-upload"])
        self.upload.param.watch(self._on_upload, "value")
        self.patients = pn.widgets.IntInput(
            name="virtual patients per arm", value=200, width=330, css_classes=["imiq-patients"]
        )
        self.seed = pn.widgets.IntInput(name="seed", value=1, width=330, css_classes=["imiq-seed"])
        self.followup = pn.widgets.FloatInput(
            name="follow-up after assessment (years)",
            value=1.0,
            width=330,
            css_classes=["imiq-followup"],
        )
        self.errors = _Errors(["arms", "patients", "seed", "followup", "upload", "general"])
        self.progress = pn.indicators.Progress(
            name="progress", value=0, max=1, width=330, css_classes=["imiq-progress"]
        )
        self.run_button = pn.widgets.Button(
            name="Run comparison" if compare else "Run trial",
            button_type="primary",
            css_classes=["imiq-run"],
        )
        self.run_button.on_click(self._run)
        self.table = pn.pane.HTML(
            "<i>Choose arms and run.</i>",
            css_classes=["imiq-endpoints"],
            min_width=600,
            max_width=1150,
        )
        self.figures = pn.Column()
        self.downloads = pn.Row()
        if not compare:
            self.downloads.objects = [
                pn.widgets.FileDownload(
                    callback=self._file_callback(name),
                    filename=name,
                    label=f"Download {name}",
                    disabled=True,
                    css_classes=[f"imiq-download-{name.replace('.', '-')}"],
                )
                for name in ("outcomes.parquet", "report.html")
            ]
        dash.on_scenarios(self._refresh_arms)

    def _refresh_arms(self) -> None:
        self.arms.options = self.dash.scenario_names()

    def _on_upload(self, event) -> None:
        name = self.add_uploaded_scenario(event)
        if name is not None:
            self.arms.value = [*self.arms.value, name]

    def on_input_error(self, exc: backend.InputError) -> None:
        key = {"--seed": "seed", "followup_years": "followup"}.get(exc.field, exc.field)
        self.errors.show(key, str(exc))

    def _progress(self, done: int, total: int) -> None:
        if total:
            self.progress.max = total
            self.progress.value = min(done, total)

    async def _run(self, _event=None) -> None:
        self.errors.clear()
        self.n_runs += 1
        serial = self.n_runs
        arms = list(self.arms.value)
        try:
            scs = [a if a in self.dash.presets else self.dash.scenario(a) for a in arms]
            backend.check_trial_inputs(scs, self.seed.value, self.compare)
        except backend.InputError as exc:
            self.on_input_error(exc)
            self.set_status("not run: see the message next to the field")
            return
        self.progress.value, self.progress.max = 0, 1
        out = await self.run_job(
            self.run_button,
            figures.trial_job,
            scs,
            self.patients.value,
            self.seed.value,
            float("nan") if self.followup.value is None else self.followup.value,
            self.compare,
            progress=self._progress,
        )
        if out is None:
            return
        res, bands, fall = out
        self.result = res
        self._show(bands, fall)
        n = res.summary["n_patients_per_arm"]
        done = f"done: {len(arms)} arms x {n} virtual patients, seed {res.summary['seed']}"
        if self.compare:
            self.set_status(done)
            return
        self.set_status(done + "; writing the HTML report ...")
        self.report_job = self.dash.pool.submit(backend.trial_report_job, res)
        # The report finishes seconds later; by then a newer run may have been started (and
        # perhaps cancelled). The report still belongs to the result on show, but the status
        # line then describes the newer run and must not be overwritten.
        try:
            report = await _await_job(self.report_job)
        except Exception as exc:  # cancelled, or the report failed: the data stay
            if serial == self.n_runs:
                self.set_status(done + f"; no HTML report ({type(exc).__name__})")
            return
        if self.result is res:
            res.files["report.html"] = report
            self.downloads[1].disabled = False
            if serial == self.n_runs:
                self.set_status(done + "; report ready")

    def _show(self, bands: str | None, fall: str | None) -> None:
        res = self.result
        names = [a["name"] for a in res.summary["arms"]]
        if self.compare:
            rows = [[r["feature"], *[r[n] for n in names]] for r in res.rows]
            self.table.object = (
                _table(["feature", *names], rows, "imiq-compare-table", numeric=False)
                + "<p><small>Percentages: simulated proportion (Wilson 95% CI); the same virtual "
                "patients in every arm.</small></p>"
                + _raw_json("compare-json", res.summary_json, "JSON (= imiqsim compare --json)")
            )
        else:
            eps = list(res.summary["arms"][0]["endpoints"])
            rows = [
                [backend.endpoint_label(k)]
                + [backend.format_endpoint(k, a["endpoints"][k]) for a in res.summary["arms"]]
                for k in eps
            ]
            parts = [_table(["endpoint (95% CI)", *names], rows, "imiq-endpoint-table")]
            for d in res.summary["differences"]:
                drows = [
                    [backend.endpoint_label(k), backend.format_difference(v)]
                    for k, v in d["endpoints"].items()
                ]
                title = f"{d['arms'][0]} minus {d['arms'][1]}"
                parts.append(f"<h4>{html.escape(title)}</h4>")
                parts.append(_table(["endpoint", "difference (Newcombe 95% CI)"], drows))
            parts.append(
                _raw_json("trial-json", res.summary_json, "endpoints JSON (= imiqsim trial --json)")
            )
            self.table.object = "".join(parts)
            n_rows = (len(names) + 1) // 2
            self.figures.objects = [
                pn.pane.HTML("<h3>Percentile bands (5-95%, 25-75%, median)</h3>"),
                BokehItem(item=bands, min_height=760, width=1180),
                pn.pane.HTML("<h3>Per-patient waterfall</h3>"),
                BokehItem(item=fall, min_height=270 * n_rows + 10, width=1180),
            ]
            self.downloads[0].disabled = False
            self.downloads[1].disabled = True

    def _file_callback(self, name: str):
        def make():
            return io.BytesIO(self.result.files[name])

        return make

    def view(self):
        e = self.errors.panes
        left = pn.Column(
            self.arms,
            e["arms"],
            pn.pane.HTML("<small>add an arm from a scenario file (.toml)</small>"),
            self.upload,
            e["upload"],
            self.patients,
            e["patients"],
            self.seed,
            e["seed"],
            self.followup,
            e["followup"],
            pn.Row(self.run_button, self.cancel_button),
            e["general"],
            self.progress,
            self.status,
            width=350,
        )
        return pn.Row(left, pn.Column(self.table, self.downloads, self.figures))


# --------------------------------------------------------------------------- Field


class FieldPage(_Page):
    """The skin field's maps over time."""

    def __init__(self, dash: Dashboard):
        super().__init__(dash, "field")
        self.result: backend.FieldRun | None = None
        self.scenario = pn.widgets.Select(
            name="scenario", options=dash.scenario_names(), value="ak-5pct", width=330
        )
        dash.on_scenarios(lambda: setattr(self.scenario, "options", dash.scenario_names()))
        self.resolution = pn.widgets.FloatInput(
            name="grid spacing (mm)", value=2.5, width=330, css_classes=["imiq-resolution"]
        )
        self.followup = pn.widgets.FloatInput(
            name="follow-up after assessment (days)", value=365.0, width=330
        )
        self.seed = pn.widgets.IntInput(name="lesion placement seed", value=0, width=330)
        self.errors = _Errors(["resolution", "general"])
        self.run_button = pn.widgets.Button(
            name="Run field", button_type="primary", css_classes=["imiq-run"]
        )
        self.run_button.on_click(self._run)
        self.variable = pn.widgets.Select(
            name="map",
            options={label: v for v, label in backend.FIELD_VARIABLES},
            value="lesion_cells",
            width=330,
        )
        self.time = pn.widgets.IntSlider(
            name="time (map index)", start=0, end=1, value=0, width=600, css_classes=["imiq-time"]
        )
        self.variable.param.watch(lambda e: self._draw(), "value")
        self.time.param.watch(self._on_time, "value")
        self.map = pn.Column(pn.pane.HTML("<i>Run a field to see its maps.</i>"))
        self.lesions = pn.pane.HTML("", css_classes=["imiq-lesions"])
        self._src = None
        self._fig = None

    def on_input_error(self, exc: backend.InputError) -> None:
        key = "resolution" if "resolution" in exc.field else "general"
        self.errors.show(key, str(exc))

    async def _run(self, _event=None) -> None:
        self.errors.clear()
        name = self.scenario.value
        sc = name if name in self.dash.presets else self.dash.scenario(name)
        res = await self.run_job(
            self.run_button,
            backend.run_field_job,
            sc,
            self.resolution.value,
            self.seed.value,
            self.followup.value,
        )
        if res is None:
            return
        self.result = res
        n = res.maps.sizes["time"]
        self.time.end = max(n - 1, 1)
        self.time.value = 0
        self._draw()
        lt = res.lesions
        cols = [c for c in lt.columns][:10]
        rows = [[_fmt(v) for v in r] for r in lt[cols].itertuples(index=False)]
        keys = ", ".join(
            f"{k.replace('_', ' ')} day {v:.0f}" for k, v in res.key_times_days.items()
        )
        self.lesions.object = f"<p><small>{html.escape(keys)}</small></p>" + _table(cols, rows)
        self.set_status(
            f"done: {res.maps.attrs.get('n_sites', '?')} sites at {self.resolution.value:g} mm"
        )

    def _draw(self) -> None:
        if self.result is None:
            return
        fig, src = figures.field_figure(self.result, self.variable.value, self.time.value)
        self._fig, self._src = fig, src
        self.map.objects = [pn.pane.Bokeh(fig)]
        self._label()

    def _label(self) -> None:
        day = float(self.result.maps["time"].values[self.time.value])
        self.time.name = f"time: day {day:.0f}"

    def _on_time(self, event) -> None:
        if self.result is None or self._src is None:
            return
        k = int(event.new)
        var = self.variable.value
        self._src.data = {"image": [self.result.maps[var].values[k].astype(float)]}
        day = float(self.result.maps["time"].values[k])
        self._fig.title.text = f"{dict(backend.FIELD_VARIABLES)[var]}, day {day:.0f}"
        self._label()

    def view(self):
        left = pn.Column(
            self.scenario,
            self.resolution,
            self.errors.panes["resolution"],
            self.followup,
            self.seed,
            pn.Row(self.run_button, self.cancel_button),
            self.errors.panes["general"],
            self.status,
            self.variable,
            width=350,
        )
        return pn.Row(left, pn.Column(self.time, self.map, self.lesions))


# --------------------------------------------------------------------------- Model


class ModelPage:
    """The equations and the searchable parameter table with provenance."""

    COLUMNS = ("name", "value", "unit", "module", "status", "source", "description")

    def __init__(self, dash: Dashboard):
        self.rows = backend.parameter_rows()
        self.search = pn.widgets.TextInput(
            name="search parameters (name, module, description, source)",
            placeholder="e.g. tlr7",
            width=420,
            css_classes=["imiq-search"],
        )
        self.table = pn.pane.HTML("", css_classes=["imiq-params"])
        self.search.param.watch(lambda e: self._filter(e.new), "value_input")
        self._filter("")
        self.equations = pn.pane.Markdown(
            backend.equations_markdown(), css_classes=["imiq-equations"], width=1100
        )

    def _filter(self, text: str) -> None:
        q = (text or "").strip().lower()
        rows = [r for r in self.rows if not q or any(q in str(r[c]).lower() for c in self.COLUMNS)]
        cells = [[_fmt(r[c]) if c == "value" else str(r[c]) for c in self.COLUMNS] for r in rows]
        self.table.object = f"<p>{len(rows)} of {len(self.rows)} parameters</p>" + _table(
            list(self.COLUMNS), cells, "imiq-param-table"
        )

    def view(self):
        return pn.Tabs(
            ("Parameters", pn.Column(self.search, self.table)),
            ("Equations", self.equations),
            dynamic=True,
        )


# --------------------------------------------------------------------------- the session


class Dashboard:
    """One browser session: the five pages and the session's scenarios.

    A page is built when its tab is first opened (the first one once the browser has
    connected), so answering a page request costs the server little.
    """

    def __init__(self, pool: WorkerPool):
        self.pool = pool
        self.presets = backend.preset_names()
        self.extra: dict[str, Any] = {}
        self._listeners: list[Callable[[], None]] = []
        self.pages: dict[str, Any] = {}
        self._slots = {name: pn.Column(pn.pane.HTML("<i>loading ...</i>")) for name in PAGES}

    # scenarios shared by the pages of this session
    def scenario_names(self) -> list[str]:
        return self.presets + list(self.extra)

    def scenario(self, name: str):
        if name in self.extra:
            return self.extra[name]
        return backend.load_scenario_named(name)

    def add_scenario(self, sc, name: str) -> str:
        base, k = name, 2
        while name in self.presets or (name in self.extra and self.extra[name] is not sc):
            name, k = f"{base}#{k}", k + 1
        self.extra[name] = sc.with_overrides(name=name) if sc.name != name else sc
        for f in self._listeners:
            f()
        return name

    def on_scenarios(self, fn: Callable[[], None]) -> None:
        self._listeners.append(fn)

    def page(self, name: str):
        """The page object of ``name`` (one of :data:`PAGES`), built on first use."""
        if name not in self.pages:
            make = {
                "patient": lambda: PatientPage(self),
                "trial": lambda: TrialPage(self),
                "compare": lambda: TrialPage(self, compare=True),
                "field": lambda: FieldPage(self),
                "model": lambda: ModelPage(self),
            }[name]
            self.pages[name] = make()
            self._slots[name].objects = [self.pages[name].view()]
        return self.pages[name]

    def _on_tab(self, event) -> None:
        self.page(PAGES[event.new])

    def view(self):
        header = pn.Row(
            pn.pane.HTML("<h2 style='margin:4px 0'>imiqsim dashboard</h2>"),
            pn.pane.HTML(
                f"<div class='imiq-banner'><b>Not a medical device.</b> "
                f"{html.escape(backend.DISCLAIMER)}</div>",
                width=760,
            ),
        )
        requested = (pn.state.session_args.get("page") or [b"patient"])[0].decode()
        active = PAGES.index(requested) if requested in PAGES else 0
        # the page request gets this light shell at once; the page itself is built when the
        # browser has connected, so a page request stays fast while other sessions run
        pn.state.onload(lambda: self.page(PAGES[active]))
        tabs = pn.Tabs(
            *[(name.capitalize(), self._slots[name]) for name in PAGES],
            dynamic=True,
            active=active,
            css_classes=["imiq-tabs"],
        )
        tabs.param.watch(self._on_tab, "active")
        footer = pn.pane.HTML(f"<small>{html.escape(backend.FOOTER)}</small>")
        return pn.Column(header, tabs, footer)


def serve(
    host: str = "127.0.0.1",
    port: int = 5006,
    workers: int | None = None,
    show: bool = False,
) -> None:
    """Start the dashboard and block until interrupted.

    Parameters
    ----------
    host : str
        Interface to bind; the default serves this machine only.
    port : int
        TCP port.
    workers : int, optional
        Simulation worker processes; default: the number of CPU cores (at most 8).
    show : bool
        Open a browser tab.
    """
    if not isinstance(port, int) or not 0 < port < 65536:
        raise backend.InputError("--port", port, "a TCP port from 1 to 65535")
    n = workers if workers is not None else max(1, min(os.cpu_count() or 1, 8))
    pool = WorkerPool(n, warm_up=figures.warm_up)
    figures.cascade_template()  # built once, shared by every session
    pn.extension(raw_css=[_CSS], notifications=False)
    origins = [f"{h}:{port}" for h in ("127.0.0.1", "localhost", host)]
    if host in ("0.0.0.0", "::"):
        origins = ["*"]
    server = pn.serve(
        {"/": lambda: Dashboard(pool).view()},
        port=port,
        address=host,
        websocket_origin=origins,
        show=show,
        start=False,
        title="imiqsim dashboard",
        verbose=False,
    )
    print(f"imiqsim dashboard: http://{host}:{port}/ ({n} workers)", file=sys.stderr, flush=True)
    print(backend.DISCLAIMER, file=sys.stderr, flush=True)
    try:
        server.start()
        server.io_loop.start()
    except KeyboardInterrupt:
        pass
    finally:
        pool.close()
