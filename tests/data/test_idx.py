"""read_idx, download and the MNIST / Fashion-MNIST loaders, on tiny IDX files and the real shared data.

The real data is read from ``../shared/datasets/<name>`` next to the repository; those tests skip
when it is absent. Downloads use ``file://`` URLs, so no test touches the network.
"""

from __future__ import annotations

import dataclasses
import gzip
import shutil
import struct
from pathlib import Path

import numpy as np
import pytest
import torch

from nasforge.data import Task, _idx, download, load, read_idx
from nasforge.data._idx import IDX_DATASETS, load_fashion_mnist, load_mnist
from nasforge.errors import ConfigError, DataError, UnknownComponentError

SHARED = (Path(__file__).resolve().parents[2] / ".." / "shared" / "datasets").resolve()

# per-class label counts, from the READMEs in SHARED
MNIST_TRAIN_COUNTS = [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]
MNIST_TEST_COUNTS = [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]
FASHION_CLASSES = (
    "T-shirt/top",
    "Trouser",
    "Pullover",
    "Dress",
    "Coat",
    "Sandal",
    "Shirt",
    "Sneaker",
    "Bag",
    "Ankle boot",
)


def shared_dir(name: str) -> Path:
    directory = SHARED / name
    missing = [f.name for f in IDX_DATASETS[name].files if not (directory / f"{f.name}.gz").is_file()]
    if missing:
        pytest.skip(f"real {name} data not available: {directory} lacks {', '.join(missing)}")
    return directory


def idx_bytes(array: np.ndarray) -> bytes:
    code = {np.uint8: 0x08, np.int8: 0x09, np.int16: 0x0B, np.int32: 0x0C, np.float32: 0x0D, np.float64: 0x0E}
    header = struct.pack(">BBBB", 0, 0, code[array.dtype.type], array.ndim)
    header += struct.pack(f">{array.ndim}I", *array.shape)
    return header + array.astype(array.dtype.newbyteorder(">")).tobytes()


def images(n: int = 100) -> np.ndarray:
    return np.random.default_rng(0).integers(0, 256, size=(n, 28, 28), dtype=np.uint8)


@pytest.fixture(autouse=True)
def no_data_dir_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    # tests that want a data directory set it themselves; none may find files in the real cache
    monkeypatch.delenv(_idx.DATA_DIR_ENV, raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))


# -------------------------------------------------------------------------------------------- read_idx


@pytest.mark.parametrize("compress", [False, True], ids=["raw", "gz"])
@pytest.mark.parametrize(
    "array",
    [
        images(5),
        np.arange(10, dtype=np.uint8),
        np.array([-3, 0, 70000], dtype=np.int32),
        np.linspace(-1, 1, 12, dtype=np.float32).reshape(3, 4),
        np.array([[1.5, -2.25]], dtype=np.float64),
        np.array([-7, 300], dtype=np.int16),
    ],
    ids=["uint8-3d", "uint8-1d", "int32", "float32-2d", "float64", "int16"],
)
def test_read_idx_round_trip(tmp_path: Path, array: np.ndarray, compress: bool) -> None:
    data = idx_bytes(array)
    path = tmp_path / ("x.idx.gz" if compress else "x.idx")
    path.write_bytes(gzip.compress(data) if compress else data)
    got = read_idx(path)
    assert got.dtype == array.dtype and got.dtype.isnative
    np.testing.assert_array_equal(got, array)
    got[...] = 0  # a writable copy, not a view of the file's bytes


def test_read_idx_detects_gzip_by_content_not_name(tmp_path: Path) -> None:
    path = tmp_path / "labels-idx1-ubyte"  # no .gz suffix, gzip inside
    path.write_bytes(gzip.compress(idx_bytes(np.arange(4, dtype=np.uint8))))
    assert read_idx(str(path)).tolist() == [0, 1, 2, 3]


def test_read_idx_reads_concatenated_gzip_members(tmp_path: Path) -> None:
    data = idx_bytes(images(3))
    path = tmp_path / "multi.gz"
    path.write_bytes(gzip.compress(data[:1000]) + gzip.compress(data[1000:]))
    np.testing.assert_array_equal(read_idx(path), images(3))


@pytest.mark.parametrize("compress", [False, True], ids=["raw", "gz"])
def test_truncated_file_names_file_and_sizes(tmp_path: Path, compress: bool) -> None:
    data = idx_bytes(images(100))
    blob = gzip.compress(data) if compress else data
    path = tmp_path / ("train-images-idx3-ubyte.gz" if compress else "train-images-idx3-ubyte")
    path.write_bytes(blob[: len(blob) // 2])
    with pytest.raises(DataError) as info:
        read_idx(path)
    message = str(info.value)
    assert str(path) in message
    assert "is truncated: expected 78,400 bytes of pixels for shape (100, 28, 28), got " in message
    assert "delete it and download again" in message


def test_gzip_missing_its_trailer_is_truncated(tmp_path: Path) -> None:
    path = tmp_path / "labels.gz"
    path.write_bytes(gzip.compress(idx_bytes(np.arange(50, dtype=np.uint8)))[:-4])
    with pytest.raises(DataError, match="truncated: its gzip stream ends before its end marker"):
        read_idx(path)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"\x89PNG\r\n\x1a\n" + bytes(64), r"not an IDX file: magic number 0x89504e47"),
        (b"\x00\x00\x07\x01" + bytes(8), r"not an IDX file: magic number 0x00000701"),  # unknown type code
        (b"\x00\x00\x08\x00" + bytes(8), r"not an IDX file: magic number 0x00000800"),  # zero dimensions
        (b"\x00\x00", r"not an IDX file: it holds only 2 bytes"),
        (b"\x00\x00\x08\x03\x00\x00\x00\x02", r"truncated: its header announces 3 dimensions"),
        (idx_bytes(np.arange(5, dtype=np.uint8)) + b"extra", r"5 bytes of labels\), but 10 bytes follow"),
    ],
    ids=["png", "type-code", "no-dims", "tiny", "short-header", "trailing-bytes"],
)
def test_foreign_or_corrupt_content(tmp_path: Path, content: bytes, message: str) -> None:
    path = tmp_path / "foreign.bin"
    path.write_bytes(content)
    with pytest.raises(DataError, match=message) as info:
        read_idx(path)
    assert str(path) in str(info.value)


def test_corrupt_gzip(tmp_path: Path) -> None:
    blob = bytearray(gzip.compress(idx_bytes(images(20))))
    blob[len(blob) // 2] ^= 0xFF
    path = tmp_path / "bad.gz"
    path.write_bytes(bytes(blob))
    with pytest.raises(DataError, match=r"bad\.gz is (corrupt|truncated)"):
        read_idx(path)


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="does not exist"):
        read_idx(tmp_path / "nope.gz")


# ------------------------------------------------------------------------------------ real datasets


@pytest.fixture(scope="module")
def mnist() -> Task:
    return load_mnist(shared_dir("mnist"))


@pytest.fixture(scope="module")
def fashion() -> Task:
    return load_fashion_mnist(shared_dir("fashion-mnist"))


def check_layout(task: Task) -> None:
    sizes = (len(task.y_train), len(task.y_val), len(task.y_test))
    assert sizes == (54000, 6000, 10000)
    for x, y in ((task.x_train, task.y_train), (task.x_val, task.y_val), (task.x_test, task.y_test)):
        assert x.dtype == torch.float32 and y.dtype == torch.int64
        assert tuple(x.shape[1:]) == (1, 28, 28)
    assert task.input_shape == (1, 28, 28) and task.num_classes == 10
    assert task.describe() == f"{task.name}: 54,000 train / 6,000 val / 10,000 test, 1x28x28, 10 classes"
    # normalised with the standard statistics, which are those of the training pixels
    assert abs(float(task.x_train.mean())) < 0.01 and abs(float(task.x_train.std()) - 1) < 0.01
    lowest = (0 - task.mean[0]) / task.std[0]
    assert float(task.x_test.min()) == pytest.approx(lowest, abs=1e-5)


def test_mnist(mnist: Task) -> None:
    check_layout(mnist)
    assert mnist.name == "mnist"
    assert mnist.class_names == tuple("0123456789")
    assert (mnist.mean, mnist.std) == ((0.1307,), (0.3081,))
    assert torch.bincount(mnist.y_test, minlength=10).tolist() == MNIST_TEST_COUNTS
    train_and_val = torch.bincount(torch.cat([mnist.y_train, mnist.y_val]), minlength=10)
    assert train_and_val.tolist() == MNIST_TRAIN_COUNTS
    val = torch.bincount(mnist.y_val, minlength=10).numpy()
    assert np.all(np.abs(val - np.array(MNIST_TRAIN_COUNTS) * 0.1) <= 1)  # stratified


def test_fashion_mnist(fashion: Task) -> None:
    check_layout(fashion)
    assert fashion.name == "fashion-mnist"
    assert fashion.class_names == FASHION_CLASSES
    assert (fashion.mean, fashion.std) == ((0.2860,), (0.3530,))
    assert torch.bincount(fashion.y_test, minlength=10).tolist() == [1000] * 10
    assert torch.bincount(fashion.y_val, minlength=10).tolist() == [600] * 10
    assert torch.bincount(fashion.y_train, minlength=10).tolist() == [5400] * 10


def test_loader_fraction_matches_with_fraction(mnist: Task) -> None:
    small = load_mnist(shared_dir("mnist"), fraction=0.05)
    expected = mnist.with_fraction(0.05, seed=0)
    assert len(small.y_train) == 2700
    assert torch.equal(small.y_train, expected.y_train) and torch.equal(small.x_train, expected.x_train)
    assert torch.equal(small.y_val, mnist.y_val)


def test_load_by_alias_with_options_and_verification() -> None:
    task = load("fmnist", shared_dir("fashion-mnist"), fraction=0.1, seed=2, val_fraction=0.2, verify=True)
    assert task.name == "fashion-mnist"
    assert (len(task.y_train), len(task.y_val), len(task.y_test)) == (4800, 12000, 10000)
    assert torch.bincount(task.y_train, minlength=10).tolist() == [480] * 10


def test_verify_catches_the_wrong_dataset() -> None:
    with pytest.raises(DataError, match="does not match fashion-mnist's train-images-idx3-ubyte"):
        load_fashion_mnist(shared_dir("mnist"), verify=True)


def test_reads_uncompressed_files(tmp_path: Path) -> None:
    source = shared_dir("mnist")
    for file in IDX_DATASETS["mnist"].files:
        compressed = source / f"{file.name}.gz"
        if file.name.startswith("train-images"):
            (tmp_path / f"{file.name}.gz").symlink_to(compressed)
        else:  # a mix of .gz and uncompressed names
            (tmp_path / file.name).write_bytes(gzip.decompress(compressed.read_bytes()))
    task = load_mnist(tmp_path, val_fraction=0.5, verify=True)
    assert (len(task.y_train), len(task.y_val), len(task.y_test)) == (30000, 30000, 10000)
    assert task.source == str(tmp_path)


# -------------------------------------------------------------------------------- directory lookup


def test_root_none_uses_env_subdirectory(monkeypatch: pytest.MonkeyPatch) -> None:
    shared_dir("mnist")
    monkeypatch.setenv(_idx.DATA_DIR_ENV, str(SHARED))
    assert load_mnist(fraction=0.01).source == str(SHARED / "mnist")


def test_root_none_uses_env_directory_itself(monkeypatch: pytest.MonkeyPatch) -> None:
    directory = shared_dir("fashion-mnist")
    monkeypatch.setenv(_idx.DATA_DIR_ENV, str(directory))
    assert load("fashion-mnist", fraction=0.01).source == str(directory)


def test_no_directory_says_how_to_give_one() -> None:
    with pytest.raises(DataError) as info:
        load_mnist()
    message = str(info.value)
    for hint in ("--data-dir", "root=", "NASFORGE_DATA_DIR", "download=True"):
        assert hint in message


def test_missing_directory_says_how_to_fix(tmp_path: Path) -> None:
    with pytest.raises(DataError) as info:
        load_fashion_mnist(tmp_path / "nope")
    message = str(info.value)
    assert f"{tmp_path / 'nope'} does not exist" in message
    assert "download=True" in message and "--download" in message
    assert (
        "apt-get install dataset-fashion-mnist" in message and "/usr/share/datasets/fashion-mnist" in message
    )


def test_missing_files_are_listed(tmp_path: Path) -> None:
    source = shared_dir("mnist")
    shutil.copy(source / "t10k-labels-idx1-ubyte.gz", tmp_path)
    with pytest.raises(DataError) as info:
        load_mnist(tmp_path)
    message = str(info.value)
    assert f"missing in {tmp_path}" in message
    assert (
        "train-images-idx3-ubyte[.gz], train-labels-idx1-ubyte[.gz], t10k-images-idx3-ubyte[.gz]" in message
    )
    assert "t10k-labels" not in message
    assert "download=True" in message


def test_bad_val_fraction(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"val_fraction must be a number in \[0, 1\), got val_fraction=1"):
        load_mnist(tmp_path, val_fraction=1)


# -------------------------------------------------------------------------------------------- download


def no_partial_files(directory: Path) -> bool:
    return not any(p.name.endswith(".part") for p in directory.iterdir())


@pytest.mark.parametrize("name", ["mnist", "fashion-mnist"])
def test_download_from_file_url(tmp_path: Path, name: str) -> None:
    source = shared_dir(name)
    # a file:// URL for one dataset, a plain directory path for the other
    base_url = source.as_uri() if name == "mnist" else str(source)
    target = tmp_path / "data" / name
    assert download(name, target, base_url=base_url) == target
    files = sorted(p.name for p in target.iterdir())
    assert files == sorted(f"{f.name}.gz" for f in IDX_DATASETS[name].files)
    for file in IDX_DATASETS[name].files:
        assert (target / f"{file.name}.gz").read_bytes() == (source / f"{file.name}.gz").read_bytes()


def test_download_skips_valid_files_unless_forced(tmp_path: Path) -> None:
    source = shared_dir("mnist")
    download("mnist", tmp_path, base_url=source.as_uri())
    unreachable = (tmp_path / "no-such-mirror").as_uri()
    download("mnist", tmp_path, base_url=unreachable)  # nothing to fetch: all present and valid
    with pytest.raises(DataError, match=r"could not download train-images-idx3-ubyte\.gz: .*download failed"):
        download("mnist", tmp_path, base_url=unreachable, force=True)
    assert no_partial_files(tmp_path)
    assert load_mnist(tmp_path, fraction=0.01).name == "mnist"  # the valid files were kept


def _corrupt_source(source: Path, directory: Path, how: str) -> Path:
    directory.mkdir()
    for file in IDX_DATASETS["mnist"].files:
        (directory / f"{file.name}.gz").symlink_to(source / f"{file.name}.gz")
    labels = directory / "train-labels-idx1-ubyte.gz"
    blob = labels.read_bytes()
    labels.unlink()
    if how == "altered-content":  # valid gzip, one label changed: only the checksum can tell
        content = bytearray(gzip.decompress(blob))
        content[100] = (content[100] + 1) % 10
        labels.write_bytes(gzip.compress(bytes(content)))
    else:
        labels.write_bytes(blob[: len(blob) // 2])
    return directory


@pytest.mark.parametrize(
    ("how", "message"),
    [
        ("altered-content", "sha256 of the decompressed content is [0-9a-f]{64}, expected 65a50cbb"),
        ("truncated", "truncated"),
    ],
)
def test_download_rejects_corrupt_source(tmp_path: Path, how: str, message: str) -> None:
    source = _corrupt_source(shared_dir("mnist"), tmp_path / "mirror", how)
    target = tmp_path / "data"
    with pytest.raises(DataError, match=f"could not download train-labels-idx1-ubyte.gz: .*{message}"):
        download("mnist", target, base_url=source.as_uri())
    assert not (target / "train-labels-idx1-ubyte.gz").exists()
    assert not (target / "train-labels-idx1-ubyte").exists()
    assert no_partial_files(target)


def test_download_replaces_an_invalid_local_file(tmp_path: Path) -> None:
    source = shared_dir("mnist")
    stale = tmp_path / "t10k-labels-idx1-ubyte"  # uncompressed and wrong: it would shadow the .gz
    stale.write_bytes(idx_bytes(np.zeros(10000, dtype=np.uint8)))
    download("mnist", tmp_path, base_url=source.as_uri())
    assert not stale.exists()
    assert torch.bincount(load_mnist(tmp_path).y_test, minlength=10).tolist() == MNIST_TEST_COUNTS


def test_loader_download_true_fetches_into_the_cache(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    source = shared_dir("mnist")
    monkeypatch.setattr(_idx, "MNIST", dataclasses.replace(_idx.MNIST, mirrors=(source.as_uri() + "/",)))
    task = load_mnist(download=True, fraction=0.01)
    cache = tmp_path / "cache" / "nasforge" / "datasets" / "mnist"
    assert task.source == str(cache)
    assert len(list(cache.glob("*.gz"))) == 4
    assert load_mnist(fraction=0.01).source == str(cache)  # found there next time, without download=True


def test_loader_download_true_with_env_uses_a_subdirectory(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    # MNIST and Fashion-MNIST share file names: downloading must never mix them in one directory
    source = shared_dir("mnist")
    monkeypatch.setattr(_idx, "MNIST", dataclasses.replace(_idx.MNIST, mirrors=(source.as_uri(),)))
    monkeypatch.setenv(_idx.DATA_DIR_ENV, str(tmp_path / "datasets"))
    task = load_mnist(download=True, fraction=0.01)
    assert task.source == str(tmp_path / "datasets" / "mnist")


def test_download_name_errors(tmp_path: Path) -> None:
    with pytest.raises(UnknownComponentError, match="Did you mean 'fashion-mnist'"):
        download("fashoin-mnist", tmp_path)
    with pytest.raises(ConfigError, match="'digits' has no files to download"):
        download("digits", tmp_path)


def test_load_unknown_dataset_name() -> None:
    with pytest.raises(UnknownComponentError, match="fashion-mnist"):
        load("fashoin-mnist")
