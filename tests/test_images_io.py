"""Image readers against hand-written IDX bytes, small npz files and picture folders; every error path."""

from __future__ import annotations

import gzip
import struct

import numpy as np
import pytest

from latentatlas.errors import LatentAtlasError
from latentatlas.images import io


def idx_bytes(type_code: int, dims: tuple[int, ...], payload: bytes) -> bytes:
    return bytes([0, 0, type_code, len(dims)]) + b"".join(struct.pack(">I", d) for d in dims) + payload


def test_read_idx_hand_written_ubyte_raw_and_gzip(tmp_path):
    # two 2×3 images: 0..5 and 250..255, written byte by byte
    payload = bytes([0, 1, 2, 3, 4, 5, 250, 251, 252, 253, 254, 255])
    raw = tmp_path / "x-idx3-ubyte"
    raw.write_bytes(idx_bytes(0x08, (2, 2, 3), payload))
    gz = tmp_path / "x-idx3-ubyte.gz"
    gz.write_bytes(gzip.compress(raw.read_bytes()))
    for path in (raw, gz):
        a = io.read_idx(path)
        assert a.dtype == np.uint8 and a.shape == (2, 2, 3)
        assert a[0].tolist() == [[0, 1, 2], [3, 4, 5]]
        assert a[1, 1, 2] == 255


def test_read_idx_big_endian_int_and_float(tmp_path):
    p = tmp_path / "ints"
    p.write_bytes(idx_bytes(0x0C, (3,), b"\x00\x00\x01\x00" + b"\xff\xff\xff\xfe" + b"\x00\x00\x00\x07"))
    a = io.read_idx(p)
    assert a.tolist() == [256, -2, 7] and a.dtype == np.int32 and a.dtype.isnative
    p.write_bytes(idx_bytes(0x0D, (2,), struct.pack(">ff", 1.5, -0.25)))
    assert io.read_idx(p).tolist() == [1.5, -0.25]


@pytest.mark.parametrize("content, message", [
    (b"\x01\x00\x08\x01\x00\x00\x00\x01\x05", "bad magic number"),
    (b"\x00\x00\x07\x01\x00\x00\x00\x01\x05", "bad magic number"),       # unknown type code
    (b"\x00\x00", "only 2 bytes"),
    (b"\x00\x00\x08\x00", "0 dimensions"),
    (b"\x00\x00\x08\x03\x00\x00\x00\x02", "truncated IDX header"),
    (idx_bytes(0x08, (2, 2, 2), bytes(7)), "truncated"),                  # payload one byte short
    (idx_bytes(0x08, (2,), bytes(3)), "trailing bytes"),
])
def test_read_idx_rejects_bad_files_naming_them(tmp_path, content, message):
    p = tmp_path / "bad-idx"
    p.write_bytes(content)
    with pytest.raises(LatentAtlasError, match=message) as err:
        io.read_idx(p)
    assert str(p) in str(err.value)


def test_read_idx_corrupt_gzip_and_missing_file(tmp_path):
    p = tmp_path / "broken.gz"
    p.write_bytes(gzip.compress(idx_bytes(0x08, (4,), bytes(4)))[:-6])
    with pytest.raises(LatentAtlasError, match="corrupt gzip"):
        io.read_idx(p)
    with pytest.raises(LatentAtlasError, match="no such file"):
        io.read_idx(tmp_path / "absent")


def write_mnist_dir(folder, n_train=5, n_test=3, shape=(4, 4), gz=True, label_dims=None):
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    for prefix, n in (("train", n_train), ("t10k", n_test)):
        images = rng.integers(0, 256, size=(n, *shape), dtype=np.uint8)
        labels = (np.arange(n) % 10).astype(np.uint8)
        files = {f"{prefix}-images-idx3-ubyte": idx_bytes(0x08, (n, *shape), images.tobytes()),
                 f"{prefix}-labels-idx1-ubyte": idx_bytes(0x08, label_dims or (n,), labels.tobytes()
                                                          if label_dims is None else bytes(int(np.prod(label_dims))))}
        for name, content in files.items():
            (folder / (name + ".gz" if gz else name)).write_bytes(gzip.compress(content) if gz else content)
    return folder


@pytest.mark.parametrize("gz", [True, False])
def test_load_fashion_mnist_from_folder(tmp_path, gz):
    d = write_mnist_dir(tmp_path / "fm", gz=gz)
    train, test = io.load_fashion_mnist(d, "train"), io.load_fashion_mnist(d, "test")
    assert train.images.shape == (5, 4, 4) and test.images.shape == (3, 4, 4)
    assert train.labels.tolist() == [0, 1, 2, 3, 4] and train.labels.dtype == np.int64
    assert train.label_names[9] == "Ankle boot" and len(train.label_names) == 10
    assert train.head(2).images.shape == (2, 4, 4) and train.head(None) is train


def test_load_fashion_mnist_missing_says_how_to_get_it(tmp_path):
    with pytest.raises(LatentAtlasError) as err:
        io.load_fashion_mnist(tmp_path / "nowhere")
    msg = str(err.value)
    assert "apt-get install dataset-fashion-mnist" in msg and "nowhere" in msg
    d = write_mnist_dir(tmp_path / "fm")
    (d / "t10k-labels-idx1-ubyte.gz").unlink()
    with pytest.raises(LatentAtlasError, match="t10k-labels-idx1-ubyte.gz"):
        io.load_fashion_mnist(d, "test")
    with pytest.raises(LatentAtlasError, match="split must be"):
        io.load_fashion_mnist(d, "validation")


def test_load_fashion_mnist_wrong_dims(tmp_path):
    d = write_mnist_dir(tmp_path / "fm", label_dims=(5, 2))
    with pytest.raises(LatentAtlasError, match="labels with 1 dimension"):
        io.load_fashion_mnist(d)
    d2 = tmp_path / "fm2"
    d2.mkdir()
    (d2 / "train-images-idx3-ubyte").write_bytes(idx_bytes(0x08, (6, 4), bytes(24)))
    (d2 / "train-labels-idx1-ubyte").write_bytes(idx_bytes(0x08, (6,), bytes(6)))
    with pytest.raises(LatentAtlasError, match="3 dimensions"):
        io.load_fashion_mnist(d2)
    (d2 / "train-images-idx3-ubyte").write_bytes(idx_bytes(0x08, (2, 2, 2), bytes(8)))
    with pytest.raises(LatentAtlasError, match="6 labels for 2 images"):
        io.load_fashion_mnist(d2)


def test_load_images_npz_variants(tmp_path):
    images = np.arange(2 * 3 * 4, dtype=np.uint8).reshape(2, 3, 4)
    p = tmp_path / "a.npz"
    np.savez(p, x=images[..., None], y=np.array([1, 0]))
    s = io.read_images(p)
    assert np.array_equal(s.images, images) and s.labels.tolist() == [1, 0]
    np.savez(p, images=np.array([[[0.0, 0.5], [1.0, 0.25]]]))
    assert io.read_images(p).images.tolist() == [[[0, 128], [255, 64]]]
    np.savez(p, images=np.full((1, 2, 2), 1.5))
    with pytest.raises(LatentAtlasError, match=r"expected \[0, 1\]"):
        io.read_images(p)
    np.savez(p, pictures=images)
    with pytest.raises(LatentAtlasError, match="no 'images'"):
        io.read_images(p)
    np.savez(p, images=images, labels=np.array([1, 2, 3]))
    with pytest.raises(LatentAtlasError, match="3 labels for 2 images"):
        io.read_images(p)
    p.write_bytes(b"not a zip")
    with pytest.raises(LatentAtlasError, match="cannot read as .npz"):
        io.read_images(p)


def test_load_images_rgb_npz_keeps_colour_or_becomes_luminance(tmp_path):
    rgb = np.zeros((1, 1, 3, 3), np.uint8)  # N×H×W×C: one row of red, green, white
    rgb[0, 0, 0] = [255, 0, 0]
    rgb[0, 0, 1] = [0, 255, 0]
    rgb[0, 0, 2] = [255, 255, 255]
    p = tmp_path / "rgb.npz"
    np.savez(p, images=rgb)
    s = io.read_images(p)
    assert s.images.shape == (1, 3, 1, 3) and s.channels == 3  # N×C×H×W
    assert s.images[0, :, 0].T.tolist() == [[255, 0, 0], [0, 255, 0], [255, 255, 255]]
    assert io.read_images(p, grayscale=True).images[0, 0].tolist() == [76, 150, 255]  # 0.299·255, 0.587·255, 255
    wide = np.concatenate([rgb, rgb[:, :, :2]], axis=2)  # 1×5: channels first is then unambiguous
    np.savez(p, images=np.moveaxis(wide, -1, 1))
    assert io.read_images(p).images[0, :, 0, :3].T.tolist() == [[255, 0, 0], [0, 255, 0], [255, 255, 255]]


def test_load_images_folder_with_classes(tmp_path):
    from PIL import Image

    for cls, value in (("cats", 10), ("dogs", 200)):
        (tmp_path / cls).mkdir()
        for i in range(2):
            Image.fromarray(np.full((5, 6, 3), value + i, np.uint8)).save(tmp_path / cls / f"{i}.png")
    s = io.read_images(tmp_path)
    assert s.images.shape == (4, 5, 6) and s.labels.tolist() == [0, 0, 1, 1]
    assert s.label_names == ["cats", "dogs"] and s.images[3, 0, 0] == 201
    Image.fromarray(np.zeros((7, 7), np.uint8)).save(tmp_path / "dogs" / "odd.png")
    s = io.read_images(tmp_path)  # another size: resized to the most common one (5×6)
    assert s.images.shape == (5, 5, 6) and s.labels.tolist() == [0, 0, 1, 1, 1] and (s.images[4] == 0).all()


def test_load_images_errors(tmp_path):
    with pytest.raises(LatentAtlasError, match="no such file or folder"):
        io.read_images(tmp_path / "absent.npz")
    (tmp_path / "empty").mkdir()
    with pytest.raises(LatentAtlasError, match="no images found"):
        io.read_images(tmp_path / "empty")
    (tmp_path / "fake.png").write_bytes(b"nope")
    with pytest.raises(LatentAtlasError, match="cannot read as an image"):
        io.read_images(tmp_path / "fake.png")


def _png_bytes(value: int = 100) -> bytes:
    import io as _io

    from PIL import Image

    buf = _io.BytesIO()
    Image.fromarray(np.full((6, 6), value, np.uint8)).save(buf, format="PNG")
    return buf.getvalue()


@pytest.mark.parametrize("name, content", [
    ("cut.png", _png_bytes()[:40]),                             # truncated inside the image data
    ("crc.png", _png_bytes()[:20] + b"X" + _png_bytes()[21:]),  # a damaged chunk (Pillow: SyntaxError)
    ("empty.png", b""),                                         # 0 bytes
    ("text.png", b"\x1b[31mnot a picture\n"),                   # control characters are not echoed
])
def test_damaged_picture_in_a_folder_is_one_line_naming_it(tmp_path, name, content):
    folder = tmp_path / "pics"
    folder.mkdir()
    for i in range(3):
        (folder / f"ok{i}.png").write_bytes(_png_bytes(10 * i))
    (folder / name).write_bytes(content)
    with pytest.raises(LatentAtlasError) as err:
        io.read_images(folder)
    msg = str(err.value)
    assert msg.startswith(str(folder / name) + ": cannot read as an image") and "\n" not in msg
    assert "\x1b" not in msg


@pytest.mark.parametrize("name, message", [
    ("empty.npz", "empty.npz: cannot read as .npz: the file is empty"),
    ("empty-images-idx3-ubyte", "not an IDX file (only 0 bytes)"),
    ("empty.gz", "not an IDX file (only 0 bytes)"),
])
def test_zero_byte_files(tmp_path, name, message):
    (tmp_path / name).write_bytes(b"")
    with pytest.raises(LatentAtlasError, match=message.replace("(", r"\(").replace(")", r"\)")):
        io.read_images(tmp_path / name)


def test_read_images_splits_limit_and_conversions(tmp_path):
    import torch

    d = write_mnist_dir(tmp_path / "fm", n_train=5, n_test=3)
    assert len(io.read_images(d)) == 5 and len(io.read_images(d, "test")) == 3
    both = io.read_images(d, "all")
    assert len(both) == 8 and both.labels.tolist() == [0, 1, 2, 3, 4, 0, 1, 2]
    np.testing.assert_array_equal(both.images[5:], io.read_images(d, "test").images)
    assert len(io.read_images(d, "all", limit=6)) == 6
    with pytest.raises(LatentAtlasError, match="split must be one of"):
        io.read_images(d, "validation")
    with pytest.raises(LatentAtlasError, match="limit must be a positive integer"):
        io.read_images(d, limit=0)
    np.savez(tmp_path / "x.npz", images=np.zeros((2, 4, 4), np.uint8))
    with pytest.raises(LatentAtlasError, match="a file has no splits"):
        io.read_images(tmp_path / "x.npz", "test")
    with pytest.raises(LatentAtlasError, match="apt-get install dataset-fashion-mnist"):
        io.read_images(tmp_path / "nowhere", "train")
    # arrays and tensors, uint8 or floats in [0, 1], with or without a channel axis
    pixels = np.array([[[0, 51], [204, 255]]], np.uint8)
    for value in (pixels, pixels / 255.0, torch.from_numpy(pixels / 255.0).float()[:, None]):
        np.testing.assert_array_equal(io.as_image_set(value).images, pixels)
    with pytest.raises(LatentAtlasError, match="expected N×H×W"):
        io.as_image_set(np.zeros((4, 4)))


def test_load_images_idx_file_finds_sibling_labels(tmp_path):
    d = write_mnist_dir(tmp_path / "mnist")
    s = io.read_images(d / "t10k-images-idx3-ubyte.gz")
    assert s.images.shape == (3, 4, 4) and s.labels.tolist() == [0, 1, 2]
    assert io.read_images(d).images.shape == (5, 4, 4)  # a Fashion-MNIST folder gives its train set


@pytest.mark.skipif(not (io.FASHION_MNIST_DIR / "t10k-images-idx3-ubyte.gz").exists(),
                    reason="Debian package dataset-fashion-mnist not installed")
def test_real_fashion_mnist_test_split():
    s = io.read_images(split="test")
    assert s.images.shape == (10000, 28, 28) and s.images.dtype == np.uint8
    assert np.bincount(s.labels).tolist() == [1000] * 10
