"""The convolutional autoencoder networks (torch modules) and their checkpoints.

:class:`ConvAutoencoderNet` is the ``torch.nn.Module``, plain or variational; the scikit-learn-style
estimator that trains and uses it is :class:`latentatlas.images.autoencoder.ConvAutoencoder` (its ``model_``).

The class's default is the reference architecture (``downsample="pool"``, ``upsample="transpose"``): an encoder
of convolutions C→4→16 (max-pool) →32 (max-pool) →32 with LeakyReLU and one BatchNorm, turning a 28×28 image into
a 32×3×3 code (288 numbers), and a decoder of transposed convolutions back to C×28×28 with a Sigmoid. The
estimator's default is ``downsample="early"`` with ``upsample="direct"``: the same widths and code, but the two
halvings are done by the first two
convolutions themselves (C→4 and 4→16 with stride 2, no max-pools; 16→32 then runs at the pooled size), so no
encoder layer runs at full size. ``downsample="stride"`` halves in the second and third convolutions instead (4→16
and 16→32 with stride 2). A training epoch on Fashion-MNIST (batches of 64, one thread) cost 24 CPU seconds with the
reference network, 17–19 with "stride" and 14–15 with "early"; both reach a lower one-epoch MSE than the reference
network ("stride" the lowest; benchmarks/RESULTS-autoencoder.md). ``upsample="direct"`` drops the decoder's two
full-size layers (a 2×2 transposed convolution to 4 channels and a 3×3 one to C): its last 2×2 stride-2 transposed
convolution gives the C channels itself, which cut a training step by about a quarter and lowered the one-epoch
MSE. C, the number of channels, is 1 for grey and 3 for
colour images. Widths and the number of latent channels are parameters. Any image of at least 12×12 pixels works:
sides that are not multiples of 4 are padded (edge pixels repeated) up to the next multiple before encoding, and the
decoded picture is cropped back, so the loss only sees real pixels.

With ``variational=True`` (a VAE) the last encoder convolution gives twice the latent channels: the mean
and log-variance of a diagonal Gaussian over the code. :meth:`~ConvAutoencoderNet.encode` returns the mean
(the code every latent view uses), :meth:`~ConvAutoencoderNet.encode_stats` both.

Checkpoints hold only tensors and plain Python values, so ``torch.load(weights_only=True)`` reads them and
loading one never runs code from the file.
"""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from latentatlas.errors import LatentAtlasError, printable
from latentatlas.fsutil import atomic_path

CHECKPOINT_FORMAT = "latentatlas-conv-autoencoder"
CHECKPOINT_VERSION = 1
#: How the encoder halves the picture twice: "pool" (the reference: 3×3 convolutions at full size, each followed
#: by a 2× max-pool), "stride" (the second and third convolutions with stride 2, no pools) or "early" (the first
#: and second with stride 2: no encoder layer at full size).
DOWNSAMPLE = ("pool", "stride", "early")
#: How the decoder doubles the picture the last time: "transpose" (the reference: a 2×2 stride-2 transposed
#: convolution to the first encoder width, then a 3×3 one at full size to the image's channels) or "direct" (the
#: 2×2 stride-2 transposed convolution gives the image's channels itself: no layer runs at full size).
UPSAMPLE = ("transpose", "direct")
#: Smallest side the network takes (two 2× poolings, then a 3×3 stride-2 convolution).
MIN_SIDE = 12


def _padded(side: int) -> int:
    """The side after padding up to a multiple of 4."""
    return -(-side // 4) * 4


def _code_side(side: int) -> int:
    """Side of the code for an input side: padding to a multiple of 4, two 2× max-pools, then a 3×3
    convolution with stride 2."""
    return (_padded(side) // 4 - 3) // 2 + 1


class ConvAutoencoderNet(nn.Module):
    """Convolutional autoencoder for images ``N×C×H×W`` with values in [0, 1], plain or variational.

    Parameters
    ----------
    image_shape : (height, width) of the input; both at least 12.
    channels : widths of the three encoder convolutions before the code (reference: 4, 16, 32).
    latent_channels : channels of the code (reference: 32); the code has ``latent_channels × h × w`` numbers,
        ``h = w = 3`` for 28×28 images.
    negative_slope : slope of the LeakyReLU for negative inputs.
    in_channels : channels of the images: 1 (grey) or 3 (colour).
    variational : a variational autoencoder: the encoder gives a mean and a log-variance per code number.
    full_edges : where a pooled side is even (images of 32, 16, 48… pixels; not 28), the code convolution and
        the first transposed convolution take 4 instead of 3 rows or columns, so that the code covers the last
        pooled row and column and the decoder paints them from the code. Without it (the network of checkpoints
        written before it, which have no such field) the last pooled row reached the code only through its
        neighbours' windows, and the decoder painted the picture's last 3 rows and columns from its biases
        alone: a flat frame on the right and bottom of every reconstruction. For 28×28 images the two are the
        same network.
    downsample : "pool" (the reference network, and that of checkpoints written before this field), "stride"
        or "early": how the encoder halves the (padded) picture twice, by a 2× max-pool after the second and
        third 3×3 convolutions, by those convolutions themselves with stride 2, or by the first and second
        convolutions with stride 2. All give the same pooled sizes, code and decoder.
    upsample : "transpose" (the reference decoder, and that of checkpoints written before this field) or
        "direct": how the decoder's last stage doubles the picture (see :data:`UPSAMPLE`). "direct" has no
        layer at full size: on Fashion-MNIST a training step costs about a quarter less, and the one-epoch MSE was
        lower (benchmarks/RESULTS-autoencoder.md).
    """

    def __init__(self, image_shape: tuple[int, int] = (28, 28), channels: tuple[int, int, int] = (4, 16, 32),
                 latent_channels: int = 32, negative_slope: float = 0.01, in_channels: int = 1,
                 variational: bool = False, full_edges: bool = True, downsample: str = "pool",
                 upsample: str = "transpose"):
        super().__init__()
        image_shape = tuple(int(s) for s in image_shape)
        channels = tuple(int(c) for c in channels)
        if len(image_shape) != 2 or any(s < MIN_SIDE for s in image_shape):
            raise LatentAtlasError(
                f"image_shape={image_shape}: the autoencoder needs images of at least {MIN_SIDE}×{MIN_SIDE} pixels "
                f"(two 2× poolings, then a 3×3 stride-2 convolution); resize them (image_size)")
        if len(channels) != 3 or any(c < 1 for c in channels):
            raise LatentAtlasError(f"channels={channels}: expected three positive widths, e.g. (4, 16, 32)")
        if int(latent_channels) < 1:
            raise LatentAtlasError(f"latent_channels={latent_channels}: must be a positive integer")
        if downsample not in DOWNSAMPLE:
            raise LatentAtlasError(f"downsample={downsample!r}: expected one of {', '.join(DOWNSAMPLE)}")
        if upsample not in UPSAMPLE:
            raise LatentAtlasError(f"upsample={upsample!r}: expected one of {', '.join(UPSAMPLE)}")
        if isinstance(in_channels, bool) or int(in_channels) not in (1, 3):
            raise LatentAtlasError(f"in_channels={in_channels!r}: expected 1 (grey) or 3 (colour)")
        self.image_shape = image_shape
        self.channels = channels
        self.latent_channels = int(latent_channels)
        self.negative_slope = float(negative_slope)
        self.in_channels = int(in_channels)
        self.variational = bool(variational)
        self.full_edges = bool(full_edges)
        self.downsample = downsample
        self.upsample = upsample
        self._pad = (0, _padded(image_shape[1]) - image_shape[1], 0, _padded(image_shape[0]) - image_shape[0])
        c1, c2, c3, cz = *channels, self.latent_channels
        pooled = tuple(_padded(s) // 4 for s in image_shape)
        # The code convolution's kernel: 3, or 4 along an even pooled side (with full_edges), so that its last
        # window ends on the last pooled row (8 → 3 sees rows 0–7, not 0–6); the code side is the same.
        kernel = tuple(4 if self.full_edges and p % 2 == 0 else 3 for p in pooled)
        act = lambda: nn.LeakyReLU(self.negative_slope, inplace=True)  # noqa: E731
        # (Layers are made in their order in the network: the seed gives the same initial weights as before.)
        code = lambda: nn.Conv2d(c3, 2 * cz if self.variational else cz, kernel, stride=2)  # noqa: E731
        if downsample == "pool":
            self.encoder = nn.Sequential(
                nn.Conv2d(self.in_channels, c1, 3, padding=1), act(),
                nn.Conv2d(c1, c2, 3, padding=1), act(), nn.MaxPool2d(2),
                nn.Conv2d(c2, c3, 3, padding=1), nn.BatchNorm2d(c3), act(), nn.MaxPool2d(2),
                code(),
            )
        elif downsample == "stride":
            # Each halving by a stride-2 convolution: its output has a quarter of the positions of the same
            # convolution before a max-pool, so the two widest layers cost a quarter (padded side P → P/2 → P/4,
            # the pooled sizes, so the code and the decoder are those of "pool").
            self.encoder = nn.Sequential(
                nn.Conv2d(self.in_channels, c1, 3, padding=1), act(),
                nn.Conv2d(c1, c2, 3, stride=2, padding=1), act(),
                nn.Conv2d(c2, c3, 3, stride=2, padding=1), nn.BatchNorm2d(c3), act(),
                code(),
            )
        else:
            # "early": the first two convolutions halve (P → P/2 → P/4), the third keeps P/4: no encoder layer
            # runs at full size.
            self.encoder = nn.Sequential(
                nn.Conv2d(self.in_channels, c1, 3, stride=2, padding=1), act(),
                nn.Conv2d(c1, c2, 3, stride=2, padding=1), act(),
                nn.Conv2d(c2, c3, 3, padding=1), nn.BatchNorm2d(c3), act(),
                code(),
            )
        # Padding that makes the stride-2 transposed convolution land exactly on the pooled size (7 → 3 → 7; with
        # full_edges 3 → 8 by a 4-wide kernel, without it 3 → 7 + one row that only the bias reaches).
        out_pad = tuple(p - (2 * _code_side(s) + k - 2) for p, s, k in zip(pooled, image_shape, kernel))
        head = [nn.LeakyReLU(self.negative_slope),  # not in place: decode() must not change the caller's codes
                nn.ConvTranspose2d(cz, c3, kernel, stride=2, output_padding=out_pad), act(),
                nn.ConvTranspose2d(c3, c2, 2, stride=2), act()]
        if upsample == "transpose":
            last = [nn.ConvTranspose2d(c2, c1, 2, stride=2), act(),
                    nn.ConvTranspose2d(c1, self.in_channels, 3, padding=1)]
        else:
            # Each half-size position paints the 2×2 pixels it covers from its c2 features. The two full-size
            # layers of "transpose" took 35 % of a training step (4 and 1 channels, where oneDNN is least
            # efficient); without them the one-epoch MSE was lower, not higher (benchmarks/RESULTS-autoencoder.md).
            last = [nn.ConvTranspose2d(c2, self.in_channels, 2, stride=2)]
        self.decoder = nn.Sequential(*head, *last, nn.Sigmoid())

    @property
    def code_shape(self) -> tuple[int, int, int]:
        """Shape of one image's code, ``(latent_channels, h, w)``."""
        return (self.latent_channels, *(_code_side(s) for s in self.image_shape))

    @property
    def code_size(self) -> int:
        """Numbers in one image's code (288 for the reference architecture on 28×28 images)."""
        c, h, w = self.code_shape
        return c * h * w

    @property
    def input_shape(self) -> tuple[int, int, int]:
        """``(channels, height, width)`` of one input image."""
        return (self.in_channels, *self.image_shape)

    def config(self) -> dict[str, Any]:
        """The constructor's arguments as plain values (stored in checkpoints)."""
        return {"image_shape": list(self.image_shape), "channels": list(self.channels),
                "latent_channels": self.latent_channels, "negative_slope": self.negative_slope,
                "in_channels": self.in_channels, "variational": self.variational, "full_edges": self.full_edges,
                "downsample": self.downsample, "upsample": self.upsample}

    def _check_input(self, x: torch.Tensor) -> None:
        if x.ndim != 4 or tuple(x.shape[1:]) != self.input_shape:
            what = "grey" if self.in_channels == 1 else f"{self.in_channels}-channel colour"
            raise LatentAtlasError(
                f"expected images of shape N×{self.in_channels}×{self.image_shape[0]}×{self.image_shape[1]}, got "
                f"{'×'.join(map(str, x.shape))}; this model was built for {what} images of "
                f"{self.image_shape[0]}×{self.image_shape[1]}")

    def _encode(self, x: torch.Tensor) -> torch.Tensor:
        if any(self._pad):
            x = F.pad(x, self._pad, mode="replicate")
        return self.encoder(x)

    def encode_stats(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        """``(mean, log-variance)`` of the codes ``N×C×h×w`` of float images ``N×C×H×W`` in [0, 1]; the
        log-variance is None for a plain autoencoder."""
        self._check_input(x)
        z = self._encode(x)
        if not self.variational:
            return z, None
        mu, logvar = z.chunk(2, dim=1)
        return mu, logvar

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """Codes ``N×C×h×w`` of float images ``N×C×H×W`` in [0, 1] (a VAE's: the posterior mean)."""
        return self.encode_stats(x)[0]

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """Images ``N×C×H×W`` in [0, 1] from codes ``N×C×h×w`` (or flattened ``N×(C·h·w)``)."""
        if z.ndim == 2 and z.shape[1] == self.code_size:
            z = z.reshape(z.shape[0], *self.code_shape)
        if z.ndim != 4 or tuple(z.shape[1:]) != self.code_shape:
            raise LatentAtlasError(
                f"expected codes of shape N×{'×'.join(map(str, self.code_shape))} (or N×{self.code_size}), got "
                f"{'×'.join(map(str, z.shape))}")
        return self._decode(z)

    def _decode(self, z: torch.Tensor) -> torch.Tensor:
        y = self.decoder(z)
        if any(self._pad):
            y = y[..., :self.image_shape[0], :self.image_shape[1]]
        return y

    def train_forward(self, x: torch.Tensor, eps: torch.Tensor | None = None
                      ) -> tuple[torch.Tensor, torch.Tensor | None, torch.Tensor | None]:
        """The training pass: ``(reconstruction, mean, log-variance)``. A VAE decodes the sample
        ``mean + eps · exp(log-variance / 2)`` (``eps`` from N(0, I), shaped like the code, drawn by the caller
        so that it is seeded); a plain autoencoder decodes its code, and its mean and log-variance are None."""
        if not self.variational:
            return self.forward(x), None, None
        mu, logvar = self.encode_stats(x)
        return self._decode(mu + eps * torch.exp(0.5 * logvar)), mu, logvar

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """The reconstruction of ``x`` from its code (a VAE's: from the posterior mean)."""
        z = self._encode(x)
        if self.variational:
            z = z[:, :self.latent_channels]
        return self._decode(z)


def kl_divergence(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """KL(N(mu, exp(logvar)) ‖ N(0, 1)) of each image's code, in nats: ``-½ Σ (1 + logvar − mu² − exp(logvar))``
    summed over the code's numbers; shape ``(N,)``."""
    return -0.5 * (1 + logvar - mu.pow(2) - logvar.exp()).flatten(1).sum(1)


def images_to_tensor(images: np.ndarray, device: torch.device | str | None = None) -> torch.Tensor:
    """uint8 images ``N×H×W`` (grey) or ``N×C×H×W`` → float32 tensor ``N×C×H×W`` in [0, 1] (the model's input)."""
    images = np.asarray(images)
    if images.dtype != np.uint8 or images.ndim not in (3, 4):
        raise LatentAtlasError(f"expected uint8 images of shape N×H×W or N×C×H×W, got {images.dtype} {images.shape}")
    t = torch.from_numpy(np.ascontiguousarray(images))
    if t.ndim == 3:
        t = t.unsqueeze(1)
    return t.to(device or "cpu", torch.float32).div_(255.0)


def tensor_to_images(x: torch.Tensor) -> np.ndarray:
    """Float tensor ``N×C×H×W`` in [0, 1] → uint8 images ``N×H×W`` (C = 1) or ``N×C×H×W`` (for plots and
    thumbnails)."""
    out = x.detach().float().clamp(0, 1).mul(255).round().to(torch.uint8).cpu().numpy()
    return out[:, 0] if out.shape[1] == 1 else out


def save_checkpoint(path: str | os.PathLike, model: ConvAutoencoderNet, optimizer=None, scheduler=None,
                    epoch: int = 0, history: dict | None = None, config: dict | None = None,
                    extra: dict | None = None) -> Path:
    """Write a checkpoint atomically: model config and weights, optimizer and scheduler state, the number of
    completed epochs, the loss history and the training config (all plain values or tensors)."""
    state = {
        "format": CHECKPOINT_FORMAT, "version": CHECKPOINT_VERSION,
        "model_config": model.config(),
        "model_state": {k: v.detach().cpu() for k, v in model.state_dict().items()},
        "optimizer_state": optimizer.state_dict() if optimizer is not None else None,
        "scheduler_state": scheduler.state_dict() if scheduler is not None else None,
        "epoch": int(epoch), "history": history or {}, "config": config or {},
    }
    if extra:
        state.update(extra)
    path = Path(path)
    try:
        with atomic_path(path, suffix=".pt") as tmp:
            torch.save(state, tmp)
    except RuntimeError as exc:  # torch reports a full disk as "PytorchStreamWriter failed writing file …"
        raise LatentAtlasError(f"{path}: cannot write the checkpoint ({_write_failure(path, exc)})") from None
    return path


def _write_failure(path: Path, exc: BaseException) -> str:
    """Why writing beside ``path`` failed, in words: the disk is full, or the library's first line."""
    try:
        st = os.statvfs(path.parent)
        if st.f_bavail * st.f_frsize < 1 << 20:
            return "no space left on device"
    except OSError:
        pass
    first = printable(str(exc).strip().split("\n")[0])[:160]
    return f"{first}; is the disk full?" if "write" in first.lower() else first


#: Limits on a checkpoint's architecture, far above any sensible model: a crafted file cannot make the loader
#: allocate gigabytes before its weights are checked.
_MAX_WIDTH = 4096
_MAX_SIDE = 4096


def _model_config(mc: Any, path: Path) -> dict[str, Any]:
    """The checkpoint's ``model_config``, checked field by field (a crafted file gets a one-line error)."""
    if not isinstance(mc, dict):
        raise LatentAtlasError(f"{path}: checkpoint has no model_config (the architecture); it was not written "
                               "by latentatlas, or is damaged")

    def ints(name: str, n: int, lo: int, hi: int) -> tuple[int, ...]:
        value = mc.get(name)
        if (not isinstance(value, (list, tuple)) or len(value) != n
                or not all(isinstance(v, int) and not isinstance(v, bool) and lo <= v <= hi for v in value)):
            raise LatentAtlasError(f"{path}: model_config field '{name}' must be {n} integers in {lo}..{hi}, "
                                   f"got {printable(repr(value))[:80]}")
        return tuple(value)

    image_shape = ints("image_shape", 2, 12, _MAX_SIDE)
    channels = ints("channels", 3, 1, _MAX_WIDTH)
    latent = mc.get("latent_channels")
    if not isinstance(latent, int) or isinstance(latent, bool) or not 1 <= latent <= _MAX_WIDTH:
        raise LatentAtlasError(f"{path}: model_config field 'latent_channels' must be an integer in "
                               f"1..{_MAX_WIDTH}, got {printable(repr(latent))[:80]}")
    slope = mc.get("negative_slope", 0.01)
    if not isinstance(slope, (int, float)) or isinstance(slope, bool) or not math.isfinite(slope):
        raise LatentAtlasError(f"{path}: model_config field 'negative_slope' must be a number")
    in_channels = mc.get("in_channels", 1)  # checkpoints from before colour: grey
    if in_channels not in (1, 3) or isinstance(in_channels, bool):
        raise LatentAtlasError(f"{path}: model_config field 'in_channels' must be 1 or 3, got "
                               f"{printable(repr(in_channels))[:40]}")
    variational = mc.get("variational", False)
    if not isinstance(variational, bool):
        raise LatentAtlasError(f"{path}: model_config field 'variational' must be true or false")
    full_edges = mc.get("full_edges", False)  # checkpoints from before it: the network without
    if not isinstance(full_edges, bool):
        raise LatentAtlasError(f"{path}: model_config field 'full_edges' must be true or false")
    downsample = mc.get("downsample", "pool")  # checkpoints from before it: the max-pool network
    if downsample not in DOWNSAMPLE:
        raise LatentAtlasError(f"{path}: model_config field 'downsample' must be one of {', '.join(DOWNSAMPLE)}, got "
                               f"{printable(repr(downsample))[:40]}")
    upsample = mc.get("upsample", "transpose")  # checkpoints from before it: the transposed-convolution decoder
    if upsample not in UPSAMPLE:
        raise LatentAtlasError(f"{path}: model_config field 'upsample' must be one of {', '.join(UPSAMPLE)}, got "
                               f"{printable(repr(upsample))[:40]}")
    return {"image_shape": image_shape, "channels": channels, "latent_channels": latent,
            "negative_slope": float(slope), "in_channels": in_channels, "variational": variational,
            "full_edges": full_edges, "downsample": downsample, "upsample": upsample}


def read_checkpoint(path: str | os.PathLike, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """The checkpoint dict in ``path``, read with ``weights_only=True`` and checked to be ours.

    Raises :class:`LatentAtlasError` with one line naming the file when it is missing, empty, truncated,
    not a checkpoint, from a newer version, or lacks the architecture.
    """
    path = Path(path)
    if not path.is_file():
        raise LatentAtlasError(f"{path}: no such checkpoint file")
    if path.stat().st_size == 0:
        raise LatentAtlasError(f"{path}: not a readable checkpoint (the file is empty)")
    try:
        ckpt = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as exc:  # torch raises many types (pickle, zip, runtime, EOF) for a bad file
        first = printable(str(exc).strip().split("\n")[0])[:200]
        raise LatentAtlasError(f"{path}: not a readable checkpoint ({type(exc).__name__}: {first})") from None
    if not isinstance(ckpt, dict) or ckpt.get("format") != CHECKPOINT_FORMAT:
        raise LatentAtlasError(f"{path}: not a latentatlas autoencoder checkpoint")
    version = ckpt.get("version", 0)
    if not isinstance(version, int) or version > CHECKPOINT_VERSION:
        raise LatentAtlasError(f"{path}: checkpoint version {printable(repr(version))[:40]} is newer than this "
                               f"latentatlas understands ({CHECKPOINT_VERSION})")
    ckpt["model_config"] = _model_config(ckpt.get("model_config"), path)
    state = ckpt.get("model_state")
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise LatentAtlasError(f"{path}: checkpoint has no model_state (the weights)")
    epoch = ckpt.get("epoch", 0)
    if not isinstance(epoch, int) or isinstance(epoch, bool) or epoch < 0:
        raise LatentAtlasError(f"{path}: checkpoint field 'epoch' must be a non-negative integer")
    for name in ("history", "config"):
        if ckpt.get(name) is None:
            ckpt[name] = {}
        if not isinstance(ckpt[name], dict):
            raise LatentAtlasError(f"{path}: checkpoint field '{name}' must be a dictionary")
    return ckpt


def network_from_checkpoint(ckpt: dict[str, Any], path: str | os.PathLike = "checkpoint",
                            map_location: str | torch.device = "cpu") -> ConvAutoencoderNet:
    """The network a :func:`read_checkpoint` dict describes, with its weights, in eval mode."""
    mc = ckpt["model_config"]
    kwargs = dict(image_shape=mc["image_shape"], channels=mc["channels"], latent_channels=mc["latent_channels"],
                  negative_slope=mc["negative_slope"], in_channels=mc.get("in_channels", 1),
                  variational=mc.get("variational", False), full_edges=mc.get("full_edges", False),
                  downsample=mc.get("downsample", "pool"), upsample=mc.get("upsample", "transpose"))
    # Check the weights' shapes against a weightless (meta) copy first, so a crafted architecture costs nothing.
    try:
        with torch.device("meta"):
            expected = {k: tuple(v.shape) for k, v in ConvAutoencoderNet(**kwargs).state_dict().items()}
    except LatentAtlasError as exc:
        raise LatentAtlasError(f"{path}: {exc}") from None
    state = ckpt["model_state"]
    found = {k: tuple(v.shape) for k, v in state.items()}
    if found != expected:
        wrong = sorted(set(found) ^ set(expected)) or sorted(k for k in found if found[k] != expected[k])
        raise LatentAtlasError(f"{path}: weights do not fit the stored architecture (first mismatch: "
                               f"{printable(wrong[0])[:80]})")
    model = ConvAutoencoderNet(**kwargs)
    model.load_state_dict(state)
    return model.to(map_location).eval()


def load_checkpoint(path: str | os.PathLike, map_location: str | torch.device = "cpu"
                    ) -> tuple[ConvAutoencoderNet, dict[str, Any]]:
    """The network (in eval mode, on ``map_location``) and the whole checkpoint dict from ``path``."""
    ckpt = read_checkpoint(path, map_location)
    return network_from_checkpoint(ckpt, path, map_location), ckpt
