"""Source of the batched integrator, appended to the generated model module.

Each patient is integrated independently (``prange``) with an adaptive
Dormand-Prince 5(4) method, stopping exactly at dose events and output
times. Per-patient results never depend on which other patients share the
batch, so chunking and worker count cannot change the numbers.

Status codes: 0 ok, 1 too many steps, 2 non-finite state, 3 step size underflow.
"""

SOURCE = r'''
APPLY = 1
WASH = 2
CHECK = 3
FREEZE = 4
GATE_ALWAYS = 0
GATE_UNTIL_CLEAR = 1
GATE_NOT_CLEAR_AT_CHECK = 2

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
def _integrate_one(y, p, t0, t1, h, rtol, atol, h_max, max_steps, steps_used,
                   k1, k2, k3, k4, k5, k6, k7, ytmp, ynew, err, obs, track_idx, track_max,
                   visible_idx, cleared_at):
    """Advance y from t0 to t1 in place. Returns (status, h, steps_used)."""
    n = y.shape[0]
    t = t0
    rhs(t, y, p, k1)
    while t < t1:
        if steps_used >= max_steps:
            return 1, h, steps_used
        if h > h_max:
            h = h_max
        last = False
        if t + h >= t1:
            h = t1 - t
            last = True
        _dp5_step(t, y, p, h, k1, k2, k3, k4, k5, k6, k7, ytmp, ynew, err)
        steps_used += 1
        enorm = 0.0
        finite = True
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
            t = t1 if last else t + h
            for i in range(n):
                v = ynew[i]
                y[i] = v if v > 0.0 else 0.0   # states are amounts/densities: clip round-off below zero
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
            fac = 0.9 * (enorm if enorm > 1e-10 else 1e-10) ** (-0.2)
            if fac > 5.0:
                fac = 5.0
            if not last:
                h = h * fac
            elif fac > 1.0:
                h = h * fac
        else:
            if not finite and h < 1e-12:
                return 2, h, steps_used
            fac = 0.9 * enorm ** (-0.2)
            if fac < 0.1:
                fac = 0.1
            h = h * fac
            if h < 1e-10:
                return 3, h, steps_used
    return 0, h, steps_used


@njit(parallel=True, cache=True)
def integrate_batch(y0, P, ev_t, ev_kind, ev_amt, ev_gate, t_out, rtol, atol, h_max, max_steps,
                    i_film, i_applied, i_washed, visible_idx, lsr_idx, p_rest_idx, track_idx,
                    Y, status, track_max, cleared_at, applied_count, skipped_rest, steps_out):
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
                                            k1, k2, k3, k4, k5, k6, k7, ytmp, ynew, err, obs,
                                            track_idx, tm, visible_idx, clr)
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
'''
