"""The field's time loop: operator splitting of lateral diffusion and the coupled reaction step.

Strang splitting per coupling step ``dt``: half a step of lateral diffusion
(:mod:`imiqsim.spatial.diffusion`), the reaction step (all sites' local
states and the shared pools integrated from t to t+dt as one coupled system,
one adaptive step size, :mod:`imiqsim.spatial._kernels`), half a step of
diffusion. Coupling steps end exactly at dose events, outputs and map times.
Sites whose states agree are integrated once (site grouping, ``group_tol``).
See :mod:`imiqsim.spatial.field` for the method and its assumptions.
"""

from __future__ import annotations

import math
import time

import numpy as np

from imiqsim.engine.codegen import compiled
from imiqsim.engine.policy import dose_decision
from imiqsim.errors import ImiqsimError, InputError
from imiqsim.model import Model, get_model
from imiqsim.model.lesions import N_SLOTS, slot_names
from imiqsim.spatial import diffusion as _diff
from imiqsim.spatial._kernels import field_kernels
from imiqsim.spatial.layout import FieldLayout, build_layout
from imiqsim.spatial.results import FieldResult, Recorder, assemble
from imiqsim.spatial.site_events import FieldState, apply_event, build_masks, event_list, mask_for
from imiqsim.spatial.spec import FieldSpec
from imiqsim.vocabulary import (
    CHECK,
    HOURS_PER_DAY,
    STATUS_OK,
    STATUS_TEXT,
    WASH,
)

__all__ = ["FieldIntegrator", "FieldSimulationFailed", "key_times", "simulate_field", "time_grid"]

#: running maxima kept per site (sampled at every accepted integrator step, like run_batch's peaks)
TRACKED = ("lsr_score", "erythema_score", "skin_conc_ug_ml", "pigment_loss")
#: integrate the group leaders in parallel (Numba threads) only when there are at least this many
PARALLEL_MIN_LEADERS = 512
#: integrator limits (as run_batch: h_max 12 h)
H_MAX = 12.0
MAX_STEPS_PER_COUPLING = 1_000_000


class FieldSimulationFailed(ImiqsimError):
    """A grid site could not be integrated (status code other than ok)."""


def key_times(spec: FieldSpec, t_end: float) -> dict[str, float]:
    """Times (h) of the key maps: baseline, mid/end of treatment, assessment, end of follow-up."""
    sc = spec.scenario_obj
    ev = sc.events()
    last_apply = ev.last_application_h()
    washes = ev.times_of(WASH)
    out = {"baseline": 0.0}
    # end of treatment: 1 h after the last wash-off (or freeze), so the map shows the state after it
    if math.isfinite(last_apply):
        out["mid_treatment"] = round(last_apply / 2.0)
        out["end_of_treatment"] = (float(washes.max()) if washes.size else last_apply) + 1.0
    elif len(ev):  # e.g. cryotherapy: freeze sessions only
        out["mid_treatment"] = round(ev.end_h() / 2.0)
        out["end_of_treatment"] = ev.end_h() + 1.0
    out["assessment"] = sc.assessment_time_h()
    out["end_of_followup"] = t_end
    return {k: min(float(v), t_end) for k, v in out.items()}


def time_grid(every: float, t_end: float, extra) -> np.ndarray:
    """Every ``every`` hours from 0 to ``t_end``, plus the ``extra`` times and ``t_end``."""
    t = np.arange(0.0, t_end, every)
    return np.unique(np.concatenate([t, np.asarray(list(extra), dtype=float), [t_end]]))


class FieldIntegrator:
    """The splitting loop's state and one coupling step; one instance per simulation."""

    def __init__(self, spec: FieldSpec, model: Model, layout: FieldLayout):
        self.spec, self.model, self.layout = spec, model, layout
        self.kern = field_kernels(model)
        self.gen = compiled(model)
        si = model.state_index
        self.N = layout.n_sites
        self.S = len(model.states)
        self.cls = np.ascontiguousarray(layout.site_class)
        self.PC = layout.class_parameters
        y0c = np.zeros((self.PC.shape[0], self.S))
        for c in range(self.PC.shape[0]):
            self.gen.initial(self.PC[c], y0c[c])
        self.Y = np.ascontiguousarray(y0c[self.cls])
        shared = set(spec.shared_states)
        self.sys_idx = np.array(
            [i for i, st in enumerate(model.states) if st.systemic or st.name in shared],
            dtype=np.int64,
        )
        self.shared_names = frozenset(model.states[i].name for i in self.sys_idx)
        self.g = self.Y[:, self.sys_idx].mean(axis=0)
        self.Y[:, self.sys_idx] = self.g
        self.atol = np.array([st.scale for st in model.states]) * float(spec.atol_factor)
        # states in the step-size error norm: a stage inert without this schedule's kinds stays out
        self.norm_idx = model.error_norm_states([e.kind for e in event_list(spec)])
        self.rtol = float(spec.rtol)
        # shared step size of the lock-step integrator (reset at events, as run_batch does)
        self.h = 0.01
        self.all_cols = np.arange(self.S, dtype=np.int64)
        self.lesion_cols = np.array([si(n) for n in slot_names(N_SLOTS)], dtype=np.int64)
        self.oi = model.observable_index
        self.n_obs = len(model.observables)
        # lateral transport
        coef = _diff.coefficient_table(dict(spec.diffusion))
        cols, ds = [], []
        if spec.diffusion_enabled and self.N > 1:
            for name, um2 in coef.items():
                if name in model.state_names and um2 > 0 and si(name) not in self.sys_idx:
                    cols.append(si(name))
                    ds.append(um2 * _diff.UM2_PER_MIN_TO_MM2_PER_H)
        self.diff_cols = np.array(cols, dtype=np.int64)
        self.diff_D = np.array(ds, dtype=float)
        # grouping state
        self.arange = np.arange(self.N, dtype=np.int64)
        self.lead = self.arange.copy()  # site index of each site's group leader
        self.pos = np.zeros(self.N, dtype=np.int64)
        self.leader_of = np.empty(
            self.N, dtype=np.int64
        )  # position of the leader in the leader list
        self.equal = np.ones(self.N, dtype=np.bool_)
        # running maxima per site, sampled at every accepted integrator step (as run_batch's peaks)
        names = [n for n in TRACKED if n in model.state_names or n in model.observable_names]
        self.tracked = tuple(names)
        self.track_idx = np.array(
            [si(n) if n in model.state_names else self.S + self.oi(n) for n in names],
            dtype=np.int64,
        )
        obs0 = np.empty((self.PC.shape[0], self.n_obs))
        for c in range(self.PC.shape[0]):
            self.gen.observables(y0c[c], self.PC[c], obs0[c])
        full0 = np.concatenate([y0c, obs0], axis=1)
        self.peak = np.ascontiguousarray(full0[self.cls][:, self.track_idx])
        # scratch
        self._mn = np.empty(self.S)
        self._mx = np.empty(self.S)
        # diagnostics
        self.n_couplings = 0
        self.leaders_total = 0
        self.leaders_max = 0
        self.rx_steps = 0
        self.site_steps = 0
        self.diffused_columns = 0

    # ---------------------------------------------------------------- grouping
    def _stats(self) -> tuple[np.ndarray | None, np.ndarray]:
        """(grouping widths or None, spread of each diffusing column), one pass over the states."""
        _diff.column_range(self.Y, self.all_cols, self._mn, self._mx)
        spread = (self._mx - self._mn)[self.diff_cols]
        tol = self.spec.group_tol
        if tol is None:
            return None, spread
        if tol == 0:
            return np.zeros(self.S), spread
        amax = np.maximum(np.abs(self._mn), np.abs(self._mx))
        return float(tol) * (self.atol + self.rtol * amax), spread

    def group(self, w: np.ndarray | None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(leaders, leader_of, equal) for the current states.

        Groups are sticky: a member stays with its leader while it is within
        tolerance (members take the leader's increments, so their offset only
        changes by diffusion and events); leaders that come within tolerance
        of each other are merged.
        """
        if w is None:
            self.leader_of[:] = self.arange
            self.equal[:] = True
            return self.arange, self.leader_of, self.equal
        self.kern.verify_members(self.Y, self.cls, w, self.lead, self.equal)
        if self.kern.merge_leaders(self.Y, self.Y.view(np.int64), self.cls, w, self.lead) > 0:
            self.kern.verify_members(self.Y, self.cls, w, self.lead, self.equal)
        leaders = np.flatnonzero(self.lead == self.arange)
        self.pos[leaders] = np.arange(leaders.size)
        np.take(self.pos, self.lead, out=self.leader_of)
        return leaders, self.leader_of, self.equal

    def site_observables(self, names) -> tuple[dict[str, np.ndarray], np.ndarray]:
        """Per-site values of some observables (computed once per group), the leaders' vectors."""
        leaders, leader_of, _ = self.group(self._stats()[0])
        out = np.empty((leaders.size, self.n_obs))
        self.kern.leader_observables(self.Y, leaders, self.cls, self.PC, out)
        return {nm: out[leader_of, self.oi(nm)] for nm in names}, out

    # ---------------------------------------------------------------- one coupling step
    def has_gradient(self, w: np.ndarray | None, spread: np.ndarray) -> bool:
        """Is there any lateral gradient for diffusion to act on (beyond the grouping tolerance)?"""
        if spread.size == 0:
            return False
        if w is None or not np.any(w):
            return bool(np.any(spread > 0))
        return bool(np.any(spread > w[self.diff_cols]))

    def diffuse(self, dt: float, w: np.ndarray | None, spread: np.ndarray | None = None) -> None:
        if self.diff_cols.size == 0 or dt <= 0:
            return
        skip = None if (w is None or not np.any(w)) else w[self.diff_cols]
        self.diffused_columns += _diff.diffusion_step(
            self.Y,
            self.diff_cols,
            self.diff_D,
            dt,
            self.layout.ny,
            self.layout.nx,
            self.layout.dx_mm,
            skip,
            spread,
        )

    def couple(self, t0: float, t1: float, w: np.ndarray | None, spread: np.ndarray) -> None:
        """Strang step: diffusion dt/2, coupled reaction dt, diffusion dt/2.

        ``w`` and ``spread`` are those of ``_stats`` at ``t0``.
        """
        dt = t1 - t0
        self.diffuse(0.5 * dt, w, spread)
        leaders, leader_of, equal = self.group(w)
        nl = leaders.size
        YL_old = np.empty((nl, self.S))
        YL_new = np.empty((nl, self.S))
        enorms = np.empty(nl)
        TM = np.empty((nl, self.track_idx.size))
        wts = np.bincount(leader_of, minlength=nl).astype(float) / self.N
        status, self.h, nsteps = self.kern.react(
            self.Y,
            leaders,
            self.cls,
            self.PC,
            wts,
            self.sys_idx,
            self.h,
            float(t0),
            float(t1),
            self.rtol,
            self.atol,
            self.norm_idx,
            H_MAX,
            MAX_STEPS_PER_COUPLING,
            YL_old,
            YL_new,
            enorms,
            nl >= PARALLEL_MIN_LEADERS,
            self.track_idx,
            TM,
        )
        if status != STATUS_OK:
            worst = int(leaders[int(np.argmax(enorms))])
            why = STATUS_TEXT.get(int(status), status)
            raise FieldSimulationFailed(
                f"integration failed between {t0:.3f} and {t1:.3f} h ({why}); "
                f"worst site {worst} (y={worst // self.layout.nx}, x={worst % self.layout.nx})"
            )
        self.g = YL_new[0, self.sys_idx].copy()  # the same in every leader by construction
        self.kern.scatter(self.Y, leaders, leader_of, equal, YL_old, YL_new)
        self.kern.after_react(self.Y, self.sys_idx, self.g, leader_of, TM, self.peak)
        self.diffuse(0.5 * dt, w)
        self.n_couplings += 1
        self.leaders_total += nl
        self.leaders_max = max(self.leaders_max, nl)
        self.rx_steps += int(nsteps)
        self.site_steps += int(nsteps) * nl

    def advance(self, t: float, t_stop: float, t_last_event: float) -> None:
        """Coupling steps from t to t_stop.

        Without any lateral gradient the splitting is exact, so the step runs
        to ``t_stop`` (at most ``quiet_coupling_step_h``); with gradients it is
        ``coupling_step_h`` within ``quiet_after_h`` of the last event and
        ``quiet_coupling_step_h`` after that.
        """
        spec = self.spec
        while t < t_stop:
            w, spread = self._stats()
            quiet = (t - t_last_event) >= float(spec.quiet_after_h)
            if not self.has_gradient(w, spread) or quiet:
                dt = float(spec.quiet_coupling_step_h)
            else:
                dt = float(spec.coupling_step_h)
            rem = t_stop - t
            if rem <= dt * (1 + 1e-9):
                t1 = t_stop
            elif rem < 2 * dt:
                t1 = t + rem / 2
            else:
                t1 = t + dt
            self.couple(t, t1, w, spread)
            t = t1

    # ---------------------------------------------------------------- field-level readouts
    def lesion_totals(self) -> np.ndarray:
        """Cells per slot over the whole field (mean of whole-field equivalents)."""
        return self.Y[:, self.lesion_cols].mean(axis=0)

    def visible_count(self) -> int:
        return int(np.count_nonzero(self.lesion_totals() > self.layout.visible_threshold_cells))


def simulate_field(spec: FieldSpec) -> FieldResult:
    """Simulate the treated field of ``spec``; see the module docstring for the method.

    Parameters
    ----------
    spec : FieldSpec

    Returns
    -------
    FieldResult

    Raises
    ------
    InputError
        Bad input (also raised by ``FieldSpec`` itself).
    FieldSimulationFailed
        The integrator failed (e.g. absurd parameter overrides).

    Examples
    --------
    >>> res = simulate_field(FieldSpec("ak-5pct", resolution_mm=10.0, days=3))  # doctest: +SKIP
    >>> res.maps["erythema_score"].dims  # doctest: +SKIP
    ('time', 'y', 'x')
    """
    if not isinstance(spec, FieldSpec):
        raise InputError("spec", spec, "a FieldSpec")
    wall0 = time.perf_counter()
    model = get_model()
    sc = spec.scenario_obj
    layout = build_layout(spec, model)
    eng = FieldIntegrator(spec, model, layout)
    masks = build_masks(spec, layout)
    events = event_list(spec)
    ev_masks = [mask_for(e.mask, masks, layout) for e in events]

    t_assess = sc.assessment_time_h()
    ev_end = sc.events().end_h()
    if spec.days is not None:
        t_end = float(spec.days) * HOURS_PER_DAY
    else:
        t_end = max(t_assess, ev_end) + float(spec.followup_days) * HOURS_PER_DAY
    for i, e in enumerate(spec.extra_events):
        if e.time_h > t_end:
            raise InputError(
                f"extra_events[{i}].time_h", e.time_h, f"a time within the horizon (<= {t_end:g} h)"
            )
    keys = key_times(spec, t_end)
    series_t = time_grid(float(spec.output_every_hours), t_end, keys.values())
    map_t = time_grid(float(spec.map_every_days) * HOURS_PER_DAY, t_end, keys.values())
    ev_t = np.array([e.time_h for e in events if e.time_h <= t_end])
    stops = np.unique(np.concatenate([series_t, map_t, ev_t]))

    rec = Recorder(model, layout, eng)
    gating = model.gating
    gated = model.gated_dose_kinds
    rest_threshold = float(
        layout.single_site_parameters[model.parameter_index(gating.rest_threshold)]
    )
    stopped = False
    not_clear_at_check = True
    n_applied = n_skipped = 0
    t_last_event = -np.inf
    ie = js = jm = 0
    t = 0.0
    for t_stop in stops:
        eng.advance(t, float(t_stop), t_last_event)
        t = float(t_stop)
        # outputs due now (before the events at this time, as run_batch does)
        while js < series_t.size and series_t[js] <= t:
            rec.series()
            js += 1
        while jm < map_t.size and map_t[jm] <= t:
            rec.map()
            jm += 1
        # events due now
        while ie < len(events) and events[ie].time_h <= t:
            e, mask = events[ie], ev_masks[ie]
            give = True
            if e.kind in gated:
                vals, _ = eng.site_observables((gating.rest_score,))
                give, rested, stopped = dose_decision(
                    e.gate,
                    eng.visible_count() == 0,
                    not_clear_at_check,
                    stopped,
                    float(vals[gating.rest_score].mean()),
                    rest_threshold,
                )
                n_skipped += int(rested)
                n_applied += int(give)
            elif e.kind == CHECK:
                not_clear_at_check = eng.visible_count() > 0
                give = False
            if give:
                changed = apply_event(FieldState(model, layout, eng.Y, t, eng.kern), e, mask)
                if changed is None or changed & eng.shared_names:
                    # a shared pool changed on some sites: mix it back into one field value
                    eng.g = eng.Y[:, eng.sys_idx].mean(axis=0)
                    eng.Y[:, eng.sys_idx] = eng.g
                eng.h = 0.01
            t_last_event = t
            ie += 1

    wall = time.perf_counter() - wall0
    return assemble(
        spec,
        model,
        layout,
        eng,
        rec,
        series_t,
        map_t,
        keys,
        t_assess,
        {"applications_given": n_applied, "doses_skipped_for_rest": n_skipped},
        wall,
    )
