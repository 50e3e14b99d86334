"""The convolutional autoencoder as a scikit-learn-style estimator: the one place its parameters live.

:class:`ConvAutoencoder` defines every hyper-parameter once, in ``__init__`` (checked in :meth:`~ConvAutoencoder.fit`
by :meth:`~ConvAutoencoder.check_params`, not there). A preset (:data:`PRESETS`) is only a named set of those
parameters; the training loop (:func:`latentatlas.images.training.run_training`), checkpoints, ``run.json`` and
the CLI all read them from the estimator. ``fit`` trains with the same loop as ``latentatlas images train`` and
leaves the trained torch module in ``model_`` and the loss history in ``history_``. ``transform`` encodes
images to flat latent codes, ``inverse_transform`` decodes codes to images, ``interpolate`` walks the straight
line between two images' codes, ``traverse`` changes one code number at a time, ``sample`` draws new pictures
from a VAE's prior, and ``save`` / :meth:`~ConvAutoencoder.from_checkpoint` write and read a checkpoint that
``torch.load(weights_only=True)`` reads (no pickled objects). The network itself is
:class:`~latentatlas.images.network.ConvAutoencoderNet`.
"""

from __future__ import annotations

import inspect
import math
import os
from pathlib import Path
from typing import Any

import numpy as np
from sklearn.base import BaseEstimator, TransformerMixin

from latentatlas.errors import LatentAtlasError
from latentatlas.images.io import ImageSet, as_image_set
from latentatlas.images.network import (DOWNSAMPLE, UPSAMPLE, ConvAutoencoderNet, network_from_checkpoint,
                                       read_checkpoint, save_checkpoint)

__all__ = ["ConvAutoencoder", "ConvAutoencoderNet", "PRESETS", "split_holdout"]

#: Hyper-parameters that shape the network (the rest shape training).
ARCHITECTURE = ("channels", "latent_channels", "negative_slope", "model", "downsample", "upsample")
#: Named parameter sets. "fast" is the defaults of ``__init__`` (chosen on Fashion-MNIST's validation images with
#: 2 CPU cores: benchmarks/bench_images_one_epoch.py, benchmarks/RESULTS-images.md and RESULTS-autoencoder.md);
#: "reference" is the reference pipeline's: its network (max-pooling encoder), batches of 1024, Adam 1e-3 with
#: weight decay 1e-4, ×0.999 per step, default layout.
PRESETS: dict[str, dict[str, Any]] = {
    "fast": {},
    "reference": {"batch_size": 1024, "lr": 1e-3, "schedule": "exponential", "weight_decay": 1e-4,
                  "gamma": 0.999, "channels_last": False, "downsample": "pool", "upsample": "transpose",
                  "optimizer": "adam", "chunk_size": None},
}
#: The parameters a preset sets (their defaults are the "fast" preset).
PRESET_PARAMS = ("batch_size", "lr", "schedule", "weight_decay", "gamma", "channels_last", "downsample",
                 "upsample", "optimizer", "chunk_size")
#: "adamw": Adam with decoupled weight decay (the default); "adam": Adam with the decay added to the gradient
#: (the reference pipeline's, and what checkpoints written before this option were trained with).
OPTIMIZERS = ("adamw", "adam")
MODELS = ("ae", "vae")
SCHEDULES = ("onecycle", "exponential", "constant")
AMP_MODES = ("auto", "off", "bf16", "fp16")
COMPILE_MODES = (False, True, "auto")
#: Old parameter names still read from checkpoints.
_RENAMED = {"test_fraction": "validation_fraction"}
#: Parameters that say where and how fast a model runs, not what it is: never restored from a checkpoint.
MACHINE_PARAMS = ("device", "num_threads")


def split_holdout(images: ImageSet, fraction: float, seed: int, name: str = "validation_fraction"
                  ) -> tuple[ImageSet, ImageSet]:
    """A seeded random split of ``images`` into (train, held out), the held-out part ``fraction`` of them."""
    if isinstance(fraction, bool) or not isinstance(fraction, (int, float)) or not 0 < fraction < 1:
        raise LatentAtlasError(f"{name}={fraction!r}: must be between 0 and 1")
    n_test = int(round(len(images) * fraction))
    if n_test < 1 or n_test >= len(images):
        raise LatentAtlasError(
            f"{images.source or 'images'}: {len(images)} images are too few to hold out {name}={fraction}")
    order = np.random.default_rng(seed).permutation(len(images))
    return images.take(np.sort(order[n_test:])), images.take(np.sort(order[:n_test]))


def _positive_int(name: str, value) -> None:
    if not isinstance(value, (int, np.integer)) or isinstance(value, bool) or value < 1:
        raise LatentAtlasError(f"{name}={value!r}: must be a positive integer")


def _finite(name: str, value, low: float = 0.0) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value < low:
        raise LatentAtlasError(f"{name}={value!r}: must be a finite non-negative number")


class ConvAutoencoder(TransformerMixin, BaseEstimator):
    """Convolutional autoencoder (plain or variational) for grey or colour images, trained fast on a CPU.

    The default network has the reference one's widths and code but halves the picture with stride-2 convolutions
    instead of max-pools (``downsample="early"``): convolutions C→4 (stride 2), 4→16 (stride 2), 16→32 and 32→32
    (3×3, stride 2) with LeakyReLU and one BatchNorm turn a 28×28 image into a 32×3×3 code (288 numbers); transposed
    convolutions decode it, the last of them straight to the image's channels (``upsample="direct"``: no layer at
    full size). A training epoch costs about half the CPU time of the reference network (``downsample="pool"``,
    ``upsample="transpose"``: 3×3 convolutions at full size, two of them followed by a 2× max-pool, and two
    full-size layers in the decoder), and reached a lower one-epoch MSE on Fashion-MNIST
    (benchmarks/RESULTS-autoencoder.md). C, the channels, comes from the images
    ``fit`` gets (1 grey, 3 colour), and so does the size (any side of at least 12 pixels). The default training
    settings are the "fast" preset (batches of 96 in two chunks of 48, run side by side on two CPU threads, AdamW
    with a one-cycle learning rate peaking at 3e-2; smaller batches and a proportionally lower peak on sets of fewer
    than 9 600 images);
    :meth:`from_preset` gives the "reference" one (the reference network and training settings).

    Parameters
    ----------
    channels : tuple of 3 int
        Widths of the encoder's three convolutions before the code.
    latent_channels : int
        Channels of the code; the code has ``latent_channels × h × w`` numbers (h = w = 3 for 28×28 images).
    negative_slope : float
        Slope of the LeakyReLU for negative inputs.
    downsample : {"early", "stride", "pool"}
        How the encoder halves the picture (twice): its first two 3×3 convolutions with stride 2 (``"early"``,
        the default: the cheapest), its second and third (``"stride"``: a lower one-epoch MSE for about 25 %
        more CPU time), or the reference network's max-pools after the second and third (``"pool"``). Models
        saved before this parameter existed are ``"pool"`` and load and resume as such.
    upsample : {"direct", "transpose"}
        How the decoder doubles the picture the last time: its last 2×2 stride-2 transposed convolution gives the
        image's channels itself (``"direct"``, the default: no layer at full size, a quarter less time per step),
        or it gives the first encoder width and a 3×3 transposed convolution at full size follows (the reference
        network's ``"transpose"``, also that of models saved before this parameter).
    model : {"ae", "vae"}
        A plain autoencoder, or a variational one whose code is the mean of a Gaussian posterior.
    beta : float
        The VAE's weight of the KL divergence (nats per image) against the reconstruction cross-entropy
        (summed over pixels); 1 is the classic evidence lower bound. Ignored by the plain autoencoder.
    epochs, weight_decay : training length and the weight decay.
    batch_size : int or None
        Images per optimisation step. None (the default): 96, or on a set of fewer than 9 600 training images
        one hundredth of them (at least 16), so that an epoch still has about 100 steps: on small folders of
        pictures a run of few large steps learns little.
    lr : float or None
        Peak (one-cycle) or initial learning rate. None (the default): 3e-2 for batches of 96, in proportion to
        the batch size for others (2e-2 for 64).
    chunk_size : int or None
        On a CPU, each batch goes through the network in chunks of at most this many images (as equal as the
        batch allows), each with its own BatchNorm statistics, and the chunks' gradients are summed (weighted by
        their sizes) into one step; the chunks of a batch run side by side on the CPU threads, so a batch of 96 in
        chunks of 48 keeps two cores busy. The result does not depend on the number of threads. None: the whole batch at once (the
        reference preset's, and that of models saved before this parameter). Not used on a GPU.
    optimizer : {"adamw", "adam"}
        AdamW (decoupled weight decay, the default) or Adam with the decay added to the gradient (the reference
        pipeline's, and what checkpoints saved before this parameter were trained with). Adam's decay drove a
        whole encoder to zero on one seed in three on colour photographs (benchmarks/RESULTS-images.md).
    schedule : {"onecycle", "exponential", "constant"}
        Learning-rate schedule; ``gamma`` is the exponential schedule's factor per step.
    channels_last : bool
        Channels-last memory format (about twice as fast on CPU).
    validation_fraction : float
        When ``fit`` gets no ``validation_images``, this share of ``images`` (a seeded random sample) is held
        out to measure the validation loss, which picks the kept epoch.
    eval_batch_size, log_every : images per forward pass when measuring the validation loss; batches between
        progress lines.
    device : str
        ``"auto"`` (CUDA, else Apple's MPS, else the CPU), ``"cpu"``, ``"cuda[:N]"`` or ``"mps"``.
    amp : {"auto", "off", "bf16", "fp16"}
        Automatic mixed precision of the training passes: ``"auto"`` is bfloat16 on a CUDA GPU that has it,
        float16 (with a gradient scaler) on one that does not, and off on the CPU and MPS; ``"bf16"`` and
        ``"fp16"`` force it (bf16 also runs on the CPU). Losses, validation and codes stay float32.
    compile : bool or "auto"
        ``torch.compile`` the training step: ``True`` on any device, ``"auto"`` on CUDA only. When
        compiling fails the run goes on without it (said in the progress lines; ``history_.compiled``).
    num_threads : int or None
        CPU threads while fitting and encoding (default: half the cores, fewer when the machine is busy:
        :func:`~latentatlas.images.training.default_threads`); restored afterwards. Results are the same
        bit for bit only on the same number of threads.
    seed : int
        Seed of the initial weights, the batch order and the held-out split: same seed, same model.
    progress : Progress or callable, optional
        Receives progress lines (``callable(str)``); by default they only go to the ``latentatlas`` logger,
        which shows nothing unless configured (``logging.basicConfig(level=logging.INFO)``).

    Attributes
    ----------
    model_ : ConvAutoencoderNet
        The trained torch module, in eval mode, with the weights of the epoch with the lowest validation
        loss (a VAE's: the lowest validation objective).
    history_ : latentatlas.images.training.History
        Losses per batch and per epoch (a VAE's KL term too), ``best_epoch``, ``interrupted``.
    image_shape_ : tuple of 2 int
        Height and width the model was trained on; ``n_channels_`` its channels (1 or 3).
    code_mean_, code_std_ : numpy arrays or None
        Mean and standard deviation of every code number over the validation images (for traversals).
    code_shape_ : tuple of 3 int
        ``(latent_channels, h, w)`` of one code; ``code_size_`` is their product.

    Example
    -------
    >>> from latentatlas import ConvAutoencoder, read_images
    >>> train = read_images(split="train", limit=6000)
    >>> ae = ConvAutoencoder(epochs=2).fit(train)                 # about half a minute on 2 cores
    >>> codes = ae.transform(read_images(split="test", limit=100))  # (100, 288) float32
    >>> frames = ae.interpolate(train.images[0], train.images[1], steps=8)  # (8, 28, 28) in [0, 1]
    """

    def __init__(self, channels=(4, 16, 32), latent_channels: int = 32, negative_slope: float = 0.01,
                 model: str = "ae", beta: float = 1.0, downsample: str = "early", upsample: str = "direct",
                 epochs: int = 5, batch_size: int | None = None, lr: float | None = None, weight_decay: float = 1e-4,
                 optimizer: str = "adamw", chunk_size: int | None = 48, schedule: str = "onecycle",
                 gamma: float = 0.999, channels_last: bool = True,
                 validation_fraction: float = 0.1, eval_batch_size: int = 2000, log_every: int = 100,
                 device: str = "auto", num_threads: int | None = None, amp: str = "auto", compile=False,
                 seed: int = 0, progress=None):
        self.channels = channels
        self.latent_channels = latent_channels
        self.negative_slope = negative_slope
        self.model = model
        self.beta = beta
        self.downsample = downsample
        self.upsample = upsample
        self.epochs = epochs
        self.batch_size = batch_size
        self.lr = lr
        self.weight_decay = weight_decay
        self.optimizer = optimizer
        self.chunk_size = chunk_size
        self.schedule = schedule
        self.gamma = gamma
        self.channels_last = channels_last
        self.validation_fraction = validation_fraction
        self.eval_batch_size = eval_batch_size
        self.log_every = log_every
        self.device = device
        self.num_threads = num_threads
        self.amp = amp
        self.compile = compile
        self.seed = seed
        self.progress = progress

    # --- parameters ----------------------------------------------------------------------------------
    @classmethod
    def from_preset(cls, preset: str = "fast", **params: Any) -> "ConvAutoencoder":
        """An estimator with a named preset's parameters (:data:`PRESETS`), then ``params`` (None values are
        ignored).

        ``"fast"`` (the defaults) or ``"reference"`` (the reference pipeline's: the max-pooling network,
        batches of 1024, Adam 1e-3, ×0.999 per step, no channels-last).

        Example
        -------
        >>> ConvAutoencoder.from_preset("reference", epochs=27).batch_size
        1024
        """
        if preset not in PRESETS:
            raise LatentAtlasError(f"preset={preset!r}: expected one of {', '.join(PRESETS)}")
        return cls(**{**PRESETS[preset], **{k: v for k, v in params.items() if v is not None}})

    @classmethod
    def _defaults(cls) -> dict[str, Any]:
        return {name: p.default for name, p in inspect.signature(cls.__init__).parameters.items()
                if p.default is not inspect.Parameter.empty}

    @property
    def preset(self) -> str:
        """The name of the preset whose values these parameters have (``"custom"`` when none)."""
        defaults = self._defaults()
        for name, values in PRESETS.items():
            wanted = {k: values.get(k, defaults[k]) for k in PRESET_PARAMS}
            if all(getattr(self, k) == v for k, v in wanted.items()):
                return name
        return "custom"

    def check_params(self) -> "ConvAutoencoder":
        """Self, after checking every parameter (an error names the parameter and its bad value)."""
        for name in ("epochs", "log_every", "eval_batch_size", "latent_channels"):
            _positive_int(name, getattr(self, name))
        if self.batch_size is not None:
            _positive_int("batch_size", self.batch_size)
        for name in ("weight_decay", "gamma", "beta"):
            _finite(name, getattr(self, name))
        if self.lr is not None:
            _finite("lr", self.lr)
            if self.lr <= 0:
                raise LatentAtlasError(f"lr={self.lr!r}: must be positive")
        if not 0 < self.gamma <= 1:
            raise LatentAtlasError(f"gamma={self.gamma!r}: must be in (0, 1]")
        if self.optimizer not in OPTIMIZERS:
            raise LatentAtlasError(f"optimizer={self.optimizer!r}: expected one of {', '.join(OPTIMIZERS)}")
        if self.schedule not in SCHEDULES:
            raise LatentAtlasError(f"schedule={self.schedule!r}: expected one of {', '.join(SCHEDULES)}")
        channels = self.channels
        if (not isinstance(channels, (list, tuple)) or len(channels) != 3
                or not all(isinstance(c, (int, np.integer)) and not isinstance(c, bool) and c >= 1 for c in channels)):
            raise LatentAtlasError(f"channels={channels!r}: expected three positive widths, e.g. (4, 16, 32)")
        slope = self.negative_slope
        if isinstance(slope, bool) or not isinstance(slope, (int, float)) or not math.isfinite(slope):
            raise LatentAtlasError(f"negative_slope={slope!r}: must be a finite number")
        fraction = self.validation_fraction
        if isinstance(fraction, bool) or not isinstance(fraction, (int, float)) or not 0 < fraction < 1:
            raise LatentAtlasError(f"validation_fraction={fraction!r}: must be between 0 and 1")
        if self.downsample not in DOWNSAMPLE:
            raise LatentAtlasError(f"downsample={self.downsample!r}: expected one of {', '.join(DOWNSAMPLE)}")
        if self.upsample not in UPSAMPLE:
            raise LatentAtlasError(f"upsample={self.upsample!r}: expected one of {', '.join(UPSAMPLE)}")
        if self.chunk_size is not None:
            _positive_int("chunk_size", self.chunk_size)
        if self.model not in MODELS:
            raise LatentAtlasError(f"model={self.model!r}: expected one of {', '.join(MODELS)}")
        if self.num_threads is not None:
            _positive_int("num_threads", self.num_threads)
        if not isinstance(self.seed, (int, np.integer)) or isinstance(self.seed, bool) or self.seed < 0:
            raise LatentAtlasError(f"seed={self.seed!r}: must be a non-negative integer")
        if not isinstance(self.channels_last, (bool, np.bool_)):
            raise LatentAtlasError(f"channels_last={self.channels_last!r}: must be True or False")
        if self.amp not in AMP_MODES:
            raise LatentAtlasError(f"amp={self.amp!r}: expected one of {', '.join(AMP_MODES)}")
        if not any(self.compile is mode or (isinstance(mode, str) and self.compile == mode) for mode in COMPILE_MODES):
            raise LatentAtlasError(f"compile={self.compile!r}: expected True, False or 'auto'")
        from latentatlas.images.training import select_device

        select_device(self.device)  # a device this machine lacks is an error before any data is read
        return self

    def settings(self) -> dict[str, Any]:
        """Every parameter as a plain value (``channels`` a list; ``progress`` left out) and ``preset``, the
        preset they match: what checkpoints and ``run.json`` store."""
        values = {k: v for k, v in self.get_params().items() if k != "progress"}
        values["channels"] = [int(c) for c in values["channels"]]
        return {**values, "preset": self.preset}

    def train_config(self) -> "ConvAutoencoder":
        """Deprecated: the estimator holds the training parameters itself. Returns ``self.check_params()``."""
        return self.check_params()

    # --- fitting --------------------------------------------------------------------------------------
    def fit(self, images, validation_images=None, *, out_dir: str | os.PathLike | None = None,
            resume: str | os.PathLike | None = None, test_images=None) -> "ConvAutoencoder":
        """Train the autoencoder on ``images``.

        Parameters
        ----------
        images : ImageSet, numpy array or torch tensor
            ``N×H×W`` grey or ``N×3×H×W`` colour images (``N×H×W×3`` too), uint8 0–255 or floats in [0, 1];
            H and W at least 12 (resize with ``read_images(..., image_size=…)``).
        validation_images : same kinds, optional
            Images to measure the validation loss on after every epoch (the epoch with the lowest is kept).
            Default: hold out ``validation_fraction`` of ``images`` (seeded by ``seed``). An untouched test
            set is for :meth:`score` after fitting.
        test_images : deprecated
            The old name of ``validation_images``.
        out_dir : path, optional
            Write ``last.pt`` and ``best.pt`` checkpoints there after every epoch (needed to resume after a
            crash). Nothing is written without it.
        resume : path, optional
            A checkpoint or a folder holding ``last.pt`` from an interrupted fit with the same parameters and
            data: training continues from its last completed epoch, with the same result as an
            uninterrupted run.

        Returns
        -------
        self
            A Ctrl-C stops after the current batch: ``fit`` then returns with the best completed epoch and
            ``history_.interrupted`` set (or re-raises KeyboardInterrupt when no epoch was completed).

        Example
        -------
        >>> ae = ConvAutoencoder(epochs=3).fit(images, out_dir="runs/ae")      # doctest: +SKIP
        >>> ae = ConvAutoencoder(epochs=5).fit(images, out_dir="runs/ae", resume="runs/ae")  # doctest: +SKIP
        """
        from latentatlas.images.training import TrainingInterrupted, run_training

        self.check_params()
        if test_images is not None:
            import warnings

            if validation_images is not None:
                raise LatentAtlasError("give validation_images only (test_images is its old name)")
            warnings.warn("fit(test_images=...) is now fit(validation_images=...): those images pick the epoch",
                          DeprecationWarning, stacklevel=2)
            validation_images = test_images
        train = as_image_set(images, "images")
        if validation_images is None:
            train, validation = split_holdout(train, self.validation_fraction, int(self.seed))
        else:
            validation = as_image_set(validation_images, "validation_images")
        result = run_training(train, validation, self, out_dir=out_dir, resume=resume, progress=self.progress)
        if result.best_state is None:
            raise TrainingInterrupted(result.history)
        import torch

        # The default memory layout, as a loaded model has: the same codes from a fitted and a loaded model.
        model = result.model.to(memory_format=torch.contiguous_format)
        model.load_state_dict(result.best_state)
        self.model_ = model.eval()
        self.history_ = result.history
        self._set_shapes(result.code_stats)
        return self

    def _set_shapes(self, code_stats=None) -> None:
        self.image_shape_ = tuple(self.model_.image_shape)
        self.n_channels_ = int(self.model_.in_channels)
        self.code_shape_ = tuple(self.model_.code_shape)
        self.code_size_ = int(self.model_.code_size)
        self.code_mean_ = self.code_std_ = None
        if isinstance(code_stats, dict):
            try:
                mean = np.asarray(code_stats.get("mean"), dtype=np.float32)
                std = np.asarray(code_stats.get("std"), dtype=np.float32)
            except (TypeError, ValueError):
                return
            if mean.shape == std.shape == (self.code_size_,) and np.isfinite(mean).all() and np.isfinite(std).all():
                self.code_mean_, self.code_std_ = mean, std

    def _fitted(self) -> ConvAutoencoderNet:
        model = getattr(self, "model_", None)
        if model is None:
            raise LatentAtlasError("this ConvAutoencoder is not fitted yet: call fit(images) or "
                                   "ConvAutoencoder.load(path) first")
        return model

    def __sklearn_is_fitted__(self) -> bool:
        return getattr(self, "model_", None) is not None

    def _threads(self):
        from latentatlas.images.training import default_threads, torch_threads

        return torch_threads(self.num_threads if self.num_threads is not None else default_threads())

    # --- using ----------------------------------------------------------------------------------------
    def transform(self, images, batch_size: int = 1024) -> np.ndarray:
        """Latent codes of ``images``: an ``(n, code_size_)`` float32 array, one flattened code per image.

        ``images`` as in :meth:`fit` (an ImageSet, array or tensor; uint8 or floats in [0, 1]).

        Example
        -------
        >>> ae.transform(test).shape                                           # doctest: +SKIP
        (10000, 288)
        """
        from latentatlas.images.latent import encode

        model = self._fitted()
        if hasattr(images, "detach") and hasattr(images, "cpu"):
            images = images.detach().cpu().numpy()
        with self._threads():
            return encode(model, images, batch_size=batch_size)

    def inverse_transform(self, codes, batch_size: int = 1024) -> np.ndarray:
        """Images decoded from ``codes`` (``(n, code_size_)``): an ``(n, H, W)`` (grey) or ``(n, 3, H, W)``
        (colour) float32 array in [0, 1] (multiply by 255 and round for uint8 pixels).

        Example
        -------
        >>> ae.inverse_transform(ae.transform(test[:5])).shape                # doctest: +SKIP
        (5, 28, 28)
        """
        from latentatlas.images.latent import decode

        model = self._fitted()
        if hasattr(codes, "detach") and hasattr(codes, "cpu"):
            codes = codes.detach().cpu().numpy()
        with self._threads():
            return decode(model, codes, model.code_shape, batch_size=batch_size)

    def interpolate(self, a, b, steps: int = 10) -> np.ndarray:
        """Decode ``steps`` equidistant points on the straight line from image ``a``'s code to image ``b``'s.

        Both ends are included: frame 0 decodes ``a``'s code and frame ``steps - 1`` decodes ``b``'s.
        ``a`` and ``b`` are single ``H×W`` (or ``3×H×W``) images (uint8 or floats in [0, 1]); ``steps`` is 2
        to :data:`latentatlas.images.latent.MAX_STEPS`. Returns ``(steps, H, W)`` (or ``(steps, 3, H, W)``)
        float32 in [0, 1]. For a VAE the codes are posterior means.

        Example
        -------
        >>> ae.interpolate(test.images[0], test.images[1], steps=10).shape      # doctest: +SKIP
        (10, 28, 28)
        """
        from latentatlas.images.latent import interpolate

        model = self._fitted()
        with self._threads():
            return interpolate(model, a, b, steps)

    def traverse(self, image, dims=None, steps: int = 7, span: float = 3.0, n_dims: int = 8) -> np.ndarray:
        """Latent traversal: ``image``'s code decoded with one code number at a time swept over ``steps``
        values, the others kept.

        A VAE's numbers sweep its prior, -``span`` to ``span``; a plain autoencoder's sweep their mean ±
        ``span`` standard deviations over the validation images. ``dims`` are indices into the flattened
        code; by default the ``n_dims`` numbers that vary most over the validation images (for a VAE, the
        active ones; the rest collapsed to the prior and change nothing). Returns ``(len(dims), steps, H, W)``
        (or ``(…, 3, H, W)``) float32 in [0, 1]; :meth:`traverse_dims` says which dims the default takes.
        """
        from latentatlas.images.latent import check_steps, traverse

        model = self._fitted()
        steps = check_steps(steps)
        if isinstance(span, bool) or not isinstance(span, (int, float)) or not math.isfinite(span) or span <= 0:
            raise LatentAtlasError(f"span={span!r}: must be a positive number")
        dims = self.traverse_dims(n_dims) if dims is None else np.asarray(dims).reshape(-1)
        t = np.linspace(-span, span, steps, dtype=np.float32)
        if model.variational or self.code_std_ is None:
            if not model.variational:
                raise LatentAtlasError("this autoencoder has no code statistics (a checkpoint from before they "
                                       "were stored): fit it again to traverse its codes")
            values = t
        else:
            d = np.asarray(dims, dtype=np.int64)
            if d.size and (d.min() < 0 or d.max() >= self.code_size_):
                raise LatentAtlasError(f"dims: index out of range, the code has {self.code_size_} numbers")
            values = self.code_mean_[d][:, None] + t[None, :] * self.code_std_[d][:, None]
        with self._threads():
            return traverse(model, image, dims, values)

    def traverse_dims(self, n_dims: int = 8) -> np.ndarray:
        """The ``n_dims`` code numbers that vary most over the validation images, most first (the first
        ``n_dims`` when the model has no statistics)."""
        self._fitted()
        if isinstance(n_dims, bool) or not isinstance(n_dims, (int, np.integer)) or n_dims < 1:
            raise LatentAtlasError(f"n_dims={n_dims!r}: must be a positive integer")
        n = min(int(n_dims), self.code_size_)
        if self.code_std_ is None:
            return np.arange(n)
        return np.argsort(-self.code_std_, kind="stable")[:n]

    def sample(self, n: int = 16, seed: int = 0) -> np.ndarray:
        """``n`` new pictures from a VAE (``model="vae"``): codes drawn from N(0, I) with ``seed``, decoded.
        Returns ``(n, H, W)`` (or ``(n, 3, H, W)``) float32 in [0, 1]."""
        from latentatlas.images.latent import sample

        model = self._fitted()
        with self._threads():
            return sample(model, n, seed)

    def score(self, images, y=None) -> float:
        """Minus the mean squared reconstruction error per pixel (pixels in [0, 1]); higher is better."""
        from latentatlas.images.training import evaluate_mse

        model = self._fitted()
        data = as_image_set(images, "images").images
        with self._threads():
            return -evaluate_mse(model, data, int(self.eval_batch_size))

    # --- files ----------------------------------------------------------------------------------------
    def save(self, path: str | os.PathLike) -> Path:
        """Write the fitted model to ``path`` atomically: architecture, weights, parameters and history as
        tensors and plain values, readable with ``torch.load(weights_only=True)``. The ``progress``
        parameter is not saved.

        Example
        -------
        >>> ae.save("fashion.pt"); ConvAutoencoder.from_checkpoint("fashion.pt")     # doctest: +SKIP
        """
        import dataclasses

        model = self._fitted()
        history = self.history_.to_dict() if dataclasses.is_dataclass(getattr(self, "history_", None)) else {}
        extra = {}
        if self.code_std_ is not None:
            extra["code_stats"] = {"mean": self.code_mean_.tolist(), "std": self.code_std_.tolist()}
        return save_checkpoint(path, model, epoch=int(history.get("best_epoch") or 0), history=history,
                               config=self.settings(), extra=extra)

    @classmethod
    def checkpoint_params(cls, ckpt: dict[str, Any], machine: bool = False) -> dict[str, Any]:
        """The estimator parameters a :func:`~latentatlas.images.network.read_checkpoint` dict stores: its
        ``config`` (and the ``estimator_params`` of files written before the estimator owned its parameters),
        old names renamed, the architecture from the network's own config. ``device`` and ``num_threads``
        (where and how fast it ran) only with ``machine``. The one place that turns a checkpoint back into
        parameters: :meth:`from_checkpoint` and resuming a run both use it."""
        stored = ckpt.get("estimator_params") if isinstance(ckpt.get("estimator_params"), dict) else {}
        config = ckpt.get("config") or {}
        names = set(cls._get_param_names()) - {"progress"} - (set() if machine else set(MACHINE_PARAMS))
        merged = {_RENAMED.get(k, k): v for k, v in {**config, **stored}.items()}
        params = {k: v for k, v in merged.items() if k in names}
        params.setdefault("optimizer", "adam")  # files from before the option were trained with Adam's L2 decay
        params.setdefault("chunk_size", None)  # and whole batches at once
        mc = ckpt["model_config"]
        params.update(channels=tuple(mc["channels"]), latent_channels=mc["latent_channels"],
                      negative_slope=mc["negative_slope"], model="vae" if mc.get("variational") else "ae",
                      downsample=mc.get("downsample", "pool"), upsample=mc.get("upsample", "transpose"))
        return params

    @classmethod
    def from_checkpoint(cls, path: str | os.PathLike, device: str | None = None, **params: Any) -> "ConvAutoencoder":
        """A fitted estimator from a file written by :meth:`save` or by ``latentatlas images train``
        (``best.pt``, ``last.pt``, or the run folder: its best checkpoint; files of every earlier version too),
        on ``device`` (default CPU).

        The stored parameters are restored, except ``device`` and ``num_threads`` (this machine's), then
        ``params`` (None values ignored) override them: ``from_checkpoint(path, epochs=10).fit(images,
        resume=path)`` continues a run for more epochs. Files are read with ``torch.load(weights_only=True)``;
        a damaged or foreign file raises :class:`LatentAtlasError` naming it.

        Example
        -------
        >>> ae = ConvAutoencoder.from_checkpoint("runs/images-train/best.pt")     # doctest: +SKIP
        """
        from latentatlas.images.training import History, select_device

        unknown = sorted(set(params) - set(cls._get_param_names()))
        if unknown:
            raise LatentAtlasError(f"unknown autoencoder parameter {unknown[0]!r}")
        if Path(path).is_dir():
            from latentatlas.images.workflow import resolve_checkpoint

            path = resolve_checkpoint(path)  # a training run folder: the checkpoint its run.json names
        ckpt = read_checkpoint(path)
        est = cls(**{**cls.checkpoint_params(ckpt), **{k: v for k, v in params.items() if v is not None}})
        if device is not None:
            est.set_params(device=device)
        target = "cpu" if device in (None, "cpu") else select_device(device)
        est.model_ = network_from_checkpoint(ckpt, path, target)
        try:
            est.history_ = History.from_dict(ckpt.get("history") or {})
        except TypeError:
            raise LatentAtlasError(f"{path}: checkpoint field 'history' is damaged") from None
        est._set_shapes(ckpt.get("code_stats"))
        return est

    @classmethod
    def load(cls, path: str | os.PathLike, device: str | None = None) -> "ConvAutoencoder":
        """The same as :meth:`from_checkpoint` (the name scikit-learn users look for)."""
        return cls.from_checkpoint(path, device)
