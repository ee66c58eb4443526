"""Source of the batched integrator, appended to the generated model module.

Each patient is integrated independently (``prange``), stopping exactly at
dose events and output times. Per-patient results never depend on which other
patients share the batch, so chunking and worker count cannot change the
numbers.

Steppers (``method``, one per patient, all driven by the same event/output
loop and the same step-acceptance code):

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
  each stage is an increment of y. The Jacobian is the generated ``jac``
  (dense, exact: symbolic differentiation of the rate laws); the model has no
  explicit time dependence, so the d(rhs)/dt terms vanish.
- ``METHOD_AUTO``: DP5 first; a patient switches to Rodas4 for the rest of its
  run once DP5 detects stiffness (Hairer's test for DOPRI5: h * ||k7 - k6|| /
  ||y_new - y_stage6|| > ``STIFF_HLAMBDA`` on ``STIFF_HITS`` accepted steps without
  ``STIFF_RESET`` non-stiff ones in between, counting only steps shorter than
  ``STIFF_H_FRACTION * h_max``) or once DP5 has taken ``switch_steps`` step
  attempts. A patient that never switches gets exactly the DP5 numbers.

Status codes: 0 ok, 1 too many steps, 2 non-finite state, 3 step size underflow.
"""

SOURCE = r"""
APPLY = 1
WASH = 2
CHECK = 3
FREEZE = 4
GATE_ALWAYS = 0
GATE_UNTIL_CLEAR = 1
GATE_NOT_CLEAR_AT_CHECK = 2
METHOD_DP5 = 0
METHOD_ROSENBROCK = 1
METHOD_AUTO = 2
# Hairer's stiffness detection for DOPRI5 (dopri5.f): an estimate of h*|lambda| above a threshold on
# 15 accepted steps (a run of 6 non-stiff steps resets the count). dopri5.f uses 3.25, just inside
# DOPRI5's stability limit (3.3 on the real axis); this step controller (no PI stabilisation) settles
# stiff problems at h*|lambda| = 2.4-3.0 instead, so the threshold here is 2.0. A step counts only if
# it is also below STIFF_H_FRACTION * h_max: the model is mildly stiff in long follow-up (DP5 held at
# h ~ 1-3 h by stability), where Rodas4's dearer steps do not pay; only DP5 held far below the cap does.
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
def _dp5_step(t, y, p, h, k1, k2, k3, k4, k5, k6, k7, ytmp, ynew, err):
    n = y.shape[0]
    for i in range(n):
        ytmp[i] = y[i] + h * (0.2 * k1[i])
    rhs(t + 0.2 * h, ytmp, p, k2)
    for i in range(n):
        ytmp[i] = y[i] + h * (3.0 / 40.0 * k1[i] + 9.0 / 40.0 * k2[i])
    rhs(t + 0.3 * h, ytmp, p, k3)
    for i in range(n):
        ytmp[i] = y[i] + h * (44.0 / 45.0 * k1[i] - 56.0 / 15.0 * k2[i] + 32.0 / 9.0 * k3[i])
    rhs(t + 0.8 * h, ytmp, p, k4)
    for i in range(n):
        ytmp[i] = y[i] + h * (19372.0 / 6561.0 * k1[i] - 25360.0 / 2187.0 * k2[i] + 64448.0 / 6561.0 * k3[i]
                              - 212.0 / 729.0 * k4[i])
    rhs(t + 8.0 / 9.0 * h, ytmp, p, k5)
    for i in range(n):
        ytmp[i] = y[i] + h * (9017.0 / 3168.0 * k1[i] - 355.0 / 33.0 * k2[i] + 46732.0 / 5247.0 * k3[i]
                              + 49.0 / 176.0 * k4[i] - 5103.0 / 18656.0 * k5[i])
    rhs(t + h, ytmp, p, k6)
    for i in range(n):
        ynew[i] = y[i] + h * (35.0 / 384.0 * k1[i] + 500.0 / 1113.0 * k3[i] + 125.0 / 192.0 * k4[i]
                              - 2187.0 / 6784.0 * k5[i] + 11.0 / 84.0 * k6[i])
    rhs(t + h, ynew, p, k7)
    for i in range(n):
        err[i] = h * (71.0 / 57600.0 * k1[i] - 71.0 / 16695.0 * k3[i] + 71.0 / 1920.0 * k4[i]
                      - 17253.0 / 339200.0 * k5[i] + 22.0 / 525.0 * k6[i] - 1.0 / 40.0 * k7[i])


@njit(cache=True)
def _dp5_stiff_ratio(h, k6, k7, ytmp, ynew):
    # h * ||f(y_new) - f(y_stage6)|| / ||y_new - y_stage6||: an estimate of h * |lambda| (dopri5.f);
    # after _dp5_step, ytmp holds the stage-6 argument, k6 = f(ytmp) and k7 = f(ynew)
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
def _lu_factor(A, piv):
    # In-place LU with partial pivoting (rows swapped whole, as LAPACK getrf): P A = L U with unit L below
    # the diagonal. Returns False for a zero or non-finite pivot.
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
def _lu_solve(A, piv, b):
    # Solve A x = b in place with the factors of _lu_factor.
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
def _ros_step(t, y, p, h, fy, J, W, piv, k1, k2, k3, k4, k5, k6, ytmp, ynew, err):
    # One Rodas4 step from (t, y), given fy = f(y) and J = df/dy at y. Stage i solves
    #   (I/(h*gamma) - J) k_i = f(y + sum_j a_ij k_j) + sum_j (c_ij/h) k_j,
    # y_new = y + sum_j a_5j k_j + k5 + k6 and the embedded (order 3) solution omits k6, so err = k6.
    # Returns False if the iteration matrix cannot be factorised (the caller shrinks h).
    n = y.shape[0]
    fac = 1.0 / (h * ROS_GAMMA)
    for i in range(n):
        for j in range(n):
            W[i, j] = -J[i, j]
        W[i, i] += fac
    if not _lu_factor(W, piv):
        return False
    for i in range(n):
        k1[i] = fy[i]
    _lu_solve(W, piv, k1)
    for i in range(n):
        ytmp[i] = y[i] + ROS_A21 * k1[i]
    rhs(t + ROS_C2 * h, ytmp, p, k2)
    for i in range(n):
        k2[i] += ROS_C21 / h * k1[i]
    _lu_solve(W, piv, k2)
    for i in range(n):
        ytmp[i] = y[i] + ROS_A31 * k1[i] + ROS_A32 * k2[i]
    rhs(t + ROS_C3 * h, ytmp, p, k3)
    for i in range(n):
        k3[i] += (ROS_C31 * k1[i] + ROS_C32 * k2[i]) / h
    _lu_solve(W, piv, k3)
    for i in range(n):
        ytmp[i] = y[i] + ROS_A41 * k1[i] + ROS_A42 * k2[i] + ROS_A43 * k3[i]
    rhs(t + ROS_C4 * h, ytmp, p, k4)
    for i in range(n):
        k4[i] += (ROS_C41 * k1[i] + ROS_C42 * k2[i] + ROS_C43 * k3[i]) / h
    _lu_solve(W, piv, k4)
    for i in range(n):
        ytmp[i] = y[i] + ROS_A51 * k1[i] + ROS_A52 * k2[i] + ROS_A53 * k3[i] + ROS_A54 * k4[i]
    rhs(t + h, ytmp, p, k5)
    for i in range(n):
        k5[i] += (ROS_C51 * k1[i] + ROS_C52 * k2[i] + ROS_C53 * k3[i] + ROS_C54 * k4[i]) / h
    _lu_solve(W, piv, k5)
    for i in range(n):
        ytmp[i] += k5[i]  # the embedded solution
    rhs(t + h, ytmp, p, k6)
    for i in range(n):
        k6[i] += (ROS_C61 * k1[i] + ROS_C62 * k2[i] + ROS_C63 * k3[i] + ROS_C64 * k4[i] + ROS_C65 * k5[i]) / h
    _lu_solve(W, piv, k6)
    for i in range(n):
        ynew[i] = ytmp[i] + k6[i]
        err[i] = k6[i]
    return True


@njit(cache=True)
def _integrate_one(y, p, t0, t1, h, rtol, atol, h_max, max_steps, steps_used,
                   k1, k2, k3, k4, k5, k6, k7, ytmp, ynew, err, J, W, piv, obs, track_idx, track_max,
                   visible_idx, cleared_at, method, switch_steps, mstate, switched_at):
    # Advance y from t0 to t1 in place with the patient's current stepper. Returns (status, h, steps_used).
    # mstate = [implicit (0/1), stiff hits, non-stiff run, DP5 step attempts]; switched_at[0] = time of the
    # switch to Rodas4 (auto), -1 before. Implicit steps use k1 = f(y) and k2..k7 as Rodas4 stages.
    n = y.shape[0]
    t = t0
    implicit = mstate[0] != 0
    rhs(t, y, p, k1)
    if implicit:
        jac(t, y, p, J)
    while t < t1:
        if steps_used >= max_steps:
            return 1, h, steps_used
        if h > h_max:
            h = h_max
        last = False
        if t + h >= t1:
            h = t1 - t
            last = True
        finite = True
        if implicit:
            finite = _ros_step(t, y, p, h, k1, J, W, piv, k2, k3, k4, k5, k6, k7, ytmp, ynew, err)
        else:
            _dp5_step(t, y, p, h, k1, k2, k3, k4, k5, k6, k7, ytmp, ynew, err)
            mstate[3] += 1
        steps_used += 1
        enorm = 0.0
        for i in range(n):
            sc = atol[i] + rtol * max(abs(y[i]), abs(ynew[i]))
            e = err[i] / sc
            enorm += e * e
            if not math.isfinite(ynew[i]):
                finite = False
        enorm = math.sqrt(enorm / n)
        if not finite:
            enorm = 1e10
        if enorm <= 1.0:
            h_used = h
            t = t1 if last else t + h
            for i in range(n):
                v = ynew[i]
                y[i] = v if v > 0.0 else 0.0   # states are amounts/densities: clip round-off below zero
                if not implicit:
                    k1[i] = k7[i]
            # tracked maxima and first clearance time, at every accepted step
            observables(y, p, obs)
            for j in range(track_idx.shape[0]):
                ti = track_idx[j]
                v = y[ti] if ti < n else obs[ti - n]
                if v > track_max[j]:
                    track_max[j] = v
            if cleared_at[0] < 0.0 and obs[visible_idx] < 0.5:
                cleared_at[0] = t
            if implicit:
                fac = 0.9 * (enorm if enorm > 1e-10 else 1e-10) ** (-0.25)
                if fac > 6.0:
                    fac = 6.0
                if not last:  # f and J at the new point (a new segment starts with its own)
                    rhs(t, y, p, k1)
                    jac(t, y, p, J)
            else:
                fac = 0.9 * (enorm if enorm > 1e-10 else 1e-10) ** (-0.2)
                if fac > 5.0:
                    fac = 5.0
                if method == METHOD_AUTO:
                    short = h_used < STIFF_H_FRACTION * h_max
                    if short and _dp5_stiff_ratio(h_used, k6, k7, ytmp, ynew) > STIFF_HLAMBDA:
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
                        rhs(t, y, p, k1)
                        jac(t, y, p, J)
            if not last:
                h = h * fac
            elif fac > 1.0:
                h = h * fac
        else:
            if not finite and h < 1e-12:
                return 2, h, steps_used
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
                return 3, h, steps_used
    return 0, h, steps_used


@njit(parallel=True, cache=True)
def integrate_batch(y0, P, ev_t, ev_kind, ev_amt, ev_gate, t_out, rtol, atol, h_max, max_steps,
                    i_film, i_applied, i_washed, visible_idx, lsr_idx, p_rest_idx, track_idx, method, switch_steps,
                    Y, status, track_max, cleared_at, applied_count, skipped_rest, steps_out, switched_out):
    N = y0.shape[0]
    S = y0.shape[1]
    E = ev_t.shape[0]
    T = t_out.shape[0]
    n_obs = N_OBS
    for n in prange(N):
        y = y0[n].copy()
        p = P[n]
        k1 = np.empty(S); k2 = np.empty(S); k3 = np.empty(S); k4 = np.empty(S)
        k5 = np.empty(S); k6 = np.empty(S); k7 = np.empty(S)
        ytmp = np.empty(S); ynew = np.empty(S); err = np.empty(S)
        S_imp = S if method != METHOD_DP5 else 0  # Jacobian, iteration matrix, pivots: implicit steps only
        J = np.empty((S_imp, S_imp)); W = np.empty((S_imp, S_imp)); piv = np.empty(S_imp, dtype=np.int64)
        mstate = np.zeros(4, dtype=np.int64)
        sw = np.full(1, -1.0)
        if method == METHOD_ROSENBROCK:
            mstate[0] = 1
            sw[0] = 0.0
        obs = np.empty(n_obs)
        tm = np.full(track_idx.shape[0], -np.inf)
        clr = np.full(1, -1.0)
        observables(y, p, obs)
        for j in range(track_idx.shape[0]):
            ti = track_idx[j]
            tm[j] = y[ti] if ti < S else obs[ti - S]
        if obs[visible_idx] < 0.5:
            clr[0] = 0.0
        t = 0.0
        h = 0.01
        e = 0
        k = 0
        steps = 0
        stat = 0
        stopped = False
        not_clear_at_check = True
        n_applied = 0
        n_skipped = 0
        t_end = t_out[T - 1]
        while True:
            # record outputs due now
            while k < T and t_out[k] <= t:
                for i in range(S):
                    Y[n, k, i] = y[i]
                k += 1
            # process events due now
            while e < E and ev_t[e] <= t:
                kind = ev_kind[e]
                if kind == APPLY:
                    observables(y, p, obs)
                    give = True
                    if ev_gate[e] == GATE_UNTIL_CLEAR:
                        if stopped:
                            give = False
                        elif obs[visible_idx] < 0.5:
                            stopped = True
                            give = False
                    elif ev_gate[e] == GATE_NOT_CLEAR_AT_CHECK:
                        if not not_clear_at_check:
                            give = False
                    if give and obs[lsr_idx] >= p[p_rest_idx]:
                        give = False
                        n_skipped += 1
                    if give:
                        y[i_film] += ev_amt[e]
                        y[i_applied] += ev_amt[e]
                        n_applied += 1
                        h = 0.01
                elif kind == WASH:
                    y[i_washed] += y[i_film]
                    y[i_film] = 0.0
                    h = 0.01
                elif kind == CHECK:
                    observables(y, p, obs)
                    not_clear_at_check = obs[visible_idx] >= 0.5
                elif kind == FREEZE:
                    freeze_event(y, p, ev_amt[e])
                    for i in range(S):
                        if y[i] < 0.0:
                            y[i] = 0.0
                    h = 0.01
                e += 1
            if t >= t_end or stat != 0:
                break
            t_next = t_end
            if e < E and ev_t[e] < t_next:
                t_next = ev_t[e]
            if k < T and t_out[k] < t_next:
                t_next = t_out[k]
            if t_next <= t:
                continue
            stat, h, steps = _integrate_one(y, p, t, t_next, h, rtol, atol, h_max, max_steps, steps,
                                            k1, k2, k3, k4, k5, k6, k7, ytmp, ynew, err, J, W, piv, obs,
                                            track_idx, tm, visible_idx, clr, method, switch_steps, mstate, sw)
            t = t_next
        if stat != 0:
            for kk in range(k, T):
                for i in range(S):
                    Y[n, kk, i] = np.nan
        status[n] = stat
        for j in range(track_idx.shape[0]):
            track_max[n, j] = tm[j]
        cleared_at[n] = clr[0]
        applied_count[n] = n_applied
        skipped_rest[n] = n_skipped
        steps_out[n] = steps
        switched_out[n] = sw[0]


@njit(parallel=True, cache=True)
def observables_batch(Y, P, OUT):
    N = Y.shape[0]
    T = Y.shape[1]
    for n in prange(N):
        for k in range(T):
            if math.isfinite(Y[n, k, 0]):
                observables(Y[n, k], P[n], OUT[n, k])
            else:
                for j in range(OUT.shape[2]):
                    OUT[n, k, j] = np.nan


@njit(cache=True)
def initial_batch(P, Y0):
    for n in range(P.shape[0]):
        initial(P[n], Y0[n])
"""
