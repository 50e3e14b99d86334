"""Implicit alternating least squares (Hu, Koren & Volinsky 2008; Rendle et al. 2022), as pure functions.

The model: given a users × items CSR of observed entries, each with a target ``p_ui`` (usually 1; 0 for an
observed dislike) and an extra confidence ``w_ui ≥ 0``, minimise

    Σ_{(u,i) observed} (α0 + w_ui)(p_ui − x_u·y_i)²  +  α0 Σ_{(u,i) unobserved} (x_u·y_i)²
        + Σ_u λ_u ‖x_u‖² + Σ_i λ_i ‖y_i‖²,

    λ_u = reg · (n_u + α0·n_items)^ν,    λ_i = reg · (n_i + α0·n_users)^ν,

``α0 > 0`` the weight of every cell (Rendle's α0; Hu et al. is α0 = 1 with w = α·r), ``ν ∈ [0, 1]`` the
frequency scaling of the regularisation (Rendle 2022; ν = 0 is a plain λ). ``implicit``'s ALS is this model
with α0 = 1, p = 1, w = confidence − 1 and ν = 0.

:func:`fit_ials` alternates exact or conjugate-gradient half-steps (:func:`solve_rows`), users then items;
:func:`fold_in_user` solves one new user exactly; :func:`objective` is the loss above. The kernels live in
:mod:`latentatlas.ratings.kernels.ials`. Nothing here prints; progress is logged at DEBUG on ``latentatlas``.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

import numpy as np

from latentatlas.errors import LatentAtlasError

log = logging.getLogger("latentatlas")

_CHUNKS = 64  # row chunks of the sums that mix rows (Gram matrix, loss): fixed, so they do not depend on threads
_SOLVERS = ("cg", "cholesky")
_SERIAL_ROWS = 16  # exact solves of at most this many rows run on one thread (fold-in: no parallel compile)
_GROUP_ENTRIES = 2**20  # entries of the item-side CSR built at a time (see fit_ials)


def _kern():
    """The kernels module, with numba's own thread pool preferred before any parallel kernel runs
    (:func:`latentatlas.ratings.kernels.als.prefer_workqueue`)."""
    from latentatlas.ratings.kernels import als, ials

    als.prefer_workqueue()
    return ials


# --- validation -----------------------------------------------------------------------------------------------


def _dtype(dtype) -> np.dtype:
    try:
        dt = np.dtype(dtype)
    except TypeError:
        dt = None
    if dt not in (np.dtype(np.float32), np.dtype(np.float64)):
        raise LatentAtlasError(f"dtype must be 'float32' or 'float64', got {dtype!r}")
    return dt


def _int_arg(name: str, value, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise LatentAtlasError(f"{name} must be an integer >= {minimum}, got {value!r}")
    return int(value)


def _float_arg(name: str, value, *, low: float, high: float = np.inf, open_low: bool = False) -> float:
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise LatentAtlasError(f"{name} must be a number, got {value!r}") from None
    if not np.isfinite(v) or v < low or (open_low and v == low) or v > high:
        bound = f"> {low}" if open_low else f">= {low}"
        if high != np.inf:
            bound = f"in [{low}, {high}]"
        raise LatentAtlasError(f"{name} must be {bound}, got {value!r}")
    return v


def _csr(indptr, indices, n_rows: int, n_cols: int, what: str):
    """Checked ``(indptr int64, indices int32/int64)``: lengths, monotone pointers, columns in range, no
    column twice in a row."""
    kern = _kern()

    indptr = np.asarray(indptr)
    indices = np.asarray(indices)
    if indptr.ndim != 1 or len(indptr) != n_rows + 1 or not np.issubdtype(indptr.dtype, np.integer):
        raise LatentAtlasError(f"indptr must be a 1-D integer array of length n_{what[0]}+1 = {n_rows + 1}, "
                               f"got shape {indptr.shape} of {indptr.dtype}")
    if indices.ndim != 1 or not np.issubdtype(indices.dtype, np.integer):
        raise LatentAtlasError(f"indices must be a 1-D integer array, got shape {indices.shape} of {indices.dtype}")
    if indptr[0] != 0 or indptr[-1] != len(indices) or (len(indptr) > 1 and (np.diff(indptr) < 0).any()):
        raise LatentAtlasError(f"indptr must start at 0, never decrease and end at len(indices) = {len(indices)}; "
                               f"got {indptr[0]} … {indptr[-1]}")
    indptr = indptr.astype(np.int64, copy=False)
    code, j = kern.check_csr(indptr, indices, n_cols)
    if code:
        row = int(np.searchsorted(indptr, j, side="right") - 1)
        if code == 1:
            raise LatentAtlasError(f"indices[{j}] = {indices[j]} is outside [0, {n_cols}) (row {row})")
        raise LatentAtlasError(f"indices: column {indices[j]} appears twice in row {row}; "
                               "sum duplicate entries first")
    return indptr, _index_array(indices, n_cols)


def _index_array(indices, n_cols: int) -> np.ndarray:
    """int32 column indices whenever they fit (one compiled signature of every kernel, half the memory)."""
    return np.ascontiguousarray(indices, dtype=np.int32 if n_cols < 2**31 else np.int64)


def _entries(values, nnz: int, name: str, dt: np.dtype, *, non_negative: bool):
    """A per-entry array in ``dt`` (``None`` stays None), checked finite (and >= 0)."""
    if values is None:
        return None
    v = np.asarray(values)
    if v.ndim != 1 or len(v) != nnz:
        raise LatentAtlasError(f"{name} must have one value per entry ({nnz}), got shape {v.shape}")
    v = np.ascontiguousarray(v, dtype=dt)
    if not np.isfinite(v).all():
        raise LatentAtlasError(f"{name}: not all finite")
    if non_negative and (v < 0).any():
        raise LatentAtlasError(f"{name} must be >= 0, got {float(v.min())}")
    return v


def _factors(value, n: int, k: int, dt: np.dtype, name: str) -> np.ndarray:
    a = np.asarray(value)
    if a.shape != (n, k):
        raise LatentAtlasError(f"{name} must have shape ({n}, {k}), got {a.shape}")
    a = np.array(a, dtype=dt, order="C", copy=True)
    if not np.isfinite(a).all():
        raise LatentAtlasError(f"{name}: not all finite")
    return a


# --- building blocks -----------------------------------------------------------------------------------------


def gramian(Y: np.ndarray, alpha0: float = 1.0) -> np.ndarray:
    """``α0·YᵀY`` (k×k, ``Y``'s dtype), summed over fixed row chunks in order: the same bits whatever the
    number of threads."""
    kern = _kern()

    Y = np.ascontiguousarray(Y)
    k = Y.shape[1]
    partial = np.empty((min(_CHUNKS, max(len(Y), 1)), k, k), dtype=Y.dtype)
    kern.gram_partials(Y, partial)
    total = np.zeros((k, k))
    for c in range(len(partial)):
        total += partial[c]
    total *= alpha0
    return total.astype(Y.dtype)


def row_regularization(counts: np.ndarray, reg: float, alpha0: float, nu: float, n_other: int) -> np.ndarray:
    """``λ_r = reg · (n_r + α0·n_other)^ν`` per row (float64)."""
    base = np.asarray(counts, dtype=np.float64) + alpha0 * n_other
    return reg * base ** nu if nu else np.full(len(base), float(reg))


def _item_groups(counts: np.ndarray, max_entries: int) -> list[tuple[int, int]]:
    """Contiguous column ranges ``(c0, c1)`` holding at most ``max_entries`` entries each (a single column
    with more is a group of its own)."""
    groups, c0, total = [], 0, 0
    for c, n in enumerate(counts.tolist()):
        if total + n > max_entries and c > c0:
            groups.append((c0, c))
            c0, total = c, 0
        total += n
    if len(counts):
        groups.append((c0, len(counts)))
    return groups


def _bounds(indptr: np.ndarray, k: int, n_threads: int) -> np.ndarray:
    """Row ranges of about equal work (a row costs ~ k² + 2·n_r·k per CG step) for the parallel loop;
    results do not depend on them."""
    n_rows = len(indptr) - 1
    n_parts = min(n_rows, max(1, 16 * n_threads))
    if n_parts <= 1:
        return np.array([0, n_rows], dtype=np.int64)
    cost = np.cumsum(np.diff(indptr) + k / 2 + 1, dtype=np.float64)
    cuts = np.searchsorted(cost, cost[-1] * np.arange(1, n_parts) / n_parts, side="right")
    return np.unique(np.concatenate([[0], cuts, [n_rows]])).astype(np.int64)


def solve_rows(Y, gram, indptr, indices, targets, weights, reg_rows, alpha0, X, cg_steps, solver) -> None:
    """One half-step in place: every row ``r`` of ``X`` is (approximately, for ``solver="cg"``) the
    minimiser of ``Σ_j (α0 + w_j)(p_j − x·y_j)² + α0 Σ_{j unobserved} (x·y_j)² + λ_r ‖x‖²`` over the entries
    ``indptr[r]:indptr[r+1]`` of the CSR (columns ``indices``, rows of ``Y``).

    ``gram`` = ``gramian(Y, alpha0)``; ``targets`` None means every target is 1; ``weights`` None means 0;
    ``reg_rows`` the λ_r (:func:`row_regularization`); ``cg_steps`` warm-started CG steps from ``X``'s rows
    (``solver="cg"``) or an exact Cholesky solve (``solver="cholesky"``). Arrays are used as given when they
    already have ``X``'s dtype and are contiguous. Rows without entries get zero factors. The threads are
    numba's current number (``numba.set_num_threads``); the result does not depend on it.
    """
    import numba

    kern = _kern()

    if solver not in _SOLVERS:
        raise LatentAtlasError(f"solver must be one of {', '.join(_SOLVERS)}, got {solver!r}")
    if not (isinstance(X, np.ndarray) and X.ndim == 2 and X.dtype in (np.float32, np.float64)
            and X.flags.c_contiguous and X.flags.writeable):
        raise LatentAtlasError("X must be a writeable C-contiguous 2-D float32/float64 array (solved in place), "
                               f"got {type(X).__name__} {getattr(X, 'shape', '')} {getattr(X, 'dtype', '')}")
    dt = X.dtype
    nnz = len(indices)
    tstride = 0 if targets is None else 1  # p_j = t[j·tstride]: one shared target 1, or one per entry
    t = np.ones(1, dtype=dt) if targets is None else np.ascontiguousarray(targets, dtype=dt)
    w = np.zeros(nnz, dtype=dt) if weights is None else np.ascontiguousarray(weights, dtype=dt)
    Y = np.ascontiguousarray(Y, dtype=dt)
    G = np.ascontiguousarray(gram, dtype=dt)
    reg_rows = np.ascontiguousarray(reg_rows, dtype=np.float64)
    indptr = np.ascontiguousarray(indptr, dtype=np.int64)
    indices = _index_array(indices, len(Y))
    bounds = _bounds(indptr, Y.shape[1], numba.get_num_threads())
    if solver == "cg":
        kern.cg_rows(indptr, indices, t, tstride, w, Y, G, reg_rows, float(alpha0), X, int(cg_steps), bounds)
    elif len(indptr) - 1 <= _SERIAL_ROWS:
        n = kern.cholesky_rows_serial(indptr, indices, t, tstride, w, Y, G, reg_rows, float(alpha0), X)
    else:
        n = kern.cholesky_rows(indptr, indices, t, tstride, w, Y, G, reg_rows, float(alpha0), X, bounds)
        if n:
            log.debug("iALS: %d rows were singular; solved with a tiny extra ridge", n)


def objective(indptr, indices, targets, weights, user_factors, item_factors, *, reg=0.01, alpha0=1.0,
              nu=0.0) -> float:
    """The full iALS loss (module docstring) in float64, without forming the dense matrix:
    ``α0·Σ_{all cells} (x·y)²`` = ``α0·⟨XᵀX, YᵀY⟩`` plus the observed entries' correction, plus the
    regularisation. ``targets`` None: all 1; ``weights`` None: all 0."""
    kern = _kern()

    X = np.ascontiguousarray(user_factors)
    Y = np.ascontiguousarray(item_factors)
    n_users, n_items = len(X), len(Y)
    indptr = np.ascontiguousarray(indptr, dtype=np.int64)
    nnz = len(indices)
    unit = targets is None
    t = np.empty(0) if unit else np.ascontiguousarray(targets, dtype=np.float64)
    w = np.zeros(nnz) if weights is None else np.ascontiguousarray(weights, dtype=np.float64)
    X64, Y64 = X.astype(np.float64), Y.astype(np.float64)
    loss = alpha0 * float(np.sum(gramian(X64) * gramian(Y64)))
    loss += kern.observed_loss(indptr, np.asarray(indices), t, unit, w, X64, Y64, float(alpha0), _CHUNKS)
    user_counts = np.diff(indptr)
    item_counts = kern.column_counts(_index_array(indices, n_items), n_items)
    lam_u = row_regularization(user_counts, reg, alpha0, nu, n_items)
    lam_i = row_regularization(item_counts, reg, alpha0, nu, n_users)
    loss += float(lam_u @ np.einsum("ij,ij->i", X64, X64)) + float(lam_i @ np.einsum("ij,ij->i", Y64, Y64))
    return loss


# --- fitting ----------------------------------------------------------------------------------------------------


def fit_ials(indptr, indices, targets, weights, n_users, n_items, *, k=64, reg=0.01, alpha0=1.0, nu=0.0,
             iterations=15, cg_steps=3, solver="cg", init_scale=None, seed=0, n_threads=None, dtype="float32",
             callback: Callable | None = None, user_factors=None, item_factors=None) -> tuple[np.ndarray, np.ndarray]:
    """Fit iALS factors to a CSR (user rows) of observed entries.

    Parameters
    ----------
    indptr, indices : the CSR pattern, users × items; a column at most once per row.
    targets : per-entry target ``p_ui`` (None: all 1). weights : per-entry extra confidence ``w_ui >= 0``
        (None: all 0, i.e. every cell weighs α0).
    k : latent factors. reg, alpha0, nu : λ = reg·(n + α0·n_other)^ν per row, α0 > 0 the weight of every cell.
    iterations : alternations (users, then items). cg_steps : CG steps per row and half-step (solver "cg").
    solver : "cg" (warm-started conjugate gradient, implicit's method) or "cholesky" (exact).
    init_scale : standard deviation of the random normal start (default 0.1/√k), from
        ``numpy.random.default_rng(seed)``, users drawn first.
    n_threads : numba threads (default: all); restored afterwards. The result does not depend on it.
    dtype : "float32" (default) or "float64" for the factors and the arithmetic.
    callback : ``callback(iteration, user_factors, item_factors)`` after each iteration (``iteration`` = 1
        after the first; the arrays are the live ones, changed by the next iteration: copy to keep);
        returning True stops.
    user_factors, item_factors : warm start (copied); the one not given is drawn at random.

    Returns
    -------
    (user_factors n_users × k, item_factors n_items × k)

    Memory: besides the factors, one group of the item-side CSR (at most max(2^20, nnz/16) entries, 8 bytes
    each) and a few per-row arrays; ``targets``/``weights`` in ``dtype`` and int32 ``indices`` are used
    without copies (other types are converted once). At 10 M ratings and k = 64 the fit adds ~75 MB.
    """
    import numba

    kern = _kern()

    n_users = _int_arg("n_users", n_users, 0)
    n_items = _int_arg("n_items", n_items, 0)
    k = _int_arg("k", k, 1)
    reg = _float_arg("reg", reg, low=0.0)
    alpha0 = _float_arg("alpha0", alpha0, low=0.0, open_low=True)
    nu = _float_arg("nu", nu, low=0.0, high=1.0)
    iterations = _int_arg("iterations", iterations, 0)
    cg_steps = _int_arg("cg_steps", cg_steps, 1)
    if solver not in _SOLVERS:
        raise LatentAtlasError(f"solver must be one of {', '.join(_SOLVERS)}, got {solver!r}")
    if init_scale is not None:
        init_scale = _float_arg("init_scale", init_scale, low=0.0, open_low=True)
    if n_threads is not None:
        n_threads = _int_arg("n_threads", n_threads, 1)
    if callback is not None and not callable(callback):
        raise LatentAtlasError(f"callback must be callable, got {callback!r}")
    dt = _dtype(dtype)
    indptr, indices = _csr(indptr, indices, n_users, n_items, "users")
    nnz = len(indices)
    targets = _entries(targets, nnz, "targets", dt, non_negative=False)
    weights = _entries(weights, nnz, "weights", dt, non_negative=True)
    if weights is None:
        weights = np.zeros(nnz, dtype=dt)

    previous = numba.get_num_threads()
    numba.set_num_threads(min(n_threads or numba.config.NUMBA_NUM_THREADS, numba.config.NUMBA_NUM_THREADS))
    try:
        return _fit(indptr, indices, targets, weights, n_users, n_items, k, reg, alpha0, nu, iterations, cg_steps,
                    solver, init_scale, seed, dt, callback, user_factors, item_factors, kern)
    finally:
        numba.set_num_threads(previous)


def _fit(indptr, indices, targets, weights, n_users, n_items, k, reg, alpha0, nu, iterations, cg_steps, solver,
         init_scale, seed, dt, callback, user_factors, item_factors, kern):
    nnz = len(indices)
    scale = 0.1 / np.sqrt(k) if init_scale is None else init_scale
    rng = np.random.default_rng(seed)
    if user_factors is None:
        X = rng.standard_normal((n_users, k), dtype=dt)
        X *= dt.type(scale)
    else:
        X = _factors(user_factors, n_users, k, dt, "user_factors")
    if item_factors is None:
        Y = rng.standard_normal((n_items, k), dtype=dt)
        Y *= dt.type(scale)
    else:
        Y = _factors(item_factors, n_items, k, dt, "item_factors")
    if iterations == 0 or n_users == 0 or n_items == 0:
        return X, Y

    # The item half-step needs the item-side CSR (items × users). A whole copy would be 8 bytes an entry
    # (12 with targets), as much as the input; instead it is built for one group of items at a time, each
    # group at most max(2^20, nnz/16) entries, into buffers reused by every group and iteration: 1/16 of
    # the memory at scale. With rows sorted (scipy's canonical CSR) the groups together read every entry
    # once per half-step, in parallel; otherwise each group scans all entries.
    item_counts = kern.column_counts(indices, n_items)
    groups = _item_groups(item_counts, max(_GROUP_ENTRIES, -(-nnz // 16)))
    size = max(int(item_counts[c0:c1].sum()) for c0, c1 in groups) if groups else 0
    index_t = np.int32 if n_users < 2**31 else np.int64
    g_indices = np.empty(size, dtype=index_t)
    g_targets = np.empty(0 if targets is None else size, dtype=dt)
    g_weights = np.empty(size, dtype=dt)
    no_targets = np.empty(0, dtype=dt)
    lam_u = row_regularization(np.diff(indptr), reg, alpha0, nu, n_items)
    lam_i = row_regularization(item_counts, reg, alpha0, nu, n_users)

    pointers = []
    for c0, c1 in groups:
        g_ptr = np.zeros(c1 - c0 + 1, dtype=np.int64)
        np.cumsum(item_counts[c0:c1], out=g_ptr[1:])
        pointers.append(g_ptr)

    cursor = indptr[:-1].copy() if len(groups) > 1 and kern.rows_sorted(indptr, indices) else None
    if cursor is not None:  # parallel transposition: row chunks of equal entries, write offsets counted once
        width = max(c1 - c0 for c0, c1 in groups)
        n_chunks = int(max(1, min(16, n_users, 2**21 // max(n_items, 1))))
        row_bounds = np.unique(np.searchsorted(indptr, np.linspace(0, nnz, n_chunks + 1), side="left"))
        row_bounds[0], row_bounds[-1] = 0, n_users
        starts = np.empty((len(row_bounds) - 1, n_items), dtype=np.int32 if nnz < 2**31 else np.int64)
        kern.chunk_column_starts(indptr, indices, row_bounds, starts)
        scratch = np.empty((len(row_bounds) - 1, width), dtype=np.int64)

    def transpose(g):
        c0, c1 = groups[g]
        t = no_targets if targets is None else targets
        if cursor is None:
            kern.transpose_range(indptr, indices, c0, c1, t, weights, pointers[g], g_indices, g_targets, g_weights)
        else:
            if g == 0:
                cursor[:] = indptr[:-1]
            kern.transpose_next(indptr, indices, cursor, c0, c1, t, weights, pointers[g], g_indices, g_targets,
                                g_weights, row_bounds, starts, scratch)

    if len(groups) == 1:
        transpose(0)  # built once

    def item_half_step():
        G = gramian(X, alpha0)
        for g, (c0, c1) in enumerate(groups):
            if len(groups) > 1:
                transpose(g)
            n = int(pointers[g][-1])
            solve_rows(X, G, pointers[g], g_indices[:n], None if targets is None else g_targets[:n],
                       g_weights[:n], lam_i[c0:c1], alpha0, Y[c0:c1], cg_steps, solver)

    for it in range(1, iterations + 1):
        t0 = time.perf_counter()
        solve_rows(Y, gramian(Y, alpha0), indptr, indices, targets, weights, lam_u, alpha0, X, cg_steps, solver)
        item_half_step()
        log.debug("iALS iteration %d: %.3f s", it, time.perf_counter() - t0)
        if callback is not None and callback(it, X, Y) is True:
            break
    return X, Y


def fold_in_user(item_factors, gram, items, targets, weights, reg, alpha0, nu, n_items) -> np.ndarray:
    """Exact factors (a k-vector, ``item_factors``' dtype) of one new user from their observed ``items``,
    the items fixed: the user half-step of :func:`fit_ials` for that one row.

    ``gram`` = ``gramian(item_factors, alpha0)`` (None: computed here); ``targets`` None: all 1; ``weights``
    None: all 0; ``reg``, ``alpha0``, ``nu``, ``n_items`` as in the fit (λ = reg·(n_u + α0·n_items)^ν)."""
    Y = np.ascontiguousarray(item_factors)
    if Y.ndim != 2 or Y.dtype not in (np.float32, np.float64):
        raise LatentAtlasError(f"item_factors must be a 2-D float32/float64 array, got {Y.shape} of {Y.dtype}")
    dt = Y.dtype
    alpha0 = _float_arg("alpha0", alpha0, low=0.0, open_low=True)
    reg = _float_arg("reg", reg, low=0.0)
    nu = _float_arg("nu", nu, low=0.0, high=1.0)
    items = np.asarray(items).ravel()
    if len(items) and not np.issubdtype(items.dtype, np.integer):
        raise LatentAtlasError(f"items must be integer item indices, got {items.dtype}")
    if len(items) and (items.min() < 0 or items.max() >= len(Y)):
        bad = items[(items < 0) | (items >= len(Y))][0]
        raise LatentAtlasError(f"items: index {bad} is outside [0, {len(Y)})")
    if len(np.unique(items)) != len(items):
        raise LatentAtlasError("items: an item appears twice; sum duplicate entries first")
    indptr, indices = _csr(np.array([0, len(items)]), items.astype(np.int64), 1, len(Y), "users")
    t = _entries(targets, len(items), "targets", dt, non_negative=False)
    w = _entries(weights, len(items), "weights", dt, non_negative=True)
    if gram is None:
        gram = gramian(Y, alpha0)
    lam = row_regularization(np.array([len(items)]), reg, alpha0, nu, int(n_items))
    x = np.zeros((1, Y.shape[1]), dtype=dt)
    solve_rows(Y, gram, indptr, indices, t, w, lam, alpha0, x, 1, "cholesky")
    return x[0]
