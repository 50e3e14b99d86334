"""The convolutional autoencoder as a scikit-learn-style estimator.

:class:`ConvAutoencoder` holds every hyper-parameter in ``__init__`` (checked in :meth:`~ConvAutoencoder.fit`,
not there); ``fit`` trains with the same loop as ``latentatlas images train``
(:func:`latentatlas.images.training.run_training`) and leaves the trained torch module in ``model_`` and the
loss history in ``history_``. ``transform`` encodes images to flat latent codes, ``inverse_transform``
decodes codes to images, ``interpolate`` walks the straight line between two images' codes, and
``save``/``load`` write and read a checkpoint that ``torch.load(weights_only=True)`` reads (no pickled
objects). The network itself is :class:`~latentatlas.images.network.ConvAutoencoderNet`.
"""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Any

import numpy as np
from sklearn.base import BaseEstimator, TransformerMixin

from latentatlas.errors import LatentAtlasError
from latentatlas.images.io import ImageSet, as_image_set
from latentatlas.images.network import ConvAutoencoderNet, network_from_checkpoint, read_checkpoint, save_checkpoint

__all__ = ["ConvAutoencoder", "ConvAutoencoderNet", "split_holdout"]

#: Hyper-parameters that shape the network (the rest shape training).
ARCHITECTURE = ("channels", "latent_channels", "negative_slope")
#: The estimator's parameters that :class:`~latentatlas.images.training.TrainConfig` holds under the same name.
_CONFIG_PARAMS = ("epochs", "batch_size", "lr", "weight_decay", "schedule", "gamma", "seed", "channels",
                  "latent_channels", "channels_last", "log_every", "eval_batch_size", "device", "num_threads")


def split_holdout(images: ImageSet, fraction: float, seed: int, name: str = "test_fraction"
                  ) -> tuple[ImageSet, ImageSet]:
    """A seeded random split of ``images`` into (train, held out), the held-out part ``fraction`` of them."""
    if isinstance(fraction, bool) or not isinstance(fraction, (int, float)) or not 0 < fraction < 1:
        raise LatentAtlasError(f"{name}={fraction!r}: must be between 0 and 1")
    n_test = int(round(len(images) * fraction))
    if n_test < 1 or n_test >= len(images):
        raise LatentAtlasError(
            f"{images.source or 'images'}: {len(images)} images are too few to hold out {name}={fraction}; "
            f"give test images")
    order = np.random.default_rng(seed).permutation(len(images))
    return images.take(np.sort(order[n_test:])), images.take(np.sort(order[:n_test]))


class ConvAutoencoder(TransformerMixin, BaseEstimator):
    """Convolutional autoencoder for grayscale images, trained fast on a CPU.

    The default architecture is the reference one: convolutions 1→4→16 (max-pool) →32 (max-pool) →32 with
    LeakyReLU and one BatchNorm turn a 28×28 image into a 32×3×3 code (288 numbers); transposed
    convolutions decode it. The default training settings are the "fast" preset (batches of 128, Adam with a
    one-cycle learning rate peaking at 3e-3); :meth:`from_preset` gives the "reference" one.

    Parameters
    ----------
    channels : tuple of 3 int
        Widths of the encoder's three convolutions before the code.
    latent_channels : int
        Channels of the code; the code has ``latent_channels × h × w`` numbers (h = w = 3 for 28×28 images).
    negative_slope : float
        Slope of the LeakyReLU for negative inputs.
    epochs, batch_size, lr, weight_decay : training length, batch size, peak (one-cycle) or initial learning
        rate, and Adam's weight decay.
    schedule : {"onecycle", "exponential", "constant"}
        Learning-rate schedule; ``gamma`` is the exponential schedule's factor per step.
    channels_last : bool
        Channels-last memory format (about twice as fast on CPU).
    test_fraction : float
        When ``fit`` gets no ``test_images``, this share of ``images`` (a seeded random sample) is held out to
        measure the test loss, which picks the kept epoch.
    eval_batch_size, log_every : images per forward pass when measuring the test loss; batches between
        progress lines.
    device : str
        ``"auto"`` (CUDA when available), ``"cpu"`` or ``"cuda[:N]"``.
    num_threads : int or None
        CPU threads while fitting and encoding (default: every core available); restored afterwards.
    seed : int
        Seed of the initial weights, the batch order and the held-out split: same seed, same model.
    progress : Progress or callable, optional
        Receives progress lines (``callable(str)``); by default they only go to the ``latentatlas`` logger,
        which shows nothing unless configured (``logging.basicConfig(level=logging.INFO)``).

    Attributes
    ----------
    model_ : ConvAutoencoderNet
        The trained torch module, in eval mode, with the weights of the epoch with the lowest test loss.
    history_ : latentatlas.images.training.History
        Losses per batch and per epoch, ``best_epoch``, ``interrupted``.
    image_shape_ : tuple of 2 int
        Height and width the model was trained on.
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
                 epochs: int = 5, batch_size: int = 128, lr: float = 3e-3, weight_decay: float = 1e-4,
                 schedule: str = "onecycle", gamma: float = 0.999, channels_last: bool = True,
                 test_fraction: float = 0.1, eval_batch_size: int = 2000, log_every: int = 100,
                 device: str = "auto", num_threads: int | None = None, seed: int = 0, progress=None):
        self.channels = channels
        self.latent_channels = latent_channels
        self.negative_slope = negative_slope
        self.epochs = epochs
        self.batch_size = batch_size
        self.lr = lr
        self.weight_decay = weight_decay
        self.schedule = schedule
        self.gamma = gamma
        self.channels_last = channels_last
        self.test_fraction = test_fraction
        self.eval_batch_size = eval_batch_size
        self.log_every = log_every
        self.device = device
        self.num_threads = num_threads
        self.seed = seed
        self.progress = progress

    # --- construction ---------------------------------------------------------------------------------
    @classmethod
    def from_preset(cls, preset: str = "fast", **params: Any) -> "ConvAutoencoder":
        """An estimator with a named preset's training settings, then ``params`` (None values are ignored).

        ``"fast"`` (the defaults) or ``"reference"`` (the reference pipeline's: batches of 1024, Adam 1e-3,
        ×0.999 per step, no channels-last).

        Example
        -------
        >>> ConvAutoencoder.from_preset("reference", epochs=27).batch_size
        1024
        """
        from latentatlas.images.training import PRESETS

        if preset not in PRESETS:
            raise LatentAtlasError(f"preset={preset!r}: expected one of {', '.join(PRESETS)}")
        return cls(**{**PRESETS[preset], **{k: v for k, v in params.items() if v is not None}})

    def train_config(self):
        """The :class:`~latentatlas.images.training.TrainConfig` these parameters stand for (validated)."""
        from latentatlas.images.training import PRESETS, TrainConfig

        values = {name: getattr(self, name) for name in _CONFIG_PARAMS}
        if isinstance(values["channels"], (list, tuple)):
            values["channels"] = tuple(values["channels"])
        preset = next((name for name, p in PRESETS.items() if all(values.get(k) == v for k, v in p.items())),
                      "custom")
        return TrainConfig(preset=preset, **values).validated()

    def _check_params(self) -> None:
        slope = self.negative_slope
        if isinstance(slope, bool) or not isinstance(slope, (int, float)) or not math.isfinite(slope):
            raise LatentAtlasError(f"negative_slope={slope!r}: must be a finite number")

    # --- fitting --------------------------------------------------------------------------------------
    def fit(self, images, test_images=None, *, out_dir: str | os.PathLike | None = None,
            resume: str | os.PathLike | None = None) -> "ConvAutoencoder":
        """Train the autoencoder on ``images``.

        Parameters
        ----------
        images : ImageSet, numpy array or torch tensor
            ``N×H×W`` (or ``N×1×H×W``) grayscale images, uint8 0–255 or floats in [0, 1]; H and W must be
            multiples of 4 and at least 12.
        test_images : same kinds, optional
            Images to measure the test loss on after every epoch (the epoch with the lowest is kept).
            Default: hold out ``test_fraction`` of ``images`` (seeded by ``seed``).
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

        self._check_params()
        config = self.train_config()
        train = as_image_set(images, "images")
        if test_images is None:
            train, test = split_holdout(train, self.test_fraction, config.seed)
        else:
            test = as_image_set(test_images, "test_images")
        result = run_training(train, test, config, out_dir=out_dir, resume=resume,
                              negative_slope=float(self.negative_slope), progress=self.progress)
        if result.best_state is None:
            raise TrainingInterrupted(result.history)
        import torch

        # The default memory layout, as a loaded model has: the same codes from a fitted and a loaded model.
        model = result.model.to(memory_format=torch.contiguous_format)
        model.load_state_dict(result.best_state)
        self.model_ = model.eval()
        self.history_ = result.history
        self._set_shapes()
        return self

    def _set_shapes(self) -> None:
        self.image_shape_ = tuple(self.model_.image_shape)
        self.code_shape_ = tuple(self.model_.code_shape)
        self.code_size_ = int(self.model_.code_size)

    def _fitted(self) -> ConvAutoencoderNet:
        model = getattr(self, "model_", None)
        if model is None:
            raise LatentAtlasError("this ConvAutoencoder is not fitted yet: call fit(images) or "
                                   "ConvAutoencoder.load(path) first")
        return model

    def __sklearn_is_fitted__(self) -> bool:
        return getattr(self, "model_", None) is not None

    def _threads(self):
        from latentatlas.images.training import torch_threads

        return torch_threads(self.num_threads)

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
        """Images decoded from ``codes`` (``(n, code_size_)``): an ``(n, H, W)`` float32 array in [0, 1]
        (multiply by 255 and round for uint8 pixels).

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
        ``a`` and ``b`` are single ``H×W`` images (uint8 or floats in [0, 1]); ``steps`` is 2 to
        :data:`latentatlas.images.latent.MAX_STEPS`. Returns ``(steps, H, W)`` float32 in [0, 1].

        Example
        -------
        >>> ae.interpolate(test.images[0], test.images[1], steps=10).shape      # doctest: +SKIP
        (10, 28, 28)
        """
        from latentatlas.images.latent import interpolate

        model = self._fitted()
        with self._threads():
            return interpolate(model, a, b, steps)

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
        >>> ae.save("fashion.pt"); ConvAutoencoder.load("fashion.pt")       # doctest: +SKIP
        """
        import dataclasses

        model = self._fitted()
        config = self.train_config().to_dict()
        history = self.history_.to_dict() if dataclasses.is_dataclass(getattr(self, "history_", None)) else {}
        params = {k: v for k, v in self.get_params().items() if k != "progress"}
        params["channels"] = list(params["channels"])
        return save_checkpoint(path, model, epoch=int(history.get("best_epoch") or 0), history=history,
                               config=config, extra={"estimator_params": params})

    @classmethod
    def load(cls, path: str | os.PathLike, device: str | None = None) -> "ConvAutoencoder":
        """A fitted estimator from a file written by :meth:`save` or by ``latentatlas images train``
        (``best.pt``, ``last.pt``), on ``device`` (default CPU). Files are read with
        ``torch.load(weights_only=True)``; a damaged or foreign file raises :class:`LatentAtlasError` naming
        it. The stored parameters are restored, except ``device`` and ``num_threads`` (this machine's).

        Example
        -------
        >>> ae = ConvAutoencoder.load("runs/images-train/best.pt")           # doctest: +SKIP
        """
        from latentatlas.images.training import History

        ckpt = read_checkpoint(path)
        stored = ckpt.get("estimator_params") if isinstance(ckpt.get("estimator_params"), dict) else {}
        config = ckpt.get("config") or {}
        # Where and on how many threads the model was trained says nothing about this machine: not restored.
        names = set(cls._get_param_names()) - {"device", "num_threads", "progress"}
        params = {k: v for k, v in {**config, **stored}.items() if k in names}
        mc = ckpt["model_config"]
        params.update(channels=tuple(mc["channels"]), latent_channels=mc["latent_channels"],
                      negative_slope=mc["negative_slope"])
        if device is not None:
            params["device"] = device
        est = cls(**params)
        target = "cpu"
        if device not in (None, "auto", "cpu"):
            target = device
        elif device == "auto":
            import torch

            target = "cuda" if torch.cuda.is_available() else "cpu"
        est.model_ = network_from_checkpoint(ckpt, path, target)
        try:
            est.history_ = History.from_dict(ckpt.get("history") or {})
        except TypeError:
            raise LatentAtlasError(f"{path}: checkpoint field 'history' is damaged") from None
        est._set_shapes()
        return est
