"""Numba kernels for implicit alternating least squares (Hu, Koren & Volinsky 2008; Rendle et al. 2022).

Every (row, column) cell counts. The observed entries ``j`` of row ``r`` have a target ``p_j`` and an extra
confidence ``w_j ≥ 0``; every cell, observed or not, has the base weight ``α0``. With the other side's factors
``Y`` fixed, the row's factors minimise

    Σ_{j observed} (α0 + w_j)(p_j − x·y_j)²  +  α0 Σ_{j unobserved} (x·y_j)²  +  λ_r ‖x‖²,

whose normal equations are ``A x = b`` with

    A = G + Σ_j w_j y_j y_jᵀ + λ_r I,    G = α0 YᵀY (one k×k Gram matrix for all rows),
    b = Σ_j (α0 + w_j) p_j y_j.

So a product ``A v`` costs O(k² + n_r·k): the Gram trick. Two ways to solve a row:

* ``cg_rows``: ``steps`` conjugate-gradient iterations warm-started from the current ``x`` (as ``implicit``
  does, 3 by default), one fused loop per row that allocates nothing: the residual ``b − A x`` in one pass
  over the row's entries, then per step one pass for ``A p``. Four entries per sweep keep four dot products
  in flight and read ``y_j`` once for both its dot product and its update.
* ``cholesky_rows``: builds ``A`` and ``b`` and solves exactly (Cholesky from :mod:`.als`); for tests, small k
  and folding in one new user.

Rows are independent, so a row's result does not depend on how rows are split among threads; the sums that
mix rows (the Gram matrix, the loss) are taken over fixed chunks and added in chunk order.
"""

from __future__ import annotations

import numpy as np
from llvmlite import ir
from numba import njit, prange, types
from numba.core import cgutils
from numba.extending import intrinsic

from latentatlas.ratings.kernels.als import _cholesky_solve, _in_order

AHEAD = 16  # entries ahead whose factor rows the passes prefetch (8 and 32 were slower)

# --- prefetch ------------------------------------------------------------------------------------------------


@intrinsic
def _prefetch_line(typingctx, arr, row, col):
    """Hint the CPU to load the cache line holding ``arr[row, col]`` (LLVM's prefetch: read, keep)."""
    sig = types.void(arr, row, col)

    def codegen(context, builder, signature, args):
        aryty = signature.args[0]
        ary = context.make_array(aryty)(context, builder, args[0])
        at = [context.cast(builder, v, t, types.intp) for v, t in zip(args[1:], signature.args[1:])]
        ptr = cgutils.get_item_pointer(context, builder, aryty, ary, at, wraparound=False)
        i8p = ir.IntType(8).as_pointer()
        i32 = ir.IntType(32)
        fn = cgutils.get_or_insert_function(builder.module, ir.FunctionType(ir.VoidType(), [i8p, i32, i32, i32]),
                                            "llvm.prefetch.p0")
        builder.call(fn, [builder.bitcast(ptr, i8p), ir.Constant(i32, 0), ir.Constant(i32, 3), ir.Constant(i32, 1)])
        return context.get_dummy_value()

    return sig, codegen


@njit(cache=True, inline="always")
def _prefetch_row(Y, row):
    """Prefetch every cache line of ``Y[row]`` (C-contiguous rows)."""
    step = 64 // Y.itemsize
    for a in range(0, Y.shape[1], step):
        _prefetch_line(Y, row, a)


# --- layout -----------------------------------------------------------------------------------------------


@njit(cache=True, nogil=True)
def check_csr(indptr, indices, n_cols):
    """0 when every row's column indices are in ``[0, n_cols)`` and distinct; else a code:
    1 = out of range, 2 = a column twice in one row. The second element is the offending entry."""
    seen = np.full(n_cols, -1, dtype=np.int64)
    for r in range(len(indptr) - 1):
        for j in range(indptr[r], indptr[r + 1]):
            c = indices[j]
            if c < 0 or c >= n_cols:
                return 1, j
            if seen[c] == r:
                return 2, j
            seen[c] = r
    return 0, 0


@njit(cache=True, nogil=True)
def column_counts(indices, n_cols):
    """Entries per column (``np.bincount`` without its int64 copy of ``indices``)."""
    counts = np.zeros(n_cols, dtype=np.int64)
    for j in range(len(indices)):
        counts[indices[j]] += 1
    return counts


@njit(cache=True, nogil=True)
def transpose_range(indptr, indices, c0, c1, a, b, out_ptr, indices_out, a_out, b_out):
    """Columns ``c0:c1`` of the CSR ``(indptr, indices)`` as rows of a new CSR: ``out_ptr`` (``c1 − c0 + 1``
    pointers, from the column counts) is given, ``indices_out`` (the old row numbers, ascending within a new
    row) and the two carried per-entry arrays ``a_out``, ``b_out`` are filled (an empty ``a`` or ``b`` is
    not carried). One sequential scan over all entries."""
    pos = out_ptr[:-1].copy()
    carry_a = len(a) > 0
    carry_b = len(b) > 0
    for r in range(len(indptr) - 1):
        for j in range(indptr[r], indptr[r + 1]):
            c = indices[j]
            if c >= c0 and c < c1:
                q = pos[c - c0]
                indices_out[q] = r
                if carry_a:
                    a_out[q] = a[j]
                if carry_b:
                    b_out[q] = b[j]
                pos[c - c0] = q + 1


@njit(cache=True, nogil=True)
def rows_sorted(indptr, indices):
    """Whether the column indices ascend within every row (scipy's canonical CSR)."""
    for r in range(len(indptr) - 1):
        for j in range(indptr[r] + 1, indptr[r + 1]):
            if indices[j] <= indices[j - 1]:
                return False
    return True


@njit(parallel=True, cache=True, nogil=True)
def chunk_column_starts(indptr, indices, row_bounds, starts):
    """``starts[ch, c]`` (zeroed here): how many entries of column ``c`` the row chunks before ``ch`` hold
    (chunks ``row_bounds``), i.e. where chunk ``ch`` writes within column ``c``'s new row. Once per fit."""
    n_chunks, n_cols = starts.shape
    for ch in prange(n_chunks):
        cnt = starts[ch]
        cnt[:] = 0
        for j in range(indptr[row_bounds[ch]], indptr[row_bounds[ch + 1]]):
            cnt[indices[j]] += 1
    for c in prange(n_cols):
        at = 0
        for ch in range(n_chunks):
            t = starts[ch, c]
            starts[ch, c] = at
            at += t


@njit(parallel=True, cache=True, nogil=True)
def transpose_next(indptr, indices, cursor, c0, c1, a, b, out_ptr, indices_out, a_out, b_out, row_bounds, starts,
                   pos):
    """:func:`transpose_range` for a CSR whose rows are sorted, groups taken in column order, in parallel:
    ``cursor[r]`` is row ``r``'s first entry not yet moved (start: ``indptr[:-1]``), so every entry is read
    once over all groups, not once per group. Row chunks ``row_bounds`` write from ``out_ptr[c] +
    starts[ch, c]`` (:func:`chunk_column_starts`; ``pos``: chunks × (c1 − c0) scratch); the output is the
    same for any chunking (old rows ascend within a new row)."""
    n_chunks = len(row_bounds) - 1
    width = c1 - c0
    carry_a = len(a) > 0
    carry_b = len(b) > 0
    for ch in prange(n_chunks):
        at = pos[ch]
        for c in range(width):
            at[c] = out_ptr[c] + starts[ch, c0 + c]
        for r in range(row_bounds[ch], row_bounds[ch + 1]):
            j = cursor[r]
            end = indptr[r + 1]
            while j < end and indices[j] < c1:
                c = indices[j] - c0
                q = at[c]
                indices_out[q] = r
                if carry_a:
                    a_out[q] = a[j]
                if carry_b:
                    b_out[q] = b[j]
                at[c] = q + 1
                j += 1
            cursor[r] = j


# --- Gram matrix and loss -----------------------------------------------------------------------------------


@njit(parallel=True, fastmath=True, cache=True, nogil=True)
def gram_partials(Y, partial):
    """``partial[c] = Σ_{rows of chunk c} y yᵀ`` (full square) for ``len(partial)`` equal row chunks;
    the caller adds them in chunk order. Accumulates in ``partial``'s precision."""
    n, k = Y.shape
    n_chunks = partial.shape[0]
    step = (n + n_chunks - 1) // n_chunks
    for c in prange(n_chunks):
        A = partial[c]
        A[:] = 0
        r = c * step
        end = min(n, (c + 1) * step)
        while r + 4 <= end:
            y0 = Y[r]
            y1 = Y[r + 1]
            y2 = Y[r + 2]
            y3 = Y[r + 3]
            for a in range(k):
                a0, a1, a2, a3 = y0[a], y1[a], y2[a], y3[a]
                row = A[a]
                for b in range(k):
                    row[b] += a0 * y0[b] + a1 * y1[b] + a2 * y2[b] + a3 * y3[b]
            r += 4
        while r < end:
            y0 = Y[r]
            for a in range(k):
                a0 = y0[a]
                row = A[a]
                for b in range(k):
                    row[b] += a0 * y0[b]
            r += 1


@njit(parallel=True, fastmath=True, cache=True, nogil=True)
def observed_loss(indptr, indices, targets, unit, weights, X, Y, alpha0, n_chunks):
    """Σ_observed [(α0 + w)(p − x·y)² − α0 (x·y)²] in float64 over fixed row chunks, added in order: the
    observed entries' share of the loss once ``α0 Σ_all (x·y)²`` is counted through the Gram matrices."""
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
                    dot += np.float64(x[a]) * np.float64(y[a])
                p = 1.0 if unit else np.float64(targets[j])
                e = p - dot
                s += (alpha0 + np.float64(weights[j])) * e * e - alpha0 * dot * dot
        partial[c] = s
    return _in_order(partial)


# --- conjugate gradient ----------------------------------------------------------------------------------


@njit(fastmath=True, cache=True)
def _gram_times(G, v, out, scale, shift):
    """``out = scale·(G v) + shift·v`` for symmetric ``G``: sweeps of four columns, so ``out`` is loaded and
    stored once per four (4x faster than one column a sweep, measured)."""
    k = v.shape[0]
    for a in range(k):
        out[a] = shift * v[a]
    b = 0
    while b + 4 <= k:
        v0, v1, v2, v3 = scale * v[b], scale * v[b + 1], scale * v[b + 2], scale * v[b + 3]
        g0, g1, g2, g3 = G[b], G[b + 1], G[b + 2], G[b + 3]
        for a in range(k):
            out[a] += v0 * g0[a] + v1 * g1[a] + v2 * g2[a] + v3 * g3[a]
        b += 4
    while b < k:
        v0 = scale * v[b]
        g0 = G[b]
        for a in range(k):
            out[a] += v0 * g0[a]
        b += 1


@njit(fastmath=True, cache=True, inline="always")
def _coef(targets, tstride, weights, j, d, alpha0):
    """The residual pass's coefficient ``(α0 + w)p − w·d``, ``p = targets[j·tstride]`` (no branch)."""
    w = weights[j]
    return (alpha0 + w) * targets[j * tstride] - w * d


@njit(fastmath=True, cache=True)
def _matvec_pass(indices, weights, start, end, Y, v, out):
    """``out += Σ_j w_j (y_j·v) y_j``: the entries' share of ``A v``. Eight entries a sweep (eight dot
    products in flight, ``out`` read and written once per eight), the rows ``AHEAD`` entries on prefetched:
    the rows of a long row do not stay in cache between passes, and waiting for them cost more than the
    arithmetic (items' half-step 1.8 s → 0.9 s CPU at 10 M ratings). Separate from
    :func:`_residual_pass` because a run-time flag choosing the coefficient made both 1.6x slower."""
    k = v.shape[0]
    zero = v[0] - v[0]
    j = start
    while j + 8 <= end:
        if j + AHEAD + 8 <= end:
            for q in range(j + AHEAD, j + AHEAD + 8):
                _prefetch_row(Y, indices[q])
        y0, y1, y2, y3 = Y[indices[j]], Y[indices[j + 1]], Y[indices[j + 2]], Y[indices[j + 3]]
        y4, y5, y6, y7 = Y[indices[j + 4]], Y[indices[j + 5]], Y[indices[j + 6]], Y[indices[j + 7]]
        d0 = d1 = d2 = d3 = d4 = d5 = d6 = d7 = zero
        for a in range(k):
            va = v[a]
            d0 += y0[a] * va
            d1 += y1[a] * va
            d2 += y2[a] * va
            d3 += y3[a] * va
            d4 += y4[a] * va
            d5 += y5[a] * va
            d6 += y6[a] * va
            d7 += y7[a] * va
        e0 = weights[j] * d0
        e1 = weights[j + 1] * d1
        e2 = weights[j + 2] * d2
        e3 = weights[j + 3] * d3
        e4 = weights[j + 4] * d4
        e5 = weights[j + 5] * d5
        e6 = weights[j + 6] * d6
        e7 = weights[j + 7] * d7
        for a in range(k):
            out[a] += (e0 * y0[a] + e1 * y1[a] + e2 * y2[a] + e3 * y3[a]) + \
                (e4 * y4[a] + e5 * y5[a] + e6 * y6[a] + e7 * y7[a])
        j += 8
    if j + 4 <= end:
        y0, y1, y2, y3 = Y[indices[j]], Y[indices[j + 1]], Y[indices[j + 2]], Y[indices[j + 3]]
        d0 = d1 = d2 = d3 = zero
        for a in range(k):
            va = v[a]
            d0 += y0[a] * va
            d1 += y1[a] * va
            d2 += y2[a] * va
            d3 += y3[a] * va
        e0 = weights[j] * d0
        e1 = weights[j + 1] * d1
        e2 = weights[j + 2] * d2
        e3 = weights[j + 3] * d3
        for a in range(k):
            out[a] += e0 * y0[a] + e1 * y1[a] + e2 * y2[a] + e3 * y3[a]
        j += 4
    while j < end:
        y0 = Y[indices[j]]
        d0 = zero
        for a in range(k):
            d0 += y0[a] * v[a]
        e0 = weights[j] * d0
        for a in range(k):
            out[a] += e0 * y0[a]
        j += 1


@njit(fastmath=True, cache=True)
def _residual_pass(indices, targets, tstride, weights, start, end, Y, v, out, alpha0):
    """``out += Σ_j ((α0 + w_j) p_j − w_j (y_j·v)) y_j``: the entries' share of ``b − A v``
    (``p_j = targets[j·tstride]``: stride 0 and ``targets = [1]`` when every target is 1). Laid out as
    :func:`_matvec_pass`."""
    k = v.shape[0]
    zero = v[0] - v[0]
    j = start
    while j + 8 <= end:
        if j + AHEAD + 8 <= end:
            for q in range(j + AHEAD, j + AHEAD + 8):
                _prefetch_row(Y, indices[q])
        y0, y1, y2, y3 = Y[indices[j]], Y[indices[j + 1]], Y[indices[j + 2]], Y[indices[j + 3]]
        y4, y5, y6, y7 = Y[indices[j + 4]], Y[indices[j + 5]], Y[indices[j + 6]], Y[indices[j + 7]]
        d0 = d1 = d2 = d3 = d4 = d5 = d6 = d7 = zero
        for a in range(k):
            va = v[a]
            d0 += y0[a] * va
            d1 += y1[a] * va
            d2 += y2[a] * va
            d3 += y3[a] * va
            d4 += y4[a] * va
            d5 += y5[a] * va
            d6 += y6[a] * va
            d7 += y7[a] * va
        e0 = _coef(targets, tstride, weights, j, d0, alpha0)
        e1 = _coef(targets, tstride, weights, j + 1, d1, alpha0)
        e2 = _coef(targets, tstride, weights, j + 2, d2, alpha0)
        e3 = _coef(targets, tstride, weights, j + 3, d3, alpha0)
        e4 = _coef(targets, tstride, weights, j + 4, d4, alpha0)
        e5 = _coef(targets, tstride, weights, j + 5, d5, alpha0)
        e6 = _coef(targets, tstride, weights, j + 6, d6, alpha0)
        e7 = _coef(targets, tstride, weights, j + 7, d7, alpha0)
        for a in range(k):
            out[a] += (e0 * y0[a] + e1 * y1[a] + e2 * y2[a] + e3 * y3[a]) + \
                (e4 * y4[a] + e5 * y5[a] + e6 * y6[a] + e7 * y7[a])
        j += 8
    if j + 4 <= end:
        y0, y1, y2, y3 = Y[indices[j]], Y[indices[j + 1]], Y[indices[j + 2]], Y[indices[j + 3]]
        d0 = d1 = d2 = d3 = zero
        for a in range(k):
            va = v[a]
            d0 += y0[a] * va
            d1 += y1[a] * va
            d2 += y2[a] * va
            d3 += y3[a] * va
        e0 = _coef(targets, tstride, weights, j, d0, alpha0)
        e1 = _coef(targets, tstride, weights, j + 1, d1, alpha0)
        e2 = _coef(targets, tstride, weights, j + 2, d2, alpha0)
        e3 = _coef(targets, tstride, weights, j + 3, d3, alpha0)
        for a in range(k):
            out[a] += e0 * y0[a] + e1 * y1[a] + e2 * y2[a] + e3 * y3[a]
        j += 4
    while j < end:
        y0 = Y[indices[j]]
        d0 = zero
        for a in range(k):
            d0 += y0[a] * v[a]
        e0 = _coef(targets, tstride, weights, j, d0, alpha0)
        for a in range(k):
            out[a] += e0 * y0[a]
        j += 1


@njit(fastmath=True, cache=True)
def _cg_span(indptr, indices, targets, tstride, weights, Y, G, reg_rows, alpha0, X, steps, lo, hi, res, p, Ap):
    """Rows ``lo:hi`` of :func:`cg_rows` (serial; the parallel loop's body, compiled once outside it)."""
    k = Y.shape[1]
    T = X.dtype.type
    zero = T(0)
    a0 = T(alpha0)
    tiny = T(1e-20)
    n_rows = len(indptr) - 1
    for r in range(lo, hi):
        start, end = indptr[r], indptr[r + 1]
        if r + 1 < n_rows:  # the next row's first factor rows arrive while this row is solved
            for q in range(indptr[r + 1], min(indptr[r + 2], indptr[r + 1] + AHEAD)):
                _prefetch_row(Y, indices[q])
        x = X[r]
        if end == start:
            x[:] = 0
            continue
        lam = T(reg_rows[r])
        _gram_times(G, x, res, -1, -lam)  # −(G + λI) x
        _residual_pass(indices, targets, tstride, weights, start, end, Y, x, res, a0)  # + b − Σ w y yᵀ x
        rs = zero
        for a in range(k):
            p[a] = res[a]
            rs += res[a] * res[a]
        if rs < tiny:
            continue
        for _ in range(steps):
            _gram_times(G, p, Ap, 1, lam)
            _matvec_pass(indices, weights, start, end, Y, p, Ap)
            pAp = zero
            for a in range(k):
                pAp += p[a] * Ap[a]
            if not pAp > zero:
                break
            step = rs / pAp
            rs_new = zero
            for a in range(k):
                x[a] += step * p[a]
                res[a] -= step * Ap[a]
                rs_new += res[a] * res[a]
            if rs_new < tiny:
                break
            beta = rs_new / rs
            for a in range(k):
                p[a] = res[a] + beta * p[a]
            rs = rs_new


@njit(parallel=True, cache=True, nogil=True)
def cg_rows(indptr, indices, targets, tstride, weights, Y, G, reg_rows, alpha0, X, steps, bounds):
    """Approximate iALS half-step: ``steps`` CG iterations per row of ``X``, warm-started from ``X``.

    ``G`` = α0 YᵀY; ``reg_rows[r]`` = λ_r; ``p_j = targets[j·tstride]`` (stride 0: one shared target);
    ``bounds``: row ranges handed to the threads (any split gives the same result). Empty rows get 0."""
    k = Y.shape[1]
    for c in prange(len(bounds) - 1):
        res = np.empty(k, dtype=X.dtype)
        p = np.empty(k, dtype=X.dtype)
        Ap = np.empty(k, dtype=X.dtype)
        _cg_span(indptr, indices, targets, tstride, weights, Y, G, reg_rows, alpha0, X, steps, bounds[c],
                 bounds[c + 1], res, p, Ap)


# --- exact solve -------------------------------------------------------------------------------------------


@njit(fastmath=True, cache=True)
def _normal_equations(indices, targets, tstride, weights, start, end, Y, G, lam, alpha0, A, b):
    """``A = G + Σ w_j y_j y_jᵀ + λI`` and ``b = Σ (α0 + w_j) p_j y_j`` (full square, 4 entries a sweep)."""
    k = Y.shape[1]
    for a in range(k):
        row = A[a]
        g = G[a]
        for c in range(k):
            row[c] = g[c]
        A[a, a] += lam
        b[a] = 0
    j = start
    while j + 4 <= end:
        y0 = Y[indices[j]]
        y1 = Y[indices[j + 1]]
        y2 = Y[indices[j + 2]]
        y3 = Y[indices[j + 3]]
        w0, w1, w2, w3 = weights[j], weights[j + 1], weights[j + 2], weights[j + 3]
        p0, p1 = targets[j * tstride], targets[(j + 1) * tstride]
        p2, p3 = targets[(j + 2) * tstride], targets[(j + 3) * tstride]
        v0 = (alpha0 + w0) * p0
        v1 = (alpha0 + w1) * p1
        v2 = (alpha0 + w2) * p2
        v3 = (alpha0 + w3) * p3
        for a in range(k):
            b[a] += v0 * y0[a] + v1 * y1[a] + v2 * y2[a] + v3 * y3[a]
            c0, c1, c2, c3 = w0 * y0[a], w1 * y1[a], w2 * y2[a], w3 * y3[a]
            row = A[a]
            for c in range(k):
                row[c] += c0 * y0[c] + c1 * y1[c] + c2 * y2[c] + c3 * y3[c]
        j += 4
    while j < end:
        y0 = Y[indices[j]]
        w0 = weights[j]
        p0 = targets[j * tstride]
        v0 = (alpha0 + w0) * p0
        for a in range(k):
            b[a] += v0 * y0[a]
            c0 = w0 * y0[a]
            row = A[a]
            for c in range(k):
                row[c] += c0 * y0[c]
        j += 1


@njit(fastmath=True, cache=True)
def _cholesky_span(indptr, indices, targets, tstride, weights, Y, G, reg_rows, alpha0, X, lo, hi, A, b):
    """Rows ``lo:hi`` of :func:`cholesky_rows`; returns how many needed the extra ridge."""
    k = Y.shape[1]
    T = X.dtype.type
    rel_tol = 1e-12 if X.itemsize == 8 else 1e-6
    fallbacks = 0
    for r in range(lo, hi):
        start, end = indptr[r], indptr[r + 1]
        if end == start:
            X[r] = 0
            continue
        lam = T(reg_rows[r])
        _normal_equations(indices, targets, tstride, weights, start, end, Y, G, lam, T(alpha0), A, b)
        if not _cholesky_solve(A, b, rel_tol):
            _normal_equations(indices, targets, tstride, weights, start, end, Y, G, lam, T(alpha0), A, b)
            top = A[0, 0]
            for a in range(k):
                top = max(top, A[a, a])
            jitter = T(top * rel_tol * 100 if top > 0 else 1)
            for a in range(k):
                A[a, a] += jitter
            if not _cholesky_solve(A, b, rel_tol):
                b[:] = 0
            fallbacks += 1
        X[r] = b
    return fallbacks


@njit(parallel=True, cache=True, nogil=True)
def cholesky_rows(indptr, indices, targets, tstride, weights, Y, G, reg_rows, alpha0, X, bounds):
    """Exact iALS half-step: every row of ``X`` becomes the solution of its normal equations.

    When Cholesky meets a pivot that is zero to working precision (λ = 0 and a rank-deficient ``A``), the
    row is solved again with a ridge of 1e-4 (float64: 1e-10) times the largest diagonal entry added.
    Returns the number of such rows."""
    k = Y.shape[1]
    fallbacks = np.zeros(len(bounds) - 1, dtype=np.int64)
    for c in prange(len(bounds) - 1):
        A = np.empty((k, k), dtype=X.dtype)
        b = np.empty(k, dtype=X.dtype)
        fallbacks[c] = _cholesky_span(indptr, indices, targets, tstride, weights, Y, G, reg_rows, alpha0, X,
                                      bounds[c], bounds[c + 1], A, b)
    return fallbacks.sum()


@njit(cache=True, nogil=True)
def cholesky_rows_serial(indptr, indices, targets, tstride, weights, Y, G, reg_rows, alpha0, X):
    """:func:`cholesky_rows` on one thread, for a few rows (folding in a user): compiles in a fraction of
    the parallel version's time."""
    k = Y.shape[1]
    A = np.empty((k, k), dtype=X.dtype)
    b = np.empty(k, dtype=X.dtype)
    return _cholesky_span(indptr, indices, targets, tstride, weights, Y, G, reg_rows, alpha0, X, 0,
                          len(indptr) - 1, A, b)
