"""Fast, resumable training of the convolutional autoencoder.

Why it is fast on a CPU: the whole data set sits in memory as one uint8 tensor and each batch is one gather from a
seeded permutation (no per-sample Python transforms, no worker processes); the model runs in channels-last memory
format, which oneDNN convolves about twice as fast as the default layout; the default network halves the picture
with its first two convolutions (stride 2) rather than with max-pools after convolutions at full size (about 40 %
less CPU time per epoch), and its decoder has no layer at full size either (``upsample="direct"``, a quarter less);
each batch of 96 goes through the network in two chunks of 48 (``chunk_size``), side by side on two threads, so
both cores of a small machine work (the chunks only meet to add their gradients; a thread inside each small
convolution gains little); Adam runs as one fused kernel; and the default schedule (batches of 96, AdamW,
one-cycle learning rate peaking at 3e-2) reaches in one epoch what the reference settings (batches of 1024, Adam
at 1e-3 decayed by 0.999 per step) do not reach in 27 (test MSE 0.0107); see benchmarks/RESULTS-autoencoder.md
and RESULTS-images.md.

Chunks: each has its own BatchNorm statistics (a "ghost batch"), through its own copy of the network that shares
the parameters; their gradients, weighted by their share of the batch, are added in chunk order, and the
running statistics averaged, after every step. So the result does not depend on how many threads ran the
chunks: one thread gives the same run as two.

The held-out images that pick the kept epoch are the *validation* set; an untouched test set, if any, is
scored by the caller after training (:func:`latentatlas.images.workflow.train_run` does).

A variational autoencoder (``model="vae"``) minimises, per pixel, the binary cross-entropy of the decoded
picture (decoded from a code sampled from the posterior with a seeded generator) plus ``beta`` times the KL
divergence of the posterior from N(0, 1) divided by the pixels of an image: with ``beta = 1`` that is the
classic evidence lower bound of a Bernoulli decoder. Its history also holds the KL term (nats per image); its
MSE, like the plain autoencoder's, is that of the picture decoded from the posterior mean.

Why it is safe: a checkpoint of the last completed epoch (model, optimizer, scheduler, history) is written
atomically after every epoch, and a second one whenever the validation loss is the best so far. Each checkpoint
records the epoch it holds and ``last.pt``'s history names the best epoch, so a resumed run checks that
``best.pt`` holds that epoch; a kill between the two writes (``last.pt`` new, ``best.pt`` one best epoch
behind) is repaired from ``last.pt``, which then holds the best epoch itself. The batch order of epoch
``e`` depends only on ``(seed, e)``, so resuming from the last checkpoint repeats exactly what an
uninterrupted run would have done. The first Ctrl-C stops after the current batch (a second one aborts at
once); both leave the checkpoints intact.

On a GPU: ``device="auto"`` takes CUDA, else Apple's MPS, else the CPU (:func:`select_device`). The data
set moves to the device once, batches are gathered there, and the loop fetches the losses once per epoch (not
per batch) so the GPU runs ahead. On CUDA the training passes run under automatic mixed precision
(:func:`autocast_dtype`: bfloat16 where the GPU has it, else float16 with a gradient scaler), the losses,
validation scores and codes in float32; cuDNN picks its fastest algorithms for the fixed batch shape; and
``compile=True`` (or ``"auto"``: CUDA only) runs the training step through ``torch.compile``, falling back to
the eager step, said once in the progress lines, when compiling fails. On the CPU none of this is on by
default: bfloat16 autocast runs there (``amp="bf16"``) but cost 4–5× the CPU time of float32, and compiling
cost minutes and made epochs slower (benchmarks/RESULTS-images.md).

The loop (:func:`run_training`) is the one both :meth:`ConvAutoencoder.fit
<latentatlas.images.autoencoder.ConvAutoencoder.fit>` and ``latentatlas images train`` use; it reads every
setting from the estimator (the one place parameters are defined). It changes no global state:
``torch.set_num_threads``, cuDNN's benchmark flag and the SIGINT handler are restored when it returns.
"""

from __future__ import annotations

import contextlib
import dataclasses
import shutil
import math
import os
import signal
import threading
import time
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator

import numpy as np
import torch
import torch.nn.functional as F

from latentatlas.errors import LatentAtlasError, printable
from latentatlas.fsutil import atomic_path
from latentatlas.images.io import ImageSet
from latentatlas.images.network import (ConvAutoencoderNet, kl_divergence, network_from_checkpoint, read_checkpoint,
                                        save_checkpoint)
from latentatlas.progress import Progress, ProgressCallback, as_progress

LAST_CHECKPOINT = "last.pt"
BEST_CHECKPOINT = "best.pt"


def _cores() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


def default_threads(chunks: int = 1) -> int:
    """CPU threads used when none are asked for.

    For a network that runs a batch in one piece (``chunks`` = 1): half the cores this process may run on
    (hyper-threads share a core; small convolutions gain little from more), and no more than the cores the
    1-minute load average leaves free, at least 1. On a 2-core machine that is 1: there, a second thread inside
    each convolution was never much faster on an idle machine and five times slower on a busy one
    (benchmarks/RESULTS-images-threads.md).

    For a batch in ``chunks`` chunks (``chunk_size``): a thread per chunk, up to the cores, and at least the rule
    above, whatever the load. The chunks run independently and only meet to add their gradients, so a busy
    machine slows two chunk threads no more than one: on 2 cores with 0, 1 and 2 other busy processes, two threads
    were 1.56×, 1.03× and 1.30× faster than one (benchmarks/RESULTS-images.md)."""
    cores = _cores()
    try:
        free = cores - os.getloadavg()[0]
    except OSError:
        free = cores
    rule = max(1, min(cores // 2, int(free)))
    return rule if chunks <= 1 else max(rule, min(chunks, cores))


#: The automatic batch size: this many images on a large set, fewer on a set too small for
#: ``AUTO_STEPS_PER_EPOCH`` batches per epoch (at least ``AUTO_BATCH_MIN``); the peak learning rate scales with it.
AUTO_BATCH = 96
AUTO_BATCH_MIN = 16
AUTO_STEPS_PER_EPOCH = 100
AUTO_LR = 3e-2


def batch_size_for(config, n: int) -> int:
    """The batch size of a run on ``n`` training images: ``batch_size``, or when it is None (the default) 96, or
    ``n // 100`` on a smaller set (at least 16), so that an epoch has about 100 optimisation steps: on 3 600 colour
    crops, batches of 36 reached a validation MSE of 0.0085–0.0095 in 5 epochs where batches of 96 (38 steps an
    epoch) reached 0.0140–0.0151 (benchmarks/RESULTS-images.md)."""
    if config.batch_size is not None:
        return int(config.batch_size)
    return int(max(AUTO_BATCH_MIN, min(AUTO_BATCH, n // AUTO_STEPS_PER_EPOCH)))


def lr_for(config, batch_size: int) -> float:
    """The (peak) learning rate: ``lr``, or when it is None (the default) 3e-2 for batches of 96, in proportion
    for other batch sizes (the linear scaling rule: the steps average fewer images, so they are smaller)."""
    if config.lr is not None:
        return float(config.lr)
    return AUTO_LR * batch_size / AUTO_BATCH


def chunk_count(config, device: torch.device, batch_size: int | None = None) -> int:
    """Chunks each training batch of ``batch_size`` images (default: ``config.batch_size``) is split into:
    ``chunk_size`` images at most, on a CPU only."""
    size = getattr(config, "chunk_size", None)
    batch = config.batch_size if batch_size is None else batch_size
    if device.type != "cpu" or size is None or batch is None or size >= batch:
        return 1
    return math.ceil(batch / size)


def _mps_available() -> bool:
    mps = getattr(torch.backends, "mps", None)
    return bool(mps is not None and mps.is_available())


def select_device(device: str = "auto") -> torch.device:
    """The torch device ``device`` names: ``"auto"`` is CUDA when available, else Apple's MPS, else the CPU;
    ``"cpu"``, ``"cuda"``, ``"cuda:N"`` and ``"mps"`` are taken as they are, and are an error (naming them)
    when this machine lacks them."""
    if not isinstance(device, str):
        raise LatentAtlasError(f"device={device!r}: expected auto, cpu, cuda[:N] or mps")
    if device == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        return torch.device("mps") if _mps_available() else torch.device("cpu")
    if device == "cpu":
        return torch.device("cpu")
    if device == "mps":
        if not _mps_available():
            raise LatentAtlasError("device='mps': Apple's Metal (MPS) is not available on this machine")
        return torch.device("mps")
    if device == "cuda" or (device.startswith("cuda:") and device[5:].isdigit()):
        if not torch.cuda.is_available():
            raise LatentAtlasError(f"device={device!r}: CUDA is not available on this machine")
        if device != "cuda" and int(device[5:]) >= torch.cuda.device_count():
            raise LatentAtlasError(f"device={device!r}: this machine has {torch.cuda.device_count()} CUDA device(s)")
        return torch.device(device)
    raise LatentAtlasError(f"device={device!r}: expected auto, cpu, cuda[:N] or mps")


def autocast_dtype(amp: str, device: torch.device | str, bf16_supported: bool | None = None) -> torch.dtype | None:
    """The dtype the training passes autocast to on ``device`` for the ``amp`` parameter, None for none.

    ``"auto"``: bfloat16 on a CUDA GPU that supports it (``bf16_supported``, asked of torch when None),
    float16 on an older one, none on the CPU and MPS (their autocast gains little for these small
    convolutions). ``"bf16"``/``"fp16"``: that dtype on any device; ``"off"``: none."""
    kind = torch.device(device).type
    if amp == "off":
        return None
    if amp == "bf16":
        return torch.bfloat16
    if amp == "fp16":
        return torch.float16
    if amp != "auto":
        raise LatentAtlasError(f"amp={amp!r}: expected auto, off, bf16 or fp16")
    if kind != "cuda":
        return None
    if bf16_supported is None:
        bf16_supported = bool(torch.cuda.is_bf16_supported())
    return torch.bfloat16 if bf16_supported else torch.float16


def needs_grad_scaler(dtype: torch.dtype | None, device: torch.device | str) -> bool:
    """Whether training in ``dtype`` on ``device`` needs a gradient scaler: float16 on CUDA does (its small
    gradients underflow); bfloat16 has float32's range and does not."""
    return dtype == torch.float16 and torch.device(device).type == "cuda"


def should_compile(compile_mode, device: torch.device | str) -> bool:
    """Whether the ``compile`` parameter asks for ``torch.compile`` on ``device``: True everywhere, "auto"
    on CUDA only."""
    return compile_mode is True or (compile_mode == "auto" and torch.device(device).type == "cuda")


def autocast(device: torch.device, dtype: torch.dtype | None):
    """``torch.autocast`` to ``dtype`` on ``device``'s kind, or a no-op context for None."""
    if dtype is None:
        return contextlib.nullcontext()
    return torch.autocast(device_type=device.type, dtype=dtype)


@contextlib.contextmanager
def _cudnn_benchmark(device: torch.device) -> Iterator[None]:
    """cuDNN picks the fastest convolution algorithms for the fixed batch shape on CUDA; restored after."""
    if device.type != "cuda":
        yield
        return
    saved = torch.backends.cudnn.benchmark
    torch.backends.cudnn.benchmark = True
    try:
        yield
    finally:
        torch.backends.cudnn.benchmark = saved


def TrainConfig(preset: str = "fast", **params: Any):
    """Deprecated: the parameters are :class:`~latentatlas.images.autoencoder.ConvAutoencoder`'s. Returns
    ``ConvAutoencoder.from_preset(preset, **params)``, checked, which every function here takes as its
    config. ``TrainConfig.from_preset`` is the same."""
    from latentatlas.images.autoencoder import ConvAutoencoder

    return ConvAutoencoder.from_preset(preset, **params).check_params()


TrainConfig.from_preset = TrainConfig  # type: ignore[attr-defined]


def _settings(config) -> Any:
    """``config`` (a ConvAutoencoder; None for the defaults) checked."""
    if config is None:
        from latentatlas.images.autoencoder import ConvAutoencoder

        config = ConvAutoencoder()
    return config.check_params()


# Settings that may differ between a run and its resumption without changing the result.
# ("preset" is only a label: the values it stands for are compared one by one; validation_fraction only
# chooses the data, which are compared themselves.)
_RESUMABLE_CHANGES = {"epochs", "log_every", "eval_batch_size", "device", "num_threads", "preset", "amp",
                      "compile", "validation_fraction"}


@dataclass
class History:
    """What a training run measured. Losses are mean squared errors per pixel (pixels in [0, 1]).

    ``batch_loss`` has one value per training batch (the objective minimised: the MSE for the plain
    autoencoder, cross-entropy + β·KL per pixel for the VAE); ``train_loss`` (mean MSE over the epoch's
    batches, weighted by batch size), ``validation_loss`` (MSE on the validation images) and
    ``seconds_per_epoch`` (the training pass only) one per completed epoch. A VAE also records
    ``train_kl`` and ``validation_kl`` (KL divergence in nats per image) and ``validation_objective`` (what
    picks its best epoch). ``interrupted`` is True when Ctrl-C stopped the run before ``config.epochs``;
    ``threads`` is the number of CPU threads used (0 on a GPU); ``batch_size`` the images per batch (the automatic
    size when the parameter is None); ``precision`` what the training passes computed in
    (``"float32"``, or ``"bfloat16"``/``"float16"`` under mixed precision) and ``compiled`` whether they ran
    through ``torch.compile``.

    ``test_loss`` and ``best_test_loss`` are the old names of ``validation_loss`` and
    ``best_validation_loss`` (those images pick the epoch, so they are validation images).
    """

    batch_loss: list[float] = field(default_factory=list)
    train_loss: list[float] = field(default_factory=list)
    validation_loss: list[float] = field(default_factory=list)
    seconds_per_epoch: list[float] = field(default_factory=list)
    lr: list[float] = field(default_factory=list)
    train_kl: list[float] = field(default_factory=list)
    validation_kl: list[float] = field(default_factory=list)
    validation_objective: list[float] = field(default_factory=list)
    batches_per_epoch: int = 0
    best_epoch: int = 0
    interrupted: bool = False
    device: str = "cpu"
    threads: int = 0
    precision: str = "float32"
    batch_size: int = 0
    compiled: bool = False
    checkpoint: str | None = None
    best_checkpoint: str | None = None

    def __repr__(self) -> str:
        if not self.validation_loss:
            return "History(no completed epoch)"
        return (f"History({self.epochs_completed} epochs, best validation MSE {self.best_validation_loss:.5f} at "
                f"epoch {self.best_epoch}{', interrupted' if self.interrupted else ''})")

    def _repr_png_(self):
        """The epoch curves (and a VAE's KL panel), for notebooks; None before the first epoch."""
        if not self.validation_loss:
            return None
        from latentatlas.plots.style import repr_png
        from latentatlas.plots.training import epoch_loss_figure

        return repr_png(epoch_loss_figure, self.train_loss, self.validation_loss, best_epoch=self.best_epoch,
                        train_kl=self.train_kl or None, validation_kl=self.validation_kl or None)

    @property
    def epochs_completed(self) -> int:
        return len(self.validation_loss)

    @property
    def criterion(self) -> list[float]:
        """What picks the best epoch: the validation objective of a VAE, the validation MSE otherwise."""
        return self.validation_objective or self.validation_loss

    @property
    def best_validation_loss(self) -> float:
        """Validation MSE of the best epoch (the kept one)."""
        if not self.validation_loss:
            return math.nan
        return self.validation_loss[self.best_epoch - 1] if self.best_epoch else min(self.validation_loss)

    @property
    def test_loss(self) -> list[float]:
        """Old name of :attr:`validation_loss`."""
        return self.validation_loss

    @property
    def best_test_loss(self) -> float:
        """Old name of :attr:`best_validation_loss`."""
        return self.best_validation_loss

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "History":
        names = {f.name for f in dataclasses.fields(cls)}
        d = dict(d)
        if "test_loss" in d and "validation_loss" not in d:  # checkpoints written before the rename
            d["validation_loss"] = d.pop("test_loss")
        return cls(**{k: v for k, v in d.items() if k in names})


def _fingerprint(images: np.ndarray) -> int:
    return zlib.crc32(np.ascontiguousarray(images).data) & 0xFFFFFFFF


def epoch_permutation(n: int, seed: int, epoch: int) -> np.ndarray:
    """Batch order of ``epoch`` (0-based): depends only on ``(seed, epoch)``, so a resumed run repeats it."""
    return np.random.default_rng([seed, epoch]).permutation(n)


def build_model(config, image_shape: tuple[int, int], negative_slope: float | None = None,
                in_channels: int = 1, full_edges: bool = True) -> ConvAutoencoderNet:
    """The network ``config`` (a ConvAutoencoder) describes for images of ``image_shape`` with
    ``in_channels``, initialised from its seed without touching the global RNG (``full_edges``: see
    :class:`ConvAutoencoderNet`; False only to resume a run of a checkpoint from before it)."""
    slope = float(config.negative_slope if negative_slope is None else negative_slope)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(int(config.seed))
        return ConvAutoencoderNet(image_shape=image_shape, channels=tuple(int(c) for c in config.channels),
                                  latent_channels=int(config.latent_channels), negative_slope=slope,
                                  in_channels=in_channels, variational=config.model == "vae",
                                  full_edges=full_edges, downsample=config.downsample,
                                  upsample=getattr(config, "upsample", "transpose"))


def vae_loss(recon: torch.Tensor, x: torch.Tensor, mu: torch.Tensor, logvar: torch.Tensor, beta: float
             ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The VAE objective per pixel, ``(Σ BCE(recon, x) + beta · KL) / (N · pixels per image)``, with the
    MSE per pixel and the mean KL per image (nats) of the batch: ``(objective, mse, kl)``."""
    n, d = x.shape[0], x[0].numel()
    kl = kl_divergence(mu, logvar)
    bce = F.binary_cross_entropy(recon, x, reduction="sum")
    objective = (bce + beta * kl.sum()) / (n * d)
    return objective, F.mse_loss(recon.detach(), x), kl.detach().mean()


def _noise_generator(seed: int, epoch: int, device: torch.device) -> torch.Generator:
    """The generator of a VAE's sampling noise in ``epoch``: it depends only on ``(seed, epoch)``, like the
    batch order, so a resumed run draws the same noise."""
    g = torch.Generator(device=device)
    g.manual_seed(int(np.random.SeedSequence([seed, epoch, 1]).generate_state(1, np.uint64)[0] >> 1))
    return g


def _fused(device: torch.device) -> bool | None:
    """Whether Adam runs as one fused kernel on ``device``: on the CPU it costs a fifth of the per-tensor loop
    (0.16 against 0.8 ms a step for this network, a twentieth of a step); None leaves torch's choice."""
    return True if device.type in ("cpu", "cuda") else None


def _optimizer_and_scheduler(model, config, steps_per_epoch: int, device: torch.device, lr: float):
    # AdamW by default: with the decay added to the gradient (Adam), a layer whose gradient fades early is
    # driven to zero at the learning rate per step, since Adam rescales the decay term to unit size; on colour
    # crops that zeroed the whole encoder on one seed in three (a constant picture for every input).
    opt_class = torch.optim.AdamW if getattr(config, "optimizer", "adam") == "adamw" else torch.optim.Adam
    optimizer = opt_class(model.parameters(), lr=lr, weight_decay=config.weight_decay, fused=_fused(device))
    if config.schedule == "onecycle":
        scheduler = torch.optim.lr_scheduler.OneCycleLR(
            optimizer, max_lr=lr, total_steps=config.epochs * steps_per_epoch)
    elif config.schedule == "exponential":
        scheduler = torch.optim.lr_scheduler.ExponentialLR(optimizer, gamma=config.gamma)
    else:
        scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: 1.0)
    return optimizer, scheduler


#: Fewer optimisation steps than this in a whole run get a warning (tiny folders of pictures).
FEW_STEPS = 100


def evaluate(model: ConvAutoencoderNet, images: torch.Tensor | np.ndarray, batch_size: int = 2000,
             channels_last: bool = False, beta: float = 1.0) -> dict[str, float]:
    """Scores of uint8 ``images`` (N×H×W or N×C×H×W) in eval mode, each picture decoded from its code (a
    VAE's posterior mean): ``mse`` per pixel, and for a VAE ``kl`` (nats per image) and ``objective``
    (cross-entropy + ``beta`` · KL, per pixel); ``code_mean`` and ``code_std``, the mean and standard
    deviation of every code number over the images (lists)."""
    data = torch.as_tensor(images)
    if data.ndim == 3:
        data = data.unsqueeze(1)
    if len(data) == 0:
        return {"mse": math.nan}
    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    sq = bce = kl = 0.0
    s1 = s2 = 0.0
    with torch.inference_mode():
        for start in range(0, len(data), batch_size):
            x = data[start:start + batch_size].to(device, torch.float32).div_(255.0)
            if channels_last:
                x = x.contiguous(memory_format=torch.channels_last)
            mu, logvar = model.encode_stats(x)
            recon = model._decode(mu)
            sq += float(F.mse_loss(recon, x, reduction="sum"))
            flat = mu.reshape(len(mu), -1)
            # Sums in float64 (Apple's MPS has no float64: there they are summed on the CPU).
            flat = flat.cpu().double() if flat.device.type == "mps" else flat.double()
            s1, s2 = s1 + flat.sum(0), s2 + flat.pow(2).sum(0)
            if logvar is not None:
                bce += float(F.binary_cross_entropy(recon, x, reduction="sum"))
                kl += float(kl_divergence(mu, logvar).sum())
    model.train(was_training)
    mean = s1 / len(data)
    std = (s2 / len(data) - mean.pow(2)).clamp_min(0).sqrt()
    scores = {"mse": sq / data.numel(), "code_mean": mean.float().tolist(), "code_std": std.float().tolist()}
    if model.variational:
        scores.update(kl=kl / len(data), objective=(bce + beta * kl) / data.numel())
    return scores


def evaluate_mse(model: ConvAutoencoderNet, images: torch.Tensor | np.ndarray, batch_size: int = 2000,
                 channels_last: bool = False) -> float:
    """Mean squared reconstruction error per pixel of uint8 ``images`` (N×H×W or N×C×H×W), in eval mode."""
    return evaluate(model, images, batch_size, channels_last)["mse"]


class _StopFlag:
    """The first SIGINT asks the loop to stop after the current batch; a second one raises at once."""

    def __init__(self, progress: Progress):
        self.requested = False
        self._progress = progress
        self._previous = None

    def __enter__(self):
        if threading.current_thread() is threading.main_thread():
            self._previous = signal.signal(signal.SIGINT, self._handle)
        return self

    def _handle(self, signum, frame):
        if self.requested:
            raise KeyboardInterrupt
        self.requested = True
        self._progress("interrupt received: stopping after this batch (Ctrl-C again to stop at once)")

    def __exit__(self, *exc):
        if self._previous is not None:
            signal.signal(signal.SIGINT, self._previous)
        return False


def _check_resumable(ckpt: dict, config, data_info: dict, path: Path) -> None:
    stored = ckpt.get("config", {})
    for name, value in config.settings().items():
        if name in _RESUMABLE_CHANGES or name not in stored or (name == "beta" and config.model == "ae"):
            continue  # (beta means nothing to a plain autoencoder)
        if stored[name] != value:
            raise LatentAtlasError(
                f"--resume: {name}={value!r} differs from the interrupted run's {name}={stored[name]!r} "
                f"(stored in {path}); drop the option or start a new run in another --out folder")
    if ckpt["model_config"]["downsample"] != config.downsample:  # (checkpoints from before it: "pool")
        raise LatentAtlasError(f"--resume: downsample={config.downsample!r} differs from the interrupted run's "
                               f"{ckpt['model_config']['downsample']!r} (stored in {path})")
    if ckpt["model_config"]["upsample"] != getattr(config, "upsample", "transpose"):  # (from before it: "transpose")
        raise LatentAtlasError(f"--resume: upsample={config.upsample!r} differs from the interrupted run's "
                               f"{ckpt['model_config']['upsample']!r} (stored in {path})")
    if "chunk_size" not in stored and chunk_count(config, torch.device("cpu")) > 1:  # from before it: whole batches
        raise LatentAtlasError(f"--resume: chunk_size={config.chunk_size!r} differs from the interrupted run's "
                               f"(whole batches: chunk_size=None, stored in {path})")
    for name, old in (("model", "ae"), ("beta", 1.0)):  # checkpoints from before the VAE: plain autoencoders
        if name not in stored and getattr(config, name) != old and not (name == "beta" and config.model == "ae"):
            raise LatentAtlasError(f"--resume: {name}={getattr(config, name)!r} differs from the interrupted "
                                   f"run's {name}={old!r} (stored in {path})")
    if config.schedule == "onecycle" and stored.get("epochs") != config.epochs:
        raise LatentAtlasError(
            f"--resume: epochs={config.epochs} differs from the interrupted run's epochs={stored.get('epochs')}; "
            f"the one-cycle schedule is planned over all epochs, so it cannot be stretched (use "
            f"--schedule exponential or constant for open-ended runs)")
    stored_data = dict(ckpt.get("data", {}))
    for old, new in (("n_test", "n_validation"), ("test_crc32", "validation_crc32")):
        if old in stored_data and new not in stored_data:  # checkpoints from before the rename
            stored_data[new] = stored_data.pop(old)
    stored_data.setdefault("channels", 1)
    for name, value in data_info.items():
        if stored_data.get(name) != value:
            raise LatentAtlasError(
                f"--resume: the data differ from the interrupted run's ({name}: {value!r} now, "
                f"{stored_data.get(name)!r} in {path}); pass the same data and --limit")


@contextlib.contextmanager
def torch_threads(n: int | None) -> Iterator[None]:
    """Run the block with ``torch.set_num_threads(n)`` (``None``: leave it), restoring the old count after."""
    saved = torch.get_num_threads()
    if n is not None:
        torch.set_num_threads(int(n))
    try:
        yield
    finally:
        torch.set_num_threads(saved)


def resolve_resume(resume: str | os.PathLike) -> Path:
    """The checkpoint to resume from: ``resume`` itself, or ``last.pt`` in it when it is a run folder."""
    path = Path(resume)
    if path.is_dir():
        path = path / LAST_CHECKPOINT
        if not path.is_file():
            raise LatentAtlasError(f"--resume: no checkpoint {path} to resume from; run without --resume first")
    elif not path.is_file():
        raise LatentAtlasError(f"--resume: {path}: no such checkpoint or run folder")
    return path


def _best_of(last_path: Path, last: dict) -> tuple[dict, Path | None]:
    """The checkpoint of the best epoch that ``last`` names: ``best.pt`` beside it when that holds the named
    epoch, else ``last`` itself when it is that epoch (a kill came between writing ``last.pt`` and
    ``best.pt``). Returns it and the path of a ``best.pt`` that needs rewriting (None when it is right)."""
    best_epoch = int(last["history"].get("best_epoch") or 0)
    best_path = last_path.with_name(BEST_CHECKPOINT)
    held = None
    if best_path.is_file():
        try:
            best = read_checkpoint(best_path)
            held = best["epoch"]
            if held == best_epoch:
                return best, None
        except LatentAtlasError:
            held = "unreadable"
    if int(last["epoch"]) == best_epoch:
        return last, best_path
    raise LatentAtlasError(
        f"--resume: {last_path} names epoch {best_epoch} as the best, but {best_path} "
        f"{'is missing' if held is None else f'holds epoch {held}' if held != 'unreadable' else 'is unreadable'}; "
        f"the best weights are lost, start a new run")


class TrainingInterrupted(KeyboardInterrupt):
    """Ctrl-C before the first epoch was completed: there is no model to return. ``history`` says what ran."""

    def __init__(self, history: "History"):
        super().__init__("interrupted before the first epoch was completed")
        self.history = history


@dataclass
class TrainResult:
    """What :func:`run_training` returns: the network after the last completed epoch (``model``), the weights
    of the epoch with the lowest validation loss (``best_state``, a state dict; None when no epoch completed) and
    the :class:`History`; ``code_stats`` holds the mean and standard deviation of every code number over the
    validation images at the best epoch (``{"mean": [...], "std": [...]}``)."""

    model: ConvAutoencoderNet
    best_state: dict[str, torch.Tensor] | None
    history: History
    code_stats: dict[str, list[float]] | None = None


def _write_checkpoints(last_path: Path, best_path: Path, state: dict[str, Any], is_best: bool) -> None:
    """``last.pt`` then, for a best epoch, ``best.pt``. Both record their epoch; a kill between the two
    writes is found and repaired on resume (see :func:`_best_of`)."""
    save_checkpoint(last_path, **state)
    if is_best:
        save_checkpoint(best_path, **state)


def run_training(train: ImageSet, validation: ImageSet, config=None, *,
                 out_dir: str | os.PathLike | None = None, resume: str | os.PathLike | None = None,
                 progress: Progress | ProgressCallback | None = None,
                 on_batch: Callable[[int, int, float], None] | None = None) -> TrainResult:
    """Train a :class:`ConvAutoencoderNet` on ``train``, measuring the validation loss after every epoch.

    Parameters
    ----------
    train, validation : ImageSet
        Training and validation images (same size and channels). The validation images pick the kept epoch.
    config : ConvAutoencoder
        The estimator whose parameters say what to train and how (default ``ConvAutoencoder()``); only its
        parameters are read.
    out_dir : path, optional
        Folder for ``last.pt`` (the last completed epoch) and ``best.pt`` (lowest validation loss), written
        atomically after every epoch. Without it nothing is written.
    resume : path, optional
        A checkpoint (or a run folder holding ``last.pt``) to continue from; the result is the same as an
        uninterrupted run's (on the same number of threads, which is taken from the checkpoint unless
        ``config.num_threads`` says otherwise). ``best.pt`` beside it is checked to hold the best epoch
        ``last.pt`` names.
    progress : Progress or callable, optional
        Where progress lines go (default: the ``latentatlas`` logger only).
    on_batch : callable, optional
        ``on_batch(epoch, batch, loss)`` after every batch; a KeyboardInterrupt raised there acts like Ctrl-C.

    Returns
    -------
    TrainResult
        A Ctrl-C returns the completed epochs with ``history.interrupted=True``; the checkpoints keep the
        last and best completed epoch.

    Example
    -------
    >>> result = run_training(train, validation, ConvAutoencoder(epochs=1))  # doctest: +SKIP
    >>> result.history.validation_loss  # doctest: +SKIP
    [0.0123]
    """
    config = _settings(config)
    if len(train) == 0 or len(validation) == 0:
        raise LatentAtlasError(f"need at least one training and one validation image, got {len(train)} and "
                               f"{len(validation)}")
    if train.shape != validation.shape or train.channels != validation.channels:
        raise LatentAtlasError(f"training images are {_describe(train)} but validation images "
                               f"{_describe(validation)}; they must have the same size and channels")
    progress = as_progress(progress, "images train")
    device = select_device(config.device)
    resume_path = None if resume is None else resolve_resume(resume)
    threads = None
    if device.type == "cpu":
        threads = config.num_threads
        if threads is None and resume_path is not None:
            stored = read_checkpoint(resume_path).get("history", {}).get("threads")
            threads = stored if isinstance(stored, int) and not isinstance(stored, bool) and stored > 0 else None
        threads = threads or default_threads(chunk_count(config, device, batch_size_for(config, len(train))))
    with torch_threads(threads):
        return _train(train, validation, config, device, Path(out_dir) if out_dir is not None else None,
                      resume_path, progress, on_batch)


def _describe(images: ImageSet) -> str:
    return f"{images.shape[0]}×{images.shape[1]}" + ("" if images.channels == 1 else f"×{images.channels}")


def _as_tensor(images: ImageSet, device: torch.device) -> torch.Tensor:
    t = torch.from_numpy(np.ascontiguousarray(images.images))
    return (t.unsqueeze(1) if t.ndim == 3 else t).to(device)


def _train(train: ImageSet, validation: ImageSet, config, device: torch.device, out: Path | None,
           resume: Path | None, progress: Progress, on_batch) -> TrainResult:
    negative_slope = float(config.negative_slope)
    ckpt = read_checkpoint(resume) if resume is not None else None
    # A resumed run keeps the network of its checkpoint (one from before full_edges has the older one).
    full_edges = ckpt["model_config"]["full_edges"] if ckpt is not None else True
    model = build_model(config, train.shape, negative_slope, train.channels, full_edges).to(device)
    memory_format = torch.channels_last if config.channels_last else torch.contiguous_format
    model = model.to(memory_format=memory_format)
    n = len(train)
    batch_size = batch_size_for(config, n)
    steps_per_epoch = math.ceil(n / batch_size)
    peak_lr = lr_for(config, batch_size)
    optimizer, scheduler = _optimizer_and_scheduler(model, config, steps_per_epoch, device, peak_lr)
    data_info = {"n_train": n, "n_validation": len(validation), "image_shape": list(train.shape),
                 "channels": train.channels, "train_crc32": _fingerprint(train.images),
                 "validation_crc32": _fingerprint(validation.images)}
    dtype = autocast_dtype(config.amp, device)
    scaler = torch.amp.GradScaler(device.type) if needs_grad_scaler(dtype, device) else None
    history = History(batches_per_epoch=steps_per_epoch, device=str(device),
                      threads=torch.get_num_threads() if device.type == "cpu" else 0,
                      precision=_dtype_name(dtype), batch_size=batch_size)
    last_path = out / LAST_CHECKPOINT if out else None
    best_path = out / BEST_CHECKPOINT if out else None
    best_state: dict[str, torch.Tensor] | None = None
    best_stats: dict[str, list[float]] | None = None
    vae = config.model == "vae"

    start_epoch = 0
    if resume is not None:
        for key in ("optimizer_state", "scheduler_state"):
            if not isinstance(ckpt.get(key), dict):
                raise LatentAtlasError(f"--resume: {resume} has no {key}; it is not a training checkpoint "
                                       f"(resume from a run's last.pt)")
        _check_resumable(ckpt, config, data_info, resume)
        if ckpt["model_config"]["negative_slope"] != float(negative_slope):
            raise LatentAtlasError(f"--resume: negative_slope={negative_slope!r} differs from the interrupted "
                                   f"run's {ckpt['model_config']['negative_slope']!r} (stored in {resume})")
        try:
            model.load_state_dict(network_from_checkpoint(ckpt, resume).state_dict())
            optimizer.load_state_dict(ckpt["optimizer_state"])
            for group in optimizer.param_groups:  # (the stored flags are the machine's it ran on, not this one's)
                group["fused"], group["foreach"] = _fused(device), None
            scheduler.load_state_dict(ckpt["scheduler_state"])
            if scaler is not None and isinstance(ckpt.get("scaler_state"), dict):
                scaler.load_state_dict(ckpt["scaler_state"])
            history = History.from_dict({**ckpt["history"], "device": str(device), "interrupted": False,
                                         "threads": history.threads, "precision": history.precision,
                                         "batch_size": history.batch_size})
        except (ValueError, KeyError, TypeError, RuntimeError) as exc:
            if isinstance(exc, LatentAtlasError):
                raise
            raise LatentAtlasError(f"--resume: {resume}: damaged training state "
                                   f"({type(exc).__name__}: {printable(str(exc)).splitlines()[0][:120]})") from None
        start_epoch = int(ckpt["epoch"])
        if history.epochs_completed != start_epoch:
            raise LatentAtlasError(f"--resume: {resume} holds epoch {start_epoch} but its history has "
                                   f"{history.epochs_completed} epochs; the file is damaged")
        best, stale = _best_of(resume, ckpt) if start_epoch else (None, None)
        if best is not None:
            best_state = {k: v.clone() for k, v in best["model_state"].items()}
            best_stats = best.get("code_stats") if isinstance(best.get("code_stats"), dict) else None
        if stale is not None:
            progress(f"{stale} did not hold the best epoch {history.best_epoch} (a run was killed between "
                     f"writing {LAST_CHECKPOINT} and {BEST_CHECKPOINT}); restoring it from {resume}")
        if out is not None and best is not None:
            target = best_path
            source = resume if best is ckpt else resume.with_name(BEST_CHECKPOINT)
            if stale is not None or source.resolve() != target.resolve():
                with atomic_path(target, suffix=".pt") as tmp:
                    shutil.copyfile(source, tmp)
        progress(f"resuming from {resume} after epoch {start_epoch} "
                 f"(best validation MSE {history.best_validation_loss:.5f} at epoch {history.best_epoch})")
        if start_epoch >= config.epochs:
            progress(f"already trained for {start_epoch} epochs; pass a larger --epochs to continue")
    if out:
        history.checkpoint, history.best_checkpoint = str(last_path), str(best_path)

    data = _as_tensor(train, device)
    validation_data = _as_tensor(validation, device)
    what = "variational autoencoder (beta %g)" % config.beta if vae else "autoencoder"
    progress(f"{what}: {n} training and {len(validation)} validation images {_describe(train)}, "
             f"code {model.code_size} numbers, {config.epochs} epoch{'s' if config.epochs != 1 else ''} of "
             f"{steps_per_epoch} batches of {batch_size} (peak learning rate {peak_lr:.3g}) on "
             f"{device} "
             f"({torch.get_num_threads()} thread{'s' if torch.get_num_threads() != 1 else ''})")
    total_steps = config.epochs * steps_per_epoch
    if total_steps < FEW_STEPS and start_epoch < config.epochs:
        # A one-cycle schedule spends its first and last steps near a zero learning rate: a few steps learn
        # next to nothing, and the reconstructions would look like noise with no hint why.
        progress(f"warning: only {total_steps} optimisation step{'s' if total_steps != 1 else ''} in all "
                 f"({n} training images, batches of {batch_size}, {config.epochs} epochs): the network "
                 f"will barely learn; raise --epochs or lower --batch-size (a few hundred steps at least)")

    step = _Step(model, config, device, dtype, scaler, optimizer, progress, batch_size)
    history.compiled = step.compiled
    sync_every_batch = device.type == "cpu" or on_batch is not None  # a GPU is left to run ahead otherwise
    model.train()
    with _StopFlag(progress) as stop, _cudnn_benchmark(device), contextlib.closing(step):
        for epoch in range(start_epoch, config.epochs):
            order = torch.from_numpy(epoch_permutation(n, config.seed, epoch)).to(device)
            noise = _noise_generator(config.seed, epoch, device) if vae else None
            losses: list = []   # floats, or tensors on the device until the epoch ends
            mses: list = []
            kls: list = []
            t0 = time.perf_counter()
            try:
                for b in range(steps_per_epoch):
                    idx = order[b * batch_size:(b + 1) * batch_size]
                    x = data[idx].to(torch.float32).div_(255.0).contiguous(memory_format=memory_format)
                    eps = (torch.randn((len(x), *model.code_shape), generator=noise, device=device,
                                       dtype=torch.float32) if vae else None)
                    loss, mse, kl = step(x, eps)
                    scheduler.step()
                    if sync_every_batch or (b + 1) % config.log_every == 0:
                        value = float(loss)
                        _check_finite(value, epoch, b, peak_lr)
                    losses.append(loss)
                    mses.append(mse)
                    if kl is not None:
                        kls.append(kl)
                    if (b + 1) % config.log_every == 0:
                        rate = (b + 1) / (time.perf_counter() - t0)
                        progress(f"epoch {epoch + 1}/{config.epochs} batch {b + 1}/{steps_per_epoch} "
                                 f"loss {value:.5f} lr {scheduler.get_last_lr()[0]:.2e} ({rate:.1f} batches/s)")
                    if on_batch is not None:
                        on_batch(epoch, b, value)
                    if stop.requested:
                        raise KeyboardInterrupt
            except KeyboardInterrupt:
                history.interrupted = True
                where = (f"checkpoints of epoch {history.epochs_completed} are in {out}"
                         if out and history.epochs_completed else "no epoch was completed")
                progress(f"interrupted in epoch {epoch + 1} after {len(losses)} batches; {where}")
                break
            epoch_losses, epoch_mse, epoch_kl = _values(losses), _values(mses), _values(kls)
            seconds = time.perf_counter() - t0
            for b, value in enumerate(epoch_losses):
                _check_finite(value, epoch, b, peak_lr)
            sizes = np.minimum(batch_size, n - batch_size * np.arange(steps_per_epoch))
            history.batch_loss.extend(epoch_losses)
            history.train_loss.append(float(np.dot(epoch_mse, sizes) / n))
            scores = evaluate(model, validation_data, config.eval_batch_size, config.channels_last, config.beta)
            history.validation_loss.append(scores["mse"])
            if vae:
                history.train_kl.append(float(np.dot(epoch_kl, sizes) / n))
                history.validation_kl.append(scores["kl"])
                history.validation_objective.append(scores["objective"])
            history.seconds_per_epoch.append(seconds)
            history.lr.append(float(scheduler.get_last_lr()[0]))
            history.compiled = step.compiled
            is_best = history.criterion[-1] <= min(history.criterion)
            stats = {"mean": scores["code_mean"], "std": scores["code_std"]}
            if is_best:
                history.best_epoch = epoch + 1
                best_state = {k: v.detach().to("cpu", copy=True) for k, v in model.state_dict().items()}
                best_stats = stats
            if out:
                extra = {"data": data_info, "code_stats": stats}
                if scaler is not None:
                    extra["scaler_state"] = scaler.state_dict()
                state = dict(model=model, optimizer=optimizer, scheduler=scheduler, epoch=epoch + 1,
                             history=history.to_dict(), config=config.settings(), extra=extra)
                _write_checkpoints(last_path, best_path, state, is_best)
            kl_text = (f", KL {history.train_kl[-1]:.1f} / {history.validation_kl[-1]:.1f} nats, validation "
                       f"objective {history.validation_objective[-1]:.5f}" if vae else "")
            progress(f"epoch {epoch + 1}/{config.epochs}: train MSE {history.train_loss[-1]:.5f}, validation MSE "
                     f"{history.validation_loss[-1]:.5f}{kl_text}{' (best)' if is_best else ''}, {seconds:.1f} s")
            if stop.requested:
                history.interrupted = epoch + 1 < config.epochs
                break
    model.eval()
    return TrainResult(model=model, best_state=best_state, history=history, code_stats=best_stats)


def _dtype_name(dtype: torch.dtype | None) -> str:
    return {None: "float32", torch.bfloat16: "bfloat16", torch.float16: "float16"}[dtype]


def _values(items: list) -> list[float]:
    """Per-batch values as floats: tensors left on the device are fetched in one transfer."""
    if items and isinstance(items[0], torch.Tensor):
        return torch.stack(items).float().cpu().tolist()
    return [float(v) for v in items]


def _check_finite(value: float, epoch: int, batch: int, lr: float) -> None:
    if not math.isfinite(value):
        raise LatentAtlasError(f"training diverged (loss {value}) at epoch {epoch + 1}, batch {batch + 1}; lower "
                               f"--lr (now {lr:.3g})")


class _Step:
    """One optimisation step: the forward pass (autocast to ``dtype`` when given, through ``torch.compile``
    when asked), the loss in float32, the backward pass (through the gradient scaler for float16) and the
    optimiser step. Returns the detached ``(objective, mse, kl)`` tensors of the batch (``kl`` None for a
    plain autoencoder).

    A compiled step that fails (no compiler, an unsupported operation) is said once in the progress lines and
    replaced by the eager one; the batch is then done again, eagerly, from the same weights."""

    def __init__(self, model: ConvAutoencoderNet, config, device: torch.device, dtype, scaler, optimizer,
                 progress: Progress, batch_size: int | None = None):
        self.model, self.device, self.dtype, self.scaler, self.optimizer = model, device, dtype, scaler, optimizer
        self.beta, self.vae, self.progress = float(config.beta), config.model == "vae", progress
        self.forward = model.train_forward
        self.compiled = False
        self._untried = False
        self.chunks = chunk_count(config, device, batch_size)
        self.chunk_size = config.chunk_size if self.chunks > 1 else None
        self.workers = min(self.chunks, torch.get_num_threads()) if not should_compile(config.compile, device) else 1
        self._pool = None
        if self.chunks > 1:
            self._setup_chunks(self.workers)
        if should_compile(config.compile, device):
            try:
                self.forward = torch.compile(model.train_forward)
                self.compiled = self._untried = True
            except Exception as exc:  # torch raises many kinds (no compiler, unsupported platform)
                self._fall_back(exc)

    def _fall_back(self, exc: BaseException) -> None:
        first = printable(str(exc).strip().split("\n")[0])[:160]
        self.progress(f"torch.compile failed ({type(exc).__name__}: {first}); training without it")
        self.forward, self.compiled, self._untried = self.model.train_forward, False, False

    def __call__(self, x: torch.Tensor, eps: torch.Tensor | None):
        if not self._untried:
            return self._step(x, eps)
        try:
            out = self._step(x, eps)
        except LatentAtlasError:
            raise
        except Exception as exc:
            self.optimizer.zero_grad(set_to_none=True)
            self._fall_back(exc)
            return self._step(x, eps)
        self._untried = False
        return out

    def _setup_chunks(self, workers: int) -> None:
        # One network per chunk sharing the parameters (read-only during the passes) but each with its own
        # BatchNorm running statistics, which every chunk's forward pass updates in place: threads must not
        # update the same buffers. The statistics are averaged after each step.
        import copy

        self.params = list(self.model.parameters())
        self.nets = [self.model]
        for _ in range(1, self.chunks):
            net = copy.deepcopy(self.model).train()
            for (_, mine), (_, theirs) in zip(net.named_modules(), self.model.named_modules()):
                for name, param in theirs._parameters.items():
                    mine._parameters[name] = param
            self.nets.append(net)
        self.buffers = [[b for name, b in net.named_buffers() if not name.endswith("num_batches_tracked")]
                        for net in self.nets]
        if workers > 1:
            from concurrent.futures import ThreadPoolExecutor

            # Each worker thread convolves with one intra-op thread per share of the cores (set per thread:
            # torch's thread count is the calling thread's).
            intra = max(1, torch.get_num_threads() // workers)
            torch.set_num_threads(intra)  # the caller's torch_threads restores it
            self._pool = ThreadPoolExecutor(workers - 1, thread_name_prefix="latentatlas-chunk",
                                            initializer=torch.set_num_threads, initargs=(intra,))

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown()
            self._pool = None

    def _chunk(self, i: int, x: torch.Tensor, eps: torch.Tensor | None, weight: float):
        """Chunk ``i``'s gradients of its share of the batch's objective (``weight`` = its share of the images)
        and its weighted (objective, mse, kl)."""
        net = self.nets[i]
        forward = self.forward if i == 0 else net.train_forward
        with autocast(self.device, self.dtype):
            recon, mu, logvar = forward(x, eps)
        if self.vae:
            loss, mse, kl = vae_loss(recon.float(), x, mu.float(), logvar.float(), self.beta)
        else:
            loss = mse = F.mse_loss(recon.float(), x)
            kl = None
        grads = torch.autograd.grad(loss * weight, self.params)
        return grads, loss.detach() * weight, mse.detach() * weight, None if kl is None else kl * weight

    def _chunked_step(self, x: torch.Tensor, eps: torch.Tensor | None):
        # as equal as the images allow: a batch of 50 in chunks of at most 48 is 25 + 25, not 48 + 2
        n = len(x)
        k = math.ceil(n / self.chunk_size)
        cuts = [n * i // k for i in range(k + 1)]
        bounds = list(zip(cuts[:-1], cuts[1:]))
        jobs = [(i, x[a:b], None if eps is None else eps[a:b], (b - a) / n) for i, (a, b) in enumerate(bounds)]
        workers = min(self.workers, len(jobs))

        def run(part):
            return [self._chunk(*job) for job in part]

        parts = [jobs[w::workers] for w in range(workers)]
        futures = [self._pool.submit(run, part) for part in parts[1:]] if workers > 1 else []
        done = {job[0]: out for job, out in zip(parts[0], run(parts[0]))}
        for part, future in zip(parts[1:], futures):
            done.update({job[0]: out for job, out in zip(part, future.result())})
        results = [done[i] for i in range(len(jobs))]
        # sums in chunk order, whatever thread finished first: the step does not depend on the thread count
        for k, param in enumerate(self.params):
            grad = results[0][0][k]
            for r in results[1:]:
                grad = grad + r[0][k]
            param.grad = grad
        self.optimizer.step()
        # every network starts the next step from the mean statistics of the chunks just run (also after a
        # short last batch that used fewer networks: a resumed run's copies start from the model's)
        used = len(jobs)
        with torch.no_grad():
            for k in range(len(self.buffers[0])):
                mean = torch.stack([self.buffers[i][k] for i in range(used)]).mean(0)
                for buffers in self.buffers:
                    buffers[k].copy_(mean)
        loss, mse, kl = results[0][1], results[0][2], results[0][3]
        for r in results[1:]:
            loss, mse = loss + r[1], mse + r[2]
            kl = None if kl is None else kl + r[3]
        return loss, mse, kl

    def _step(self, x: torch.Tensor, eps: torch.Tensor | None):
        if self.chunks > 1:
            return self._chunked_step(x, eps)
        with autocast(self.device, self.dtype):
            recon, mu, logvar = self.forward(x, eps)
        if self.vae:
            loss, mse, kl = vae_loss(recon.float(), x, mu.float(), logvar.float(), self.beta)
        else:
            loss = mse = F.mse_loss(recon.float(), x)
            kl = None
        self.optimizer.zero_grad(set_to_none=True)
        if self.scaler is not None:
            self.scaler.scale(loss).backward()
            self.scaler.step(self.optimizer)
            self.scaler.update()
        else:
            loss.backward()
            self.optimizer.step()
        return loss.detach(), mse.detach(), kl


def train_autoencoder(train: ImageSet, validation: ImageSet, config=None,
                      out_dir: str | os.PathLike | None = None, resume: bool | str | os.PathLike | None = None,
                      quiet: bool = False, on_batch: Callable[[int, int, float], None] | None = None) -> History:
    """:func:`run_training`, returning only the :class:`History`. ``resume=True`` continues from
    ``out_dir/last.pt``."""
    if resume is True:
        if out_dir is None:
            raise LatentAtlasError("resume=True needs out_dir, the folder holding the interrupted run's last.pt")
        resume = out_dir
    return run_training(train, validation, config, out_dir=out_dir, resume=resume or None,
                        progress=Progress("images train", quiet), on_batch=on_batch).history
