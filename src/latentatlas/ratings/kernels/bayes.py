"""Numba kernels for Bayesian matrix factorisation by Gibbs sampling (driver: :mod:`latentatlas.ratings.bayes`).

Every conditional the sampler draws from is a Gaussian ridge regression. For a row ``r`` (a user when
sampling user vectors, an item otherwise) with feature rows ``y_j`` of the other side over its entries ``S_r``,
targets ``t_rj``, a fixed offset vector ``o_r`` (the row's implicit-feedback sum) and a diagonal prior
``N(m, diag(1/λ))``:

    A = α·Σ_j y_j y_jᵀ + diag(λ),     b = α·(Σ_j y_j t_rj − G o_r) + λ⊙m,     G = Σ_j y_j y_jᵀ
    x_r ~ N(A⁻¹b, A⁻¹):   x_r = A⁻¹b + U⁻¹z,   A = UᵀU (Cholesky),  z ~ N(0, I)

i.e. the ALS ridge solve (:func:`latentatlas.ratings.kernels.als.ridge_rows`, whose Gram accumulation and
Cholesky this module reuses) plus one triangular solve for the draw. Rows run in parallel.

Implicit-feedback parameters (``y_j`` shared by every user who rated item ``j``, entering that user's vector
as ``y_j/√|N(u)|``) are coupled through the users they share, so they are drawn one item after another
(an exact Gibbs sweep; a parallel, Jacobi-style sweep is unstable along the "all of a user's y move together"
direction). Each draw costs O(K²) per (item, user) pair using the users' Gram matrices and residual
gradients kept from the row step.

Random numbers never come from a shared generator: each row's normals are generated from a counter hash of
(``key``, row), where ``key`` is derived from (seed, sample, phase) by the driver, so a result depends on the
seed only, not on the number of threads. Only this module, ``als`` and ``sgd`` import numba.
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

from latentatlas.ratings.kernels.als import _gram, prefer_workqueue
from latentatlas.ratings.kernels.sgd import _splitmix

prefer_workqueue()

# fastmath without "reassoc": vectorised reductions may sum in an order that depends on memory alignment,
# which differs with the number of threads; these flags keep FMA contraction and the rest, and results stay
# bit-identical whatever the thread count
_FAST = {"nnan", "ninf", "nsz", "arcp", "contract", "afn"}

_TWO_PI = 2.0 * np.pi
_INV_2_53 = 1.0 / 9007199254740992.0


@njit(cache=True, inline="always")
def _row_state(key, row):
    state = np.uint64(key) ^ ((np.uint64(row) + np.uint64(1)) * np.uint64(0xD1B54A32D192ED03))
    state, _ = _splitmix(state)
    return state


@njit(cache=True)
def _normals(state, out):
    """Fill ``out`` with standard normals (Box–Muller on splitmix64 output); returns the new state."""
    n = out.shape[0]
    a = 0
    while a < n:
        state, z1 = _splitmix(state)
        state, z2 = _splitmix(state)
        u1 = (np.float64(z1 >> np.uint64(11)) + 1.0) * _INV_2_53  # (0, 1]
        u2 = np.float64(z2 >> np.uint64(11)) * _INV_2_53
        r = np.sqrt(-2.0 * np.log(u1))
        out[a] = r * np.cos(_TWO_PI * u2)
        if a + 1 < n:
            out[a + 1] = r * np.sin(_TWO_PI * u2)
        a += 2
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


@njit(parallel=True, fastmath=_FAST, cache=True)
def sample_rows(indptr, indices, targets, Y, offsets, prior_mean, prior_prec, alpha, X, key, draw,
                gram_out, grad_out, store, n_chunks):
    """Draw every row of ``X`` from its Gaussian conditional (module docstring).

    ``targets`` are the CSR values already net of everything outside the row's product (global mean, the
    other side's bias). ``offsets`` (n_rows × K) is the fixed part ``o_r`` of the row's effective vector
    (zeros without implicit feedback). ``draw=False`` writes the conditional mean instead of a draw.
    With ``store``, ``gram_out[r]`` receives G and ``grad_out[r]`` the residual gradient
    ``Σ_j y_j t_rj − G (x_r + o_r)`` at the new ``x_r``, which the implicit-feedback sweep needs.
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
            _gram(indptr, indices, targets, Y, r, G, c_vec)
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


@njit(fastmath=_FAST, cache=True)
def sample_implicit(indptr, indices, weight, gram, grad, W, S, prior_mean, prior_prec, alpha, key, draw):
    """One sequential Gibbs sweep over the implicit-feedback vectors ``W`` (n_cols × K).

    Column ``j`` (e.g. an item) enters the effective vector of every row ``u`` in ``indices[indptr[j]:
    indptr[j+1]]`` (the users who rated it) as ``weight[u]·w_j`` with ``weight[u] = 1/√|N(u)|``; ``S[u]`` is
    that sum ``Σ_j weight[u]·w_j`` and ``grad[u]`` the residual gradient of row ``u`` (both kept up to date
    here). ``gram[u]`` is row ``u``'s Gram matrix from :func:`sample_rows`. The conditional of ``w_j`` is

        A = diag(λ) + α Σ_u weight[u]² G_u,   b = λ⊙m + α Σ_u weight[u] (grad_u + weight[u] G_u w_j)
    """
    n_cols = len(indptr) - 1
    k = W.shape[1]
    A = np.empty((k, k))
    b = np.empty(k)
    z = np.empty(k)
    old = np.empty(k)
    for j in range(n_cols):
        for a in range(k):
            old[a] = W[j, a]
            b[a] = 0.0
            for c in range(k):
                A[a, c] = 0.0
        for p in range(indptr[j], indptr[j + 1]):
            u = indices[p]
            w = weight[u]
            G = gram[u]
            g = grad[u]
            for a in range(k):
                row = G[a]
                t = 0.0
                for c in range(k):
                    t += row[c] * old[c]
                    A[a, c] += w * w * row[c]
                b[a] += w * (g[a] + w * t)
        for a in range(k):
            for c in range(k):
                A[a, c] *= alpha
            A[a, a] += prior_prec[a]
            b[a] = alpha * b[a] + prior_prec[a] * prior_mean[a]
        _draw(A, b, z, draw, _row_state(key, j))
        for a in range(k):
            z[a] = b[a] - old[a]  # the change
            W[j, a] = b[a]
        for p in range(indptr[j], indptr[j + 1]):
            u = indices[p]
            w = weight[u]
            G = gram[u]
            g = grad[u]
            s = S[u]
            for a in range(k):
                row = G[a]
                t = 0.0
                for c in range(k):
                    t += row[c] * z[c]
                g[a] -= w * t
                s[a] += w * z[a]


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
            for p in range(indptr[r], indptr[r + 1]):
                y = W[indices[p]]
                for a in range(k):
                    s[a] += y[a]
            w = weight[r]
            for a in range(k):
                s[a] *= w


@njit(parallel=True, fastmath=_FAST, cache=True)
def effective_targets(indptr, indices, data, mu, col_bias, out):
    """``out[p] = data[p] − μ − col_bias[indices[p]]`` over a CSR matrix."""
    n_rows = len(indptr) - 1
    for r in prange(n_rows):
        for p in range(indptr[r], indptr[r + 1]):
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
