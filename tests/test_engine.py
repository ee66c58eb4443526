"""The batched engine: per-patient status codes, batch invariance, the analytic Jacobian and the stiff methods."""

from __future__ import annotations

import numpy as np
import pytest

from imiqsim.engine.codegen import compiled
from imiqsim.engine.run import STATUS_TEXT, run_batch
from imiqsim.model import get_model
from imiqsim.model._dsl import diff_python, parse_expr, to_python
from imiqsim.scenario import load_preset

MODEL = get_model()


def test_a_failing_patient_gets_a_status_and_the_rest_complete():
    sc = load_preset("ak-5pct")
    base = MODEL.parameter_vector("AK", "face", 25.0)
    P = np.repeat(base[None, :], 3, axis=0)
    P[1, MODEL.parameter_index("k_nfkb_on")] = 1e9  # absurdly stiff: the explicit solver gives up
    t = np.arange(0.0, 30 * 24.0 + 1, 24.0)
    res = run_batch(MODEL, P, sc.events(), t, max_steps=20_000)
    assert res.status[0] == 0 and res.status[2] == 0
    assert res.status[1] != 0 and STATUS_TEXT[int(res.status[1])] != "ok"
    assert np.all(np.isfinite(res.Y[[0, 2]]))
    alone = run_batch(MODEL, P[[0]], sc.events(), t, max_steps=20_000)
    np.testing.assert_array_equal(alone.Y[0], res.Y[0])  # neighbours do not change a patient's numbers


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
    names = ("_pos", "_step", "_hill", "_min", "_max", "_exp", "_log", "_sqrt",
             "_dmin", "_dmax", "_dhill_dx", "_dhill_dk", "_dhill_dn")
    return {n: getattr(mod, n).py_func for n in names}


@pytest.mark.parametrize("expr", [
    "hill(x * y, k, n) + pos(x - 2 * y) * step(y - 0.1)",
    "min(x, y ** 2) / max(y, 0.5) - exp(-x) * log(1 + y) + sqrt(x) / (1 + x ** n)",
    "hill(x, k, 1) * -y + +x / y - (x - y) / (k * y)",
    "x ** y + hill(k, x, y) + min(3, x) * max(y, 2)",  # states in exponents and in hill's k and n
    "o * hill(o, k, n) + o / x",  # an observable o = x * y, chained through its own derivative
])
@pytest.mark.parametrize("point", [(1.3, 0.4), (0.6, 1.2)])  # the two points take different branches
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
    res = run_batch(MODEL, p[None], sc.events(), np.array([0.0, 3 * 24.0 + 2.0]))  # film on the skin
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
