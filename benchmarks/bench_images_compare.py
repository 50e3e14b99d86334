"""The plain autoencoder and the VAE on colour photographs, through `images compare` (issue 17's report check).

The data are bench_images_colour.py's: 32×32 crops of the two colour photographs bundled with scikit-learn,
training crops from the left 70 % of each photo and test crops (labelled by photo × quadrant, 8 classes) from
the right 25 %. :func:`latentatlas.images.workflow.compare_run` trains a plain autoencoder and a VAE with the
same parameters on the same split and builds the report comparing them (test MSE, PSNR, 10-NN accuracy of the
test codes). With ``--figures`` it also writes the README's pictures: the comparison figure and test crops
above both models' reconstructions and the VAE's samples.

    .venv/bin/python benchmarks/bench_images_compare.py --epochs 5 --beta 0.1 --figures
"""

from __future__ import annotations

import argparse
import os
import shlex
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n-train", type=int, default=4000)
    ap.add_argument("--n-test", type=int, default=1000)
    ap.add_argument("--epochs", type=int, default=5)
    ap.add_argument("--beta", type=float, default=0.1)
    ap.add_argument("--out", default="/tmp/latentatlas-bench-compare")
    ap.add_argument("--figures", action="store_true", help="write docs/images/colour_ae_vae*.png")
    args = ap.parse_args()

    sys.path.insert(0, str(HERE))
    from bench_images_colour import data

    from latentatlas import runs
    from latentatlas.images.autoencoder import ConvAutoencoder
    from latentatlas.images.workflow import compare_run
    from latentatlas.plots.style import style
    from latentatlas.report.images import comparison_figure, comparison_rows

    train, test, labels = data(args.n_train, args.n_test, 32, 0)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    np.savez(out / "train.npz", images=train)
    np.savez(out / "test.npz", images=test, labels=labels)
    t0, c0 = time.perf_counter(), time.process_time()
    result = compare_run(out / "compare", data=out / "train.npz", test_data=out / "test.npz", epochs=args.epochs,
                         beta=args.beta, seed=0)
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    both = runs.load_runs([result.ae.out, result.vae.out])
    header, rows = comparison_rows(both)
    print(f"## Plain autoencoder and VAE on colour crops (`images compare`)\n\n    "
          f"{shlex.join(['.venv/bin/python', 'benchmarks/bench_images_compare.py', *sys.argv[1:]])}\n")
    print(f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, {os.cpu_count()} CPUs, load average "
          f"{os.getloadavg()[0]:.1f}; {len(train)} training crops (10 % of them validation), {len(test)} test crops, "
          f"{args.epochs} epochs each, seed 0; both runs and the report: {wall:.0f} s wall, {cpu:.0f} s CPU.\n")
    print("| " + " | ".join(header) + " |")
    print("|" + "---|" * len(header))
    for row in rows:
        print("| " + " | ".join("" if v is None else f"{v:.4g}" if isinstance(v, float) else str(v) for v in row)
              + " |")
    print(f"\nreport: {result.report.html}")
    if args.figures:
        from latentatlas.plots.images import image_grid

        docs = HERE.parent / "docs" / "images"
        with style():
            comparison_figure(both).savefig(docs / "colour_ae_vae_scores.png", dpi=80, bbox_inches="tight")
        ae, vae = (ConvAutoencoder.from_checkpoint(r.out) for r in (result.ae, result.vae))
        shown = test[np.random.default_rng(0).choice(len(test), 10, replace=False)]
        rows = [shown / 255.0, ae.inverse_transform(ae.transform(shown)), vae.inverse_transform(vae.transform(shown)),
                vae.sample(10, seed=0)]
        titles = [t if j == 0 else "" for t in ("test crop", "autoencoder", f"VAE β={args.beta:g}",
                                                 "VAE sample") for j in range(10)]
        fig = image_grid(np.concatenate(rows), titles=titles, ncols=10,
                         title="Colour test crops, their reconstructions by both models, and new VAE samples")
        fig.savefig(docs / "colour_ae_vae.png", dpi=80, bbox_inches="tight")
        print(f"wrote {docs / 'colour_ae_vae_scores.png'} and {docs / 'colour_ae_vae.png'}")


if __name__ == "__main__":
    main()
