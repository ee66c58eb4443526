"""The batched engine: per-patient status codes and batch invariance."""

from __future__ import annotations

import numpy as np

from imiqsim.engine.run import STATUS_TEXT, run_batch
from imiqsim.model import get_model
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
