"""The batched engine: status codes, batch invariance, the Jacobian, the stiff methods, events.

Also the shared stepper core used with another right-hand side, and event
kinds declared by a new stage.
"""

from __future__ import annotations

import itertools
from types import SimpleNamespace

import numpy as np
import pytest
from scipy.integrate import solve_ivp

from imiqsim.engine import steppers
from imiqsim.engine.cache import load_generated
from imiqsim.engine.codegen import compiled
from imiqsim.engine.run import STATUS_TEXT, initial_states, run_batch
from imiqsim.errors import ModelDefinitionError
from imiqsim.export.sbml import to_sbml
from imiqsim.model import (
    MODULES,
    ModuleSpec,
    assemble_model,
    diff_python,
    get_model,
    parse_expr,
    to_python,
)
from imiqsim.regimen import APPLY, WASH
from imiqsim.scenario import load_preset
from imiqsim.simulation import simulate
from imiqsim.vocabulary import METHODS, STATUS_OK

MODEL = get_model()


def test_a_failing_patient_gets_a_status_and_the_rest_complete():
    sc = load_preset("ak-5pct")
    base = MODEL.parameter_vector("AK", "face", 25.0)
    P = np.repeat(base[None, :], 3, axis=0)
    P[1, MODEL.parameter_index("k_nfkb_on")] = 1e9  # absurdly stiff: the explicit solver gives up
    t = np.arange(0.0, 30 * 24.0 + 1, 24.0)
    res = run_batch(MODEL, P, sc.events(), t, max_steps=20_000, method="dp5")
    assert res.status[0] == 0 and res.status[2] == 0
    assert res.status[1] != 0 and STATUS_TEXT[int(res.status[1])] != "ok"
    assert np.all(np.isfinite(res.Y[[0, 2]]))
    alone = run_batch(MODEL, P[[0]], sc.events(), t, max_steps=20_000, method="dp5")
    np.testing.assert_array_equal(
        alone.Y[0], res.Y[0]
    )  # neighbours do not change a patient's numbers
    # the default ("auto") finishes the stiff patient implicitly, and leaves the others bit for bit
    auto = run_batch(MODEL, P, sc.events(), t, max_steps=20_000)
    assert np.all(auto.status == 0) and auto.switched_at_h[1] >= 0 and auto.switched_at_h[0] < 0
    np.testing.assert_array_equal(auto.Y[[0, 2]], res.Y[[0, 2]])


def test_batch_order_does_not_change_results():
    sc = load_preset("sbcc-5pct")
    base = MODEL.parameter_vector("sBCC", "trunk", 4.0)
    P = np.repeat(base[None, :], 4, axis=0)
    P[:, MODEL.parameter_index("tlr7_ec50_ug_ml")] *= np.array([0.5, 1.0, 2.0, 4.0])
    t = np.arange(0.0, 20 * 24.0 + 1, 24.0)
    a = run_batch(MODEL, P, sc.events(), t)
    b = run_batch(MODEL, P[::-1], sc.events(), t)
    np.testing.assert_array_equal(a.Y, b.Y[::-1])


# --------------------------------------------------------------------------- analytic Jacobian


def _helpers() -> dict:
    """The generated module's helper functions as plain Python (no compilation needed)."""
    mod = compiled(MODEL)
    names = (
        "_pos",
        "_step",
        "_hill",
        "_min",
        "_max",
        "_exp",
        "_log",
        "_sqrt",
        "_dmin",
        "_dmax",
        "_dhill_dx",
        "_dhill_dk",
        "_dhill_dn",
    )
    return {n: getattr(mod, n).py_func for n in names}


@pytest.mark.parametrize(
    "expr",
    [
        "hill(x * y, k, n) + pos(x - 2 * y) * step(y - 0.1)",
        "min(x, y ** 2) / max(y, 0.5) - exp(-x) * log(1 + y) + sqrt(x) / (1 + x ** n)",
        "hill(x, k, 1) * -y + +x / y - (x - y) / (k * y)",
        # states in exponents and in hill's k and n
        "x ** y + hill(k, x, y) + min(3, x) * max(y, 2)",
        "o * hill(o, k, n) + o / x",  # an observable o = x * y, chained through its own derivative
    ],
)
@pytest.mark.parametrize(
    "point", [(1.3, 0.4), (0.6, 1.2)]
)  # the two points take different branches
def test_every_dsl_construct_is_differentiated_exactly(expr, point):
    tree = parse_expr(expr)
    ns = {**_helpers(), "k": 0.8, "n": 2.3}

    def value(x: float, y: float) -> float:
        return eval(to_python(tree), {**ns, "x": x, "y": y, "o": x * y})

    x0, y0 = point
    for wrt, dx, dy in (("x", 1.0, 0.0), ("y", 0.0, 1.0)):
        src = diff_python(tree, wrt, lambda nm, w=wrt: f"d_{nm}_{w}" if nm == "o" else None)
        assert src is not None
        d_o = {"d_o_x": y0, "d_o_y": x0}
        got = eval(src, {**ns, "x": x0, "y": y0, "o": x0 * y0, **d_o})
        e = 1e-6
        fd = (value(x0 + e * dx, y0 + e * dy) - value(x0 - e * dx, y0 - e * dy)) / (2 * e)
        assert got == pytest.approx(fd, rel=1e-7, abs=1e-9), (expr, wrt, src)


def test_terms_that_do_not_depend_on_the_variable_are_dropped():
    assert diff_python(parse_expr("k * step(x) + n"), "x") is None
    assert diff_python(parse_expr("k * x"), "y") is None
    assert diff_python(parse_expr("k * x"), "x") == "k"


def test_generated_jacobian_matches_finite_differences_of_the_rhs():
    mod = compiled(MODEL)
    sc = load_preset("ak-5pct")
    p = MODEL.parameter_vector("AK", "face", 25.0)
    res = run_batch(
        MODEL, p[None], sc.events(), np.array([0.0, 3 * 24.0 + 2.0])
    )  # film on the skin
    scale = np.array([s.scale for s in MODEL.states])
    # off the kinks of pos/step/hill (cytokines exactly at baseline, empty compartments)
    y = res.Y[0, -1] * (1 + 0.01 * np.random.default_rng(3).random(len(scale))) + 1e-3 * scale
    J = np.full((len(scale), len(scale)), np.nan)
    mod.jac(0.0, y, p, J)
    F = np.empty_like(J)
    fp, fm = np.empty(len(scale)), np.empty(len(scale))
    for j in range(len(scale)):
        d = 1e-6 * max(abs(y[j]), scale[j])
        yp, ym = y.copy(), y.copy()
        yp[j] += d
        ym[j] -= d
        mod.rhs(0.0, yp, p, fp)
        mod.rhs(0.0, ym, p, fm)
        F[:, j] = (fp - fm) / (2 * d)
    assert np.count_nonzero(F) > 300  # the check covers a real Jacobian, not a near-empty one
    np.testing.assert_allclose(J, F, rtol=1e-5, atol=1e-9 * np.abs(F).max())


# --------------------------------------------------------------------------- stiff methods

#: NF-kB inactivation at 1e5 /h instead of 1 /h: an eigenvalue near -1e5 /h, so DP5 is held to
#: h ~ 3e-5 h
STIFF = {"k_nfkb_off": 1e5}


def _ak_patient(overrides: dict | None = None):
    sc = load_preset("ak-5pct")
    return sc, sc.model_parameters(MODEL, overrides)


def _series(res, name: str, n: int = 0) -> np.ndarray:
    if name in MODEL.state_names:
        return res.Y[n, :, MODEL.state_index(name)]
    return res.observables[n, :, MODEL.observable_index(name)]


def _reference(p: np.ndarray, events, t: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """States and observables at ``t`` from scipy's BDF (rtol 1e-8) on the generated rhs, with the
    same APPLY/WASH events (ungated: the caller checks that the engine gave every dose too)."""
    mod = compiled(MODEL)
    scale = np.array([s.scale for s in MODEL.states])
    film, applied, washed = (MODEL.state_index(s) for s in ("film", "applied", "washed_off"))

    def f(_t, y):
        dy = np.empty_like(y)
        mod.rhs(_t, y, p, dy)
        return dy

    y = initial_states(MODEL, p[None])[0]
    out = {}
    tc = 0.0
    for ts in sorted(set(events.times_h[events.times_h <= t[-1]]) | set(t)):
        if ts > tc:
            sol = solve_ivp(f, (tc, ts), y, method="BDF", rtol=1e-8, atol=1e-10 * scale)
            assert sol.success, sol.message
            y, tc = sol.y[:, -1].copy(), ts
        out[ts] = y.copy()
        for e in np.flatnonzero(events.times_h == ts):
            assert events.kinds[e] in (APPLY, WASH) and events.gates[e] == 0
            if events.kinds[e] == APPLY:
                y[film] += events.amounts_mg[e]
                y[applied] += events.amounts_mg[e]
            else:
                y[washed] += y[film]
                y[film] = 0.0
    Y = np.array([out[x] for x in t])[None]
    obs = np.empty((1, t.size, len(MODEL.observables)))
    mod.observables_batch(Y, p[None], obs)
    return Y, obs


def test_rosenbrock_agrees_with_dp5_on_the_normal_patient():
    sc, p = _ak_patient()
    t = np.arange(0.0, sc.horizon_hours() + 1e-9, 12.0)
    dp5 = run_batch(MODEL, p[None], sc.events(), t, rtol=1e-6, method="dp5")
    ros = run_batch(MODEL, p[None], sc.events(), t, rtol=1e-6, method="rosenbrock")
    assert dp5.status[0] == 0 and ros.status[0] == 0
    assert dp5.switched_at_h[0] == -1.0 and ros.switched_at_h[0] == 0.0
    assert not np.array_equal(dp5.Y, ros.Y)  # two different integrators, not one path twice
    for name in ("lesion_burden", "ifn_alpha", "serum_conc_ng_ml"):
        a, b = _series(dp5, name), _series(ros, name)
        np.testing.assert_allclose(b, a, rtol=1e-4, atol=1e-6 * np.abs(a).max(), err_msg=name)
    assert ros.applications_given[0] == dp5.applications_given[0] == 32


def test_rodas4_step_has_local_order_5_and_an_order_4_error_estimate():
    """One Rodas4 step against 400 DP5 substeps, from a state with the film on the skin: halving h
    divides the local error by about 2^5 and the embedded estimate by about 2^4. A wrong
    coefficient would lose order (tolerance-controlled runs can hide that; this cannot). Step sizes
    0.4, 0.2, 0.1 h keep h x the fastest local rate (IFN-gamma decay, 1.39/h) near the asymptotic
    range, and the smallest step's error (about 1e-10) above the reference's (0.05 h: 3e-12, at
    the 400-substep reference's own error since the free drug fell to 0.02)."""
    mod = compiled(MODEL)
    sc, p = _ak_patient()
    y = run_batch(MODEL, p[None], sc.events(), np.array([0.0, 23.0])).Y[0, -1]
    S = y.size
    scale = np.array([s.scale for s in MODEL.states])
    fy, ytmp, ynew, err = (np.empty(S) for _ in range(4))
    J, W, piv = np.empty((S, S)), np.empty((S, S)), np.empty(S, dtype=np.int64)
    stages = [np.empty(S) for _ in range(7)]
    mod.rhs(23.0, y, p, fy)
    mod.jac(23.0, y, p, J)
    local, estimate = [], []
    for h in (0.4, 0.2, 0.1):
        assert mod.ros_step(23.0, y, p, h, fy, J, W, piv, *stages[:6], ytmp, ynew, err)
        y_ros, e_ros = ynew.copy(), err.copy()
        yr = y.copy()
        for _ in range(400):
            mod.rhs(0.0, yr, p, stages[0])
            mod.dp5_step(0.0, yr, p, h / 400, *stages, ytmp, ynew, err)
            yr = ynew.copy()
        local.append(np.sqrt(np.mean(((y_ros - yr) / scale) ** 2)))
        estimate.append(np.sqrt(np.mean((e_ros / scale) ** 2)))
    for a, b in itertools.pairwise(local):
        assert a / b > 2**4.5, local
    for a, b in itertools.pairwise(estimate):
        assert 2**3.5 < a / b < 2**4.5, estimate


def test_a_stiff_patient_needs_an_implicit_method_and_it_matches_a_bdf_reference():
    sc, p = _ak_patient(STIFF)
    ev = sc.events()
    t = np.arange(0.0, 4 * 24.0 + 1e-9, 24.0)  # doses at 22 h and 94 h, a wash at 30 h
    dp5 = run_batch(MODEL, p[None], ev, t, method="dp5", max_steps=20_000)
    assert dp5.status[0] == 1 and np.all(np.isnan(dp5.Y[0, -1]))
    ros = run_batch(MODEL, p[None], ev, t, method="rosenbrock", max_steps=20_000)
    auto = run_batch(MODEL, p[None], ev, t, method="auto", max_steps=20_000)
    Yref, Oref = _reference(p, ev, t)
    n_doses = int(np.sum((ev.kinds == APPLY) & (ev.times_h <= t[-1])))
    for res in (ros, auto):
        assert res.status[0] == 0
        assert res.steps[0] < 1_000  # L-stable: steps follow the slow dynamics, not the 1e5 /h mode
        assert res.applications_given[0] == n_doses == 2 and res.doses_skipped_for_rest[0] == 0
        for name in (
            "lesion_burden",
            "ifn_alpha",
            "serum_conc_ng_ml",
            "macrophage_nfkb",
            "tnf_alpha",
        ):
            ref = (
                Yref[0, :, MODEL.state_index(name)]
                if name in MODEL.state_names
                else Oref[0, :, MODEL.observable_index(name)]
            )
            np.testing.assert_allclose(
                _series(res, name), ref, rtol=1e-4, atol=1e-4 * np.abs(ref).max(), err_msg=name
            )
    # auto ran DP5 until the first dose excited the fast mode, then switched for good
    assert ev.times_h[0] <= auto.switched_at_h[0] < ev.times_h[1]


def test_auto_equals_dp5_for_patients_that_do_not_switch_whatever_the_batch():
    sc, p = _ak_patient()
    _, p_stiff = _ak_patient(STIFF)
    p2 = p.copy()
    p2[MODEL.parameter_index("tlr7_ec50_ug_ml")] *= 2.0
    P = np.stack([p, p_stiff, p2])
    t = np.arange(0.0, sc.horizon_hours() + 365 * 24.0, 24.0)  # course and a year of follow-up
    auto = run_batch(MODEL, P, sc.events(), t, method="auto")
    dp5 = run_batch(MODEL, P[[0, 2]], sc.events(), t, method="dp5")
    assert np.all(auto.status == 0)
    assert auto.switched_at_h[0] == auto.switched_at_h[2] == -1.0 and auto.switched_at_h[1] > 0
    for field in ("Y", "peak", "cleared_at_h", "steps", "applications_given"):
        np.testing.assert_array_equal(
            getattr(auto, field)[[0, 2]], getattr(dp5, field), err_msg=field
        )
    alone = run_batch(MODEL, P[[1]], sc.events(), t, method="auto")
    for field in ("Y", "peak", "steps", "switched_at_h"):
        np.testing.assert_array_equal(
            getattr(alone, field)[0], getattr(auto, field)[1], err_msg=field
        )


@pytest.mark.parametrize("bad", ["radau", "DP5", "", None, 1])
def test_an_unknown_method_is_rejected(bad):
    sc, p = _ak_patient()
    with pytest.raises(ValueError, match=r"method: got .*; one of \['auto', 'dp5', 'rosenbrock'\]"):
        run_batch(MODEL, p[None], sc.events(), np.array([0.0, 24.0]), method=bad)
    with pytest.raises(ValueError, match="method"):
        simulate("ak-5pct", days=1, method=bad)


def test_simulate_passes_the_method_through():
    res = simulate("ak-5pct", days=4, set=STIFF, method="auto")
    assert res.batch.status[0] == 0 and res.batch.switched_at_h[0] > 0
    assert simulate("ak-5pct", days=1, method="rosenbrock").batch.switched_at_h[0] == 0.0


# ------------------------------------------------------------------------ event kinds as model data


def _model_with_a_second_cream():
    """The model plus a stage that declares a new gated-dose kind with its own film state."""
    extra = ModuleSpec(
        "second_cream", "a second cream (test stage)", inert_without=("APPLY_SECOND",)
    )
    extra.state("second_film", "mg", 0.0, "drug in the second cream's film", scale=10.0)
    extra.state("second_applied", "mg", 0.0, "cumulative second-cream drug applied", scale=10.0)
    extra.rxn("second_loss", "k_cryo_healing * second_film", "second_film", None, "film loss")
    extra.event(
        "APPLY_SECOND",
        {"second_film": "second_film + mg", "second_applied": "second_applied + mg"},
        amount="mg",
        unit="mg",
        gated_dose=True,
        description="second cream put on",
    )
    return assemble_model((*(m.build() for m in MODULES), extra))


def test_a_stage_declares_a_new_gated_event_kind_without_engine_changes():
    model = _model_with_a_second_cream()
    code = model.event_kind("APPLY_SECOND")
    assert code == max(MODEL.event_kinds.values()) + 1 and code in model.gated_dose_kinds
    sc = load_preset("ak-5pct")
    p = sc.model_parameters(model)
    # kind, amount, gate: a given dose, one skipped for rest, and the usual cream alongside
    rows = [(1.0, code, 3.0, 0), (2.0, APPLY, 12.5, 0), (10.0, WASH, 0.0, 0), (20.0, code, 2.0, 0)]
    ev = SimpleNamespace(
        times_h=np.array([r[0] for r in rows]),
        kinds=np.array([r[1] for r in rows], dtype=np.int64),
        amounts_mg=np.array([r[2] for r in rows]),
        gates=np.array([r[3] for r in rows], dtype=np.int64),
    )
    t = np.array([0.5, 1.5, 19.5, 20.5, 30.0])
    res = run_batch(model, p, ev, t)
    i = model.state_index("second_applied")
    np.testing.assert_array_equal(res.Y[0, :, i], [0.0, 3.0, 3.0, 5.0, 5.0])
    assert res.applications_given[0] == 3 and res.doses_skipped_for_rest[0] == 0
    # the rest rule applies to the new kind too: a threshold of 0 skips every dose
    q = p.copy()
    q[model.parameter_index(model.gating.rest_threshold)] = 0.0
    rested = run_batch(model, q, ev, t)
    assert rested.applications_given[0] == 0 and rested.doses_skipped_for_rest[0] == 3
    assert np.all(rested.Y[0, :, i] == 0.0)
    # and the SBML export writes the new kind's event from the same declaration
    text = to_sbml(model, p, ev)
    assert "APPLY_SECOND 3 mg (gate 0)" in text and "second_applied" in text


def test_event_declarations_are_checked():

    bad = ModuleSpec("bad", "assigns an unknown state")
    bad.event("FREEZE", {"no_such_state": "1"}, amount="freeze_s")
    with pytest.raises(ModelDefinitionError, match="unknown state"):
        assemble_model((*(m.build() for m in MODULES), bad))
    clash = ModuleSpec("clash", "assigns a state the cream's APPLY already assigns")
    clash.event("APPLY", {"film": "0"}, amount="dose_mg", gated_dose=True)
    with pytest.raises(ModelDefinitionError, match="both assign"):
        assemble_model((*(m.build() for m in MODULES), clash))
    with pytest.raises(ModelDefinitionError, match="UPPER_CASE"):
        ModuleSpec("x", "x").event("apply later", {})


def test_a_stage_inert_without_its_events_leaves_other_schedules_bit_identical():
    model = _model_with_a_second_cream()
    sc = load_preset("ak-5pct")
    ev = sc.events()
    n = len(MODEL.states)
    # the model's own inert stages (5-fluorouracil) stay out of an imiquimod schedule's norm too
    own = list(MODEL.error_norm_states(ev.kinds))
    assert list(model.error_norm_states(ev.kinds)) == own
    assert len(model.error_norm_states([model.event_kind("APPLY_SECOND")])) == len(own) + 2
    t = np.arange(0.0, 10 * 24.0 + 1, 24.0)
    base = run_batch(MODEL, sc.model_parameters(MODEL), ev, t)
    more = run_batch(model, sc.model_parameters(model), ev, t)
    np.testing.assert_array_equal(more.Y[0, :, :n], base.Y[0])
    assert np.all(more.Y[0, :, n:] == 0.0) and more.steps[0] == base.steps[0]


# ------------------------------------------------------------------------ the shared stepper core


def _coupled_copies_module():
    """A module that integrates G copies of the patient as one coupled system with the core.

    Built the way the skin field uses the core: its own flat right-hand side
    (here each copy's model rhs), no Jacobian (DP5 only), its own bookkeeping.
    """
    gen = compiled(MODEL)
    src = "\n".join(
        [
            "import math",
            "import numpy as np",
            "from numba import njit",
            f"from {gen.__name__} import rhs as site_rhs, N_STATES",
            "",
            "@njit(cache=True)",
            "def copies_rhs(t, y, p, dy):",
            "    for j in range(y.shape[0] // N_STATES):",
            "        a = j * N_STATES",
            "        site_rhs(t, y[a:a + N_STATES], p, dy[a:a + N_STATES])",
            "",
            "@njit(cache=True)",
            "def no_jacobian(t, y, p, J):",
            "    return",
            "",
            "@njit(cache=True)",
            "def count_steps(t, y, p, rec):",
            "    rec[0] += 1",
            "",
            steppers.source(rhs="copies_rhs", jac="no_jacobian", on_accept="count_steps"),
        ]
    )
    return load_generated("imiqsim_test_copies", src)


def test_the_stepper_core_integrates_a_coupled_system_with_its_own_rhs():
    mod = _coupled_copies_module()
    p = MODEL.parameter_vector("AK", "face", 25.0)
    y0 = initial_states(MODEL, p[None, :])[0]
    y0[MODEL.state_index("film")] = 12.5  # cream on the skin at t = 0, no events
    S, G, t1 = len(y0), 3, 48.0
    none = np.zeros(0, dtype=np.int64)
    ev = SimpleNamespace(times_h=np.zeros(0), kinds=none, amounts_mg=np.zeros(0), gates=none)
    ref = run_batch(MODEL, p, ev, np.array([t1]), y0=y0[None, :], method="dp5")
    atol = np.array([s.scale for s in MODEL.states]) * 1e-8
    y = np.tile(y0, G)
    work = [np.empty(G * S) for _ in range(10)]
    steps_seen = np.zeros(1, dtype=np.int64)
    norms = np.empty(G)
    status, _h, steps = mod.integrate(
        y, p, steps_seen, 0.0, t1, 0.01, 1e-6, atol, MODEL.error_norm_states(none), norms,
        12.0, 100_000, 0,
        *work, np.empty((0, 0)), np.empty((0, 0)), np.empty(0, dtype=np.int64),
        METHODS["dp5"], 50_000, np.zeros(4, dtype=np.int64), np.full(1, -1.0),
    )  # fmt: skip
    assert status == STATUS_OK and steps == ref.steps[0] and steps_seen[0] <= steps
    assert norms[0] == norms[1] == norms[2] <= 1.0  # the last step's norm, per copy
    # identical copies take exactly the patient's steps: the same numbers, bit for bit
    for j in range(G):
        np.testing.assert_array_equal(y[j * S : (j + 1) * S], ref.Y[0, -1])
