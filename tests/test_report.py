"""``latentatlas report``: contents of report.html and report.pdf built from known run directories."""

from __future__ import annotations

import html as html_lib
import json
import re
import shutil
import subprocess

import numpy as np
import pytest

import report_fixtures as F
from latentatlas.cli import run as cli_run
from latentatlas.errors import LatentAtlasError
from latentatlas.report.explorer import image_explorer, item_explorer
from latentatlas.report import build_report, load_run

POPPLER = shutil.which("pdftoppm") and shutil.which("pdftotext") and shutil.which("pdfinfo")


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    root = tmp_path_factory.mktemp("report")
    runs = F.all_runs(root / "runs")
    result = build_report(runs, root / "out", explorer_points=50, neighbours=4)
    return runs, result, result.html.read_text(encoding="utf-8")


def _without_plotly_bundle(page: str) -> str:
    start = page.index("<script>", page.index("</style>"))
    end = page.index("</script>", start)
    assert "plotly.js" in page[start:start + 400]  # it is the inlined Plotly bundle being cut out
    return page[:start] + page[end:]


def test_html_has_every_table_and_figure(built):
    runs, result, page = built
    text = html_lib.unescape(re.sub(r"<[^>]+>", " ", _without_plotly_bundle(page)))
    for title in ("Ratings: built-in synthetic (20,000 ratings, seed 0)", "ALS model", "SGD model", "Embedding of the test codes", "Interpolation",
                  "Comparison of the trained recommenders"):
        assert f">{title}</h2>" in page
    assert re.search(r"test_rmse\s+0\.91\b", text) and re.search(r"test_rmse\s+0\.95\b", text)
    assert re.search(r"test_mae\s+0\.728\b", text)           # 0.91 * 0.8, formatted to 4 significant digits
    assert re.search(r"solver\s+sgd", text) and re.search(r"knn_accuracy_tsne\s+0\.95", text)
    assert re.search(r"train_ratings\s+16,000\b", text)
    # Side by side: one row per metric, one column per model.
    assert re.search(r"test_rmse\s+0\.91\s+0\.95", text)
    # 4 figures of the hand-made runs, the prepare run's rating histogram, the ALS-vs-SGD loss and RMSE pairs.
    figures = re.findall(r'<figure><img src="data:image/png;base64,([A-Za-z0-9+/=]+)"', page)
    assert len(figures) == 7
    assert text.count("Rating histogram") == 2     # the prepare run's table and figure
    assert "Training and validation loss, side by side" in text and "Training and validation RMSE, side by side" in text
    assert all(__import__("base64").b64decode(f)[:8] == b"\x89PNG\r\n\x1a\n" for f in figures)
    # One explorer per trained model and one for the embedding.
    assert page.count('class="explorer"') == 3


def test_html_is_self_contained(built):
    _, _, page = built
    from plotly.offline import get_plotlyjs

    assert get_plotlyjs()[:2000] in page                       # Plotly inlined, not linked
    rest = _without_plotly_bundle(page)
    markup = re.sub(r"<script[^>]*>.*?</script>", "", rest, flags=re.S)   # attributes of the page itself
    refs = re.findall(r"""(?:src|href)\s*=\s*["']?([^"'\s>]*)""", markup, flags=re.I)
    assert refs, "no references found at all; the scan would be vacuous"
    assert [r for r in refs if not r.startswith(("data:", "#"))] == []
    assert not re.search(r"https?://", rest)
    assert "<link" not in rest and "@import" not in rest


@pytest.mark.skipif(not POPPLER, reason="poppler-utils (pdftoppm, pdftotext, pdfinfo) not installed")
def test_pdf_sections_pages_and_figures(built, tmp_path):
    _, result, _ = built
    pdf = str(result.pdf)
    info = subprocess.run(["pdfinfo", pdf], capture_output=True, text=True, check=True).stdout
    n_pages = int(re.search(r"Pages:\s+(\d+)", info).group(1))
    assert n_pages == result.pdf_pages

    def page_text(i):
        return subprocess.run(["pdftotext", "-layout", "-f", str(i), "-l", str(i), pdf, "-"],
                              capture_output=True, text=True, check=True).stdout

    texts = [page_text(i) for i in range(1, n_pages + 1)]
    assert all(f"page {i} of {n_pages}" in t for i, t in enumerate(texts, 1))
    # Six sections (five runs and the comparison), each starting a page with its title, listed in contents.
    assert len(result.sections) == 6 and len(result.section_pages) == 6
    for title, first in zip(result.sections, result.section_pages):
        assert texts[first - 1].strip().startswith(title)
        assert re.search(rf"{re.escape(title)}\s+{first}\b", texts[0])
    starts = [i for i, t in enumerate(texts, 1) if t.strip().split("\n")[0].strip() in result.sections]
    assert starts == result.section_pages
    assert "test_rmse" in texts[result.section_pages[1] - 1] and "0.91" in texts[result.section_pages[1] - 1]

    # Every figure sits on a page of its own under its title; the drawn area there is not blank.
    fig_titles = ["Rating histogram", "als loss", "sgd loss", "t-SNE of the codes", "Interpolation grid",
                  "Training and validation loss, side by side", "Training and validation RMSE, side by side"]
    from PIL import Image

    for title in fig_titles:
        pages = [i for i, t in enumerate(texts, 1) if t.strip().startswith(title)]
        assert len(pages) == 1, title
        prefix = tmp_path / f"p{pages[0]}"
        subprocess.run(["pdftoppm", "-r", "40", "-gray", "-png", "-f", str(pages[0]), "-l", str(pages[0]), pdf,
                        str(prefix)], check=True)
        img = np.asarray(Image.open(next(tmp_path.glob(f"p{pages[0]}*.png"))), dtype=float)
        h = img.shape[0]
        figure_band = img[int(0.1 * h):int(0.6 * h)]
        assert figure_band.std() > 10, f"figure page {pages[0]} ({title}) looks blank"
        assert (figure_band < 128).mean() > 0.001                  # some ink, not only a frame


def test_missing_files_are_named_and_nothing_is_written(tmp_path):
    als = F.train_run(tmp_path / "als", "als", 0.9)
    embed = F.embedding_run(tmp_path / "embed", n=30)
    bare = tmp_path / "bare"
    bare.mkdir()
    (als / "loss_curve.png").unlink()
    (embed / "embedding.npz").unlink()
    out = tmp_path / "out"
    with pytest.raises(LatentAtlasError) as err:
        build_report([als, embed, bare], out)
    msg = str(err.value)
    assert "\n" not in msg
    assert f"{als}: run.json lists files that are missing: loss_curve.png" in msg
    assert f"{embed}: run.json lists files that are missing: embedding.npz" in msg
    assert f"{bare} is missing run.json" in msg
    assert not out.exists()


def test_cli_exit_status_and_message(tmp_path, capsys):
    interp = F.interpolate_run(tmp_path / "interp")
    assert cli_run(["report", str(interp), "--out", str(tmp_path / "ok"), "--quiet"]) == 0
    assert capsys.readouterr().out.split() == [str(tmp_path / "ok" / "report.html"),
                                               str(tmp_path / "ok" / "report.pdf")]
    (interp / "interpolation.png").unlink()
    assert cli_run(["report", str(interp), "--out", str(tmp_path / "bad")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [f"latentatlas: error: run directory {interp}: run.json lists files that are missing: "
                   "interpolation.png"]
    assert cli_run(["report", str(tmp_path / "nowhere"), "--out", str(tmp_path / "bad")]) == 2
    assert "does not exist" in capsys.readouterr().err
    assert not (tmp_path / "bad").exists()


def test_failure_midway_keeps_the_old_report(tmp_path):
    interp = F.interpolate_run(tmp_path / "interp")
    out = tmp_path / "out"
    build_report([interp], out)
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    assert set(before) == {"report.html", "report.pdf"}
    embed = F.embedding_run(tmp_path / "embed", n=30)
    with np.load(embed / "embedding.npz") as z:
        arrays = {k: z[k] for k in z.files if k != "codes"}
    np.savez(embed / "embedding.npz", **arrays)                 # listed and present, but unusable
    with pytest.raises(LatentAtlasError, match=r"embedding\.npz: embedding file has no array 'codes'"):
        build_report([interp, embed], out)
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before   # no temp files left, nothing replaced


def test_bad_run_json_is_refused(tmp_path):
    d = tmp_path / "r"
    d.mkdir()
    (d / "run.json").write_text("{not json")
    with pytest.raises(LatentAtlasError, match=r"run\.json: not valid JSON"):
        load_run(d)
    (d / "run.json").write_text(json.dumps({"title": "x"}))
    with pytest.raises(LatentAtlasError, match="has no 'kind' field"):
        load_run(d)


def test_image_neighbours_match_brute_force(tmp_path):
    embed = F.embedding_run(tmp_path / "embed", n=90, seed=3)
    data = image_explorer(embed / "embedding.npz", max_points=40, k=6, seed=5)
    assert data.n == 40 and data.n_total == 90 and "40 of 90" in data.notes[0]
    with np.load(embed / "embedding.npz") as z:
        codes = z["codes"].astype(np.float64)
        tsne = z["coords_tsne"]
    picked = np.array([int(t.split(" ")[0][1:]) for t in data.text])    # "#<index> · <label>"
    assert len(set(picked)) == 40 and np.array_equal(data.coords["tsne"], tsne[picked])
    d = np.linalg.norm(codes[picked][:, None] - codes[picked][None], axis=2)
    np.fill_diagonal(d, np.inf)
    expected = np.argsort(d, axis=1, kind="stable")[:, :6]
    assert np.array_equal(np.sort(d, axis=1)[:, :6].round(4), data.distances.round(4))
    assert (data.neighbours == expected).mean() > 0.99                # ties may swap order
    assert all(t.startswith("data:image/png;base64,") for t in data.thumbnails)
    again = image_explorer(embed / "embedding.npz", max_points=40, k=6, seed=5)
    assert again.text == data.text                                    # seeded sample


def test_item_neighbours_are_cosine_over_all_items(tmp_path):
    factors = F.model_file(tmp_path / "model.npz", n_items=40, k=4, seed=2)
    data = item_explorer(tmp_path / "model.npz", max_points=15, k=3, seed=0)
    assert data.n == 15 and len(data.all_labels) == 40
    unit = factors / np.linalg.norm(factors, axis=1, keepdims=True)
    sim = unit @ unit.T
    np.fill_diagonal(sim, -np.inf)
    for r, label in enumerate(data.text):
        i = int(label.split()[1]) - 100                                # "item <id> · <n> ratings"
        best = np.argsort(-sim[i])[:3]
        assert list(data.neighbours[r]) == list(best)
        assert np.allclose(1 - data.distances[r], sim[i, best])
    # The 2-D view is the PCA of all item factors.
    centred = factors - factors.mean(0)
    _, _, vt = np.linalg.svd(centred, full_matrices=False)
    i0 = int(data.text[0].split()[1]) - 100
    assert np.allclose(np.abs(data.coords["pca"][0]), np.abs(centred[i0] @ vt[:2].T))
    # Colour: log10(1 + training ratings per item); item i was seen by i % 5 users.
    ids = np.array([int(t.split()[1]) - 100 for t in data.text])
    assert np.allclose(data.colour_values, np.log10(1 + ids % 5))
    assert all(t.endswith(f"· {i % 5} ratings") for t, i in zip(data.text, ids))


def test_script_breaking_labels_are_escaped(tmp_path):
    embed = F.embedding_run(tmp_path / "embed", n=12)
    with np.load(embed / "embedding.npz") as z:
        arrays = {k: z[k] for k in z.files}
    arrays["label_names"] = np.array(["</script><b>bad</b>", "cross", "ring"])
    np.savez(embed / "embedding.npz", **arrays)
    page = build_report([embed], tmp_path / "out").html.read_text()
    assert "</script><b>bad" not in page and "<\\/script><b>bad" in page


def test_report_from_real_ratings_runs(tmp_path):
    """Runs written by the real ``ratings prepare`` and ``ratings train`` (ALS and SGD) are reported in full."""
    prep = F.prepare_run(tmp_path / "prep")
    runs = [prep]
    for solver in ("als", "sgd"):
        d = tmp_path / solver
        assert cli_run(["ratings", "train", str(prep), "--solver", solver, "--k", "4", "--max-steps", "3",
                        "--out", str(d), "--quiet"]) == 0
        runs.append(d)
    result = build_report(runs, tmp_path / "out", explorer_points=100, neighbours=3)
    page = result.html.read_text(encoding="utf-8")
    text = html_lib.unescape(re.sub(r"<[^>]+>", " ", _without_plotly_bundle(page)))
    metrics = [json.loads((d / "run.json").read_text())["metrics"] for d in runs[1:]]
    from latentatlas.report import fmt

    # The side-by-side table holds both models' test errors exactly as their run.json has them.
    for key in ("test_rmse", "test_mae"):
        assert re.search(rf"{key}\s+{re.escape(fmt(metrics[0][key]))}\s+{re.escape(fmt(metrics[1][key]))}", text)
    recs = json.loads((runs[1] / "run.json").read_text())["tables"]["recommendations"]
    first = recs[0]
    assert re.search(rf"\b{first['user']}\s+1\s+{first['item']}\s+{re.escape(fmt(first['score']))}", text)
    assert result.sections[-1] == "Comparison of the trained recommenders"
    assert page.count('data-kind="items" data-points="100"') == 2       # the seeded sample of the 303 items
    assert text.count("Showing a seeded sample of 100 of 303 items (seed 0)") == 2


def test_every_stored_projection_is_offered_once(tmp_path):
    embed = F.embedding_run(tmp_path / "embed", n=30)
    with np.load(embed / "embedding.npz") as z:
        arrays = {k: z[k] for k in z.files}
    arrays["coords_tsne_p30"] = arrays["coords_tsne"].copy()          # how `images embed` stores the first t-SNE
    arrays["coords_tsne_p5"] = arrays["coords_tsne"] + 1
    arrays["coords_umap"] = arrays["coords_pca"] * 3
    np.savez(embed / "embedding.npz", **arrays)
    from latentatlas.report.explorer import explorer_figure

    data = image_explorer(embed / "embedding.npz")
    assert list(data.coords) == ["pca", "tsne", "tsne_p5", "umap"]
    buttons = explorer_figure(data).layout.updatemenus[0].buttons
    assert [b.label for b in buttons] == ["PCA", "t-SNE", "t-SNE (perplexity 5)", "UMAP"]
    # Each button moves every label's trace to that projection's coordinates.
    groups = [np.flatnonzero(data.groups == g) for g in range(3)]
    umap_x = buttons[3].args[0]["x"]
    assert all(np.allclose(umap_x[g], data.coords["umap"][m, 0], atol=1e-4) for g, m in enumerate(groups))


def test_unlabelled_images_form_one_group(tmp_path):
    embed = F.embedding_run(tmp_path / "embed", n=20)
    with np.load(embed / "embedding.npz") as z:
        arrays = {k: z[k] for k in z.files}
    arrays["labels"] = np.full(20, -1)
    arrays["label_names"] = np.array([], dtype=str)
    np.savez(embed / "embedding.npz", **arrays)
    data = image_explorer(embed / "embedding.npz")
    assert data.group_names == ["unlabelled"] and set(data.groups) == {0}
    assert data.text[3] == "#3 · unlabelled"
