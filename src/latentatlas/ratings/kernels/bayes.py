"""Numba kernels for Bayesian matrix factorisation by Gibbs sampling (driver: :mod:`latentatlas.ratings.bayes`).

Every conditional the sampler draws from is a Gaussian ridge regression. For a row ``r`` (a user when
sampling user vectors, an item otherwise) with feature rows ``y_j`` of the other side over its entries ``S_r``,
targets ``t_rj``, a fixed offset vector ``o_r`` (the row's implicit-feedback sum) and a diagonal prior
``N(m, diag(1/λ))``:

    A = α·Σ_j y_j y_jᵀ + diag(λ),     b = α·(Σ_j y_j t_rj − G o_r) + λ⊙m,     G = Σ_j y_j y_jᵀ
    x_r ~ N(A⁻¹b, A⁻¹):   x_r = A⁻¹b + U⁻¹z,   A = UᵀU (Cholesky),  z ~ N(0, I)

i.e. the ALS ridge solve (:func:`latentatlas.ratings.kernels.als.ridge_rows`, whose Gram accumulation and
Cholesky are repeated here with per-entry noise precisions and without reassociation) plus one triangular
solve for the draw. Rows run in parallel. With per-user/per-item noise precisions ("heteroscedastic" noise)
each entry's term is weighted by its precision.

Implicit-feedback parameters (``y_j`` shared by every user who rated item ``j``, entering that user's vector
as ``y_j/√|N(u)|``) are coupled through the users they share, so they are drawn one item after another
(an exact Gibbs sweep; a parallel, Jacobi-style update would not sample the right distribution and, by
analysis, oscillates along the "all of a user's y move together" direction). Each draw costs O(K²) per (item, user) pair using the users' Gram matrices and residual
gradients kept from the row step. The coordinate-wise sweep (:func:`sample_side_by_coordinate`) draws one
coordinate of every vector at a time instead: O(K) per rating and per feature non-zero, from one residual per
rating and a few numbers per row.

Random numbers never come from a shared generator: each row's normals are generated from a counter hash of
(``key``, row), where ``key`` is derived from (seed, sample, phase) by the driver, so a result depends on the
seed only, not on the number of threads. Only this module, ``als`` and ``sgd`` import numba.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit, prange

from latentatlas.ratings.kernels.als import prefer_workqueue

prefer_workqueue()

# fastmath without "reassoc" in the parallel kernels, as a precaution so that no reduction's order can depend on
# where a thread's buffers sit; FMA contraction and the rest stay. (What did make results depend on the thread
# count was ``array.sum()`` inside a parallel=True function, which numba turns into a parallel reduction: the
# kernels below sum their per-chunk partials in a plain loop instead.)
_FAST = {"nnan", "ninf", "nsz", "arcp", "contract", "afn"}

_INV_2_53 = 1.0 / 9007199254740992.0
_U1 = np.uint64(1)
_U2 = np.uint64(2)
_U4 = np.uint64(4)


@njit(cache=True, inline="always")
def _span(indptr, r):
    """Row ``r``'s positions ``indptr[r]``, ``indptr[r+1]`` as unsigned integers: numba indexes with a signed
    integer through a test for negative (from-the-end) indices, about a tenth of the time of the hot loops below.
    (Mixing them with signed integers gives floats in numba: step with ``_U1``, ``_U2``, ``_U4``.)"""
    return np.uint64(indptr[r]), np.uint64(indptr[r + 1])


@njit(cache=True, inline="always")
def _splitmix(state):
    """One splitmix64 step: (new state, 64 random bits) (the generator the SGD kernels used too)."""
    state = (state + np.uint64(0x9E3779B97F4A7C15)) & np.uint64(0xFFFFFFFFFFFFFFFF)
    z = state
    z = ((z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)) & np.uint64(0xFFFFFFFFFFFFFFFF)
    z = ((z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)) & np.uint64(0xFFFFFFFFFFFFFFFF)
    return state, z ^ (z >> np.uint64(31))


@njit(cache=True, inline="always")
def _row_state(key, row):
    state = np.uint64(key) ^ ((np.uint64(row) + np.uint64(1)) * np.uint64(0xD1B54A32D192ED03))
    state, _ = _splitmix(state)
    return state


def _ziggurat_tables():
    """Marsaglia and Tsang's ziggurat for the standard normal with 256 layers and 52-bit uniforms (the layout of
    numpy's ``Generator.standard_normal``): layer ``i``'s right edge ``x_i = w[i]·2⁵²``, the share of it under the
    curve in every row of the layer ``k[i]/2⁵²``, its lower and upper heights ``f[i]``, ``f[i−1]``; layer 0 is
    the base strip with the tail beyond ``r``."""
    r, m = _ZIG_R, 2.0 ** 52
    v = r * math.exp(-0.5 * r * r) + math.sqrt(math.pi / 2) * math.erfc(r / math.sqrt(2))  # each layer's area
    k = np.zeros(256, dtype=np.uint64)
    w = np.zeros(256)
    f = np.zeros(256)
    fr = np.exp(-0.5 * r * r)
    q = v / fr  # the base strip's width: its area v over its height f(r)
    k[0] = np.uint64(r / q * m)
    w[0], w[255] = q / m, r / m
    f[0], f[255] = 1.0, fr
    x, prev = r, r
    for i in range(254, 0, -1):
        x = np.sqrt(-2.0 * np.log(v / x + np.exp(-0.5 * x * x)))
        k[i + 1] = np.uint64(x / prev * m)
        prev = x
        f[i] = np.exp(-0.5 * x * x)
        w[i] = x / m
    return k, w, f


_ZIG_R = 3.6541528853610088
_ZIG_K, _ZIG_W, _ZIG_F = _ziggurat_tables()


@njit(cache=True, inline="always")
def _uniform(bits):
    """``[0, 1)`` from 53 of 64 random bits."""
    return np.float64(bits >> np.uint64(11)) * _INV_2_53


@njit(cache=True)
def _normal(state):
    """One standard normal from the ziggurat (:func:`_ziggurat_tables`) on splitmix64 output: (new state,
    value). One 64-bit draw gives the layer (8 bits), the sign (1) and the position (52); 99 % of draws end at the
    first comparison, the rest go through the wedge or the tail test (exact rejection)."""
    while True:
        state, bits = _splitmix(state)
        i = bits & np.uint64(0xFF)
        bits = bits >> np.uint64(8)
        negative = (bits & np.uint64(1)) != 0
        pos = (bits >> np.uint64(1)) & np.uint64(0x000FFFFFFFFFFFFF)
        x = np.float64(pos) * _ZIG_W[i]
        if pos < _ZIG_K[i]:
            return state, -x if negative else x
        if i == 0:  # beyond r: Marsaglia's exponential rejection for the tail
            while True:
                state, b1 = _splitmix(state)
                state, b2 = _splitmix(state)
                t = -np.log1p(-_uniform(b1)) / _ZIG_R
                e = -np.log1p(-_uniform(b2))
                if e + e > t * t:
                    return state, -(_ZIG_R + t) if negative else _ZIG_R + t
        state, b1 = _splitmix(state)
        lo = _ZIG_F[i]
        if (_ZIG_F[i - 1] - lo) * _uniform(b1) + lo < np.exp(-0.5 * x * x):
            return state, -x if negative else x


@njit(cache=True)
def _normals(state, out):
    """Fill ``out`` with standard normals (:func:`_normal`); returns the new state."""
    for a in range(out.shape[0]):
        state, out[a] = _normal(state)
    return state


@njit(cache=True)
def normals(key, row, n):
    """The ``n`` standard normals row ``row`` gets for ``key`` (exposed for tests)."""
    out = np.empty(n)
    _normals(_row_state(key, row), out)
    return out


@njit(fastmath=_FAST, cache=True)
def _cholesky_solve(A, b, rel_tol):
    """Solve ``A x = b`` (upper triangle of symmetric ``A`` read), ``x`` into ``b``; ``A`` becomes U with
    A = UᵀU. False when a pivot is not above ``rel_tol`` × the largest diagonal entry (as
    :func:`latentatlas.ratings.kernels.als._cholesky_solve`, without reassociation)."""
    k = A.shape[0]
    scale = A[0, 0]
    for j in range(k):
        scale = max(scale, A[j, j])
    tiny = scale * rel_tol
    for j in range(k):
        s = A[j, j]
        if not s > tiny:
            return False
        inv = 1 / np.sqrt(s)
        for c in range(j, k):
            A[j, c] *= inv
        for i in range(j + 1, k):
            f = A[j, i]
            for c in range(i, k):
                A[i, c] -= f * A[j, c]
    for i in range(k):  # Uᵀ z = b
        z = b[i] / A[i, i]
        b[i] = z
        for c in range(i + 1, k):
            b[c] -= z * A[i, c]
    for i in range(k - 1, -1, -1):  # U x = z
        t = b[i]
        for c in range(i + 1, k):
            t -= A[i, c] * b[c]
        b[i] = t / A[i, i]
    return True


@njit(fastmath=_FAST, cache=True)
def _upper_back_solve(U, z):
    """Solve ``U w = z`` in place (``U`` upper triangular in the upper triangle of its argument)."""
    k = U.shape[0]
    for i in range(k - 1, -1, -1):
        t = z[i]
        for c in range(i + 1, k):
            t -= U[i, c] * z[c]
        z[i] = t / U[i, i]


@njit(fastmath=_FAST, cache=True)
def _draw(A, b, z, draw, state):
    """Factorise ``A`` (upper triangle; ``A`` destroyed), mean into ``b``, then add ``U⁻¹z`` when ``draw``.

    A is positive definite because the prior precisions are; if rounding says otherwise the diagonal is
    raised by 1e-9 of its scale until the factorisation succeeds."""
    k = A.shape[0]
    rhs = b.copy()
    Acopy = A.copy()
    jitter = 0.0
    while not _cholesky_solve(A, b, 1e-13):
        scale = 0.0
        for a in range(k):
            scale = max(scale, Acopy[a, a])
        jitter = max(jitter * 10.0, scale * 1e-9 + 1e-300)
        for a in range(k):
            for c in range(k):
                A[a, c] = Acopy[a, c]
            A[a, a] += jitter
            b[a] = rhs[a]
    if draw:
        state = _normals(state, z)
        _upper_back_solve(A, z)
        for a in range(k):
            b[a] += z[a]
    return state


@njit(fastmath=_FAST, cache=True)
def _wgram(indptr, indices, data, col_w, Y, r, A, b):
    """``A = Σ_j ω_j y_j y_jᵀ``, ``b = Σ_j ω_j y_j v_j`` over row ``r`` (ω = ``col_w[j]``), full square,
    four entries per sweep as :func:`latentatlas.ratings.kernels.als._gram`."""
    k = Y.shape[1]
    A[:] = 0
    b[:] = 0
    start, end = indptr[r], indptr[r + 1]
    j = start
    while j + 4 <= end:
        i0, i1, i2, i3 = indices[j], indices[j + 1], indices[j + 2], indices[j + 3]
        y0, y1, y2, y3 = Y[i0], Y[i1], Y[i2], Y[i3]
        w0, w1, w2, w3 = col_w[i0], col_w[i1], col_w[i2], col_w[i3]
        v0, v1, v2, v3 = w0 * data[j], w1 * data[j + 1], w2 * data[j + 2], w3 * data[j + 3]
        for a in range(k):
            a0, a1, a2, a3 = w0 * y0[a], w1 * y1[a], w2 * y2[a], w3 * y3[a]
            b[a] += v0 * y0[a] + v1 * y1[a] + v2 * y2[a] + v3 * y3[a]
            row = A[a]
            for c in range(k):
                row[c] += a0 * y0[c] + a1 * y1[c] + a2 * y2[c] + a3 * y3[c]
        j += 4
    while j < end:
        i0 = indices[j]
        y0 = Y[i0]
        w0 = col_w[i0]
        v0 = w0 * data[j]
        for a in range(k):
            a0 = w0 * y0[a]
            b[a] += v0 * y0[a]
            row = A[a]
            for c in range(k):
                row[c] += a0 * y0[c]
        j += 1


@njit(parallel=True, fastmath=_FAST, cache=True)
def sample_rows(indptr, indices, targets, Y, offsets, prior_mean, prior_prec, alpha, row_w, col_w, X, key, draw,
                gram_out, grad_out, store, n_chunks):
    """Draw every row of ``X`` from its Gaussian conditional (module docstring).

    ``targets`` are the CSR values already net of everything outside the row's product (global mean, the
    other side's bias). ``offsets`` (n_rows × K) is the fixed part ``o_r`` of the row's effective vector
    (zeros without implicit feedback). The noise precision of entry (r, j) is ``alpha·row_w[r]·col_w[j]``
    (all ones: one global precision). ``draw=False`` writes the conditional mean instead of a draw.
    With ``store``, ``gram_out[r]`` receives the precision-weighted Gram ``G = row_w[r] Σ_j col_w[j] y_j y_jᵀ``
    (without α) and ``grad_out[r]`` the weighted residual gradient ``row_w[r] Σ_j col_w[j] y_j t_rj −
    G (x_r + o_r)`` at the new ``x_r``, which the implicit-feedback sweep needs.
    """
    n_rows = len(indptr) - 1
    k = Y.shape[1]
    step = (n_rows + n_chunks - 1) // n_chunks
    for c in prange(n_chunks):
        A = np.empty((k, k))
        G = np.empty((k, k))
        b = np.empty(k)
        c_vec = np.empty(k)
        z = np.empty(k)
        for r in range(c * step, min(n_rows, (c + 1) * step)):
            _wgram(indptr, indices, targets, col_w, Y, r, G, c_vec)
            wr = row_w[r]
            for a in range(k):
                c_vec[a] *= wr
                for cc in range(k):
                    G[a, cc] *= wr
            o = offsets[r]
            for a in range(k):
                go = 0.0
                for cc in range(k):
                    go += G[a, cc] * o[cc]
                b[a] = alpha * (c_vec[a] - go) + prior_prec[a] * prior_mean[a]
                for cc in range(k):
                    A[a, cc] = alpha * G[a, cc]
                A[a, a] += prior_prec[a]
            _draw(A, b, z, draw, _row_state(key, r))
            for a in range(k):
                X[r, a] = b[a]
            if store:
                for a in range(k):
                    g = c_vec[a]
                    for cc in range(k):
                        g -= G[a, cc] * (b[cc] + o[cc])
                        gram_out[r, a, cc] = G[a, cc]
                    grad_out[r, a] = g


@njit(parallel=True, fastmath=_FAST, cache=True)
def row_residuals(indptr, indices, data, mu, R, C, col_w, sq_out, lin_out, w_out):
    """Per CSR row ``r``: ``Σ_j ω_j e²``, ``Σ_j ω_j e`` and ``Σ_j ω_j`` (ω = ``col_w[j]``) of the residuals
    ``e = v − μ − R[r,0] − C[j,0] − R[r,1:]·C[j,1:]`` (effective vectors, biases in column 0)."""
    n_rows = len(indptr) - 1
    k = R.shape[1]
    for r in prange(n_rows):
        q = R[r]
        s2 = 0.0
        s1 = 0.0
        sw = 0.0
        for p in range(indptr[r], indptr[r + 1]):
            j = indices[p]
            y = C[j]
            dot = 0.0
            for a in range(1, k):
                dot += q[a] * y[a]
            e = data[p] - mu - q[0] - y[0] - dot
            w = col_w[j]
            s2 += w * e * e
            s1 += w * e
            sw += w
        sq_out[r] = s2
        lin_out[r] = s1
        w_out[r] = sw


@njit(fastmath=True, cache=True)
def sample_columns(indptr, indices, data, groups, gram, grad, W, S, prior_mean, prior_prec, alpha, key, draw):
    """One sequential Gibbs sweep over the feature vectors ``W`` (n_cols × K) of a sparse feature matrix ``F``.

    The effective vector of row ``u`` (a user when ``F`` holds user features) is ``x_u + S[u]`` with
    ``S[u] = Σ_f F[u, f]·W[f]``. ``F`` is given by column (CSC): column ``f`` has the rows
    ``indices[indptr[f]:indptr[f+1]]`` with values ``data[...]``. Column ``f``'s prior is
    ``N(prior_mean[groups[f]], diag(1/prior_prec[groups[f]]))`` (one row of hyper-parameters per group).
    ``grad[u]`` is the residual gradient of row ``u`` and ``gram[u]`` its Gram matrix from :func:`sample_rows`;
    ``S`` and ``grad`` are kept up to date here. The conditional of ``w_f`` is

        A = diag(λ_g) + α Σ_u F_uf² G_u,   b = λ_g⊙m_g + α Σ_u F_uf (grad_u + F_uf G_u w_f)

    where the second sum is ``(Σ_u F_uf² G_u) w_f``, formed once per column. Cost per non-zero: K² for A plus
    K² to update ``grad[u]`` after the draw. Sequential: columns share rows. Column ``f``'s normals come from
    (``key``, ``f``).
    """
    n_cols = len(indptr) - 1
    k = W.shape[1]
    A = np.empty((k, k))
    b = np.empty(k)
    z = np.empty(k)
    old = np.empty(k)
    for j in range(n_cols):
        g_j = groups[j]
        for a in range(k):
            old[a] = W[j, a]
            b[a] = 0.0
            for c in range(k):
                A[a, c] = 0.0
        for p in range(indptr[j], indptr[j + 1]):
            u = indices[p]
            w = data[p]
            ww = w * w
            G = gram[u]
            g = grad[u]
            for a in range(k):  # full rows from 0: they vectorise
                row = G[a]
                Aa = A[a]
                for c in range(k):
                    Aa[c] += ww * row[c]
                b[a] += w * g[a]
        # Σ_u F_uf² G_u w_f = A_lik w_f: the old value's own contribution, added back once per column
        for a in range(k):
            t = 0.0
            for c in range(k):
                t += A[a, c] * old[c]
            b[a] = alpha * (b[a] + t) + prior_prec[g_j, a] * prior_mean[g_j, a]
        for a in range(k):
            for c in range(k):
                A[a, c] *= alpha
            A[a, a] += prior_prec[g_j, a]
        _draw(A, b, z, draw, _row_state(key, j))
        for a in range(k):
            z[a] = b[a] - old[a]  # the change
            W[j, a] = b[a]
        for p in range(indptr[j], indptr[j + 1]):
            u = indices[p]
            w = data[p]
            G = gram[u]
            g = grad[u]
            s = S[u]
            for c in range(k):  # g −= w·G z as axpys over G's rows (G symmetric): no reductions
                f = w * z[c]
                row = G[c]
                for a in range(k):
                    g[a] -= f * row[a]
                s[c] += f


@njit(cache=True)
def sample_implicit(indptr, indices, weight, gram, grad, W, S, prior_mean, prior_prec, alpha, key, draw):
    """One sequential Gibbs sweep over the implicit-feedback vectors ``W`` (n_cols × K): :func:`sample_columns`
    for the feature matrix whose column ``j`` (e.g. an item) holds ``weight[u] = 1/√|N(u)|`` for every row
    ``u`` in ``indices[indptr[j]:indptr[j+1]]`` (the users who rated it), one group."""
    data = np.empty(len(indices))
    for p in range(len(indices)):
        data[p] = weight[indices[p]]
    groups = np.zeros(len(indptr) - 1, dtype=np.int32)
    sample_columns(indptr, indices, data, groups, gram, grad, W, S, prior_mean.reshape(1, -1),
                   prior_prec.reshape(1, -1), alpha, key, draw)


# --- the feature block one coordinate at a time (libFM/myFM's order): O(K) per non-zero instead of O(K²) ---------
@njit(parallel=True, fastmath=_FAST, cache=True)
def full_residuals(indptr, indices, targets, Y, X, S, out, n_chunks):
    """``out[p] = targets[p] − Y[j]·(X[r] + S[r])`` over a CSR matrix (row ``r``, column ``j = indices[p]``)."""
    n_rows = len(indptr) - 1
    k = Y.shape[1]
    step = (n_rows + n_chunks - 1) // n_chunks
    for c in prange(n_chunks):
        x = np.empty(k)
        for r in range(c * step, min(n_rows, (c + 1) * step)):
            for a in range(k):
                x[a] = X[r, a] + S[r, a]
            start, end = _span(indptr, r)
            for p in range(start, end):
                y = Y[indices[p]]
                dot = 0.0
                for a in range(k):
                    dot += y[a] * x[a]
                out[p] = targets[p] - dot


@njit(cache=True, inline="always")
def _take_pending(r, scale, state, extra, s_prev):
    """Row ``r``'s changes not yet applied to its residuals, cleared: ``(pa, pb)``, the changes of the
    coordinate before last (``extra[r, 3]``) and of the last one (the feature sweep's ``scale·state[r, 2]``,
    which also goes to ``s_prev``, plus the row's own ``state[r, 3]``)."""
    pa = extra[r, 3]
    moved = scale[r] * state[r, 2]
    s_prev[r] += moved
    pb = moved + state[r, 3]
    extra[r, 3] = 0.0
    state[r, 2] = 0.0
    state[r, 3] = 0.0
    return pa, pb


@njit(fastmath=_FAST, cache=True, inline="always")
def _draw_scalar(r, d, e, x, lam, lm, alpha, z):
    """Row ``r``'s coordinate ``x[r]`` drawn from its scalar conditional, given its sums ``d`` (Σ ω y²) and
    ``e`` (Σ ω y·residual at the current value): precision ``λ + α d``, mean ``(λm + α (e + d x[r])) /
    precision`` (``lm`` = λm), ``z[r]`` the standard normal. Returns the change."""
    old = x[r]
    prec = lam + alpha * d
    new = (lm + alpha * (e + d * old)) / prec + z[r] / np.sqrt(prec)
    x[r] = new
    return new - old


@njit(fastmath=_FAST, cache=True, inline="always")
def _draw_own(r, d, e, d2, e2, cr, row_w, x, lam, lm, alpha, scale, z, state, extra):
    """Row ``r``'s own value of the coordinate from its sums ``d`` (Σ ω y²) and ``e`` (Σ ω y·residual), both
    passes' shared ending: keeps the next coordinate's sums (``d2``, ``e2``, the cross term ``cr``) in
    ``extra[r, :3]`` and the per-row state the feature sweep reads."""
    wr = row_w[r]
    d *= wr
    e *= wr
    extra[r, 0] = wr * d2
    extra[r, 1] = wr * e2
    extra[r, 2] = wr * cr
    change = _draw_scalar(r, d, e, x, lam, lm, alpha, z)
    s = scale[r]
    state[r, 0] = s * s * d
    state[r, 1] = s * (e - d * change)
    state[r, 3] = change


@njit(parallel=True, fastmath=_FAST, cache=True)
def sample_rows_coordinate(indptr, indices, resid, yy, x, lam, lm, alpha, row_w, scale, z, state, extra, s_prev,
                           apply_prev, draw, n_chunks):
    """Coordinate ``f`` of every row's own vector from its scalar conditional (rows in parallel: given the rest
    they are independent), after applying the previous two coordinates' changes to the residuals, and the sums
    that coordinate ``g = f+1`` needs (:func:`draw_second_coordinate`): one pass over the ratings per two
    coordinates.

    ``resid[p]`` is rating ``p``'s residual ``t − Y[j]·(X[r] + S[r])`` before the previous coordinates' changes;
    ``yy[j] = (Y[j,f-2], Y[j,f-1], Y[j,f], Y[j,g], ω_j Y[j,f], ω_j Y[j,g])`` (ω: the column's noise factor;
    zeros for a coordinate that is not there; one 48-byte row per rating instead of six arrays, which matters
    when the other side has many rows, and no padding to 64 bytes: 10,000 columns' rows then fit a 512 KB L2); ``x = X[:, f]``, ``s_prev = S[:, f-1]`` (both updated in place).
    ``state[r] = (a, b, q, own)`` in units of ``s = scale[r]`` (1, or the row's implicit weight when every
    feature column holds it, see :func:`sweep_implicit_state`): with ``apply_prev``, the change ``s·q`` of
    ``S[r, f-1]`` made by the feature sweep and ``own`` (of ``X[r, f-1]``) are taken out of the residuals with
    ``extra[r, 3]`` (the whole change of coordinate ``f-2``, left there by :func:`draw_second_coordinate`), and
    ``s·q`` is added to ``s_prev``. With ``draw``, for ``d = ω_r Σ ω_j Y[j,f]²`` and ``c = ω_r Σ ω_j
    Y[j,f]·resid``: precision ``λ + α d``, mean ``(λm + α (c + d x[r])) / precision`` (``lam``, ``lm`` = λ and
    λm of coordinate ``f``); ``z[r]`` the row's standard normal. On exit ``state[r]`` holds ``a = s²d``,
    ``b = s·c`` at the new value (what the feature sweeps read), ``q = 0`` and the change of ``x[r]``;
    ``extra[r, :3]`` = ω_r Σ ω_j (Y[j,g]², Y[j,g]·resid, Y[j,f]·Y[j,g]). Without ``draw`` (the last call of a
    side) only the previous changes are applied."""
    n_rows = len(indptr) - 1
    step = (n_rows + n_chunks - 1) // n_chunks
    for ch in prange(n_chunks):
        for r in range(ch * step, min(n_rows, (ch + 1) * step)):
            pa = 0.0
            pb = 0.0
            if apply_prev:
                pa, pb = _take_pending(r, scale, state, extra, s_prev)
            start, end = _span(indptr, r)
            if not draw:
                if pa != 0.0 or pb != 0.0:
                    for p in range(start, end):
                        q = yy[np.uint64(indices[p])]
                        resid[p] -= q[0] * pa + q[1] * pb
                continue
            d = 0.0
            e = 0.0
            d2 = 0.0
            e2 = 0.0
            cr = 0.0
            if pa != 0.0 or pb != 0.0:
                for p in range(start, end):
                    q = yy[np.uint64(indices[p])]
                    rp = resid[p] - (q[0] * pa + q[1] * pb)
                    resid[p] = rp
                    d += q[4] * q[2]
                    e += q[4] * rp
                    d2 += q[5] * q[3]
                    e2 += q[5] * rp
                    cr += q[4] * q[3]
            else:
                for p in range(start, end):
                    q = yy[np.uint64(indices[p])]
                    rp = resid[p]
                    d += q[4] * q[2]
                    e += q[4] * rp
                    d2 += q[5] * q[3]
                    e2 += q[5] * rp
                    cr += q[4] * q[3]
            _draw_own(r, d, e, d2, e2, cr, row_w, x, lam, lm, alpha, scale, z, state, extra)


@njit(parallel=True, fastmath=_FAST, cache=True)
def draw_second_coordinate(x, lam, lm, alpha, scale, z, state, extra, s_cur):
    """Coordinate ``g = f+1`` of every row's own vector, from the sums the pass of coordinate ``f`` gathered
    (``extra[r, :3]``, see :func:`sample_rows_coordinate`) corrected for coordinate ``f``'s changes since: the
    residuals then were larger by ``Y[j,f]·p_r`` (``p_r`` = the row's own change plus the feature sweep's
    ``s·q``), so ``c_g`` falls by ``p_r · ω_r Σ ω_j Y[j,f] Y[j,g]`` and ``d_g`` stays: the same conditional as a
    pass of its own over the ratings would give, O(1) per row. ``s_cur = S[:, f]`` receives ``s·q``; ``p_r``
    goes to ``extra[r, 3]`` for the next pass; ``state[r]`` is left as after a pass of coordinate ``g``."""
    for r in prange(len(x)):
        s = scale[r]
        moved = s * state[r, 2]
        s_cur[r] += moved
        pa = moved + state[r, 3]
        extra[r, 3] = pa
        d = extra[r, 0]
        e = extra[r, 1] - extra[r, 2] * pa
        change = _draw_scalar(r, d, e, x, lam, lm, alpha, z)
        state[r, 0] = s * s * d
        state[r, 1] = s * (e - d * change)
        state[r, 2] = 0.0
        state[r, 3] = change


@njit(parallel=True, fastmath=_FAST, cache=True)
def sample_rows_coordinate_by_col(o_indptr, o_indices, resid, yy, x, lam, lm, alpha, row_w, scale, z, state, extra,
                                  s_prev, apply_prev, draw, acc, pending):
    """:func:`sample_rows_coordinate` going through the ratings grouped by the *other* side (CSR ``o_indptr``,
    ``o_indices``: row ``u`` of the other side, then this side's row of each of its ratings; ``resid`` and
    ``yy`` (indexed by ``u``) in that order). Its random accesses go to this side's short arrays (``pending``,
    ``acc``) instead of the other side's vectors: at 10 M ratings the item side's pass reads each user's
    numbers once instead of a 2 MB table once per rating.

    The sums per row are gathered in ``acc`` (n_chunks × n_rows × 5), one slice per fixed chunk of the other
    side, and added chunk after chunk: the same sums whatever the number of threads. ``pending`` (n_rows × 2):
    scratch."""
    n_rows = len(x)
    n_other = len(o_indptr) - 1
    n_chunks = acc.shape[0]
    for r in prange(n_rows):
        pa = 0.0
        pb = 0.0
        if apply_prev:
            pa, pb = _take_pending(r, scale, state, extra, s_prev)
        pending[r, 0] = pa
        pending[r, 1] = pb
    step = (n_other + n_chunks - 1) // n_chunks
    for ch in prange(n_chunks):
        a = acc[ch]
        for r in range(n_rows):
            for t in range(5):
                a[r, t] = 0.0
        for u in range(ch * step, min(n_other, (ch + 1) * step)):
            q = yy[u]
            y0 = q[0]
            y1 = q[1]
            w1 = q[4]
            w2 = q[5]
            wyy = w1 * q[2]
            wyy2 = w2 * q[3]
            wcr = w1 * q[3]
            start, end = _span(o_indptr, u)
            for p in range(start, end):
                i = np.uint64(o_indices[p])
                rp = resid[p] - (y0 * pending[i, 0] + y1 * pending[i, 1])
                resid[p] = rp
                ai = a[i]
                ai[0] += wyy
                ai[1] += w1 * rp
                ai[2] += wyy2
                ai[3] += w2 * rp
                ai[4] += wcr
    if draw:
        for r in prange(n_rows):
            d = 0.0
            e = 0.0
            d2 = 0.0
            e2 = 0.0
            cr = 0.0
            for ch in range(n_chunks):
                d += acc[ch, r, 0]
                e += acc[ch, r, 1]
                d2 += acc[ch, r, 2]
                e2 += acc[ch, r, 3]
                cr += acc[ch, r, 4]
            _draw_own(r, d, e, d2, e2, cr, row_w, x, lam, lm, alpha, scale, z, state, extra)


@njit(fastmath=True, cache=True)
def sweep_factor_state(indptr, indices, data, groups, w, state, prior_mean, prior_prec, alpha, z):
    """Coordinate ``f`` of every feature column, one column after another, each from its exact conditional.

    Column ``l`` enters row ``u`` as ``F[u,l]·W[l]`` (CSC ``indptr``/``indices``/``data``, prior group
    ``groups[l]``); ``w = W[:, f]`` (updated in place), ``prior_mean``/``prior_prec`` the groups' coordinate
    ``f``. ``state[u] = (d_u, c_u, q_u)`` from :func:`sample_rows_coordinate` (scale 1): ``d_u`` the row's
    weighted sum of squares of coordinate ``f``, ``c_u`` its weighted residual product when the sweep began and
    ``q_u`` the change of ``S[u, f]`` since, so that the current product is ``c_u − d_u q_u``. A unit of
    ``W[l,f]`` moves row ``u``'s predictions by ``F[u,l]·Y[j,f]``, so::

        precision = λ + α Σ_u F² d_u,   mean = (λ m + α Σ_u F (c_u − d_u q_u + F d_u W[l,f])) / precision

    and the draw adds ``F[u,l]·change`` to ``q_u``, which the next coordinate's row step applies to the
    residuals. ``z[l]``: column ``l``'s standard normal. Sequential (columns share rows)."""
    n_cols = len(indptr) - 1
    for l in range(n_cols):
        g = groups[l]
        old = w[l]
        start, end = _span(indptr, l)
        prec0 = prec1 = num0 = num1 = 0.0  # two chains of sums: half the wait on the adds
        p = start
        while p + _U2 <= end:
            u0, u1 = np.uint64(indices[p]), np.uint64(indices[p + _U1])
            v0, v1 = data[p], data[p + _U1]
            a0, a1 = state[u0, 0], state[u1, 0]
            prec0 += v0 * v0 * a0
            prec1 += v1 * v1 * a1
            num0 += v0 * (state[u0, 1] - a0 * state[u0, 2])
            num1 += v1 * (state[u1, 1] - a1 * state[u1, 2])
            p += _U2
        if p < end:
            u0 = np.uint64(indices[p])
            v0 = data[p]
            a0 = state[u0, 0]
            prec0 += v0 * v0 * a0
            num0 += v0 * (state[u0, 1] - a0 * state[u0, 2])
        prec = prec0 + prec1
        num = num0 + num1 + prec * old
        lam = prior_prec[g]
        prec = lam + alpha * prec
        new = (lam * prior_mean[g] + alpha * num) / prec + z[l] / np.sqrt(prec)
        w[l] = new
        change = new - old
        for p in range(start, end):
            state[np.uint64(indices[p]), 2] += data[p] * change


@njit(fastmath=True, cache=True)
def sweep_implicit_state(indptr, indices, w, state, prior_mean, prior_prec, alpha, z):
    """:func:`sweep_factor_state` for implicit columns, whose value for row ``u`` is the row's weight ``s_u``
    (1/√|N(u)|) in every column, held in ``state`` in units of it: ``(a, b, q) = (s²d, s·c, change/s)``; the
    sums over a column need no values and no products (one group: scalar ``prior_mean``/``prior_prec``)."""
    n_cols = len(indptr) - 1
    for l in range(n_cols):
        old = w[l]
        start, end = _span(indptr, l)
        prec0 = prec1 = prec2 = prec3 = 0.0  # four chains of sums: a quarter of the wait on the adds
        num0 = num1 = num2 = num3 = 0.0
        p = start
        while p + _U4 <= end:
            u0, u1, u2, u3 = (np.uint64(indices[p]), np.uint64(indices[p + _U1]), np.uint64(indices[p + _U2]),
                              np.uint64(indices[p + _U1 + _U2]))
            a0, a1, a2, a3 = state[u0, 0], state[u1, 0], state[u2, 0], state[u3, 0]
            prec0 += a0
            prec1 += a1
            prec2 += a2
            prec3 += a3
            num0 += state[u0, 1] - a0 * state[u0, 2]
            num1 += state[u1, 1] - a1 * state[u1, 2]
            num2 += state[u2, 1] - a2 * state[u2, 2]
            num3 += state[u3, 1] - a3 * state[u3, 2]
            p += _U4
        while p < end:
            u0 = np.uint64(indices[p])
            a0 = state[u0, 0]
            prec0 += a0
            num0 += state[u0, 1] - a0 * state[u0, 2]
            p += _U1
        prec = (prec0 + prec1) + (prec2 + prec3)
        num = (num0 + num1) + (num2 + num3) + prec * old
        prec = prior_prec + alpha * prec
        new = (prior_prec * prior_mean + alpha * num) / prec + z[l] / np.sqrt(prec)
        w[l] = new
        change = new - old
        for p in range(start, end):
            state[np.uint64(indices[p]), 2] += change


@njit(parallel=True, fastmath=_FAST, cache=True)
def draw_second_coordinate_paired(x, lam, lm, alpha, scale, z, state, extra, pair):
    """:func:`draw_second_coordinate` for rows whose feature columns are implicit, before either coordinate's
    column sweep: both sweeps then run as one (:func:`sweep_implicit_pair`). Coordinate ``g`` is drawn from the
    sums the pass of ``f`` gathered, corrected for the row's own change of ``f`` (``state[r, 3]``; the columns
    have not moved yet). ``pair[r]`` receives what the joint sweep reads, in units of ``s = scale[r]``:
    ``(a_f, b_f, 0, a_g, b_g, 0, e, ·)`` with ``a = s²d``, ``b = s·c`` at the new values (``b_f`` less
    ``s·cr·change_g``, the residuals having moved by ``Y[j,g]·change_g``) and ``e = s²·cr``, the rows' cross
    term ``ω_r Σ ω_j Y[j,f] Y[j,g]`` that couples the two coordinates. The own changes go to ``extra[r, 3]``
    (f) and ``state[r, 3]`` (g) for :func:`finish_pair`."""
    for r in prange(len(x)):
        s = scale[r]
        own_f = state[r, 3]
        d = extra[r, 0]
        cr = extra[r, 2]
        e = extra[r, 1] - cr * own_f
        change = _draw_scalar(r, d, e, x, lam, lm, alpha, z)
        p = pair[r]
        p[0] = state[r, 0]
        p[1] = state[r, 1] - s * cr * change
        p[2] = 0.0
        p[3] = s * s * d
        p[4] = s * (e - d * change)
        p[5] = 0.0
        p[6] = s * s * cr
        extra[r, 3] = own_f
        state[r, 2] = 0.0
        state[r, 3] = change


@njit(fastmath=True, cache=True)
def sweep_implicit_pair(indptr, indices, wf, wg, pair, mean_f, prec_f, mean_g, prec_g, alpha, zf, zg):
    """Coordinates ``f`` and ``g`` of every implicit column, one column after another, ``f`` then ``g`` from
    their exact conditionals (:func:`sweep_implicit_state` for two coordinates in one pass over each column's
    rows: half the random accesses). ``pair[u] = (a_f, b_f, q_f, a_g, b_g, q_g, e, ·)`` from
    :func:`draw_second_coordinate_paired`; ``q`` accumulates the columns' changes in the row's units. The
    current residual products are ``b_f − a_f q_f`` and ``b_g − a_g q_g − e q_f`` (a change of ``f`` moves the
    residuals along ``Y[:, f]``, which ``g``'s product sees through the cross term ``e``), so column ``l``'s
    ``g`` takes its own ``f`` change ``δ_f`` into account as ``− δ_f Σ_u e_u``. ``wf``/``wg`` = ``W[:, f]``,
    ``W[:, g]`` (updated in place); scalar priors per coordinate; ``zf``/``zg`` the columns' standard normals."""
    n_cols = len(indptr) - 1
    for l in range(n_cols):
        start, end = _span(indptr, l)
        af0 = af1 = nf0 = nf1 = ag0 = ag1 = ng0 = ng1 = e0 = e1 = 0.0  # two chains of sums
        p = start
        while p + _U2 <= end:
            s0 = pair[np.uint64(indices[p])]
            s1 = pair[np.uint64(indices[p + _U1])]
            af0 += s0[0]
            af1 += s1[0]
            nf0 += s0[1] - s0[0] * s0[2]
            nf1 += s1[1] - s1[0] * s1[2]
            ag0 += s0[3]
            ag1 += s1[3]
            ng0 += s0[4] - s0[3] * s0[5] - s0[6] * s0[2]
            ng1 += s1[4] - s1[3] * s1[5] - s1[6] * s1[2]
            e0 += s0[6]
            e1 += s1[6]
            p += _U2
        if p < end:
            s0 = pair[np.uint64(indices[p])]
            af0 += s0[0]
            nf0 += s0[1] - s0[0] * s0[2]
            ag0 += s0[3]
            ng0 += s0[4] - s0[3] * s0[5] - s0[6] * s0[2]
            e0 += s0[6]
        a = af0 + af1
        old = wf[l]
        prec = prec_f + alpha * a
        new = (prec_f * mean_f + alpha * (nf0 + nf1 + a * old)) / prec + zf[l] / np.sqrt(prec)
        wf[l] = new
        df = new - old
        a = ag0 + ag1
        old = wg[l]
        prec = prec_g + alpha * a
        new = (prec_g * mean_g + alpha * (ng0 + ng1 - df * (e0 + e1) + a * old)) / prec + zg[l] / np.sqrt(prec)
        wg[l] = new
        dg = new - old
        for p in range(start, end):
            s0 = pair[np.uint64(indices[p])]
            s0[2] += df
            s0[5] += dg


@njit(parallel=True, fastmath=_FAST, cache=True)
def finish_pair(scale, pair, state, extra, s_f, s_g):
    """After :func:`sweep_implicit_pair`: the rows' feature sums ``S[:, f]``, ``S[:, g]`` (``s_f``, ``s_g``)
    take the columns' changes ``s·q``, and each coordinate's whole change (own plus columns') is left where the
    next pass takes it from (:func:`_take_pending`: ``extra[r, 3]`` for ``f``, ``state[r, 3]`` for ``g``)."""
    for r in prange(len(scale)):
        s = scale[r]
        mf = s * pair[r, 2]
        mg = s * pair[r, 5]
        s_f[r] += mf
        s_g[r] += mg
        extra[r, 3] += mf
        state[r, 3] += mg


@njit(fastmath=_FAST, cache=True)
def sweep_implicit_given_effective(indptr, indices, weight, X, W, row_mean, row_prec, col_mean, col_prec, Z):
    """Every implicit column's whole vector, one column after another, each drawn given the rows' *effective*
    vectors ``x_u = X[u] + s_u Σ_{j∈N(u)} W[j]`` (``s_u = weight[u]``) and the other columns, instead of given
    the rows' own vectors ``X``: an exact Gibbs step too, since (X, W) → (x, W) is linear with unit Jacobian, so
    a draw of ``W[l]`` with ``x`` held (``X[u]`` moving by ``−s_u·change`` for each row ``u`` of column ``l``)
    leaves the same posterior invariant. Given ``x`` the ratings do not involve ``W`` at all, only the two
    diagonal priors, ``X[u,f] ~ N(row_mean[f], 1/row_prec[f])`` and ``W[l,f] ~ N(col_mean[f], 1/col_prec[f])``,
    so the K coordinates are independent::

        precision_f = col_prec_f + row_prec_f Σ_u s_u²
        mean_f = (col_prec_f col_mean_f + row_prec_f Σ_u s_u (X[u,f] − row_mean_f + s_u W[l,f])) / precision_f

    (sums over the rows ``u`` of column ``l``: ``indices[indptr[l]:indptr[l+1]]``). One gather and one scatter
    of K-long rows per non-zero; no residual moves. ``X`` and ``W`` (row-major) are updated in place; the
    caller keeps ``x`` (the rows' feature sums are ``x − X``). ``Z[l]``: column ``l``'s K standard normals.
    Sequential: columns share rows."""
    n_cols = len(indptr) - 1
    k = X.shape[1]
    g = np.empty(k)
    delta = np.empty(k)
    prior_term = np.empty(k)
    for a in range(k):
        prior_term[a] = col_prec[a] * col_mean[a]
    for l in range(n_cols):
        start, end = _span(indptr, l)
        for a in range(k):
            g[a] = 0.0
        s1 = 0.0
        s2 = 0.0
        for p in range(start, end):
            u = np.uint64(indices[p])
            s = weight[u]
            s1 += s
            s2 += s * s
            xu = X[u]
            for a in range(k):
                g[a] += s * xu[a]
        w = W[l]
        z = Z[l]
        for a in range(k):
            lam = row_prec[a]
            prec = col_prec[a] + lam * s2
            old = w[a]
            new = (prior_term[a] + lam * (g[a] - s1 * row_mean[a] + s2 * old)) / prec + z[a] / np.sqrt(prec)
            w[a] = new
            delta[a] = new - old
        for p in range(start, end):
            u = np.uint64(indices[p])
            s = weight[u]
            xu = X[u]
            for a in range(k):
                xu[a] -= s * delta[a]


@njit(parallel=True, cache=True)
def column_normals(key, n_cols, k):
    """``(n_cols, k)`` standard normals, row ``l`` from (``key``, ``l``), as :func:`normals`."""
    out = np.empty((n_cols, k))
    for l in prange(n_cols):
        _normals(_row_state(key, l), out[l])
    return out


def coordinate_normals(key, n_rows, k, n_chunks, out=None):
    """``column_normals(key, n_rows, k).T`` written in place: ``(k, n_rows)``, column ``l`` from (``key``,
    ``l``) (no transposed copy of an n_rows × k array per side and sample); into ``out`` when given."""
    out = np.empty((k, n_rows)) if out is None else out
    _coordinate_normals(key, out, n_chunks)
    return out


@njit(parallel=True, cache=True)
def _coordinate_normals(key, out, n_chunks):
    k, n_rows = out.shape
    step = (n_rows + n_chunks - 1) // n_chunks
    for c in prange(n_chunks):
        buf = np.empty(k)
        for l in range(c * step, min(n_rows, (c + 1) * step)):
            _normals(_row_state(key, l), buf)
            for a in range(k):
                out[a, l] = buf[a]


#: fixed chunks of the other side in sample_rows_coordinate_by_col (its per-row sums: n_chunks × n_rows × 2)
_BY_COL_CHUNKS = 8


@njit(parallel=True, cache=True)
def transpose_into(src, out):
    """``out[:] = src.T`` in blocks of 256 rows of ``src`` (contiguous reads and writes; numpy's strided copy
    takes about twice as long)."""
    n, k = src.shape
    for b in prange((n + 255) // 256):
        for a in range(k):
            for r in range(b * 256, min(n, b * 256 + 256)):
                out[a, r] = src[r, a]


@njit(parallel=True, cache=True)
def fill_pass_table(Yt, col_w, prev_a, prev_b, f, g, yy):
    """The row pass's table of the other side's numbers (:func:`sample_rows_coordinate`), one row per column
    ``j``: ``(Y[j,a], Y[j,b], Y[j,f], Y[j,g], ω_j Y[j,f], ω_j Y[j,g])`` from the coordinate-major ``Yt``, with
    zeros for a coordinate given as −1 (none)."""
    n = yy.shape[0]
    for j in prange(n):
        row = yy[j]
        w = col_w[j]
        row[0] = Yt[prev_a, j] if prev_a >= 0 else 0.0
        row[1] = Yt[prev_b, j] if prev_b >= 0 else 0.0
        yf = Yt[f, j]
        row[2] = yf
        row[4] = w * yf
        if g >= 0:
            yg = Yt[g, j]
            row[3] = yg
            row[5] = w * yg
        else:
            row[3] = 0.0
            row[5] = 0.0


def _scratch(work, name, shape, make=np.empty):
    """A float64 array of ``shape`` (``make(shape)``) kept in ``work`` (a dict, or None) under ``name``: the
    sampler's scratch arrays have the same shapes sample after sample, and a fresh one costs page faults
    (system time) each time."""
    if work is None:
        return make(shape)
    a = work.get(name)
    if a is None or a.shape != shape:
        a = work[name] = make(shape)
    return a


def _cache_lines(shape) -> np.ndarray:
    """A zeroed ``(n, width)`` float64 array whose rows start on 64-byte boundaries (``width`` = 8: each row
    one cache line, which the sequential sweeps fetch at random)."""
    n, width = shape
    buf = np.zeros(n * width + 8)
    start = (-(buf.ctypes.data // 8)) % 8
    return buf[start:start + n * width].reshape(n, width)


def by_col_pays(n_rows: int, n_other: int) -> bool:
    """Whether a side of ``n_rows`` rows should go through the ratings in the other side's order
    (:func:`sample_rows_coordinate_by_col`): when the other side has more rows (a larger table to gather from)
    and this side's per-chunk sums stay small."""
    return n_rows < n_other and n_rows <= 65536


def sample_side_by_coordinate(r_indptr, r_indices, targets, Y, X, S, prior_mean, prior_prec, alpha, row_w, col_w,
                              key_rows, cols, W, col_mean, col_prec, key_cols, n_chunks, resid=None,
                              implicit_weight=None, by_col=None, implicit_update="own", work=None):
    """One side of a coordinate-wise Gibbs sample (libFM/myFM's order): for ``f = 0..K-1``, coordinate ``f`` of
    every row's own vector (:func:`sample_rows_coordinate`, in parallel), then of every feature column's vector
    (sequential; ``cols`` = (indptr, indices, data, groups) of the feature matrix by column, or None without
    features). O(K) per rating and per feature non-zero, no K×K matrices. ``X``, ``W`` and ``S`` (the rows'
    feature sums ``F W``, kept up to date by adding the changes) are updated in place.

    ``implicit_weight``: every non-zero of row ``u`` of the feature matrix is ``implicit_weight[u]`` (the
    implicit columns alone, one group; ``cols``' data and groups are not read): :func:`sweep_implicit_state`.
    ``resid``: the residuals ``targets − Y[j]·(X[r] + S[r])`` in CSR order when the caller has them (updated in
    place; ``targets`` is not read), else None (computed from ``targets``). ``by_col``: (indptr, indices) of the
    same ratings grouped by the other side: the passes go through them in that order
    (:func:`sample_rows_coordinate_by_col`) and ``resid`` (then required) is in that order.
    ``implicit_update`` (implicit columns only): "effective" draws each implicit vector whole, given the rows'
    effective vectors, once after the rows' coordinates (:func:`sweep_implicit_given_effective`: no residual
    moves, one gather and one scatter per non-zero); "own" draws it coordinate by coordinate given the rows' own
    vectors (libFM's parametrisation), two coordinates in one sweep after both of the rows' ones
    (:func:`sweep_implicit_pair`; a last odd coordinate alone, :func:`sweep_implicit_state`). Both are exact
    Gibbs steps of the same posterior. ``work``: (this side's rows' dict, the other side's dict) in which
    the scratch arrays are kept from call to call (the other side's call passes them the other way round, so each
    dict holds arrays of one side's length), or None. Returns the residuals at the new values."""
    n_rows = len(r_indptr) - 1
    k = X.shape[1]
    if by_col is not None:
        if resid is None:
            raise ValueError("by_col needs the residuals in the other side's order")
    elif resid is None:
        resid = np.empty(len(r_indices))
        full_residuals(r_indptr, r_indices, targets, Y, X, S, resid, n_chunks)
    centred = implicit_weight is not None and cols is not None and implicit_update == "effective"
    if centred:  # the implicit vectors are drawn after the rows' coordinates, not between them
        implicit_cols, cols = cols, None
        scale_implicit = np.ascontiguousarray(implicit_weight, dtype=np.float64)
        implicit_weight = None
    w_rows, w_cols = (None, None) if work is None else work
    # coordinate-major copies: each coordinate's pass reads contiguous vectors
    Yt = _scratch(w_cols, "t0", (k, Y.shape[0]))
    transpose_into(np.ascontiguousarray(Y), Yt)
    Xt = _scratch(w_rows, "t0", (k, n_rows))
    transpose_into(np.ascontiguousarray(X), Xt)
    St = _scratch(w_rows, "t1", (k, n_rows))
    transpose_into(np.ascontiguousarray(S), St)
    z_rows = coordinate_normals(key_rows, n_rows, k, n_chunks, _scratch(w_rows, "z", (k, n_rows)))
    scale = np.ones(n_rows) if implicit_weight is None else np.ascontiguousarray(implicit_weight, dtype=np.float64)
    if cols is not None:
        Wt = _scratch(w_cols, "t1", (k, W.shape[0]))
        transpose_into(np.ascontiguousarray(W), Wt)
        cm = np.ascontiguousarray(col_mean.T)
        cp = np.ascontiguousarray(col_prec.T)
        z_cols = coordinate_normals(key_cols, W.shape[0], k, n_chunks, _scratch(w_cols, "z", (k, W.shape[0])))
    # state: a, b, q (the feature sweep's change of S[:, f]), change of X[:, f]; extra: the second coordinate's
    # sums, then the first one's whole change
    state = _scratch(w_rows, "state", (n_rows, 4))
    extra = _scratch(w_rows, "extra", (n_rows, 4))
    state.fill(0.0)
    extra.fill(0.0)
    if by_col is not None:
        acc = _scratch(w_rows, "acc", (_BY_COL_CHUNKS, n_rows, 5))  # 5 sums: no padding, smaller in L2
        pending = _scratch(w_rows, "pending", (n_rows, 2))
    yy = _scratch(w_cols, "yy", (len(col_w), 6))
    # implicit columns: coordinates f and g of the columns are drawn in one sweep, after both of the rows'
    pair = _scratch(w_rows, "pair", (n_rows, 8), _cache_lines) \
        if implicit_weight is not None and cols is not None else None

    def sweep(f):
        if cols is None:
            return
        if implicit_weight is None:
            sweep_factor_state(*cols, Wt[f], state, cm[f], cp[f], alpha, z_cols[f])
        else:
            sweep_implicit_state(cols[0], cols[1], Wt[f], state, cm[f, 0], cp[f, 0], alpha, z_cols[f])

    # coordinates two at a time, one pass over the ratings for both: the pass draws f and gathers g's sums, which
    # draw_second_coordinate corrects for f's changes (row and feature sweep) in O(1) per row
    prev_a = prev_b = -1  # the coordinates whose changes the next pass takes out of the residuals
    f = 0
    while True:
        draw = f < k
        g = f + 1 if f + 1 < k else -1
        cur = f if draw else 0
        fill_pass_table(Yt, col_w, prev_a, prev_b, cur, g, yy)
        lam, lm = prior_prec[cur], prior_prec[cur] * prior_mean[cur]
        args = (resid, yy, Xt[cur], lam, lm, alpha, row_w, scale, z_rows[cur], state, extra,
                St[max(prev_b, 0)], prev_b >= 0, draw)
        if by_col is None:
            sample_rows_coordinate(r_indptr, r_indices, *args, n_chunks)
        else:
            sample_rows_coordinate_by_col(by_col[0], by_col[1], *args, acc, pending)
        if not draw:
            break
        if pair is not None and g >= 0:
            draw_second_coordinate_paired(Xt[g], prior_prec[g], prior_prec[g] * prior_mean[g], alpha, scale,
                                          z_rows[g], state, extra, pair)
            sweep_implicit_pair(cols[0], cols[1], Wt[f], Wt[g], pair, cm[f, 0], cp[f, 0], cm[g, 0], cp[g, 0], alpha,
                                z_cols[f], z_cols[g])
            finish_pair(scale, pair, state, extra, St[f], St[g])
            prev_a, prev_b = f, g
            f += 2
            continue
        sweep(f)
        if g >= 0:
            draw_second_coordinate(Xt[g], prior_prec[g], prior_prec[g] * prior_mean[g], alpha, scale, z_rows[g],
                                   state, extra, St[f])
            sweep(g)
            prev_a, prev_b = f, g
        else:
            prev_a, prev_b = -1, f
        f += 2
    X[:] = Xt.T
    S[:] = St.T
    if cols is not None:
        W[:] = Wt.T
    if centred:  # S holds x = X + S while X moves, then x − X: the effective vectors (and residuals) stay
        S += X
        sweep_implicit_given_effective(implicit_cols[0], implicit_cols[1], scale_implicit, X, W,
                                       np.ascontiguousarray(prior_mean, dtype=np.float64),
                                       np.ascontiguousarray(prior_prec, dtype=np.float64),
                                       np.ascontiguousarray(col_mean[0], dtype=np.float64),
                                       np.ascontiguousarray(col_prec[0], dtype=np.float64),
                                       column_normals(key_cols, W.shape[0], k))
        S -= X
    return resid


@njit(parallel=True, fastmath=_FAST, cache=True)
def row_moments(indptr, indices, resid, shift, col_w, sq_out, lin_out, w_out):
    """Per CSR row ``r``: ``Σ_j ω_j e²``, ``Σ_j ω_j e`` and ``Σ_j ω_j`` (ω = ``col_w[j]``) of ``e = resid − shift``
    (:func:`row_residuals` from residuals kept by the sampler: O(1) per rating instead of O(K))."""
    n_rows = len(indptr) - 1
    for r in prange(n_rows):
        s2 = 0.0
        s1 = 0.0
        sw = 0.0
        start, end = _span(indptr, r)
        for p in range(start, end):
            e = resid[p] - shift
            w = col_w[indices[p]]
            s2 += w * e * e
            s1 += w * e
            sw += w
        sq_out[r] = s2
        lin_out[r] = s1
        w_out[r] = sw


@njit(parallel=True, fastmath=_FAST, cache=True)
def row_moments_by_col(o_indptr, o_indices, resid, shift, o_w, acc, sq_out, lin_out, w_out):
    """:func:`row_moments` of the rows that ``o_indices`` names, from residuals in the other side's order (CSR
    ``o_indptr``/``o_indices`` grouped by the other side, whose row ``u`` weighs its ratings by ``o_w[u]``):
    no reordering of the residuals (a 10 M-entry gather). Per-chunk sums in ``acc`` (n_chunks × n_rows × 3),
    added chunk after chunk: the same sums whatever the number of threads."""
    n_rows = len(sq_out)
    n_other = len(o_indptr) - 1
    n_chunks = acc.shape[0]
    step = (n_other + n_chunks - 1) // n_chunks
    for ch in prange(n_chunks):
        a = acc[ch]
        for r in range(n_rows):
            a[r, 0] = 0.0
            a[r, 1] = 0.0
            a[r, 2] = 0.0
        for u in range(ch * step, min(n_other, (ch + 1) * step)):
            w = o_w[u]
            start, end = _span(o_indptr, u)
            for p in range(start, end):
                i = o_indices[p]
                e = resid[p] - shift
                a[i, 0] += w * e * e
                a[i, 1] += w * e
                a[i, 2] += w
    for r in prange(n_rows):
        s2 = 0.0
        s1 = 0.0
        sw = 0.0
        for ch in range(n_chunks):
            s2 += acc[ch, r, 0]
            s1 += acc[ch, r, 1]
            sw += acc[ch, r, 2]
        sq_out[r] = s2
        lin_out[r] = s1
        w_out[r] = sw


@njit(parallel=True, fastmath=_FAST, cache=True)
def column_moments(X, mean, n_chunks):
    """``(Σ_r (X[r] − mean)², Σ_r X[r])`` per column, in one pass over ``X`` by fixed chunks of rows (the same
    sums whatever the number of threads; numpy's ``((X − mean)**2).sum(axis=0)`` makes two n × K temporaries)."""
    n, k = X.shape
    parts = np.zeros((n_chunks, 2, k))
    step = (n + n_chunks - 1) // n_chunks
    for c in prange(n_chunks):
        dev = parts[c, 0]
        tot = parts[c, 1]
        for r in range(c * step, min(n, (c + 1) * step)):
            x = X[r]
            for a in range(k):
                d = x[a] - mean[a]
                dev[a] += d * d
                tot[a] += x[a]
    dev = np.zeros(k)
    tot = np.zeros(k)
    for c in range(n_chunks):
        for a in range(k):
            dev[a] += parts[c, 0, a]
            tot[a] += parts[c, 1, a]
    return dev, tot


@njit(parallel=True, cache=True)
def accumulate_moments(X, total, squares):
    """``total += X`` and ``squares += X²`` in one pass (the sampler's running posterior moments)."""
    n, k = X.shape
    for r in prange(n):
        x = X[r]
        t = total[r]
        q = squares[r]
        for a in range(k):
            v = x[a]
            t[a] += v
            q[a] += v * v


@njit(parallel=True, cache=True)
def effective_and_augmented(X, S, eff, aug):
    """``eff = X + S`` and ``aug`` = ``eff`` with column 0 (the bias) set to 1, in one pass."""
    n, k = X.shape
    for r in prange(n):
        x = X[r]
        s = S[r]
        e = eff[r]
        g = aug[r]
        for a in range(k):
            v = x[a] + s[a]
            e[a] = v
            g[a] = v
        g[0] = 1.0


@njit(parallel=True, fastmath=_FAST, cache=True)
def sum_squares(values, shift, n_chunks):
    """``Σ (values − shift)²`` in fixed chunks (the same sum whatever the number of threads)."""
    n = len(values)
    parts = np.zeros(n_chunks)
    step = (n + n_chunks - 1) // n_chunks
    for c in prange(n_chunks):
        s = 0.0
        for j in range(c * step, min(n, (c + 1) * step)):
            e = values[j] - shift
            s += e * e
        parts[c] = s
    total = 0.0
    for c in range(n_chunks):
        total += parts[c]
    return total


@njit(parallel=True, fastmath=_FAST, cache=True)
def implicit_sums(indptr, indices, weight, W, S, n_chunks):
    """``S[r] = weight[r]·Σ_{j ∈ row r} W[j]`` for every row of a CSR pattern (rows in parallel)."""
    n_rows = len(indptr) - 1
    k = W.shape[1]
    step = (n_rows + n_chunks - 1) // n_chunks
    for c in prange(n_chunks):
        for r in range(c * step, min(n_rows, (c + 1) * step)):
            s = S[r]
            for a in range(k):
                s[a] = 0.0
            start, end = _span(indptr, r)
            for p in range(start, end):
                y = W[indices[p]]
                for a in range(k):
                    s[a] += y[a]
            w = weight[r]
            for a in range(k):
                s[a] *= w


@njit(parallel=True, fastmath=_FAST, cache=True)
def add_feature_sums(indptr, indices, data, W, S, n_chunks):
    """``S[r] += Σ_p data[p]·W[indices[p]]`` over row ``r`` of a CSR feature matrix (rows in parallel)."""
    n_rows = len(indptr) - 1
    k = W.shape[1]
    step = (n_rows + n_chunks - 1) // n_chunks
    for c in prange(n_chunks):
        for r in range(c * step, min(n_rows, (c + 1) * step)):
            s = S[r]
            for p in range(indptr[r], indptr[r + 1]):
                y = W[indices[p]]
                v = data[p]
                for a in range(k):
                    s[a] += v * y[a]


@njit(parallel=True, fastmath=_FAST, cache=True)
def effective_targets(indptr, indices, data, mu, col_bias, out):
    """``out[p] = data[p] − μ − col_bias[indices[p]]`` over a CSR matrix."""
    n_rows = len(indptr) - 1
    for r in prange(n_rows):
        start, end = _span(indptr, r)
        for p in range(start, end):
            out[p] = data[p] - mu - col_bias[indices[p]]


@njit(parallel=True, fastmath=_FAST, cache=True)
def residual_moments(users, items, values, mu, U, V, n_chunks):
    """``(Σe, Σe²)`` of ``e = v − μ − U[u,0] − V[i,0] − U[u,1:]·V[i,1:]`` in float64, fixed chunks."""
    n = len(values)
    k = U.shape[1]
    s1 = np.zeros(n_chunks)
    s2 = np.zeros(n_chunks)
    step = (n + n_chunks - 1) // n_chunks
    for c in prange(n_chunks):
        a1 = 0.0
        a2 = 0.0
        for j in range(c * step, min(n, (c + 1) * step)):
            q = U[users[j]]
            p = V[items[j]]
            dot = 0.0
            for a in range(1, k):
                dot += q[a] * p[a]
            e = values[j] - mu - q[0] - p[0] - dot
            a1 += e
            a2 += e * e
        s1[c] = a1
        s2[c] = a2
    t1 = 0.0  # a plain loop: with parallel=True, s1.sum() would be a parallel, thread-count-dependent reduction
    t2 = 0.0
    for c in range(n_chunks):
        t1 += s1[c]
        t2 += s2[c]
    return t1, t2


@njit(parallel=True, fastmath=_FAST, cache=True)
def predict_pairs(users, items, mu, U, V, out):
    """``out[j] = μ + U[u,0] + V[i,0] + U[u,1:]·V[i,1:]`` (biases in column 0)."""
    k = U.shape[1]
    for j in prange(len(users)):
        q = U[users[j]]
        p = V[items[j]]
        dot = 0.0
        for a in range(1, k):
            dot += q[a] * p[a]
        out[j] = mu + q[0] + p[0] + dot


@njit(parallel=True, fastmath=_FAST, cache=True)
def predict_var_pairs(users, items, U, V, Uvar, Vvar, out):
    """Variance of ``U[u]·V[i]``-style predictions from per-dimension means and variances, treating the two
    sides and the dimensions as independent: ``Var b_u + Var b_i + Σ_f (ū²·Var v + v̄²·Var u + Var u·Var v)``."""
    k = U.shape[1]
    for j in prange(len(users)):
        u = users[j]
        i = items[j]
        s = Uvar[u, 0] + Vvar[i, 0]
        for a in range(1, k):
            mu_u = U[u, a]
            mu_v = V[i, a]
            vu = Uvar[u, a]
            vv = Vvar[i, a]
            s += mu_u * mu_u * vv + mu_v * mu_v * vu + vu * vv
        out[j] = s
