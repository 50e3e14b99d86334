"""Autoencoder training speed and quality: the reference pipeline against latentatlas, in one run.

The reference pipeline is what a torchvision tutorial does: a Dataset that turns every image into a PIL
image and then a float tensor (what ``transforms.ToTensor`` does), a DataLoader with 2 worker processes and
batches of 1024, Adam (lr 1e-3, weight decay 1e-4) and an exponential decay of 0.999 per step, the model
in the default memory format, the reference network (max-pooling encoder, ``ConvAutoencoderNet()``).
latentatlas trains with its defaults (the "fast" preset: the stride-2 encoder and "direct" decoder of the same
widths and code, batches of 96 sliced from the in-memory uint8 tensor and run in two chunks of 48 on two threads,
one-cycle LR, channels-last, fused AdamW), and
``--configs`` adds other batch:peak-lr[:downsample] settings beside them (``64:1e-2:pool`` trains the
reference network with latentatlas's loop).

Every configuration runs in a subprocess of its own, so that the memory allocator can differ (the
``latentatlas`` command preloads tcmalloc). Wall and CPU seconds (including DataLoader workers) are
measured for the training pass of each epoch; the test MSE after each epoch on the 10 000 test images.

    .venv/bin/python benchmarks/bench_autoencoder.py                      # full run, ~10 min on 2 quiet cores
    .venv/bin/python benchmarks/bench_autoencoder.py --epochs 1 --limit 6000   # smoke test
    .venv/bin/python benchmarks/bench_autoencoder.py --epochs 1 --only reference \
        --configs "128:1.5e-2,64:1e-2,32:6e-3" --repeats 2             # CPU s/epoch of batch sizes vs the reference
    .venv/bin/python benchmarks/bench_autoencoder.py --epochs 1 --only reference "latentatlas, glibc malloc" \
        --configs "64:1e-2:pool" --repeats 2                           # issue 17's Run H
    .venv/bin/python benchmarks/bench_autoencoder.py --profile stride   # per-layer CPU time of a training step
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent

CONFIGS = {
    # name: (pipeline, use tcmalloc)
    "reference": ("reference", False),
    "reference+tcmalloc": ("reference", True),
    "latentatlas, glibc malloc": ("latentatlas", False),
    "latentatlas (CLI default: tcmalloc)": ("latentatlas", True),
}


def _cpu_seconds() -> float:
    me, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime


def _load(limit):
    from latentatlas import read_images

    return read_images(split="train", limit=limit), read_images(split="test")


def run_reference(epochs: int, limit: int | None, seed: int) -> dict:
    import numpy as np
    import torch
    from PIL import Image

    from latentatlas.images.network import ConvAutoencoderNet
    from latentatlas.images.training import evaluate_mse

    train, test = _load(limit)

    class PerSample(torch.utils.data.Dataset):
        def __init__(self, images, labels):
            self.images, self.labels = images, labels

        def __len__(self):
            return len(self.images)

        def __getitem__(self, i):  # torchvision FashionMNIST + ToTensor
            img = Image.fromarray(self.images[i], mode="L")
            x = torch.from_numpy(np.array(img, np.uint8, copy=True)).unsqueeze(0).float().div(255)
            return x, int(self.labels[i])

    torch.manual_seed(seed)
    loader = torch.utils.data.DataLoader(PerSample(train.images, train.labels), batch_size=1024, shuffle=True,
                                         num_workers=2, generator=torch.Generator().manual_seed(seed))
    model = ConvAutoencoderNet()
    opt = torch.optim.Adam(model.parameters(), lr=1e-3, weight_decay=1e-4)
    sched = torch.optim.lr_scheduler.ExponentialLR(opt, gamma=0.999)
    out = {"seconds_per_epoch": [], "cpu_seconds_per_epoch": [], "test_mse": [], "steps_per_epoch": len(loader)}
    for _ in range(epochs):
        model.train()
        t0, c0 = time.perf_counter(), _cpu_seconds()
        for x, _ in loader:
            loss = torch.nn.functional.mse_loss(model(x), x)
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
        out["seconds_per_epoch"].append(time.perf_counter() - t0)
        out["cpu_seconds_per_epoch"].append(_cpu_seconds() - c0)
        out["test_mse"].append(evaluate_mse(model, test.images))
    return out


def run_latentatlas(epochs: int, limit: int | None, seed: int, batch_size: int | None = None,
                    lr: float | None = None, downsample: str | None = None) -> dict:
    from latentatlas.images.training import TrainConfig, batch_size_for, run_training

    train, test = _load(limit)
    cpu = []
    last = [_cpu_seconds()]

    def on_batch(epoch, batch, loss):
        if batch == 0:
            last[0] = _cpu_seconds()
        if batch == steps - 1:
            cpu.append(_cpu_seconds() - last[0])

    config = TrainConfig.from_preset("fast", epochs=epochs, seed=seed, log_every=10**9, batch_size=batch_size, lr=lr,
                                     downsample=downsample)
    steps = -(-len(train) // batch_size_for(config, len(train)))
    h = run_training(train, test, config, on_batch=on_batch).history  # the loop ConvAutoencoder.fit runs
    return {"seconds_per_epoch": h.seconds_per_epoch, "cpu_seconds_per_epoch": cpu, "test_mse": h.test_loss,
            "steps_per_epoch": h.batches_per_epoch, "threads": h.threads,
            "settings": {"batch_size": h.batch_size, "lr": config.lr, "downsample": config.downsample,
                         "upsample": config.upsample, "chunk_size": config.chunk_size}}


def profile_layers(downsample: str, batch_size: int = 64, steps: int = 100) -> None:
    """Print the CPU time of one training step (forward + backward + Adam, 1 thread, channels-last, random
    28×28 batches) per layer, from torch.profiler's operators grouped by input shape. Each operator goes to the
    first layer whose kind and shapes it fits, so activations of equal shape in the encoder and the decoder
    are counted on the encoder's row."""
    import collections

    import torch
    import torch.nn.functional as F
    from torch.profiler import ProfilerActivity, profile

    from latentatlas.images.network import ConvAutoencoderNet

    torch.set_num_threads(1)
    torch.manual_seed(0)
    model = ConvAutoencoderNet(downsample=downsample).to(memory_format=torch.channels_last)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3, weight_decay=1e-4)
    x = torch.rand(batch_size, 1, 28, 28).contiguous(memory_format=torch.channels_last)

    def step():
        loss = F.mse_loss(model(x), x)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    for _ in range(20):
        step()
    c0 = time.process_time()
    for _ in range(steps):
        step()
    plain = (time.process_time() - c0) / steps
    layers = {}

    def record(name):
        def hook(mod, inp, out):  # returns None: a forward hook's return value would replace the output
            layers.setdefault(name, (type(mod).__name__, tuple(inp[0].shape), tuple(out.shape)))
        return hook

    hooks = [m.register_forward_hook(record(name)) for name, m in model.named_modules() if name.count(".") == 1]
    step()
    for h in hooks:
        h.remove()
    forward = {"Conv2d": ("aten::mkldnn_convolution", "aten::_convolution"),
               "ConvTranspose2d": ("aten::mkldnn_convolution", "aten::_convolution"),
               "LeakyReLU": ("aten::leaky_relu_", "aten::leaky_relu"), "Sigmoid": ("aten::sigmoid",),
               "BatchNorm2d": ("aten::native_batch_norm",), "MaxPool2d": ("aten::max_pool2d_with_indices",)}
    backward = {"Conv2d": ("aten::convolution_backward",), "ConvTranspose2d": ("aten::convolution_backward",),
                "LeakyReLU": ("aten::leaky_relu_backward",), "Sigmoid": ("aten::sigmoid_backward",),
                "BatchNorm2d": ("aten::native_batch_norm_backward",),
                "MaxPool2d": ("aten::max_pool2d_with_indices_backward",)}
    with profile(activities=[ProfilerActivity.CPU], record_shapes=True) as prof:
        for _ in range(steps):
            step()
    rows: collections.Counter = collections.Counter()
    for e in prof.key_averages(group_by_input_shape=True):
        ms = e.self_cpu_time_total / steps / 1000
        shapes = [tuple(s) for s in e.input_shapes if s]
        key = "other (loss, autograd, allocation, copies)"
        if "Adam" in e.key:
            key = "Adam step"
        for name, (kind, ishape, oshape) in layers.items():
            if key != "other (loss, autograd, allocation, copies)":
                break
            conv = kind in ("Conv2d", "ConvTranspose2d")
            if e.key in backward.get(kind, ()) and shapes and shapes[0] == oshape and (
                    not conv or (len(shapes) > 1 and shapes[1] == ishape)):
                key = f"{name} {kind} {ishape[1:]}→{oshape[1:]}"
            elif e.key in forward.get(kind, ()) and shapes and shapes[0] == ishape:
                key = f"{name} {kind} {ishape[1:]}→{oshape[1:]}"
        if key.startswith("other") and e.key == "aten::fill_" and downsample == "pool" and shapes \
                and shapes[0][1:] == (16, 28, 28):
            key = "max-pool backward: zeroing the 16×28×28 gradient"
        rows[key] += ms
    total = sum(rows.values())
    print(f"downsample={downsample}, batch {batch_size}: {plain * 1000:.1f} CPU ms per step without the profiler, "
          f"{total:.1f} ms profiled; load average {os.getloadavg()[0]:.1f}")
    print("| layer (forward + backward) | ms per step | share |\n|---|---|---|")
    for key, ms in sorted(rows.items(), key=lambda kv: -kv[1]):
        print(f"| {key} | {ms:.2f} | {100 * ms / total:.0f} % |")


def worker(args) -> None:
    if args.worker == "reference":
        result = run_reference(args.epochs, args.limit, args.seed)
    else:
        result = run_latentatlas(args.epochs, args.limit, args.seed, args.batch_size, args.lr, args.downsample)
    result["ld_preload"] = os.environ.get("LD_PRELOAD", "")
    print(json.dumps(result))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--epochs", type=int, default=5, help="latentatlas epochs (default 5)")
    p.add_argument("--ref-epochs", type=int, default=1, help="reference epochs (default 1; ~50 s each)")
    p.add_argument("--speed-epochs", type=int, default=1,
                   help="epochs of the speed-only variants (reference+tcmalloc, latentatlas with glibc malloc)")
    p.add_argument("--limit", type=int, default=None, help="first N training images only")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--only", nargs="*", choices=list(CONFIGS), help="run only these configurations")
    p.add_argument("--json", type=Path, help="also write all results here")
    p.add_argument("--configs", default="",
                   help="extra latentatlas settings, comma-separated batch:peak-lr[:downsample] (glibc malloc), "
                        "e.g. '128:1.5e-2,32:6e-3:pool'")
    p.add_argument("--repeats", type=int, default=1, help="run every configuration this many times, interleaved")
    p.add_argument("--batch-size", type=int, help=argparse.SUPPRESS)
    p.add_argument("--lr", type=float, help=argparse.SUPPRESS)
    p.add_argument("--downsample", help=argparse.SUPPRESS)
    p.add_argument("--worker", choices=["reference", "latentatlas"], help=argparse.SUPPRESS)
    p.add_argument("--profile", choices=["pool", "stride", "early"],
                   help="only print the per-layer CPU time of a training step of this encoder (batch 64) and stop")
    args = p.parse_args()
    if args.profile:
        return profile_layers(args.profile)
    if args.worker:
        return worker(args)

    from latentatlas.cli.tcmalloc import find_tcmalloc

    tcmalloc = find_tcmalloc()
    results = {}
    load0 = os.getloadavg()
    configs = dict(CONFIGS)
    extra = {}
    for part in filter(None, args.configs.split(",")):
        batch, lr, *rest = part.split(":")
        name = f"latentatlas, batch {int(batch)}, peak lr {float(lr):g}" + (f", {rest[0]}" if rest else "")
        configs[name] = ("latentatlas", False)
        extra[name] = (int(batch), float(lr), *rest)
    names = list(args.only or CONFIGS) + list(extra)
    for name in [n for _ in range(args.repeats) for n in names]:
        pipeline, use_tcmalloc = configs[name]
        if use_tcmalloc and not tcmalloc:
            print(f"skip {name}: tcmalloc not installed", file=sys.stderr)
            continue
        env = {k: v for k, v in os.environ.items() if k != "LD_PRELOAD"}
        if use_tcmalloc:
            env["LD_PRELOAD"] = tcmalloc
        if name == "reference":
            epochs = args.ref_epochs
        elif name == "latentatlas (CLI default: tcmalloc)":
            epochs = args.epochs
        else:
            epochs = args.speed_epochs
        cmd = [sys.executable, __file__, "--worker", pipeline, "--epochs", str(epochs), "--seed", str(args.seed)]
        if args.limit:
            cmd += ["--limit", str(args.limit)]
        if name in extra:
            cmd += ["--batch-size", str(extra[name][0]), "--lr", str(extra[name][1])]
            if len(extra[name]) > 2:
                cmd += ["--downsample", extra[name][2]]
        print(f"running {name} ({epochs} epochs)…", file=sys.stderr, flush=True)
        done = subprocess.run(cmd, env=env, capture_output=True, text=True)
        if done.returncode:
            print(done.stderr, file=sys.stderr)
            raise SystemExit(f"{name} failed")
        r = json.loads(done.stdout.strip().splitlines()[-1])
        r["load"] = os.getloadavg()[0]
        if name in results:  # a repeat: keep every epoch of every run
            for key in ("seconds_per_epoch", "cpu_seconds_per_epoch", "test_mse"):
                results[name][key] += r[key]
        else:
            results[name] = r
        print(f"  {name}: s/epoch {[round(s, 1) for s in r['seconds_per_epoch']]}, "
              f"CPU s/epoch {[round(c, 1) for c in r['cpu_seconds_per_epoch']]}, load {r['load']:.1f}, "
              f"test MSE {[round(m, 5) for m in r['test_mse']]}", file=sys.stderr, flush=True)

    ref = results.get("reference")
    print(f"\nmachine: {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, "
          f"torch threads default; load average before {load0[0]:.1f}, after {os.getloadavg()[0]:.1f}")
    def median(values):
        values = sorted(values)
        return values[len(values) // 2] if values else float("nan")

    print("\n| pipeline | steps | s/epoch (median) | CPU s/epoch (each run) | CPU vs reference (median) | test MSE |")
    print("|---|---|---|---|---|---|")
    for name, r in results.items():
        ratio = f"{median(r['cpu_seconds_per_epoch']) / median(ref['cpu_seconds_per_epoch']):.2f}×" if ref else ""
        cpu = ", ".join(f"{c:.1f}" for c in r["cpu_seconds_per_epoch"])
        mse = ", ".join(sorted({f"{m:.4f}" for m in r["test_mse"]}))
        print(f"| {name} | {r['steps_per_epoch']} | {median(r['seconds_per_epoch']):.1f} | {cpu} | {ratio} | {mse} |")
    if args.json:
        args.json.write_text(json.dumps({"results": results, "load_before": load0,
                                         "load_after": os.getloadavg()}, indent=1))


if __name__ == "__main__":
    main()
