"""Exports that other tools open: TensorBoard's Embedding Projector and Parquet.

Both flows use these (image codes, item and user factors), so this module imports neither: only numpy, and
pyarrow / Pillow when a function needs them.

**Projector.** :func:`export_projector` writes ``tensors.tsv``, ``metadata.tsv``, ``sprite.png`` and
``projector_config.pbtxt`` into one folder (``tensorboard --logdir DIR`` opens it; the two TSV files also load
into the stand-alone projector). The sprite is a square grid of thumbnails whose side may not exceed
:data:`SPRITE_MAX_PX` (the projector's limit). When every point does not fit, the cells shrink, down to
:data:`MIN_CELL_PX`; past that the export keeps the **first** N points that fit — in the sprite *and* in both
TSV files, because the projector expects one sprite cell per point — and :class:`ProjectorExport` says how
many were dropped. At 28 px, 85,264 thumbnails fit (292 × 292 cells), so all 70,000 Fashion-MNIST images go
in at full size.

**Parquet.** :func:`export_parquet` writes a table of 1-D and 2-D arrays. A 2-D array (codes, factors)
becomes one float column per dimension (``code_0``, ``code_1``…) by default: pandas, polars and DuckDB all
read those as plain numeric columns, with no list or array type to unpack (``df.filter(like="code_")`` in
pandas, ``COLUMNS('code_.*')`` in DuckDB). ``layout="list"`` writes one fixed-size-list column instead, which
polars reads as an ``Array`` and DuckDB as a ``FLOAT[]`` list but pandas only as an object column of arrays
(checked with polars 1.44 and DuckDB 1.5).
:func:`read_parquet` reassembles either layout from the schema's ``latentatlas`` metadata.
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping

import numpy as np

from latentatlas.errors import LatentAtlasError
from latentatlas.fsutil import atomic_path

SPRITE_MAX_PX = 8192
MIN_CELL_PX = 8
TENSORS_FILE = "tensors.tsv"
METADATA_FILE = "metadata.tsv"
SPRITE_FILE = "sprite.png"
CONFIG_FILE = "projector_config.pbtxt"
PARQUET_LAYOUTS = ("columns", "list")
_SCHEMA_KEY = b"latentatlas"


@dataclass(frozen=True)
class ProjectorExport:
    """What :func:`export_projector` wrote: ``n_points`` of ``n_total`` points (the first ones), thumbnails of
    ``cell_px`` pixels in a ``grid`` × ``grid`` sprite, and ``message`` saying what was dropped ("" if nothing)."""

    path: Path
    n_points: int
    n_total: int
    dims: int
    columns: list[str]
    cell_px: int | None = None
    grid: int | None = None
    files: dict[str, str] = field(default_factory=dict)
    message: str = ""

    @property
    def n_dropped(self) -> int:
        return self.n_total - self.n_points


def sprite_layout(n: int, thumb_px: int, cell_px: int | None = None,
                  max_px: int = SPRITE_MAX_PX) -> tuple[int, int, int]:
    """``(points kept, cell size, cells per side)`` for ``n`` thumbnails of ``thumb_px`` pixels.

    With ``cell_px`` None the cell is the thumbnail's own size when all points fit, else the largest size
    that fits them all, but not under :data:`MIN_CELL_PX`; a given ``cell_px`` is kept as is. Points that
    still do not fit are cut from the end.
    """
    if n <= 0:
        return 0, cell_px or thumb_px, 0
    if cell_px is None:
        cell_px = min(thumb_px, max(MIN_CELL_PX, max_px // math.ceil(math.sqrt(n))))
    if cell_px < 1 or cell_px > max_px:
        raise LatentAtlasError(f"sprite cell size must be between 1 and {max_px} pixels, got {cell_px}")
    per_side = max_px // cell_px
    kept = min(n, per_side * per_side)
    return kept, cell_px, math.ceil(math.sqrt(kept))


def export_projector(out_dir: str | os.PathLike, vectors, *, labels=None, names=None, ids=None,
                     metadata: Mapping[str, object] | None = None, thumbnails=None, label_names=None,
                     cell_px: int | None = None, tensor_name: str = "latentatlas") -> ProjectorExport:
    """Write TensorBoard projector files for ``vectors`` (N × D) into the folder ``out_dir``, replacing it as
    a whole (:func:`latentatlas.runs.staged_run`).

    ``metadata.tsv`` gets a column per given ``ids``, ``labels`` (ints mapped through ``label_names`` when
    given), ``names`` and each ``metadata`` entry, in that order; with more than one column its first row is
    the header (the projector's convention). ``thumbnails`` (N × H × W grey or N × H × W × 3, uint8 or floats
    in [0, 1]) become ``sprite.png``; see :func:`sprite_layout` for the size limit and what is dropped.
    """
    from latentatlas import runs

    vectors = np.asarray(vectors)
    if vectors.ndim != 2 or vectors.shape[0] == 0 or vectors.dtype.kind not in "iuf":
        raise LatentAtlasError(f"vectors must be a non-empty numeric N×D array, got shape {vectors.shape} "
                               f"and dtype {vectors.dtype}")
    n_total, dims = vectors.shape
    columns = _metadata_columns(n_total, ids=ids, labels=labels, label_names=label_names, names=names,
                                metadata=metadata)
    out = Path(out_dir)
    if (out / runs.RUN_FILE).exists():
        raise LatentAtlasError(f"{out} holds a run ({runs.RUN_FILE}); export the projector files to another folder")
    n = n_total
    sprite = None
    if thumbnails is not None:
        thumbs = _thumbnail_array(thumbnails, n_total)
        n, cell, grid = sprite_layout(n_total, max(thumbs.shape[1:3]), cell_px)
        sprite = (thumbs, cell, grid)
    files = {"tensors": TENSORS_FILE}
    with runs.staged_run(out) as stage:
        _write_tsv_numbers(stage / TENSORS_FILE, vectors[:n])
        if columns:
            files["metadata"] = METADATA_FILE
            _write_metadata(stage / METADATA_FILE, {k: v[:n] for k, v in columns.items()})
        if sprite is not None:
            files["sprite"] = SPRITE_FILE
            _write_sprite(stage / SPRITE_FILE, sprite[0][:n], sprite[1], sprite[2])
        files["config"] = CONFIG_FILE
        (stage / CONFIG_FILE).write_text(_pbtxt(tensor_name, n, dims, "metadata" in files,
                                                None if sprite is None else sprite[1]), encoding="utf-8")
    message = ""
    if n < n_total:
        message = (f"kept the first {n:,} of {n_total:,} points: {n_total - n:,} more do not fit in a "
                   f"{SPRITE_MAX_PX}-pixel sprite at {sprite[1]} px per thumbnail")
    return ProjectorExport(path=out, n_points=n, n_total=n_total, dims=dims, columns=list(columns),
                           cell_px=None if sprite is None else sprite[1],
                           grid=None if sprite is None else sprite[2], files=files, message=message)


def _metadata_columns(n: int, *, ids, labels, label_names, names, metadata) -> dict[str, np.ndarray]:
    cols: dict[str, np.ndarray] = {}
    if ids is not None:
        cols["id"] = np.asarray(ids)
    if labels is not None:
        lab = np.asarray(labels)
        if label_names is not None and len(label_names) and lab.dtype.kind in "iu":
            table = np.asarray([str(s) for s in label_names], dtype=object)
            inside = (lab >= 0) & (lab < len(table))
            text = lab.astype(str).astype(object)
            text[inside] = table[lab[inside]]
            lab = text
        cols["label"] = lab
    if names is not None:
        cols["name"] = np.asarray(["" if v is None else str(v) for v in np.asarray(names, dtype=object)],
                                  dtype=object)
    for key, values in dict(metadata or {}).items():
        if str(key) in cols:
            raise LatentAtlasError(f"metadata column {key!r} repeats a column already written")
        cols[str(key)] = np.asarray(values)
    for key, values in cols.items():
        if values.ndim != 1 or len(values) != n:
            raise LatentAtlasError(f"metadata column {key!r} has shape {values.shape}; expected {n} values, "
                                   "one per vector")
    return cols


def _thumbnail_array(thumbnails, n: int) -> np.ndarray:
    thumbs = np.asarray(thumbnails)
    if thumbs.ndim == 4 and thumbs.shape[-1] == 1:
        thumbs = thumbs[..., 0]
    if thumbs.ndim not in (3, 4) or (thumbs.ndim == 4 and thumbs.shape[-1] not in (3, 4)) or len(thumbs) != n:
        raise LatentAtlasError(f"thumbnails must be {n} images of N×H×W (grey) or N×H×W×3 (colour), "
                               f"got shape {thumbs.shape}")
    if thumbs.dtype != np.uint8:
        if thumbs.dtype.kind == "f":
            thumbs = np.clip(np.nan_to_num(thumbs) * 255.0 + 0.5, 0, 255)
        thumbs = thumbs.astype(np.uint8)
    return thumbs


def _write_tsv_numbers(path: Path, values: np.ndarray) -> None:
    import pyarrow as pa
    import pyarrow.csv as pcsv

    # Arrow's C++ writer: shortest text that reads back to the same float32, twice as fast as np.savetxt.
    values = np.ascontiguousarray(values, dtype=np.float32)
    table = pa.Table.from_arrays([pa.array(values[:, j]) for j in range(values.shape[1])],
                                 names=[f"c{j}" for j in range(values.shape[1])])
    pcsv.write_csv(table, path, write_options=pcsv.WriteOptions(include_header=False, delimiter="\t",
                                                                quoting_style="none"))


def _cell(value) -> str:
    text = "" if value is None else str(value)
    # A tab or newline inside a value would shift the projector's columns or rows.
    return " ".join(text.replace("\t", " ").splitlines())


def _write_metadata(path: Path, cols: dict[str, np.ndarray]) -> None:
    keys = list(cols)
    with open(path, "w", encoding="utf-8", newline="\n") as fh:
        if len(keys) > 1:
            fh.write("\t".join(_cell(k) for k in keys) + "\n")
            for row in zip(*(cols[k].tolist() for k in keys)):
                fh.write("\t".join(_cell(v) for v in row) + "\n")
        else:
            # One column, no header: an empty line would be read as no label, so say it.
            for v in cols[keys[0]].tolist():
                fh.write((_cell(v) or "(none)") + "\n")


def _write_sprite(path: Path, thumbs: np.ndarray, cell: int, grid: int) -> None:
    from PIL import Image

    n = len(thumbs)
    h, w = thumbs.shape[1:3]
    if (h, w) != (cell, cell):
        mode = "L" if thumbs.ndim == 3 else ("RGBA" if thumbs.shape[-1] == 4 else "RGB")
        thumbs = np.stack([np.asarray(Image.fromarray(t, mode=mode).resize((cell, cell), Image.BILINEAR))
                           for t in thumbs])
    channels = thumbs.shape[3:]  # () for grey, (3,) for colour
    sheet = np.zeros((grid * grid, cell, cell, *channels), dtype=np.uint8)
    sheet[:n] = thumbs
    # Row-major cells, as the projector reads them: cell k is at row k // grid, column k % grid.
    sheet = sheet.reshape(grid, grid, cell, cell, *channels).swapaxes(1, 2)
    sheet = sheet.reshape(grid * cell, grid * cell, *channels)
    # zlib level 3: half the time of the default 6 for 6 % more bytes (70,000 Fashion-MNIST cells: 3.8 s, 29 MB)
    Image.fromarray(sheet).save(path, format="PNG", compress_level=3)


def _pbtxt(tensor_name: str, n: int, dims: int, has_metadata: bool, cell: int | None) -> str:
    lines = ["embeddings {", f"  tensor_name: {json.dumps(tensor_name)}", f"  tensor_shape: {n}",
             f"  tensor_shape: {dims}", f'  tensor_path: "{TENSORS_FILE}"']
    if has_metadata:
        lines.append(f'  metadata_path: "{METADATA_FILE}"')
    if cell is not None:
        lines += ["  sprite {", f'    image_path: "{SPRITE_FILE}"', f"    single_image_dim: {cell}",
                  f"    single_image_dim: {cell}", "  }"]
    return "\n".join(lines + ["}"]) + "\n"


# --- Parquet ----------------------------------------------------------------------------------------------------
def export_parquet(path: str | os.PathLike, table: Mapping[str, object], *, layout: str = "columns",
                   metadata: Mapping[str, object] | None = None) -> Path:
    """Write ``table`` (column name → 1-D array, or N × K array for codes and factors) to a Parquet file,
    atomically. All arrays must have the same length N. 2-D arrays become ``name_0 … name_{K-1}`` float
    columns (``layout="columns"``) or one fixed-size-list column (``layout="list"``). ``metadata`` (JSON-able)
    is kept in the schema beside the layout, for :func:`read_parquet`."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    if layout not in PARQUET_LAYOUTS:
        raise LatentAtlasError(f"layout must be one of {', '.join(PARQUET_LAYOUTS)}, got {layout!r}")
    if not table:
        raise LatentAtlasError("nothing to write: the table has no columns")
    arrays, names, vectors = [], [], {}
    n = None
    for key, values in table.items():
        key = str(key)
        values = np.asarray(values)
        if values.ndim not in (1, 2):
            raise LatentAtlasError(f"column {key!r} has shape {values.shape}; expected 1-D or N×K")
        if n is None:
            n = len(values)
        elif len(values) != n:
            raise LatentAtlasError(f"column {key!r} has {len(values)} rows; the first column has {n}")
        if values.ndim == 2:
            k = values.shape[1]
            vectors[key] = k
            if layout == "list":
                flat = pa.array(np.ascontiguousarray(values).reshape(-1))
                arrays.append(pa.FixedSizeListArray.from_arrays(flat, k))
                names.append(key)
            else:
                for j in range(k):
                    arrays.append(pa.array(np.ascontiguousarray(values[:, j])))
                    names.append(f"{key}_{j}")
        else:
            arrays.append(_arrow_column(values))
            names.append(key)
    if len(set(names)) != len(names):
        dup = sorted({x for x in names if names.count(x) > 1})
        raise LatentAtlasError(f"Parquet column names would repeat: {', '.join(dup)}")
    info = {"layout": layout, "vectors": vectors, **dict(metadata or {})}
    schema_meta = {_SCHEMA_KEY: json.dumps(info, default=str).encode()}
    arrow = pa.Table.from_arrays(arrays, names=names).replace_schema_metadata(schema_meta)
    path = Path(path)
    with atomic_path(path, suffix=".parquet") as tmp:
        pq.write_table(arrow, tmp, compression="zstd")
    return path


def _arrow_column(values: np.ndarray):
    import pyarrow as pa

    if values.dtype == object:
        return pa.array([None if v is None else v for v in values.tolist()])
    if values.dtype.kind in "US":
        return pa.array(values.astype(str).tolist(), type=pa.string())
    return pa.array(values)


def read_parquet(path: str | os.PathLike) -> dict[str, np.ndarray]:
    """A file written by :func:`export_parquet` as column name → array, with each 2-D array put back
    together (whatever the layout)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        t = pq.read_table(path)
    except (OSError, ValueError) as exc:
        raise LatentAtlasError(f"{path}: not a readable Parquet file ({exc})") from None
    raw = (t.schema.metadata or {}).get(_SCHEMA_KEY)
    info = json.loads(raw) if raw else {"layout": "columns", "vectors": {}}
    vectors = info.get("vectors", {})
    out: dict[str, np.ndarray] = {}
    taken = set()
    for key, k in vectors.items():
        if key in t.column_names:  # list layout
            col = t.column(key).combine_chunks()
            out[key] = col.flatten().to_numpy(zero_copy_only=False).reshape(len(col), k)
            taken.add(key)
        else:
            parts = [f"{key}_{j}" for j in range(k)]
            out[key] = np.stack([t.column(c).to_numpy() for c in parts], axis=1)
            taken.update(parts)
    result = {}
    for name in t.column_names:
        if name in taken:
            base = name if name in vectors else name.rsplit("_", 1)[0]
            if base not in result:
                result[base] = out[base]
            continue
        col = t.column(name)
        arr = col.to_numpy(zero_copy_only=False)
        text = pa.types.is_string(col.type) or pa.types.is_large_string(col.type)
        result[name] = arr.astype(str) if text and col.null_count == 0 else arr
    return result


# --- from run folders ----------------------------------------------------------------------------------------------
def _embedding_arrays(run_dir) -> tuple[dict[str, np.ndarray], Path]:
    from latentatlas import runs

    run = runs.load_run(run_dir)
    if run.kind != runs.IMAGES_EMBED:
        raise LatentAtlasError(f"{run.path} is a {run.kind} run; expected an images embed run")
    path = run.artifact(runs.EMBEDDING)
    try:
        with np.load(path, allow_pickle=False) as z:
            arrays = {k: z[k] for k in z.files}
    except (OSError, ValueError) as exc:
        raise LatentAtlasError(f"{path}: cannot read embedding file ({exc})") from None
    if "codes" not in arrays:
        raise LatentAtlasError(f"{path}: has no 'codes' array")
    return arrays, path


def export_embedding_projector(run_dir: str | os.PathLike, out_dir: str | os.PathLike, *,
                               cell_px: int | None = None) -> ProjectorExport:
    """Projector files for an ``images embed`` run: its latent codes, class names as labels, its thumbnails
    as the sprite, and the image index as id."""
    arrays, _ = _embedding_arrays(run_dir)
    codes = arrays["codes"]
    labels = arrays.get("labels")
    if labels is not None and np.all(labels < 0):
        labels = None  # images without labels are stored as -1
    return export_projector(out_dir, codes, ids=np.arange(len(codes)), labels=labels,
                            label_names=arrays.get("label_names"), thumbnails=arrays.get("thumbnails"),
                            cell_px=cell_px)


def export_embedding_parquet(run_dir: str | os.PathLike, path: str | os.PathLike, *,
                             layout: str = "columns") -> Path:
    """The codes of an ``images embed`` run, with image index, label, class name and every 2-D projection
    (``coords_tsne_p30_0``/``_1``…), as Parquet."""
    from latentatlas import runs

    arrays, source = _embedding_arrays(run_dir)
    codes = arrays["codes"]
    table: dict[str, np.ndarray] = {"index": np.arange(len(codes), dtype=np.int64)}
    labels = arrays.get("labels")
    if labels is not None and not np.all(labels < 0):
        table["label"] = labels
        names = arrays.get("label_names")
        if names is not None and len(names):
            inside = (labels >= 0) & (labels < len(names))
            text = np.full(len(labels), "", dtype=object)
            text[inside] = np.asarray(names)[labels[inside]]
            table["label_name"] = text.astype(str)
    table["code"] = codes
    for key, value in arrays.items():
        if key.startswith(runs.COORDS_PREFIX) and value.ndim == 2 and len(value) == len(codes):
            table[key] = value
    return export_parquet(path, table, layout=layout, metadata={"source": str(source)})
