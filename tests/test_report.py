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
from latentatlas import runs
from latentatlas.report import build_report
from latentatlas.report.explorer import explorer_payload, image_explorer, item_explorer, sprite_geometry, sprite_png
from latentatlas.report.html import json_for_script
from latentatlas.report.sections import fmt
from latentatlas.runs import load_run

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
    runs_, result, page = built
    text = html_lib.unescape(re.sub(r"<[^>]+>", " ", _without_plotly_bundle(page)))
    for title in ("Ratings: built-in synthetic (20,000 ratings, seed 0)", "ALS model", "SGD model", "Embedding of the test codes", "Interpolation",
                  "Comparison of the trained recommenders"):
        assert f">{title}</h2>" in page
    assert re.search(r"test_rmse\s+0\.91\b", text) and re.search(r"test_rmse\s+0\.95\b", text)
    assert re.search(r"test_mae\s+0\.728\b", text)           # 0.91 * 0.8, formatted to 4 significant digits
    assert re.search(r"solver\s+sgd", text) and re.search(r"knn_accuracy_tsne\s+0\.95", text)
    prep = json.loads((runs_[0] / "run.json").read_text())["metrics"]
    assert prep["train_ratings"] > 10_000 and re.search(rf"train_ratings\s+{fmt(prep['train_ratings'])}\s", text)
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
    assert data.n_points == 40 and data.n_total == 90 and "40 of 90" in data.notes[0]
    with np.load(embed / "embedding.npz") as z:
        codes = z["codes"].astype(np.float64)
        tsne = z["coords_tsne"]
        thumbs = z["thumbnails"]
    picked = data.index
    assert len(set(picked.tolist())) == 40 and np.array_equal(data.coords["tsne"], tsne[picked])
    assert np.array_equal(data.thumbnails, thumbs[picked])
    d = np.linalg.norm(codes[picked][:, None] - codes[picked][None], axis=2)
    np.fill_diagonal(d, np.inf)
    expected = picked[np.argsort(d, axis=1, kind="stable")[:, :6]]       # neighbours are source rows
    assert np.array_equal(np.sort(d, axis=1)[:, :6].round(4), data.distances.round(4))
    assert (data.neighbours == expected).mean() > 0.99                # ties may swap order
    again = image_explorer(embed / "embedding.npz", max_points=40, k=6, seed=5)
    assert np.array_equal(again.index, data.index)                    # seeded sample
    every = image_explorer(embed / "embedding.npz", k=6)              # default: every point
    assert every.n_points == every.n_total == 90 and np.array_equal(every.index, np.arange(90))


def test_item_neighbours_are_cosine_over_all_items(tmp_path):
    factors = F.model_file(tmp_path / "model.npz", n_items=40, k=4, seed=2)
    data = item_explorer(tmp_path / "model.npz", max_points=15, k=3, seed=0)
    assert data.n_points == 15 and data.n_total == 40 and len(data.ids) == 40
    unit = factors / np.linalg.norm(factors, axis=1, keepdims=True)
    sim = unit @ unit.T
    np.fill_diagonal(sim, -np.inf)
    for r, i in enumerate(data.index):
        assert data.ids[i] == str(100 + i)
        best = np.argsort(-sim[i])[:3]
        assert list(data.neighbours[r]) == list(best)
        assert np.allclose(1 - data.distances[r], sim[i, best])
    # The 2-D view is the PCA of all item factors.
    centred = factors - factors.mean(0)
    _, _, vt = np.linalg.svd(centred, full_matrices=False)
    assert np.allclose(np.abs(data.coords["pca"]), np.abs(centred[data.index] @ vt[:2].T))
    # Colour: log10(1 + training ratings per item); item i was seen by i % 5 users.
    assert np.allclose(data.colour_values, np.log10(1 + data.index % 5))
    assert data.extra == [f"{i % 5} ratings" for i in range(40)]
    assert data.label(7) == "item 107"


def test_item_names_and_metadata_colours(tmp_path):
    F.model_file(tmp_path / "model.npz", n_items=12, k=3, seed=1)
    names = {100: "Heat (1995)", "101": "Toy Story </script>"}      # model ids are ints, a file's are text
    genre = {str(100 + i): ["Drama", "Comedy", None][i % 3] for i in range(12)}
    data = item_explorer(tmp_path / "model.npz", k=2, item_names=names, colour_by=genre, colour_title="genre")
    assert data.names[:3] == ["Heat (1995)", "Toy Story </script>", ""]
    assert data.label(0) == "item 100 · Heat (1995)" and data.label(2) == "item 102"
    assert data.group_names == ["Comedy", "Drama", "(none)"]
    assert [data.group_names[g] for g in data.groups[:4]] == ["Drama", "Comedy", "(none)", "Drama"]
    payload, _, sprite = explorer_payload(data)
    assert sprite is None and payload["names"][1] == "Toy Story </script>" and payload["groups"]["names"] == data.group_names
    numeric = item_explorer(tmp_path / "model.npz", k=2, colour_by={100 + i: float(i) for i in range(12)},
                            colour_title="year")
    assert numeric.group_names == [] and np.array_equal(numeric.colour_values, np.arange(12.0))
    payload, _, _ = explorer_payload(numeric)
    assert payload["colour"]["title"] == "year" and (payload["colour"]["lo"], payload["colour"]["hi"]) == (0, 11)


def test_item_explorer_reads_names_objects_and_their_metadata(tmp_path):
    from latentatlas.ratings.names import Names

    F.model_file(tmp_path / "model.npz", n_items=30, k=3, seed=1)
    genres = [f"G{i % 12:02d}|Drama" if i < 24 else "" for i in range(30)]   # 12 first genres, 6 items without
    names = Names(ids=np.arange(100, 130), names=[f"Film {i}" for i in range(30)],
                  metadata={"genres": np.array(genres)})
    data = item_explorer(tmp_path / "model.npz", k=2, item_names=names, colour_by="genres")
    assert data.names[5] == "Film 5" and data.label(5) == "item 105 · Film 5"
    # Twelve genres (counted by their first value, G00 … G11, twice each): ten kept, two as "other".
    assert data.group_names[-2:] == ["other", "(none)"] and len(data.group_names) == 12
    assert [data.group_names[g] for g in data.groups[[0, 12, 24]]] == ["G00", "G00", "(none)"]
    assert sum(data.group_names[g] == "other" for g in data.groups) == 4
    assert any("Colour: genres (the first of several values; the 10 most frequent" in n for n in data.notes)
    payload, _, _ = explorer_payload(data)
    assert payload["groups"]["colours"][-2:] == ["#999999", "#cccccc"]
    with pytest.raises(LatentAtlasError, match="no metadata column 'city'"):
        item_explorer(tmp_path / "model.npz", k=2, item_names=names, colour_by="city")
    with pytest.raises(LatentAtlasError, match="cannot colour items by 'genres'"):
        item_explorer(tmp_path / "model.npz", k=2, colour_by="genres")


def test_json_for_script_survives_any_string():
    hostile = ["</script><b>x</b>", "<!--", "a\u2028b", "\u2029", "&amp;", "<SCRIPT>", "x</SCRIPT >", '"\\']
    text = json_for_script({"ids": hostile})
    assert json.loads(text) == {"ids": hostile}
    for bad in ("<", ">", "&", "\u2028", "\u2029"):
        assert bad not in text
    assert "\\u003c/script\\u003e" in text


def test_hostile_ids_keep_the_page_valid(tmp_path):
    embed = F.embedding_run(tmp_path / "embed", n=12)
    with np.load(embed / "embedding.npz") as z:
        arrays = {k: z[k] for k in z.files}
    names = ["</script><b>bad</b>", "<!-- cross", "ring\u2028 & co"]
    arrays["label_names"] = np.array(names)
    np.savez(embed / "embedding.npz", **arrays)
    page = build_report([embed], tmp_path / "out").html.read_text(encoding="utf-8")
    assert "</script><b>bad" not in page and "<!-- cross" not in page and "\u2028" not in page
    block = re.search(r'<script type="application/json" id="run-1-explorer-0-data">(.*?)</script>', page, re.S)
    data = json.loads(block.group(1))
    assert data["groups"]["names"] == names
    assert (data["n_points"], data["n_total"]) == (12, 12)
    # One opening and one closing tag per script element: nothing in the data ended an element early.
    assert len(re.findall(r"<script\b", page)) == len(re.findall(r"</script>", page))


def test_n_points_and_n_total_on_the_page(tmp_path):
    embed = F.embedding_run(tmp_path / "embed", n=90)
    page = build_report([embed], tmp_path / "some", explorer_points=40).html.read_text(encoding="utf-8")
    data = json.loads(re.search(r'id="run-1-explorer-0-data">(.*?)</script>', page, re.S).group(1))
    assert (data["n_points"], data["n_total"]) == (40, 90)
    assert 'data-points="40" data-total="90"' in page and "Showing 40 of 90 images." in page
    page = build_report([embed], tmp_path / "all").html.read_text(encoding="utf-8")
    data = json.loads(re.search(r'id="run-1-explorer-0-data">(.*?)</script>', page, re.S).group(1))
    assert (data["n_points"], data["n_total"]) == (90, 90) and "All 90 images are drawn." in page
    later = json.loads(re.search(r'id="run-1-explorer-0-later">(.*?)</script>', page, re.S).group(1))
    import base64

    nb = np.frombuffer(base64.b64decode(later["neighbours"]), dtype="<i4").reshape(90, data["k"])
    assert data["k"] == 8 and nb.min() >= 0 and nb.max() < 90 and not (nb == np.arange(90)[:, None]).any()


def test_sprite_geometry_and_pixels():
    assert sprite_geometry(70_000, (28, 28)) == {"cols": 265, "rows": 265, "cell_h": 28, "cell_w": 28,
                                                 "width": 7420, "height": 7420}
    assert sprite_geometry(10, (28, 20)) == {
        "cols": 4, "rows": 3, "cell_h": 28, "cell_w": 20, "width": 80, "height": 84}
    from io import BytesIO

    from PIL import Image

    thumbs = np.random.default_rng(0).integers(0, 256, (10, 28, 20)).astype(np.uint8)
    png, geo = sprite_png(thumbs)
    img = Image.open(BytesIO(png))
    assert img.size == (80, 84) and img.mode == "P"
    pixels = np.asarray(img.convert("L")).astype(int)
    for i in range(10):
        r, c = divmod(i, geo["cols"])
        cell = pixels[r * 28:(r + 1) * 28, c * 20:(c + 1) * 20]
        assert np.abs(cell - thumbs[i]).max() <= 9          # 16 grey levels: at most half a step (8.5) off
    assert len(np.unique(pixels)) <= 16
    assert (pixels[2 * 28:, 2 * 20:] == 0).all()            # the two unused cells are black


def test_every_stored_projection_is_offered_once(tmp_path):
    embed = F.embedding_run(tmp_path / "embed", n=30)
    with np.load(embed / "embedding.npz") as z:
        arrays = {k: z[k] for k in z.files}
    arrays["coords_tsne_p30"] = arrays["coords_tsne"].copy()          # how `images embed` stores the first t-SNE
    arrays["coords_tsne_p5"] = arrays["coords_tsne"] + 1
    arrays["coords_umap"] = arrays["coords_pca"] * 3
    np.savez(embed / "embedding.npz", **arrays)
    data = image_explorer(embed / "embedding.npz")
    assert list(data.coords) == ["pca", "tsne_p5", "tsne_p30", "umap"]
    payload, later, _ = explorer_payload(data)
    assert [p["name"] for p in payload["projections"]] == ["PCA", "t-SNE (perplexity 5)", "t-SNE (perplexity 30)",
                                                           "UMAP"]
    # 16-bit coordinates: decoded, each is within half a step (1/131,070 of the range) of the stored value.
    import base64

    umap = payload["projections"][3]
    q = np.frombuffer(base64.b64decode(later["projections"][2]), dtype="<u2").reshape(30, 2)
    decoded = np.array(umap["lo"]) + q / 65535 * np.array(umap["span"])
    assert np.abs(decoded - arrays["coords_umap"]).max() <= np.ptp(arrays["coords_umap"], axis=0).max() / 131_000


def test_perplexity_sweep_as_small_multiples(tmp_path):
    embed = F.embedding_run(tmp_path / "embed", n=60)
    with np.load(embed / "embedding.npz") as z:
        arrays = {k: z[k] for k in z.files}
    for p in (5, 10, 30, 50, 150):
        arrays[f"coords_tsne_p{p}"] = arrays["coords_tsne"] * p
    arrays["coords_tsne"] = arrays["coords_tsne_p5"]
    np.savez(embed / "embedding.npz", **arrays)
    result = build_report([embed], tmp_path / "out")
    page = result.html.read_text(encoding="utf-8")
    assert "t-SNE perplexity sweep" in page and "perplexity 5, 10, 30, 50, 150" in page
    data = json.loads(re.search(r'id="run-1-explorer-0-data">(.*?)</script>', page, re.S).group(1))
    assert [p["key"] for p in data["projections"]] == ["pca"] + [f"tsne_p{p}" for p in (5, 10, 30, 50, 150)]


def test_unlabelled_images_form_one_group(tmp_path):
    embed = F.embedding_run(tmp_path / "embed", n=20)
    with np.load(embed / "embedding.npz") as z:
        arrays = {k: z[k] for k in z.files}
    arrays["labels"] = np.full(20, -1)
    arrays["label_names"] = np.array([], dtype=str)
    np.savez(embed / "embedding.npz", **arrays)
    data = image_explorer(embed / "embedding.npz")
    assert data.group_names == ["unlabelled"] and set(data.groups.tolist()) == {0}
    assert data.label(3) == "#3 · unlabelled"


def test_dollar_signs_are_text_not_math(tmp_path):
    als = F.train_run(tmp_path / "als", "als", 0.9)
    sgd = F.train_run(tmp_path / "sgd", "sgd", 0.95)
    for d, title in ((als, "ALS $\\alpha$ run"), (sgd, "SGD costs $5")):     # a formula, and an unbalanced $
        meta = json.loads((d / "run.json").read_text())
        runs.write_run(d, meta["kind"], title, config=meta["config"], metrics=meta["metrics"],
                       figures=meta["figures"], artifacts=meta["artifacts"], tables=meta["tables"])
    result = build_report([als, sgd], tmp_path / "out", title="Report $x")
    assert result.sections[:2] == ["ALS $\\alpha$ run", "SGD costs $5"]
    if POPPLER:
        text = subprocess.run(["pdftotext", str(result.pdf), "-"], capture_output=True, text=True, check=True).stdout
        assert "SGD costs $5" in text and "ALS $\\alpha$ run" in text and "Report $x" in text


def test_files_outside_the_run_folder_are_never_read(tmp_path):
    secret = tmp_path / "secret.png"
    secret.write_bytes(b"not for the report")
    interp = F.interpolate_run(tmp_path / "run")
    meta = json.loads((interp / "run.json").read_text())
    for name in ("../secret.png", str(secret)):
        meta["figures"] = [{"file": name, "title": "stolen", "caption": ""}]
        (interp / "run.json").write_text(json.dumps(meta))
        with pytest.raises(LatentAtlasError, match="names files outside the run folder") as err:
            build_report([interp], tmp_path / "out")
        assert "\n" not in str(err.value)
    (interp / "link.png").symlink_to(secret)                      # a link inside that leads out
    meta["figures"] = [{"file": "link.png", "title": "stolen", "caption": ""}]
    (interp / "run.json").write_text(json.dumps(meta))
    with pytest.raises(LatentAtlasError, match="outside the run folder"):
        build_report([interp], tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_corrupt_png_figure_is_one_line_naming_the_file(tmp_path):
    interp = F.interpolate_run(tmp_path / "run")
    png = interp / "interpolation.png"
    whole = png.read_bytes()
    for broken in (whole[: len(whole) // 2], b"GIF89a not a png", whole[:40] + b"\0" * 200 + whole[240:]):
        png.write_bytes(broken)
        with pytest.raises(LatentAtlasError) as err:
            build_report([interp], tmp_path / "out")
        msg = str(err.value)
        assert msg.startswith(f"{png}: ") and "\n" not in msg and ("PNG" in msg)
    assert not (tmp_path / "out").exists()


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
    # The side-by-side table holds both models' test errors exactly as their run.json has them.
    for key in ("test_rmse", "test_mae"):
        assert re.search(rf"{key}\s+{re.escape(fmt(metrics[0][key]))}\s+{re.escape(fmt(metrics[1][key]))}", text)
    recs = json.loads((runs[1] / "run.json").read_text())["tables"]["recommendations"]
    first = recs[0]
    assert re.search(rf"\b{first['user']}\s+1\s+{first['item']}\s+{re.escape(fmt(first['score']))}", text)
    assert result.sections[-1] == "Comparison of the trained recommenders"
    n_items = json.loads((prep / "run.json").read_text())["metrics"]["items"]
    assert n_items > 100
    assert page.count(f'data-kind="items" data-points="100" data-total="{n_items}"') == 2   # a seeded sample
    assert text.count(f"Showing a seeded sample of 100 of {n_items} items (seed 0)") == 2


def test_cli_draws_every_point_unless_capped(tmp_path, capsys):
    embed = F.embedding_run(tmp_path / "embed", n=90)
    assert cli_run(["report", str(embed), "-o", str(tmp_path / "all"), "-q"]) == 0
    assert 'data-points="90" data-total="90"' in (tmp_path / "all" / "report.html").read_text(encoding="utf-8")
    assert cli_run(["report", str(embed), "-o", str(tmp_path / "cap"), "-q", "--explorer-points", "40"]) == 0
    assert 'data-points="40" data-total="90"' in (tmp_path / "cap" / "report.html").read_text(encoding="utf-8")
    assert cli_run(["report", str(embed), "-o", str(tmp_path / "bad"), "--explorer-points", "1"]) == 2
    assert capsys.readouterr().err.strip().endswith("--explorer-points must be at least 2, got 1")


def test_large_searches_find_nearly_all_exact_neighbours(monkeypatch):
    from latentatlas.report import explorer as ex

    rng = np.random.default_rng(4)
    n, d = 600, 120
    labels = rng.integers(0, 6, n)
    # Low intrinsic dimension, as autoencoder codes have: 8 factors spread over 120 numbers.
    x = (rng.normal(0, 3, (6, 8))[labels] + rng.normal(0, 1, (n, 8))) @ rng.normal(0, 1, (8, d))
    x = (x + rng.normal(0, 0.1, (n, d))).astype(np.float32)
    exact_i, exact_d = ex.nearest_neighbours(x, 5, "euclidean")
    assert not ex.reduced_search(n, x.shape)
    monkeypatch.setattr(ex, "EXACT_BUDGET", 0)
    assert ex.reduced_search(n, x.shape)
    idx, dist = ex.nearest_neighbours(x, 5, "euclidean")
    assert idx.shape == (n, 5) and not (idx == np.arange(n)[:, None]).any()
    # The distances are the exact ones of the returned points, in increasing order.
    assert np.allclose(dist, np.linalg.norm(x[idx].astype(np.float64) - x[:, None].astype(np.float64), axis=2),
                       rtol=1e-5)
    assert (np.diff(dist, axis=1) >= 0).all()
    recall = np.mean([len(set(a) & set(b)) / 5 for a, b in zip(idx.tolist(), exact_i.tolist())])
    assert recall > 0.97


def test_cli_colours_items_by_a_column_of_the_model_names(tmp_path, capsys):
    from latentatlas.ratings.model import LatentFactorModel
    from latentatlas.ratings.names import Names

    als = F.train_run(tmp_path / "als", "als", 0.9, n_items=20)
    assert cli_run(["report", str(als), "-o", str(tmp_path / "plain"), "-q", "--item-colour", "genres"]) == 2
    assert capsys.readouterr().err.count("\n") == 1                   # one line, naming the column
    model = LatentFactorModel.load(als / "model.npz")
    model.set_names(items=Names(ids=np.arange(100, 120), names=[f"Film {i}" for i in range(20)],
                                metadata={"genres": np.array(["Comedy|Romance", "Drama"] * 10)}))
    model.save(als / "model.npz")
    assert cli_run(["report", str(als), "-o", str(tmp_path / "out"), "-q", "--item-colour", "genres"]) == 0
    page = (tmp_path / "out" / "report.html").read_text(encoding="utf-8")
    data = json.loads(re.search(r'id="run-1-explorer-0-data">(.*?)</script>', page, re.S).group(1))
    assert data["names"][:2] == ["Film 0", "Film 1"] and data["groups"]["names"] == ["Comedy", "Drama"]
    assert "Colour: genres (the first of several values)." in page
