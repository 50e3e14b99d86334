"""Numba kernels for alternating least squares, plus the sparse helpers every solver shares.

One half-step solves, for every row ``r`` of a sparse matrix with the other side's factors ``Y`` fixed,

    x_r = argmin_x  Σ_{j ∈ S_r} (v_rj − y_j·x)²  +  λ_r ‖x‖²,        λ_r = λ·|S_r| (count weighting) or λ,

i.e. a ridge regression without intercept over the row's known entries only. The normal equations
``(Y_Sᵀ Y_S + λ_r I) x = Y_Sᵀ v`` are built and solved in place per row (no estimator objects, no
per-row Python), rows in parallel. Rows without entries get zero factors.

Two ways to solve:

* ``cholesky``: exact. The k×k Gram matrix is accumulated four entries at a time
  and factorised with a small in-place Cholesky. When the system is not positive definite (λ = 0 and
  fewer independent entries than k) the minimum-norm least-squares solution is taken instead.
* ``cg``: a few conjugate-gradient steps, warm-started from the current factors, that touch the row's
  entries instead of forming the Gram matrix: O(|S_r|·k) per step instead of O(|S_r|·k² + k³). This is
  the trick that makes ``implicit`` fast; after the first iterations the warm start is already close,
  so 2 steps per half-step give the same validation error as the exact solve.

Only this module and :mod:`latentatlas.ratings.kernels.sgd` import numba.
"""

from __future__ import annotations

import os

import numba
import numpy as np
from numba import njit, prange


def prefer_workqueue() -> None:
    """Use numba's own thread pool unless the user chose a layer. OpenMP's workers spin while waiting;
    on a busy 2-core machine that made a parallel SGD epoch 40x slower (128 ms instead of 3.3 ms) and an
    ALS iteration 4x slower. Takes effect only before the first parallel kernel runs in the process, so
    the training entry points call it; importing the kernels changes nothing (no environment variable
    is written: numba reads ``numba.config`` when it starts its threads)."""
    if "NUMBA_THREADING_LAYER" not in os.environ and numba.config.THREADING_LAYER == "default":
        numba.config.THREADING_LAYER = "workqueue"

# --- sparse layout ----------------------------------------------------------------------------------------


# ``keep``, in the layout kernels below: a bool mask of the entries to use, or an empty array for all of
# them. A model holding out part of its training ratings builds its layouts from the caller's arrays and the
# mask instead of from a copy of the rest (issue 16: 110 MB at 10 M ratings); the layouts are the same.
NO_MASK = np.zeros(0, dtype=np.bool_)


@njit(cache=True)
def _bucket_counts(keys, n, keep):
    counts = np.zeros(n + 1, dtype=np.int64)
    masked = len(keep) > 0
    for j in range(len(keys)):
        if masked and not keep[j]:
            continue
        counts[keys[j] + 1] += 1
    for r in range(n):
        counts[r + 1] += counts[r]
    return counts


@njit(cache=True)
def _fill_compressed(rows, cols, values, indptr, indices, data, keep):
    pos = indptr[:-1].copy()
    masked = len(keep) > 0
    for j in range(len(rows)):
        if masked and not keep[j]:
            continue
        r = rows[j]
        p = pos[r]
        indices[p] = cols[j]
        data[p] = values[j]
        pos[r] = p + 1


def compressed(rows: np.ndarray, cols: np.ndarray, values: np.ndarray | None, n_rows: int, dtype=np.float32,
               n_cols: int | None = None, keep: np.ndarray | None = None):
    """CSR arrays ``(indptr, indices, data)`` grouping ``(rows, cols, values)`` by row, by a counting sort.

    Unlike ``scipy.sparse`` this allocates nothing beyond the output (the 10 M-rating case stays lean) and
    keeps the input order within a row. ``values=None``: the pattern only (``data`` is None). With
    ``n_cols`` at most 65 536 the column indices are stored as uint16, half the memory of int32 (the
    kernels read either; the values and their order are the same). ``keep``: a bool mask of the entries to
    take (the layout of ``rows[keep], cols[keep], values[keep]`` without making those copies).
    """
    keep = NO_MASK if keep is None else keep
    indptr = _bucket_counts(rows, n_rows, keep)
    indices = np.empty(int(indptr[-1]), dtype=index_dtype(n_cols))
    if values is None:
        _fill_pattern(rows, cols, indptr, indices, keep)
        return indptr, indices, None
    data = np.empty(int(indptr[-1]), dtype=dtype)
    _fill_compressed(rows, cols, values.astype(dtype, copy=False), indptr, indices, data, keep)
    return indptr, indices, data


def masked_counts(keys: np.ndarray, n: int, keep: np.ndarray | None = None) -> np.ndarray:
    """``np.bincount(keys[keep], minlength=n)`` (int64) without the copy of ``keys[keep]``."""
    return np.diff(_bucket_counts(keys, n, NO_MASK if keep is None else keep))


def index_dtype(n: int | None) -> np.dtype:
    """The narrowest index type the kernels take for indices below ``n``: uint16 up to 65 536, else int32
    (None: int32)."""
    return np.dtype(np.uint16) if n is not None and n <= 65536 else np.dtype(np.int32)


# --- rating codes: 1 byte a rating where the ratings take few values ------------------------------------


@njit(cache=True)
def residual(value, mu, bu, bi):
    """``value − μ − b_u − b_i`` in float64, left to right: the rounding of
    :func:`residuals` (no fastmath here, so a fastmath caller cannot
    reorder it)."""
    return value - mu - bu - bi


@njit(cache=True)
def codes_match(users, items, codes, table, mu, bu, bi, resid):
    """Whether the coded ratings give exactly ``resid`` (its precision) at every position."""
    T = resid.dtype.type
    for j in range(len(codes)):
        if T(residual(table[codes[j]], mu, bu[users[j]], bi[items[j]])) != resid[j]:
            return False
    return True


@njit(cache=True)
def _rating_codes(values, table, codes):
    n = 0
    last = 0
    for j in range(len(values)):
        v = values[j]
        if table[last] != v or n == 0:
            found = -1
            for t in range(n):
                if table[t] == v:
                    found = t
                    break
            if found < 0:
                if n == len(table):
                    return -1
                table[n] = v
                found = n
                n += 1
            last = found
        codes[j] = last
    return n


def rating_codes(values: np.ndarray, max_levels: int = 256):
    """``(table, codes)`` with ``values == table[codes]`` (codes uint8, table float64 in order of first
    appearance) when the ratings take at most ``max_levels`` distinct values (stars, half stars), else
    None: 1 byte a rating instead of 4."""
    table = np.zeros(max_levels, dtype=values.dtype)
    codes = np.empty(len(values), dtype=np.uint8)
    n = _rating_codes(values, table, codes)
    if n < 0:
        return None
    return table[:n].astype(np.float64), codes


@njit(cache=True)
def _fill_pattern(rows, cols, indptr, indices, keep):
    pos = indptr[:-1].copy()
    masked = len(keep) > 0
    for j in range(len(rows)):
        if masked and not keep[j]:
            continue
        r = rows[j]
        indices[pos[r]] = cols[j]
        pos[r] += 1


# --- baseline ---------------------------------------------------------------------------------------------


def damped_biases(users, items, values, n_users, n_items, reg_user, reg_item, n_iter, keep=None):
    """``prep.fit_biases`` without n-sized temporaries: global mean plus user and item offsets by
    alternating damped means, ``b_i = Σ(v − μ − b_u)/(n_i + reg_item)``, then the same for ``b_u``; over the
    entries of the bool mask ``keep`` only, when given. Returns ``(μ, b_u, b_i)``."""
    return _damped_biases(users, items, values, n_users, n_items, reg_user, reg_item, n_iter,
                          NO_MASK if keep is None else keep)


@njit(cache=True)
def _damped_biases(users, items, values, n_users, n_items, reg_user, reg_item, n_iter, keep):
    masked = len(keep) > 0
    mu = 0.0
    n = 0
    for j in range(len(values)):
        if masked and not keep[j]:
            continue
        mu += values[j]
        n += 1
    mu = mu / n if n else 0.0
    cu = np.zeros(n_users)
    ci = np.zeros(n_items)
    for j in range(len(values)):
        if masked and not keep[j]:
            continue
        cu[users[j]] += 1
        ci[items[j]] += 1
    bu = np.zeros(n_users)
    bi = np.zeros(n_items)
    for _ in range(n_iter):
        bi[:] = 0
        for j in range(len(values)):
            if masked and not keep[j]:
                continue
            bi[items[j]] += values[j] - mu - bu[users[j]]
        for i in range(n_items):
            bi[i] /= ci[i] + reg_item
        bu[:] = 0
        for j in range(len(values)):
            if masked and not keep[j]:
                continue
            bu[users[j]] += values[j] - mu - bi[items[j]]
        for u in range(n_users):
            bu[u] /= cu[u] + reg_user
    return mu, bu, bi


@njit(parallel=True, cache=True)
def residuals(users, items, values, mu, bu, bi, out):
    """``out[j] = values[j] − μ − b_u − b_i`` (in ``out``'s precision, no temporaries)."""
    for j in prange(len(values)):
        out[j] = values[j] - mu - bu[users[j]] - bi[items[j]]


# --- losses and predictions ------------------------------------------------------------------------------


@njit(parallel=True, fastmath=True, cache=True)
def triplet_sse(users, items, values, Q, P, n_chunks):
    """Σ (v − q_u·p_i)² over triplets, float64 accumulation, chunks in parallel."""
    n = len(values)
    k = Q.shape[1]
    partial = np.zeros(n_chunks)
    step = (n + n_chunks - 1) // n_chunks
    for c in prange(n_chunks):
        s = 0.0
        for j in range(c * step, min(n, (c + 1) * step)):
            q = Q[users[j]]
            p = P[items[j]]
            dot = 0.0
            for a in range(k):
                dot += q[a] * p[a]
            e = values[j] - dot
            s += e * e
        partial[c] = s
    return _in_order(partial)


@njit(parallel=True, fastmath=True, cache=True)
def indexed_sse(positions, users, items, values, Q, P, n_chunks):
    """:func:`triplet_sse` over the triplets at ``positions`` of ``users``/``items`` (``values[j]`` is the
    value of triplet ``positions[j]``): held-out ratings scored without copies of their ids. The same chunks
    and order as :func:`triplet_sse` on the copies, so the same sum."""
    n = len(values)
    k = Q.shape[1]
    partial = np.zeros(n_chunks)
    step = (n + n_chunks - 1) // n_chunks
    for c in prange(n_chunks):
        s = 0.0
        for j in range(c * step, min(n, (c + 1) * step)):
            t = positions[j]
            q = Q[users[t]]
            p = P[items[t]]
            dot = 0.0
            for a in range(k):
                dot += q[a] * p[a]
            e = values[j] - dot
            s += e * e
        partial[c] = s
    return _in_order(partial)


@njit(cache=True, inline="always")
def _in_order(partial):
    """The chunks' sum in chunk order: ``partial.sum()`` inside a parallel kernel becomes a parallel
    reduction whose order, and so whose last bits, depend on the thread count."""
    total = 0.0
    for c in range(len(partial)):
        total += partial[c]
    return total


@njit(parallel=True, fastmath=True, cache=True)
def csr_sse(indptr, indices, data, X, Y, n_chunks):
    """Σ (v − x_r·y_j)² over the entries of a CSR matrix, float64 accumulation, deterministic chunks."""
    n_rows = len(indptr) - 1
    k = X.shape[1]
    partial = np.zeros(n_chunks)
    step = (n_rows + n_chunks - 1) // n_chunks
    for c in prange(n_chunks):
        s = 0.0
        for r in range(c * step, min(n_rows, (c + 1) * step)):
            x = X[r]
            for j in range(indptr[r], indptr[r + 1]):
                y = Y[indices[j]]
                dot = 0.0
                for a in range(k):
                    dot += x[a] * y[a]
                e = data[j] - dot
                s += e * e
        partial[c] = s
    return _in_order(partial)


@njit(parallel=True, fastmath=True, cache=True)
def triplet_predict(users, items, Q, P, out):
    """``out[j] = q_{users[j]}·p_{items[j]}``."""
    k = Q.shape[1]
    for j in prange(len(users)):
        q = Q[users[j]]
        p = P[items[j]]
        dot = 0.0
        for a in range(k):
            dot += q[a] * p[a]
        out[j] = dot


@njit(parallel=True, fastmath=True, cache=True)
def row_sq_norms(X):
    out = np.empty(X.shape[0])
    for r in prange(X.shape[0]):
        s = 0.0
        for a in range(X.shape[1]):
            s += X[r, a] * X[r, a]
        out[r] = s
    return out


# --- exact per-row ridge --------------------------------------------------------------------------------


@njit(fastmath=True, cache=True)
def _gram(indptr, indices, data, Y, r, A, b):
    """Y_Sᵀ Y_S into ``A`` and Y_Sᵀ v into ``b`` (both zeroed first).

    The full square, although only the upper triangle is read: loops that start at 0 vectorise, loops
    from a variable start did not (5x slower, measured). Four entries per sweep, so four multiply-adds per
    load and store of ``A``."""
    k = Y.shape[1]
    A[:] = 0
    b[:] = 0
    start, end = indptr[r], indptr[r + 1]
    j = start
    while j + 4 <= end:
        y0 = Y[indices[j]]
        y1 = Y[indices[j + 1]]
        y2 = Y[indices[j + 2]]
        y3 = Y[indices[j + 3]]
        v0, v1, v2, v3 = data[j], data[j + 1], data[j + 2], data[j + 3]
        for a in range(k):
            a0, a1, a2, a3 = y0[a], y1[a], y2[a], y3[a]
            b[a] += v0 * a0 + v1 * a1 + v2 * a2 + v3 * a3
            row = A[a]
            for c in range(k):
                row[c] += a0 * y0[c] + a1 * y1[c] + a2 * y2[c] + a3 * y3[c]
        j += 4
    while j < end:
        y0 = Y[indices[j]]
        v0 = data[j]
        for a in range(k):
            a0 = y0[a]
            b[a] += v0 * a0
            row = A[a]
            for c in range(k):
                row[c] += a0 * y0[c]
        j += 1


@njit(fastmath=True, cache=True)
def _cholesky_solve(A, b, rel_tol):
    """Solve ``A x = b`` for symmetric ``A`` (its upper triangle is read); ``x`` overwrites ``b``.

    ``A`` is overwritten by U with A = UᵀU (right-looking, row updates over slices, so every inner loop
    runs over contiguous memory from index 0 and vectorises). Returns False (``b`` undefined) when a pivot
    is not above ``rel_tol`` times the largest diagonal entry, i.e. the system is singular to working
    precision."""
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
        rj = A[j, j:]
        for c in range(k - j):
            rj[c] *= inv
        for i in range(j + 1, k):
            f = A[j, i]
            ri = A[i, i:]
            rji = A[j, i:]
            for c in range(k - i):
                ri[c] -= f * rji[c]
    for i in range(k):  # Uᵀ z = b
        z = b[i] / A[i, i]
        b[i] = z
        ri = A[i, i + 1:]
        bi = b[i + 1:]
        for c in range(k - i - 1):
            bi[c] -= z * ri[c]
    for i in range(k - 1, -1, -1):  # U x = z
        ri = A[i, i + 1:]
        bi = b[i + 1:]
        t = b[i]
        for c in range(k - i - 1):
            t -= ri[c] * bi[c]
        b[i] = t / A[i, i]
    return True


@njit(cache=True)
def _min_norm_solve(indptr, indices, data, Y, r, lam, out):
    """Minimum-norm least squares for a singular row (λ = 0, too few independent entries)."""
    start, end = indptr[r], indptr[r + 1]
    n, k = end - start, Y.shape[1]
    extra = k if lam > 0 else 0
    X = np.zeros((n + extra, k))
    v = np.zeros(n + extra)
    for j in range(n):
        for a in range(k):
            X[j, a] = Y[indices[start + j], a]
        v[j] = data[start + j]
    root = np.sqrt(lam)
    for a in range(extra):  # ridge as augmented rows: [Y; √λ I] x ≈ [v; 0]
        X[n + a, a] = root
    sol = np.linalg.lstsq(X, v, -1.0)[0]
    for a in range(k):
        out[a] = sol[a]


@njit(parallel=True, fastmath=True, cache=True)
def ridge_rows(indptr, indices, data, Y, X, reg, weighted, n_chunks):
    """Exact ALS half-step: overwrite every row of ``X`` by its ridge solution (see module docstring).

    Returns the number of rows that needed the least-squares fallback."""
    n_rows = len(indptr) - 1
    k = Y.shape[1]
    rel_tol = 1e-10 if X.itemsize == 8 else 1e-5
    step = (n_rows + n_chunks - 1) // n_chunks
    fallbacks = np.zeros(n_chunks, dtype=np.int64)
    for c in prange(n_chunks):
        A = np.empty((k, k), dtype=X.dtype)
        b = np.empty(k, dtype=X.dtype)
        for r in range(c * step, min(n_rows, (c + 1) * step)):
            n = indptr[r + 1] - indptr[r]
            if n == 0:
                X[r] = 0
                continue
            lam = X.dtype.type(reg * n if weighted else reg)
            _gram(indptr, indices, data, Y, r, A, b)
            for a in range(k):
                A[a, a] += lam
            if _cholesky_solve(A, b, rel_tol):
                X[r] = b
            else:
                _min_norm_solve(indptr, indices, data, Y, r, lam, b)
                X[r] = b
                fallbacks[c] += 1
    return fallbacks.sum()


# --- conjugate gradient ----------------------------------------------------------------------------------


@njit(fastmath=True, cache=True)
def _gather_pass(indices, data, start, end, Y, x, out, c, s, t):
    """``out = c·x + Σ_j y_j (s·v_j + t·(y_j·x))`` over entries ``start:end``: the residual pass
    (c, s, t) = (−λ, 1, −1) and the matrix-vector pass (λ, 0, 1) of CG share it. Four entries per sweep,
    so four independent dot products are in flight and ``out`` is read and written once per four."""
    k = x.shape[0]
    zero = x[0] - x[0]
    for a in range(k):
        out[a] = c * x[a]
    j = start
    while j + 4 <= end:
        y0 = Y[indices[j]]
        y1 = Y[indices[j + 1]]
        y2 = Y[indices[j + 2]]
        y3 = Y[indices[j + 3]]
        d0 = zero
        d1 = zero
        d2 = zero
        d3 = zero
        for a in range(k):
            xa = x[a]
            d0 += y0[a] * xa
            d1 += y1[a] * xa
            d2 += y2[a] * xa
            d3 += y3[a] * xa
        e0 = s * data[j] + t * d0
        e1 = s * data[j + 1] + t * d1
        e2 = s * data[j + 2] + t * d2
        e3 = s * data[j + 3] + t * d3
        for a in range(k):
            out[a] += e0 * y0[a] + e1 * y1[a] + e2 * y2[a] + e3 * y3[a]
        j += 4
    while j < end:
        y0 = Y[indices[j]]
        d0 = zero
        for a in range(k):
            d0 += y0[a] * x[a]
        e0 = s * data[j] + t * d0
        for a in range(k):
            out[a] += e0 * y0[a]
        j += 1


@njit(parallel=True, fastmath=True, cache=True)
def cg_rows(indptr, indices, data, Y, X, reg, weighted, steps, n_chunks):
    """Approximate ALS half-step: ``steps`` conjugate-gradient iterations per row, warm-started from
    ``X``. The matrix-vector product ``(Y_Sᵀ Y_S + λ_r I) p`` is formed from the entries directly."""
    n_rows = len(indptr) - 1
    k = Y.shape[1]
    step = (n_rows + n_chunks - 1) // n_chunks
    T = X.dtype.type
    zero = T(0)
    one = T(1)
    for c in prange(n_chunks):
        res = np.empty(k, dtype=X.dtype)
        p = np.empty(k, dtype=X.dtype)
        Ap = np.empty(k, dtype=X.dtype)
        for r in range(c * step, min(n_rows, (c + 1) * step)):
            start, end = indptr[r], indptr[r + 1]
            if end == start:
                X[r] = 0
                continue
            lam = T(reg * (end - start) if weighted else reg)
            x = X[r]
            _gather_pass(indices, data, start, end, Y, x, res, -lam, one, -one)  # Y_Sᵀ(v − Y_S x) − λx
            rs = zero
            for a in range(k):
                p[a] = res[a]
                rs += res[a] * res[a]
            for _ in range(steps):
                if rs <= zero:
                    break
                _gather_pass(indices, data, start, end, Y, p, Ap, lam, zero, one)  # (Y_SᵀY_S + λI) p
                pAp = zero
                for a in range(k):
                    pAp += p[a] * Ap[a]
                if pAp <= zero:
                    break
                alpha = rs / pAp
                rs_new = zero
                for a in range(k):
                    x[a] += alpha * p[a]
                    res[a] -= alpha * Ap[a]
                    rs_new += res[a] * res[a]
                beta = rs_new / rs
                for a in range(k):
                    p[a] = res[a] + beta * p[a]
                rs = rs_new


# --- the same half-steps and data term over rating codes --------------------------------------------------
# A CSR layout may hold 1-byte rating codes instead of residuals (see ``rating_codes``): entry j of row r is
# rating ``table[codes[j]]`` of the pair (r, indices[j]) and its residual is ``residual(table[code], μ,
# b_u, b_i)``, formed in X's precision, bit for bit the value ``residuals`` stores. ``user_rows`` says
# whether rows are users (then row_bias = b_u, col_bias = b_i) or items (row_bias = b_i, col_bias = b_u).
# Each row is decoded into a per-thread buffer and solved by the helpers of the float layout.


@njit(cache=True, inline="always")
def _decode_row(indices, codes, start, end, table, mu, rb, col_bias, user_rows, out):
    T = out.dtype.type
    for j in range(start, end):
        if user_rows:
            out[j - start] = T(residual(table[codes[j]], mu, rb, col_bias[indices[j]]))
        else:
            out[j - start] = T(residual(table[codes[j]], mu, col_bias[indices[j]], rb))


@njit(parallel=True, cache=True)
def decode_csr(indptr, indices, codes, table, mu, row_bias, col_bias, user_rows, out):
    """The residuals of a coded CSR layout into ``out`` (its precision), entry by entry."""
    for r in prange(len(indptr) - 1):
        start, end = indptr[r], indptr[r + 1]
        _decode_row(indices, codes, start, end, table, mu, row_bias[r], col_bias, user_rows, out[start:end])


@njit(parallel=True, fastmath=True, cache=True)
def csr_sse_coded(indptr, indices, codes, table, mu, row_bias, col_bias, user_rows, X, Y, n_chunks):
    """:func:`csr_sse` of a coded layout."""
    T = X.dtype.type
    n_rows = len(indptr) - 1
    k = X.shape[1]
    partial = np.zeros(n_chunks)
    step = (n_rows + n_chunks - 1) // n_chunks
    for c in prange(n_chunks):
        s = 0.0
        for r in range(c * step, min(n_rows, (c + 1) * step)):
            x = X[r]
            rb = row_bias[r]
            for j in range(indptr[r], indptr[r + 1]):
                y = Y[indices[j]]
                dot = 0.0
                for a in range(k):
                    dot += x[a] * y[a]
                if user_rows:
                    v = T(residual(table[codes[j]], mu, rb, col_bias[indices[j]]))
                else:
                    v = T(residual(table[codes[j]], mu, col_bias[indices[j]], rb))
                e = v - dot
                s += e * e
        partial[c] = s
    return _in_order(partial)


@njit(parallel=True, fastmath=True, cache=True)
def cg_rows_coded(indptr, indices, codes, table, mu, row_bias, col_bias, user_rows, max_row, Y, X, reg, weighted,
                  steps, n_chunks):
    """:func:`cg_rows` of a coded layout (``max_row``: the longest row's length)."""
    n_rows = len(indptr) - 1
    k = Y.shape[1]
    step = (n_rows + n_chunks - 1) // n_chunks
    T = X.dtype.type
    zero = T(0)
    one = T(1)
    for c in prange(n_chunks):
        res = np.empty(k, dtype=X.dtype)
        p = np.empty(k, dtype=X.dtype)
        Ap = np.empty(k, dtype=X.dtype)
        vals = np.empty(max_row, dtype=X.dtype)
        for r in range(c * step, min(n_rows, (c + 1) * step)):
            start, end = indptr[r], indptr[r + 1]
            if end == start:
                X[r] = 0
                continue
            n = end - start
            _decode_row(indices, codes, start, end, table, mu, row_bias[r], col_bias, user_rows, vals)
            idx = indices[start:end]
            v = vals[:n]
            lam = T(reg * (end - start) if weighted else reg)
            x = X[r]
            _gather_pass(idx, v, 0, n, Y, x, res, -lam, one, -one)  # Y_Sᵀ(v − Y_S x) − λx
            rs = zero
            for a in range(k):
                p[a] = res[a]
                rs += res[a] * res[a]
            for _ in range(steps):
                if rs <= zero:
                    break
                _gather_pass(idx, v, 0, n, Y, p, Ap, lam, zero, one)  # (Y_SᵀY_S + λI) p
                pAp = zero
                for a in range(k):
                    pAp += p[a] * Ap[a]
                if pAp <= zero:
                    break
                alpha = rs / pAp
                rs_new = zero
                for a in range(k):
                    x[a] += alpha * p[a]
                    res[a] -= alpha * Ap[a]
                    rs_new += res[a] * res[a]
                beta = rs_new / rs
                for a in range(k):
                    p[a] = res[a] + beta * p[a]
                rs = rs_new


@njit(parallel=True, fastmath=True, cache=True)
def ridge_rows_coded(indptr, indices, codes, table, mu, row_bias, col_bias, user_rows, max_row, Y, X, reg,
                     weighted, n_chunks):
    """:func:`ridge_rows` of a coded layout; returns the number of least-squares fallbacks."""
    n_rows = len(indptr) - 1
    k = Y.shape[1]
    rel_tol = 1e-10 if X.itemsize == 8 else 1e-5
    step = (n_rows + n_chunks - 1) // n_chunks
    fallbacks = np.zeros(n_chunks, dtype=np.int64)
    for c in prange(n_chunks):
        A = np.empty((k, k), dtype=X.dtype)
        b = np.empty(k, dtype=X.dtype)
        vals = np.empty(max_row, dtype=X.dtype)
        ip = np.zeros(2, dtype=indptr.dtype)
        for r in range(c * step, min(n_rows, (c + 1) * step)):
            start, end = indptr[r], indptr[r + 1]
            n = end - start
            if n == 0:
                X[r] = 0
                continue
            _decode_row(indices, codes, start, end, table, mu, row_bias[r], col_bias, user_rows, vals)
            ip[1] = n
            idx = indices[start:end]
            v = vals[:n]
            lam = X.dtype.type(reg * n if weighted else reg)
            _gram(ip, idx, v, Y, 0, A, b)
            for a in range(k):
                A[a, a] += lam
            if _cholesky_solve(A, b, rel_tol):
                X[r] = b
            else:
                _min_norm_solve(ip, idx, v, Y, 0, lam, b)
                X[r] = b
                fallbacks[c] += 1
    return fallbacks.sum()
