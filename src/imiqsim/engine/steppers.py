"""The integration core, written once: Dormand-Prince 5(4), Rodas4, the error norm, the controller.

The batched patient kernel (:mod:`imiqsim.engine._kernel_template`) and the
skin field's coupled integrator render the same source into their generated
modules with their own right-hand side, so both take exactly the same steps
(the same floating-point operations in the same order) on the same system.

Steppers (``method``, all driven by :func:`integrate`'s step-acceptance
code; codes from :data:`imiqsim.vocabulary.METHODS`):

- ``METHOD_DP5``: explicit Dormand-Prince 5(4) with FSAL.
- ``METHOD_ROSENBROCK``: Rodas4, the linearly implicit, L-stable, stiffly
  accurate Rosenbrock method of order 4 with an embedded order-3 error
  estimate (6 stages, 5 right-hand-side evaluations, one in-kernel LU
  factorisation with partial pivoting of ``I/(h*gamma) - J`` per step
  attempt, one Jacobian per accepted step and at the start of each interval
  between stops; step factor 0.9 * err^(-1/4) within [0.2, 6], as rodas.f).
  Coefficients: E. Hairer, G. Wanner, Solving Ordinary Differential Equations
  II, 2nd ed., Springer 1996, Sec. IV.7, as given in their Fortran code
  rodas.f (subroutine RODCOE, METH = 1), in the transformed variables where
  each stage is an increment of y. The model has no explicit time
  dependence, so the d(rhs)/dt terms vanish.
- ``METHOD_AUTO``: DP5 first; the system switches to Rodas4 for the rest of
  its run once DP5 detects stiffness (Hairer's test for DOPRI5: h * ||k7 -
  k6|| / ||y_new - y_stage6|| > ``STIFF_HLAMBDA`` on ``STIFF_HITS`` accepted
  steps without ``STIFF_RESET`` non-stiff ones in between, counting only
  steps shorter than ``STIFF_H_FRACTION * h_max``) or once DP5 has taken
  ``switch_steps`` step attempts. A system that never switches gets exactly
  the DP5 numbers.

Error norm: the RMS over the states in ``norm_idx`` of ``err / (atol + rtol
* max(|y|, |y_new|))``; a state vector may hold several systems of equal size
one after another (the field's group leaders; their number is the length of
the ``norms`` array, which receives each system's norm of the last step
attempt), and then the step's norm is the worst system's. Controller: accept
when the norm is <= 1; new step ``h * 0.9 * norm^(-1/5)`` within [0.1, 5]
for DP5, ``^(-1/4)`` within [0.2, 6] for Rodas4 (never shrinking after the
last step to a stop); a non-finite step counts as norm 1e10. Status codes
are :mod:`imiqsim.vocabulary`'s.

How to use it
-------------
:func:`source` returns Numba source that defines ``dp5_step``,
``ros_step``, ``lu_factor``, ``lu_solve``, ``dp5_stiff_ratio``,
``error_norm`` and ``integrate`` against three functions the including
module defines (names chosen by the caller):

- ``rhs(t, y, ctx, dy)``: the right-hand side of the flat state ``y``;
  ``ctx`` is whatever the caller passes to ``integrate`` (the patient's
  parameter vector; a tuple of the field's coupling arrays);
- ``jac(t, y, ctx, J)``: its dense Jacobian (only called by implicit steps;
  a system integrated with ``METHOD_DP5`` only may pass a function that is
  never called);
- ``on_accept(t, y, ctx, rec)``: bookkeeping after every accepted step
  (tracked maxima, first clearance); ``rec`` is passed through.

The module must also ``import math``, ``import numpy as np`` and ``from
numba import njit``. Rendering the core into each generated module (rather
than passing functions as arguments) lets Numba inline the right-hand side
into the stages and keeps its on-disk cache keyed by the whole source.

Examples
--------
>>> src = source(rhs="rhs", jac="jac", on_accept="record_step")
>>> "def integrate(" in src and "record_step(t, y, ctx, rec)" in src
True
"""

from __future__ import annotations

from imiqsim import vocabulary as V

__all__ = ["SOURCE", "source"]


def source(rhs: str = "rhs", jac: str = "jac", on_accept: str = "on_accept") -> str:
    """The core's Numba source, calling the including module's functions of these names."""
    names = {
        "rhs": rhs,
        "jac": jac,
        "on_accept": on_accept,
        "METHOD_DP5": repr(V.METHODS["dp5"]),
        "METHOD_ROSENBROCK": repr(V.METHODS["rosenbrock"]),
        "METHOD_AUTO": repr(V.METHODS["auto"]),
        "STATUS_OK": repr(V.STATUS_OK),
        "STATUS_FAILED_STEPS": repr(V.STATUS_FAILED_STEPS),
        "STATUS_NON_FINITE": repr(V.STATUS_NON_FINITE),
        "STATUS_STEP_UNDERFLOW": repr(V.STATUS_STEP_UNDERFLOW),
    }
    out = SOURCE
    for key, value in names.items():
        out = out.replace("{" + key + "}", value)
    return out


SOURCE = r"""
METHOD_DP5 = {METHOD_DP5}
METHOD_ROSENBROCK = {METHOD_ROSENBROCK}
METHOD_AUTO = {METHOD_AUTO}
STATUS_OK = {STATUS_OK}
STATUS_FAILED_STEPS = {STATUS_FAILED_STEPS}
STATUS_NON_FINITE = {STATUS_NON_FINITE}
STATUS_STEP_UNDERFLOW = {STATUS_STEP_UNDERFLOW}

# Hairer's stiffness detection for DOPRI5 (dopri5.f): an estimate of h*|lambda| above a threshold on
# 15 accepted steps (a run of 6 non-stiff steps resets the count). dopri5.f uses 3.25, just
# inside DOPRI5's stability limit (3.3 on the real axis); this step controller (no PI
# stabilisation) settles stiff problems at h*|lambda| = 2.4-3.0 instead, so the threshold here is
# 2.0. A step counts only if it is also below STIFF_H_FRACTION * h_max: the model is mildly stiff
# in long follow-up (DP5 held at h ~ 1-3 h by stability), where Rodas4's dearer steps do not pay;
# only DP5 held far below the cap does.
STIFF_HLAMBDA = 2.0
STIFF_HITS = 15
STIFF_RESET = 6
STIFF_H_FRACTION = 0.01

# Rodas4 coefficients (Hairer & Wanner, rodas.f, RODCOE with METH = 1). c5 = c6 = 1.
ROS_GAMMA = 0.25
ROS_C2 = 0.386
ROS_C3 = 0.21
ROS_C4 = 0.63
ROS_A21 = 0.1544000000000000e+01
ROS_A31 = 0.9466785280815826e+00
ROS_A32 = 0.2557011698983284e+00
ROS_A41 = 0.3314825187068521e+01
ROS_A42 = 0.2896124015972201e+01
ROS_A43 = 0.9986419139977817e+00
ROS_A51 = 0.1221224509226641e+01
ROS_A52 = 0.6019134481288629e+01
ROS_A53 = 0.1253708332932087e+02
ROS_A54 = -0.6878860361058950e+00
ROS_C21 = -0.5668800000000000e+01
ROS_C31 = -0.2430093356833875e+01
ROS_C32 = -0.2063599157091915e+00
ROS_C41 = -0.1073529058151375e+00
ROS_C42 = -0.9594562251023355e+01
ROS_C43 = -0.2047028614809616e+02
ROS_C51 = 0.7496443313967647e+01
ROS_C52 = -0.1024680431464352e+02
ROS_C53 = -0.3399990352819905e+02
ROS_C54 = 0.1170890893206160e+02
ROS_C61 = 0.8083246795921522e+01
ROS_C62 = -0.7981132988064893e+01
ROS_C63 = -0.3152159432874371e+02
ROS_C64 = 0.1631930543123136e+02
ROS_C65 = -0.6058818238834054e+01


@njit(cache=True)
def dp5_step(t, y, ctx, h, k1, k2, k3, k4, k5, k6, k7, ytmp, ynew, err):
    n = y.shape[0]
    for i in range(n):
        ytmp[i] = y[i] + h * (0.2 * k1[i])
    {rhs}(t + 0.2 * h, ytmp, ctx, k2)
    for i in range(n):
        ytmp[i] = y[i] + h * (3.0 / 40.0 * k1[i] + 9.0 / 40.0 * k2[i])
    {rhs}(t + 0.3 * h, ytmp, ctx, k3)
    for i in range(n):
        ytmp[i] = y[i] + h * (44.0 / 45.0 * k1[i] - 56.0 / 15.0 * k2[i] + 32.0 / 9.0 * k3[i])
    {rhs}(t + 0.8 * h, ytmp, ctx, k4)
    for i in range(n):
        ytmp[i] = y[i] + h * (19372.0 / 6561.0 * k1[i] - 25360.0 / 2187.0 * k2[i]
                              + 64448.0 / 6561.0 * k3[i] - 212.0 / 729.0 * k4[i])
    {rhs}(t + 8.0 / 9.0 * h, ytmp, ctx, k5)
    for i in range(n):
        ytmp[i] = y[i] + h * (9017.0 / 3168.0 * k1[i] - 355.0 / 33.0 * k2[i]
                              + 46732.0 / 5247.0 * k3[i] + 49.0 / 176.0 * k4[i]
                              - 5103.0 / 18656.0 * k5[i])
    {rhs}(t + h, ytmp, ctx, k6)
    for i in range(n):
        ynew[i] = y[i] + h * (35.0 / 384.0 * k1[i] + 500.0 / 1113.0 * k3[i] + 125.0 / 192.0 * k4[i]
                              - 2187.0 / 6784.0 * k5[i] + 11.0 / 84.0 * k6[i])
    {rhs}(t + h, ynew, ctx, k7)
    for i in range(n):
        err[i] = h * (71.0 / 57600.0 * k1[i] - 71.0 / 16695.0 * k3[i] + 71.0 / 1920.0 * k4[i]
                      - 17253.0 / 339200.0 * k5[i] + 22.0 / 525.0 * k6[i] - 1.0 / 40.0 * k7[i])


@njit(cache=True)
def dp5_stiff_ratio(h, k6, k7, ytmp, ynew):
    # h * ||f(y_new) - f(y_stage6)|| / ||y_new - y_stage6||: an estimate of h * |lambda|
    # (dopri5.f); after dp5_step, ytmp holds the stage-6 argument, k6 = f(ytmp), k7 = f(ynew)
    num = 0.0
    den = 0.0
    for i in range(ynew.shape[0]):
        a = k7[i] - k6[i]
        b = ynew[i] - ytmp[i]
        num += a * a
        den += b * b
    if den > 0.0:
        return h * math.sqrt(num / den)
    return 0.0


@njit(cache=True)
def lu_factor(A, piv):
    # In-place LU with partial pivoting (rows swapped whole, as LAPACK getrf): P A = L U with unit
    # L below the diagonal. Returns False for a zero or non-finite pivot.
    n = A.shape[0]
    for k in range(n):
        m = k
        amax = abs(A[k, k])
        for i in range(k + 1, n):
            v = abs(A[i, k])
            if v > amax:
                amax = v
                m = i
        if not (amax > 0.0) or not math.isfinite(amax):
            return False
        piv[k] = m
        if m != k:
            for j in range(n):
                tmp = A[k, j]
                A[k, j] = A[m, j]
                A[m, j] = tmp
        inv = 1.0 / A[k, k]
        for i in range(k + 1, n):
            f = A[i, k]
            if f != 0.0:  # the model's Jacobian is sparse: most multipliers are zero
                f = f * inv
                A[i, k] = f
                for j in range(k + 1, n):
                    A[i, j] -= f * A[k, j]
    return True


@njit(cache=True)
def lu_solve(A, piv, b):
    # Solve A x = b in place with the factors of lu_factor.
    n = A.shape[0]
    for k in range(n):
        m = piv[k]
        if m != k:
            tmp = b[k]
            b[k] = b[m]
            b[m] = tmp
    for i in range(n):
        s = b[i]
        for j in range(i):
            s -= A[i, j] * b[j]
        b[i] = s
    for i in range(n - 1, -1, -1):
        s = b[i]
        for j in range(i + 1, n):
            s -= A[i, j] * b[j]
        b[i] = s / A[i, i]


@njit(cache=True)
def ros_step(t, y, ctx, h, fy, J, W, piv, k1, k2, k3, k4, k5, k6, ytmp, ynew, err):
    # One Rodas4 step from (t, y), given fy = f(y) and J = df/dy at y. Stage i solves
    #   (I/(h*gamma) - J) k_i = f(y + sum_j a_ij k_j) + sum_j (c_ij/h) k_j,
    # y_new = y + sum_j a_5j k_j + k5 + k6; the embedded (order 3) solution omits k6: err = k6.
    # Returns False if the iteration matrix cannot be factorised (the caller shrinks h).
    n = y.shape[0]
    fac = 1.0 / (h * ROS_GAMMA)
    for i in range(n):
        for j in range(n):
            W[i, j] = -J[i, j]
        W[i, i] += fac
    if not lu_factor(W, piv):
        return False
    for i in range(n):
        k1[i] = fy[i]
    lu_solve(W, piv, k1)
    for i in range(n):
        ytmp[i] = y[i] + ROS_A21 * k1[i]
    {rhs}(t + ROS_C2 * h, ytmp, ctx, k2)
    for i in range(n):
        k2[i] += ROS_C21 / h * k1[i]
    lu_solve(W, piv, k2)
    for i in range(n):
        ytmp[i] = y[i] + ROS_A31 * k1[i] + ROS_A32 * k2[i]
    {rhs}(t + ROS_C3 * h, ytmp, ctx, k3)
    for i in range(n):
        k3[i] += (ROS_C31 * k1[i] + ROS_C32 * k2[i]) / h
    lu_solve(W, piv, k3)
    for i in range(n):
        ytmp[i] = y[i] + ROS_A41 * k1[i] + ROS_A42 * k2[i] + ROS_A43 * k3[i]
    {rhs}(t + ROS_C4 * h, ytmp, ctx, k4)
    for i in range(n):
        k4[i] += (ROS_C41 * k1[i] + ROS_C42 * k2[i] + ROS_C43 * k3[i]) / h
    lu_solve(W, piv, k4)
    for i in range(n):
        ytmp[i] = y[i] + ROS_A51 * k1[i] + ROS_A52 * k2[i] + ROS_A53 * k3[i] + ROS_A54 * k4[i]
    {rhs}(t + h, ytmp, ctx, k5)
    for i in range(n):
        k5[i] += (ROS_C51 * k1[i] + ROS_C52 * k2[i] + ROS_C53 * k3[i] + ROS_C54 * k4[i]) / h
    lu_solve(W, piv, k5)
    for i in range(n):
        ytmp[i] += k5[i]  # the embedded solution
    {rhs}(t + h, ytmp, ctx, k6)
    for i in range(n):
        k6[i] += (ROS_C61 * k1[i] + ROS_C62 * k2[i] + ROS_C63 * k3[i] + ROS_C64 * k4[i]
                  + ROS_C65 * k5[i]) / h
    lu_solve(W, piv, k6)
    for i in range(n):
        ynew[i] = ytmp[i] + k6[i]
        err[i] = k6[i]
    return True


@njit(cache=True)
def error_norm(y, ynew, err, atol, rtol, norm_idx, norms):
    # The step's error norm and whether the new state is finite. y holds norms.shape[0] systems of
    # equal size one after another (1 for a patient, the leaders of a coupled field); each system's
    # norm (written to norms) is the RMS of err / (atol + rtol * max(|y|, |y_new|)) over the states
    # norm_idx (indices within a system; atol is per system state); the step's is the worst one.
    n_groups = norms.shape[0]
    S = y.shape[0] // n_groups
    m = norm_idx.shape[0]
    worst = 0.0
    finite = True
    for j in range(n_groups):
        o = j * S
        e2 = 0.0
        if m == S:  # every state (the usual case): no indirection
            for i in range(S):
                v = ynew[o + i]
                sc = atol[i] + rtol * max(abs(y[o + i]), abs(v))
                e = err[o + i] / sc
                e2 += e * e
                if not math.isfinite(v):
                    finite = False
        else:
            for q in range(m):
                i = norm_idx[q]
                sc = atol[i] + rtol * max(abs(y[o + i]), abs(ynew[o + i]))
                e = err[o + i] / sc
                e2 += e * e
        en = math.sqrt(e2 / m)
        norms[j] = en
        if j == 0 or en > worst:
            worst = en
    if m < S:  # the states left out of the norm must be finite too
        for i in range(y.shape[0]):
            if not math.isfinite(ynew[i]):
                finite = False
    return worst, finite


@njit(cache=True)
def integrate(y, ctx, rec, t0, t1, h, rtol, atol, norm_idx, norms, h_max, max_steps,
              steps_used, k1, k2, k3, k4, k5, k6, k7, ytmp, ynew, err, J, W, piv, method,
              switch_steps, mstate, switched_at):
    # Advance y from t0 to t1 in place with the current stepper; returns (status, h, steps_used).
    # {on_accept}(t, y, ctx, rec) runs after every accepted step (y clipped at zero).
    # mstate = [implicit (0/1), stiff hits, non-stiff run, DP5 step attempts]; switched_at[0] = time
    # of the switch to Rodas4 (auto), -1 before. Implicit steps use k1 = f(y) and k2..k7 as the
    # Rodas4 stages. J, W and piv are only touched by implicit steps (empty for METHOD_DP5).
    n = y.shape[0]
    t = t0
    implicit = mstate[0] != 0
    {rhs}(t, y, ctx, k1)
    if implicit:
        {jac}(t, y, ctx, J)
    while t < t1:
        if steps_used >= max_steps:
            return STATUS_FAILED_STEPS, h, steps_used
        if h > h_max:
            h = h_max
        last = False
        if t + h >= t1:
            h = t1 - t
            last = True
        solved = True
        if implicit:
            solved = ros_step(t, y, ctx, h, k1, J, W, piv, k2, k3, k4, k5, k6, k7, ytmp, ynew, err)
        else:
            dp5_step(t, y, ctx, h, k1, k2, k3, k4, k5, k6, k7, ytmp, ynew, err)
            mstate[3] += 1
        steps_used += 1
        enorm, finite = error_norm(y, ynew, err, atol, rtol, norm_idx, norms)
        if not (solved and finite):
            finite = False
            enorm = 1e10
        if enorm <= 1.0:
            h_used = h
            t = t1 if last else t + h
            for i in range(n):
                v = ynew[i]
                y[i] = v if v > 0.0 else 0.0  # amounts and densities: clip round-off below zero
                if not implicit:
                    k1[i] = k7[i]
            {on_accept}(t, y, ctx, rec)
            if implicit:
                fac = 0.9 * (enorm if enorm > 1e-10 else 1e-10) ** (-0.25)
                if fac > 6.0:
                    fac = 6.0
                if not last:  # f and J at the new point (a new segment starts with its own)
                    {rhs}(t, y, ctx, k1)
                    {jac}(t, y, ctx, J)
            else:
                fac = 0.9 * (enorm if enorm > 1e-10 else 1e-10) ** (-0.2)
                if fac > 5.0:
                    fac = 5.0
                if method == METHOD_AUTO:
                    short = h_used < STIFF_H_FRACTION * h_max
                    if short and dp5_stiff_ratio(h_used, k6, k7, ytmp, ynew) > STIFF_HLAMBDA:
                        mstate[1] += 1
                        mstate[2] = 0
                    else:
                        mstate[2] += 1
                        if mstate[2] >= STIFF_RESET:
                            mstate[1] = 0
                    if mstate[1] >= STIFF_HITS or mstate[3] >= switch_steps:
                        implicit = True
                        mstate[0] = 1
                        switched_at[0] = t
                        {rhs}(t, y, ctx, k1)
                        {jac}(t, y, ctx, J)
            if not last:
                h = h * fac
            elif fac > 1.0:
                h = h * fac
        else:
            if not finite and h < 1e-12:
                return STATUS_NON_FINITE, h, steps_used
            if implicit:
                fac = 0.9 * enorm ** (-0.25)
                if fac < 0.2:
                    fac = 0.2
            else:
                fac = 0.9 * enorm ** (-0.2)
                if fac < 0.1:
                    fac = 0.1
            h = h * fac
            if h < 1e-10:
                return STATUS_STEP_UNDERFLOW, h, steps_used
    return STATUS_OK, h, steps_used
"""
