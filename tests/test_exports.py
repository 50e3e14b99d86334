import math
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from latentatlas import runs
from latentatlas.errors import LatentAtlasError
from latentatlas.exports import (SPRITE_MAX_PX, export_embedding_parquet, export_embedding_projector,
                                 export_parquet, export_projector, read_parquet, sprite_layout)
from latentatlas.fsutil import save_npz


def _thumbs(n, px=28):
    # Each thumbnail is one flat grey level with a bright top-left pixel, so a cell's origin can be checked.
    t = np.repeat((np.arange(n) % 250).astype(np.uint8)[:, None, None], px, axis=1).repeat(px, axis=2)
    t[:, 0, 0] = 255
    return t


def _lines(path):
    return path.read_text(encoding="utf-8").split("\n")[:-1]


def test_projector_files_for_all_points(tmp_path):
    n, d = 10, 4
    rng = np.random.default_rng(0)
    vectors = rng.normal(size=(n, d)).astype(np.float32)
    labels = np.arange(n) % 3
    names = [f"item\t{k}" for k in range(n)]
    names[4] = None
    res = export_projector(tmp_path / "proj", vectors, labels=labels, label_names=["a", "b", "c"], names=names,
                           thumbnails=_thumbs(n))
    out = tmp_path / "proj"
    assert res.n_points == res.n_total == n and res.n_dropped == 0 and res.message == ""
    assert sorted(p.name for p in out.iterdir()) == [".latentatlas", "metadata.tsv", "projector_config.pbtxt", "sprite.png",
                                                     "tensors.tsv"]
    tensors = _lines(out / "tensors.tsv")
    assert len(tensors) == n
    np.testing.assert_allclose(np.array([[float(x) for x in row.split("\t")] for row in tensors]), vectors,
                               rtol=1e-6)
    meta = _lines(out / "metadata.tsv")
    assert len(meta) == n + 1  # a header row: there is more than one column
    assert meta[0] == "label\tname"
    assert meta[1] == "a\titem 0" and meta[5] == "b\t" and meta[6] == "c\titem 5"
    grid = math.ceil(math.sqrt(n))
    assert (res.grid, res.cell_px) == (grid, 28)
    with Image.open(out / "sprite.png") as im:
        assert im.size == (grid * 28, grid * 28)
        sprite = np.asarray(im)
    for k in range(n):
        r, c = divmod(k, grid)
        cell = sprite[r * 28:(r + 1) * 28, c * 28:(c + 1) * 28]
        assert cell[0, 0] == 255 and cell[1, 1] == k % 250
    assert (out / "projector_config.pbtxt").read_text() == (
        'embeddings {\n  tensor_name: "latentatlas"\n  tensor_shape: 10\n  tensor_shape: 4\n'
        '  tensor_path: "tensors.tsv"\n  metadata_path: "metadata.tsv"\n  sprite {\n'
        '    image_path: "sprite.png"\n    single_image_dim: 28\n    single_image_dim: 28\n  }\n}\n')


def test_single_metadata_column_has_no_header_and_no_sprite_without_thumbnails(tmp_path):
    res = export_projector(tmp_path / "p", np.eye(3), labels=["x", "", "z"])
    assert _lines(tmp_path / "p" / "metadata.tsv") == ["x", "(none)", "z"]
    assert res.files == {"tensors": "tensors.tsv", "metadata": "metadata.tsv", "config": "projector_config.pbtxt"}
    assert "sprite" not in (tmp_path / "p" / "projector_config.pbtxt").read_text()


def test_sprite_layout_limits():
    assert sprite_layout(70_000, 28) == (70_000, 28, 265)  # every Fashion-MNIST image at full size: 7,420 px
    assert sprite_layout(85_264, 28) == (85_264, 28, 292)
    assert sprite_layout(100_000, 28) == (100_000, 25, 317)  # cells shrink so that all fit
    kept, cell, grid = sprite_layout(2_000_000, 28)
    assert (kept, cell, grid) == (1024 * 1024, 8, 1024) and grid * cell <= SPRITE_MAX_PX
    assert sprite_layout(85_265, 28, cell_px=28) == (85_264, 28, 292)


def test_points_beyond_the_sprite_are_dropped_everywhere(tmp_path):
    # 2048-px cells: 4 × 4 = 16 fit in 8192 px, so 4 of 20 points are dropped from the sprite and both TSV files.
    n = 20
    res = export_projector(tmp_path / "p", np.arange(n * 2, dtype=float).reshape(n, 2), ids=np.arange(n) + 100,
                           names=[f"n{k}" for k in range(n)], thumbnails=_thumbs(n, px=4), cell_px=2048)
    assert (res.n_points, res.n_total, res.n_dropped, res.grid, res.cell_px) == (16, 20, 4, 4, 2048)
    assert res.message == ("kept the first 16 of 20 points: 4 more do not fit in a 8192-pixel sprite at "
                           "2048 px per thumbnail")
    out = tmp_path / "p"
    assert len(_lines(out / "tensors.tsv")) == 16
    meta = _lines(out / "metadata.tsv")
    assert len(meta) == 17 and meta[0] == "id\tname" and meta[-1] == "115\tn15"
    with Image.open(out / "sprite.png") as im:
        assert im.size == (8192, 8192)
    assert "tensor_shape: 16\n" in (out / "projector_config.pbtxt").read_text()


def test_projector_replaces_the_folder_and_refuses_a_run_folder(tmp_path):
    out = tmp_path / "p"
    out.mkdir()
    (out / "mine.txt").write_text("old")
    with pytest.raises(LatentAtlasError, match="did not write"):  # a folder of the user's is never replaced
        export_projector(out, np.ones((2, 2)))
    assert [p.name for p in out.iterdir()] == ["mine.txt"]
    (out / "mine.txt").unlink()
    export_projector(out, np.ones((2, 2)))
    export_projector(out, np.ones((3, 2)))  # our own export is replaced as a whole
    assert sorted(p.name for p in out.iterdir()) == [".latentatlas", "projector_config.pbtxt", "tensors.tsv"]
    assert len((out / "tensors.tsv").read_text().splitlines()) == 3
    (out / runs.RUN_FILE).write_text("{}")
    with pytest.raises(LatentAtlasError, match="holds a run"):
        export_projector(out, np.ones((2, 2)))


def test_projector_bad_inputs_are_one_line(tmp_path):
    with pytest.raises(LatentAtlasError) as err:
        export_projector(tmp_path / "p", np.ones((3, 2)), labels=[1, 2])
    assert str(err.value) == "metadata column 'label' has shape (2,); expected 3 values, one per vector"
    with pytest.raises(LatentAtlasError, match="thumbnails must be 3 images"):
        export_projector(tmp_path / "p", np.ones((3, 2)), thumbnails=np.zeros((2, 28, 28)))
    assert not (tmp_path / "p").exists()


def _table(n=7, k=5):
    rng = np.random.default_rng(1)
    return {"id": np.arange(n, dtype=np.int64) * 10, "name": np.array([f"Café {i}, \"x\"" for i in range(n)]),
            "factors": rng.normal(size=(n, k)).astype(np.float32), "popularity": rng.random(n)}


@pytest.mark.parametrize("layout", ["columns", "list"])
def test_parquet_round_trip_with_pyarrow_and_ours(tmp_path, layout):
    import pyarrow.parquet as pq

    table = _table()
    path = export_parquet(tmp_path / "f.parquet", table, layout=layout)
    t = pq.read_table(path)
    assert t.num_rows == 7
    if layout == "columns":
        assert t.column_names == ["id", "name", *[f"factors_{j}" for j in range(5)], "popularity"]
        np.testing.assert_array_equal(np.stack([t.column(f"factors_{j}").to_numpy() for j in range(5)], 1),
                                      table["factors"])
    else:
        assert t.column_names == ["id", "name", "factors", "popularity"]
        assert t.schema.field("factors").type.list_size == 5
    assert t.column("name").to_pylist() == table["name"].tolist()
    back = read_parquet(path)
    assert list(back) == ["id", "name", "factors", "popularity"]
    for key, value in table.items():
        np.testing.assert_array_equal(back[key], value)
        assert back[key].dtype == value.dtype or key == "name"


def test_parquet_reads_in_pandas(tmp_path):
    pd = pytest.importorskip("pandas")
    table = _table()
    df = pd.read_parquet(export_parquet(tmp_path / "f.parquet", table))
    assert df["id"].tolist() == table["id"].tolist() and df["name"].tolist() == table["name"].tolist()
    np.testing.assert_array_equal(df.filter(like="factors_").to_numpy(), table["factors"])
    assert df["factors_0"].dtype == np.float32


def test_parquet_is_atomic_and_checks_lengths(tmp_path):
    path = tmp_path / "f.parquet"
    export_parquet(path, {"a": np.arange(3)})
    before = path.read_bytes()
    with pytest.raises(LatentAtlasError) as err:
        export_parquet(path, {"a": np.arange(3), "b": np.zeros((2, 2))})
    assert str(err.value) == "column 'b' has 2 rows; the first column has 3"
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["f.parquet"]


def _embed_run(tmp_path, n=12):
    run = tmp_path / "embed"
    run.mkdir()
    rng = np.random.default_rng(2)
    save_npz(run / "embedding.npz", codes=rng.normal(size=(n, 6)).astype(np.float32),
             labels=np.arange(n, dtype=np.int64) % 3, label_names=np.array(["T-shirt", "Trouser", "Bag"]),
             thumbnails=_thumbs(n), coords_pca=rng.normal(size=(n, 2)).astype(np.float32))
    runs.write_run(run, runs.IMAGES_EMBED, "embedding", artifacts={runs.EMBEDDING: "embedding.npz"})
    return run


def test_projector_and_parquet_from_an_images_embed_run(tmp_path):
    run = _embed_run(tmp_path)
    res = export_embedding_projector(run, tmp_path / "proj")
    assert (res.n_points, res.dims, res.columns, res.grid) == (12, 6, ["id", "label"], 4)
    meta = _lines(tmp_path / "proj" / "metadata.tsv")
    assert meta[:3] == ["id\tlabel", "0\tT-shirt", "1\tTrouser"] and len(meta) == 13
    back = read_parquet(export_embedding_parquet(run, tmp_path / "codes.parquet"))
    assert list(back) == ["index", "label", "label_name", "code", "coords_pca"]
    with np.load(run / "embedding.npz") as z:
        np.testing.assert_array_equal(back["code"], z["codes"])
        np.testing.assert_array_equal(back["coords_pca"], z["coords_pca"])
    assert back["label_name"][:4].tolist() == ["T-shirt", "Trouser", "Bag", "T-shirt"]
    prep = tmp_path / "prep"
    prep.mkdir()
    runs.write_run(prep, runs.RATINGS_PREPARE, "prepared")
    with pytest.raises(LatentAtlasError, match="is a ratings-prepare run; expected an images embed run"):
        export_embedding_projector(prep, tmp_path / "x")


def test_exports_imports_neither_flow():
    code = ("import sys, latentatlas.exports; "
            "bad = [m for m in ('torch', 'latentatlas.ratings.model', 'latentatlas.images', 'pyarrow', 'PIL') "
            "if m in sys.modules]; print(bad)")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"
