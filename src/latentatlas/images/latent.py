"""Looking inside a trained autoencoder: codes, 2-D embeddings, neighbourhood scores and interpolation.

Everything here reads a network (:class:`~latentatlas.images.network.ConvAutoencoderNet`) and arrays and
returns new arrays; nothing is drawn, written or printed.

- :func:`encode` turns images into flattened latent codes.
- :func:`embed` maps codes to 2-D with PCA, t-SNE (openTSNE) or UMAP, reporting progress.
- :func:`knn_accuracy` measures how well a set of points keeps label neighbourhoods.
- :func:`interpolate` decodes equidistant points on the line between two images' codes.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np

from latentatlas.errors import LatentAtlasError
from latentatlas.progress import Progress, ProgressCallback, as_progress

METHODS = ("pca", "tsne", "umap")

#: The t-SNE settings used by :func:`embed`. openTSNE's defaults spend 250 early-exaggeration steps and 500
#: normal ones; from a PCA initialisation, with the learning rate n / exaggeration ("auto"), the layout is
#: settled after half that: 125 + 250 steps keep the k-NN label accuracy of the defaults (and of
#: scikit-learn's TSNE) at under half the time. The FFT gradient's cost per step grows with the layout's
#: extent, so the late steps we drop are the dear ones. Explicit annoy + FFT also for under 10 000 points,
#: where openTSNE would pick exact neighbours / Barnes-Hut (see benchmarks/RESULTS-embeddings.md).
TSNE_SETTINGS: dict[str, Any] = {
    "initialization": "pca",
    "neighbors": "annoy",
    "negative_gradient_method": "fft",
    "learning_rate": "auto",
    "early_exaggeration_iter": 125,
    "n_iter": 250,
}

#: Below this many points t-SNE uses exact neighbours and the Barnes-Hut gradient instead.
SMALL_TSNE = 2000

#: Codes wider than this are reduced by PCA before the t-SNE/UMAP neighbour search, so very wide codes stay
#: affordable. On the 288-number Fashion-MNIST codes 100 components lose no measurable k-NN accuracy (50 lost
#: about 0.007) and cost no time.
PCA_DIMS = 100

#: Most frames :func:`interpolate` decodes for one pair: each costs a decoder pass and H×W floats, and
#: a figure of more than this many frames could not be read anyway (100 000 steps took 12 GB).
MAX_STEPS = 1000


def _torch():
    import torch

    return torch


def _as_image_array(images, name: str = "images") -> np.ndarray:
    """Images (uint8 0..255 or float 0..1; N×H×W grey or N×3×H×W colour) as an N×C×H×W float32 array in
    [0, 1]."""
    from latentatlas.images.io import image_array

    arr = image_array(images, name)
    if arr.ndim == 3:
        arr = arr[:, None]
    if arr.shape[0] == 0:
        raise LatentAtlasError(f"{name}: no images (shape {arr.shape})")
    if arr.dtype == np.uint8:
        return arr.astype(np.float32) / np.float32(255.0)
    if not np.issubdtype(arr.dtype, np.floating):
        raise LatentAtlasError(f"{name}: expected uint8 or float pixels, got dtype {arr.dtype}")
    arr = arr.astype(np.float32)
    if not np.isfinite(arr).all():
        raise LatentAtlasError(f"{name}: pixels contain NaN or infinity")
    if arr.min() < 0.0 or arr.max() > 1.0:
        raise LatentAtlasError(f"{name}: float pixels must lie in [0, 1], got [{arr.min():g}, {arr.max():g}]")
    return arr


def _model_device(model, device):
    torch = _torch()
    if device is not None:
        return torch.device(device)
    try:
        return next(model.parameters()).device
    except StopIteration:
        return torch.device("cpu")


def _check_batch_size(batch_size: int) -> int:
    if isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)) or batch_size < 1:
        raise LatentAtlasError(f"batch_size must be a positive integer, got {batch_size!r}")
    return int(batch_size)


def encode(model, images, batch_size: int = 1024, device=None) -> np.ndarray:
    """Latent codes of ``images`` as an (N, d) float32 array, one flattened code per image.

    ``images`` is an N×H×W (grey) or N×3×H×W (colour) array of uint8 pixels (0..255) or floats in [0, 1],
    or an object with an ``images`` attribute (an ``ImageSet``). The model runs in evaluation mode without gradients,
    in batches of ``batch_size``, on ``device`` (default: where the model's parameters are); its training
    mode is restored afterwards.
    """
    torch = _torch()
    batch_size = _check_batch_size(batch_size)
    pixels = _as_image_array(images)
    dev = _model_device(model, device)
    was_training = model.training
    model.eval()
    out = []
    try:
        with torch.no_grad():
            for start in range(0, len(pixels), batch_size):
                x = torch.from_numpy(pixels[start:start + batch_size]).to(dev)
                try:
                    z = model.encode(x)
                except RuntimeError as exc:
                    raise LatentAtlasError(
                        f"images of shape {_shape(pixels)} do not fit this model's encoder: "
                        f"{str(exc).splitlines()[0]}") from None
                out.append(z.reshape(len(x), -1).float().cpu().numpy())
    finally:
        model.train(was_training)
    return np.ascontiguousarray(np.concatenate(out), dtype=np.float32)


def _shape(pixels: np.ndarray) -> tuple[int, ...]:
    """One image's shape as the caller gave it: (H, W) for grey, (C, H, W) for colour."""
    return tuple(pixels.shape[2:]) if pixels.shape[1] == 1 else tuple(pixels.shape[1:])


def _images_out(x) -> np.ndarray:
    """Decoded tensor N×C×H×W → float32 array (N, H, W) for grey, (N, C, H, W) for colour."""
    out = x.float().cpu().numpy()
    return out[:, 0] if out.shape[1] == 1 else out


def decode(model, codes: np.ndarray, code_shape: tuple[int, ...], batch_size: int = 1024,
           device=None) -> np.ndarray:
    """Images (N, H, W) (grey) or (N, C, H, W) (colour), float32 in [0, 1], decoded from flattened ``codes``
    reshaped to ``code_shape``."""
    torch = _torch()
    batch_size = _check_batch_size(batch_size)
    codes = np.asarray(codes, dtype=np.float32)
    if codes.ndim != 2 or codes.shape[1] != int(np.prod(code_shape)):
        raise LatentAtlasError(f"codes of shape {codes.shape} do not match the model's code shape {code_shape}")
    dev = _model_device(model, device)
    was_training = model.training
    model.eval()
    out = []
    try:
        with torch.no_grad():
            for start in range(0, len(codes), batch_size):
                z = torch.from_numpy(codes[start:start + batch_size]).reshape(-1, *code_shape).to(dev)
                out.append(_images_out(model.decode(z)))
    finally:
        model.train(was_training)
    return np.concatenate(out)


def check_steps(steps, name: str = "steps") -> int:
    """``steps`` as an int in 2..:data:`MAX_STEPS`, checked before anything is allocated."""
    if isinstance(steps, bool) or not isinstance(steps, (int, np.integer)) or not 2 <= steps <= MAX_STEPS:
        raise LatentAtlasError(f"{name} must be an integer from 2 to {MAX_STEPS} (both ends are included), "
                               f"got {steps!r}")
    return int(steps)


def interpolate(model, image_a, image_b, steps: int = 10, device=None) -> np.ndarray:
    """Decode ``steps`` equidistant points on the line from the code of ``image_a`` to that of ``image_b``.

    Both ends are included: frame 0 is the reconstruction of ``image_a`` and frame ``steps - 1`` that of
    ``image_b``. Images are H×W (grey) or 3×H×W (colour), uint8 or floats in [0, 1]. Returns (steps, H, W)
    or (steps, 3, H, W) float32 in [0, 1].
    """
    torch = _torch()
    check_steps(steps)
    a, b = _single(image_a), _single(image_b)
    if a is None or b is None:
        raise LatentAtlasError(f"image_a and image_b must be single H×W (or 3×H×W) images, got shapes "
                               f"{np.shape(getattr(image_a, 'images', image_a))} and "
                               f"{np.shape(getattr(image_b, 'images', image_b))}")
    if a.shape != b.shape:
        raise LatentAtlasError(f"image_a and image_b differ in size: {a.shape} vs {b.shape}")
    pixels = _as_image_array(np.stack([a, b]), name="image_a/image_b")
    dev = _model_device(model, device)
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            try:
                z = model.encode(torch.from_numpy(pixels).to(dev))
            except RuntimeError as exc:
                raise LatentAtlasError(f"images of shape {_shape(pixels)} do not fit this model's encoder: "
                                       f"{str(exc).splitlines()[0]}") from None
            t = torch.linspace(0.0, 1.0, int(steps), dtype=z.dtype, device=dev).reshape(-1, *([1] * (z.dim() - 1)))
            # (1 - t)·a + t·b, not a + t·(b - a): the ends are then exactly a and b, the midpoint the mean.
            line = (1.0 - t) * z[0:1] + t * z[1:2]
            frames = model.decode(line)
    finally:
        model.train(was_training)
    return _images_out(frames)


def _single(image) -> np.ndarray | None:
    """One image as H×W (grey) or 3×H×W (colour; H×W×3 is moved), or None when it is neither."""
    if hasattr(image, "detach") and hasattr(image, "cpu"):
        image = image.detach().cpu().numpy()
    img = np.asarray(getattr(image, "images", image))
    if img.ndim == 3 and img.shape[0] != 3 and img.shape[-1] == 3:
        img = np.moveaxis(img, -1, 0)
    if img.ndim == 3 and img.shape[0] == 1:
        img = img[0]
    if img.ndim == 2 or (img.ndim == 3 and img.shape[0] == 3):
        return img
    return None


def _check_codes(codes) -> np.ndarray:
    try:
        x = np.asarray(codes, dtype=np.float32)
    except (TypeError, ValueError) as exc:
        raise LatentAtlasError(f"codes: cannot read as a float array ({exc})") from None
    if x.ndim != 2:
        raise LatentAtlasError(f"codes must be a 2-D array (n_points × dims), got shape {x.shape}")
    if x.shape[0] < 3:
        raise LatentAtlasError(f"codes: need at least 3 points to embed, got {x.shape[0]}")
    if not np.isfinite(x).all():
        raise LatentAtlasError("codes contain NaN or infinity")
    return x


def _check_seed(seed) -> int:
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise LatentAtlasError(f"seed must be a non-negative integer, got {seed!r}")
    return int(seed)


def reduce_pca(codes: np.ndarray, dims: int = PCA_DIMS, seed: int = 0) -> np.ndarray:
    """``codes`` projected on their first ``dims`` principal components (unchanged if already narrower)."""
    from sklearn.decomposition import PCA

    x = _check_codes(codes)
    if x.shape[1] <= dims or x.shape[0] <= dims:
        return x
    return PCA(n_components=dims, random_state=seed).fit_transform(x).astype(np.float32)


def embed(codes, method: str = "pca", *, seed: int = 0, perplexity: float = 30.0, n_jobs: int = 2,
          pca_dims: int | None = PCA_DIMS, progress: Progress | ProgressCallback | None = None,
          **kw: Any) -> np.ndarray:
    """A 2-D embedding of latent codes.

    Parameters
    ----------
    codes : array-like, shape (n, d)
        One code per row, e.g. ``ConvAutoencoder.transform(images)``; at least 3 rows.
    method : {"pca", "tsne", "umap"}
        ``"pca"`` (scikit-learn), ``"tsne"`` (openTSNE with :data:`TSNE_SETTINGS`) or ``"umap"``
        (umap-learn; seeded, hence single-threaded).
    seed : int
        Seed of every random step: the same seed gives the same layout.
    perplexity : float
        t-SNE perplexity; needs ``3 * perplexity < n - 1``.
    n_jobs : int
        Threads for t-SNE (``-1``: all cores).
    pca_dims : int or None
        For t-SNE and UMAP, codes wider than this are first reduced by PCA (``None`` keeps them whole).
    progress : Progress or callable, optional
        Receives progress lines: t-SNE reports its iterations and KL divergence, UMAP its elapsed time
        every 5 s (both take about a minute on 70 000 codes). Default: the ``latentatlas`` logger only.
    **kw
        Passed to ``openTSNE.TSNE`` or ``umap.UMAP``, overriding the defaults.

    Returns
    -------
    numpy.ndarray, shape (n, 2), float32

    Example
    -------
    >>> import numpy as np
    >>> from latentatlas import embed
    >>> codes = np.random.default_rng(0).normal(size=(500, 32)).astype(np.float32)
    >>> embed(codes, "tsne", perplexity=20, progress=print).shape   # doctest: +SKIP
    [embed] t-SNE of 500 codes: neighbours and affinities ...
    ...
    (500, 2)
    """
    x = _check_codes(codes)
    seed = _check_seed(seed)
    if method not in METHODS:
        raise LatentAtlasError(f"method must be one of {', '.join(METHODS)}; got {method!r}")
    if isinstance(n_jobs, bool) or not isinstance(n_jobs, (int, np.integer)) or n_jobs == 0:
        raise LatentAtlasError(f"n_jobs must be a non-zero integer, got {n_jobs!r}")
    progress = as_progress(progress, "embed")
    n = x.shape[0]
    if method == "pca":
        if kw:
            raise LatentAtlasError(f"method 'pca' takes no extra options, got {sorted(kw)}")
        from sklearn.decomposition import PCA

        if x.shape[1] < 2:
            raise LatentAtlasError(f"codes need at least 2 dimensions for a 2-D PCA, got {x.shape[1]}")
        return PCA(n_components=2, random_state=seed).fit_transform(x).astype(np.float32)

    if pca_dims is not None:
        if isinstance(pca_dims, bool) or not isinstance(pca_dims, (int, np.integer)) or pca_dims < 2:
            raise LatentAtlasError(f"pca_dims must be an integer >= 2 or None, got {pca_dims!r}")
    label = f"{'t-SNE' if method == 'tsne' else 'UMAP'} of {n:,} codes"
    # Everything is checked before the ticker starts; it then covers the silent stretches (the PCA, the
    # neighbour search) and reports the total at the end.
    if method == "tsne":
        model = _tsne_model(n, perplexity, seed, int(n_jobs), progress, kw, label)
    else:
        model = _umap_model(n, seed, kw)
    import warnings

    with progress.ticking(label), warnings.catch_warnings():
        # umap: "n_jobs value 1 overridden to 1 by setting random_state": seeding is the point, so silence it.
        warnings.filterwarnings("ignore", message=".*random_state.*", category=UserWarning)
        warnings.filterwarnings("ignore", message=".*n_jobs.*", category=UserWarning)
        if pca_dims is not None:
            x = reduce_pca(x, int(pca_dims), seed)
        coords = model.fit(x) if method == "tsne" else model.fit_transform(x)
    return np.ascontiguousarray(np.asarray(coords), dtype=np.float32)


def _umap_model(n: int, seed: int, kw: dict):
    import umap

    opts = {"n_neighbors": 15, "min_dist": 0.1}
    opts.update(kw)
    opts["verbose"] = False  # umap prints; progress goes through the ticker instead
    if opts["n_neighbors"] >= n:
        raise LatentAtlasError(f"UMAP n_neighbors={opts['n_neighbors']} needs more than {n} points")
    try:
        return umap.UMAP(n_components=2, random_state=seed, **opts)
    except TypeError as exc:
        raise LatentAtlasError(f"unknown UMAP option: {exc}") from None


def _tsne_model(n: int, perplexity, seed: int, n_jobs: int, progress: Progress, kw: dict, label: str):
    try:
        perplexity = float(perplexity)
    except (TypeError, ValueError):
        raise LatentAtlasError(f"perplexity must be a number, got {perplexity!r}") from None
    if not np.isfinite(perplexity) or perplexity <= 0:
        raise LatentAtlasError(f"perplexity must be positive, got {perplexity:g}")
    if 3 * perplexity >= n - 1:
        raise LatentAtlasError(
            f"perplexity {perplexity:g} is too large for {n} points (needs 3·perplexity < n - 1, "
            f"i.e. perplexity < {(n - 1) / 3:.4g})")
    import openTSNE

    opts = dict(TSNE_SETTINGS)
    if n < SMALL_TSNE:
        # The FFT gradient has a fixed grid cost per step that only pays off for thousands of points,
        # and small sets get exact neighbours at no real cost.
        opts["neighbors"] = "exact"
        opts["negative_gradient_method"] = "bh"
    opts.update(kw)
    total = int(opts.get("early_exaggeration_iter", 250)) + int(opts.get("n_iter", 500))
    every = max(1, int(opts.pop("callbacks_every_iters", 25)))
    done = [0]

    def report(iteration: int, error: float, embedding) -> bool:
        # openTSNE counts each phase (exaggerated, then normal) from zero; count the calls instead.
        done[0] += every
        progress(f"{label}: iteration {min(done[0], total)}/{total}, KL divergence {error:.3f}")
        return False

    callbacks = [report] if not progress.quiet else None
    if "callbacks" in opts:
        user = opts.pop("callbacks")
        user = list(user) if isinstance(user, (list, tuple)) else [user]
        callbacks = (callbacks or []) + user
    try:
        return openTSNE.TSNE(n_components=2, perplexity=perplexity, n_jobs=n_jobs, random_state=seed,
                             verbose=False, callbacks=callbacks, callbacks_every_iters=every, **opts)
    except TypeError as exc:
        raise LatentAtlasError(f"unknown t-SNE option: {exc}") from None


def knn_accuracy(points, labels, k: int = 10, sample: int | None = None, seed: int = 0) -> float:
    """Leave-one-out k-nearest-neighbour label accuracy of ``points`` (N, d) with ``labels`` (N,).

    Each query point is classified by the majority label of its ``k`` nearest *other* points (Euclidean;
    ties go to the smallest label, as in scikit-learn's ``KNeighborsClassifier``); the score is the
    fraction classified correctly. With ``sample``, only a seeded random subset of that many query points
    is scored (neighbours are still searched among all points), which keeps wide codes affordable.
    """
    from sklearn.neighbors import NearestNeighbors

    x = np.asarray(points, dtype=np.float32)
    y = np.asarray(labels)
    if x.ndim != 2:
        raise LatentAtlasError(f"points must be a 2-D array, got shape {x.shape}")
    if y.ndim != 1 or len(y) != len(x):
        raise LatentAtlasError(f"labels must be a 1-D array with one label per point: {len(x)} points, "
                               f"labels of shape {y.shape}")
    if not np.isfinite(x).all():
        raise LatentAtlasError("points contain NaN or infinity")
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
        raise LatentAtlasError(f"k must be a positive integer, got {k!r}")
    if k >= len(x):
        raise LatentAtlasError(f"k={k} needs more than {k} points, got {len(x)}")
    seed = _check_seed(seed)
    classes, y_idx = np.unique(y, return_inverse=True)
    nn = NearestNeighbors(n_neighbors=int(k)).fit(x)
    if sample is None or sample >= len(x):
        # kneighbors() without X leaves each point out of its own neighbour list, duplicates or not.
        neigh = nn.kneighbors(return_distance=False)
        query = np.arange(len(x))
    else:
        if isinstance(sample, bool) or not isinstance(sample, (int, np.integer)) or sample < 1:
            raise LatentAtlasError(f"sample must be a positive integer or None, got {sample!r}")
        query = np.sort(np.random.default_rng(seed).choice(len(x), size=int(sample), replace=False))
        # k + 1 neighbours, then drop the query itself (by index, not by position: duplicates may tie).
        full = nn.kneighbors(x[query], n_neighbors=int(k) + 1, return_distance=False)
        neigh = np.empty((len(query), int(k)), dtype=full.dtype)
        for row, (q, cand) in enumerate(zip(query, full)):
            others = cand[cand != q]
            neigh[row] = others[:k]
    votes = y_idx[neigh]
    counts = np.zeros((len(query), len(classes)), dtype=np.int64)
    np.add.at(counts, (np.repeat(np.arange(len(query)), votes.shape[1]), votes.ravel()), 1)
    return float(np.mean(counts.argmax(axis=1) == y_idx[query]))


def sample_indices(n: int, count: int, seed: int = 0) -> np.ndarray:
    """A sorted seeded random sample of ``min(count, n)`` distinct indices into ``range(n)``."""
    if isinstance(count, bool) or not isinstance(count, (int, np.integer)) or count < 0:
        raise LatentAtlasError(f"count must be a non-negative integer, got {count!r}")
    seed = _check_seed(seed)
    if count >= n:
        return np.arange(n)
    return np.sort(np.random.default_rng(seed).choice(n, size=int(count), replace=False))


def timed_embedding(codes, method: str, **kw) -> tuple[np.ndarray, float]:
    """:func:`embed` and its wall time in seconds."""
    start = time.perf_counter()
    coords = embed(codes, method, **kw)
    return coords, time.perf_counter() - start


#: Most decoded pictures one :func:`traverse` or :func:`sample` call makes.
MAX_FRAMES = 10_000


def traverse(model, image, dims, values, device=None) -> np.ndarray:
    """Latent traversal: the code of ``image`` decoded with one number of it at a time (each of ``dims``,
    indices into the flattened code) set to each of ``values``, the others kept.

    ``values`` is one row of values for every dimension, or one row per dimension. Returns
    ``(len(dims), steps, H, W)`` (grey) or ``(len(dims), steps, C, H, W)`` float32 in [0, 1]. A VAE's codes
    follow N(0, 1) a priori, so values from -3 to 3 span its prior.
    """
    torch = _torch()
    img = _single(image)
    if img is None:
        raise LatentAtlasError(f"image must be a single H×W (or 3×H×W) image, got shape "
                               f"{np.shape(getattr(image, 'images', image))}")
    dims = np.asarray(dims).reshape(-1)
    values = np.asarray(values, dtype=np.float32)
    if dims.size == 0 or values.size == 0 or not np.issubdtype(dims.dtype, np.integer):
        raise LatentAtlasError("traverse needs at least one integer dimension and one value")
    if values.ndim == 1:
        values = np.broadcast_to(values, (dims.size, values.size))
    if values.ndim != 2 or values.shape[0] != dims.size:
        raise LatentAtlasError(f"traverse: values must have shape (steps,) or (len(dims), steps), got {values.shape}")
    if values.size > MAX_FRAMES:
        raise LatentAtlasError(f"traverse: {dims.size} dimensions × {values.shape[1]} values is more than "
                               f"{MAX_FRAMES} pictures")
    if not np.isfinite(values).all():
        raise LatentAtlasError("traverse: values contain NaN or infinity")
    code = encode(model, img[None], device=device)[0]
    if dims.min() < 0 or dims.max() >= code.size:
        raise LatentAtlasError(f"traverse: dimension {int(dims.max() if dims.max() >= code.size else dims.min())} "
                               f"is out of range: the code has {code.size} numbers (0..{code.size - 1})")
    steps = values.shape[1]
    codes = np.repeat(code[None], dims.size * steps, axis=0).reshape(dims.size, steps, -1)
    codes[np.arange(dims.size)[:, None], np.arange(steps)[None, :], dims[:, None]] = values
    shape = tuple(int(s) for s in model.code_shape)
    frames = decode(model, codes.reshape(-1, code.size), shape, device=device)
    return frames.reshape(dims.size, steps, *frames.shape[1:])


def sample(model, n: int, seed: int = 0, device=None) -> np.ndarray:
    """``n`` new pictures from a variational autoencoder: codes drawn from its prior N(0, I) (seeded),
    decoded. Returns ``(n, H, W)`` or ``(n, C, H, W)`` float32 in [0, 1]."""
    torch = _torch()
    if not getattr(model, "variational", False):
        raise LatentAtlasError("sampling needs a variational autoencoder (model='vae'): a plain autoencoder's "
                               "codes follow no known distribution")
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or not 1 <= n <= MAX_FRAMES:
        raise LatentAtlasError(f"n must be an integer from 1 to {MAX_FRAMES}, got {n!r}")
    seed = _check_seed(seed)
    shape = tuple(int(s) for s in model.code_shape)
    z = np.random.default_rng(seed).standard_normal((int(n), int(np.prod(shape)))).astype(np.float32)
    return decode(model, z, shape, device=device)
