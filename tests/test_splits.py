"""NATS-Bench's split files: their format, and the one-shot search datasets built from them."""

import json
import pickle

import numpy as np
import pytest
import torch

from spaces import UserError
from trainables.data.splits import SPLIT_FILES, read_split_file, search_dataset


def write_split(path, **halves) -> None:
    """A split file as xautodl's configure2str writes it: key -> ["int", [indices as strings]]."""
    path.write_text(json.dumps({k: ["int", [str(i) for i in v]] for k, v in halves.items()}, indent=1))


def write_cifar100(folder, per_class_test: int = 2) -> np.ndarray:
    """A tiny CIFAR-100 (1 train + ``per_class_test`` test images per class); returns the test images."""
    rng = np.random.default_rng(0)
    folder.mkdir(parents=True)
    out = {}
    for name, per_class in (("train", 1), ("test", per_class_test)):
        labels = np.tile(np.arange(100), per_class)
        data = rng.integers(0, 256, (len(labels), 3072), dtype=np.uint8)
        (folder / name).write_bytes(pickle.dumps({"data": data, "fine_labels": labels.tolist()}, protocol=2))
        out[name] = data
    (folder / "meta").write_bytes(pickle.dumps({"fine_label_names": [f"c{i}" for i in range(100)]}, protocol=2))
    return out["test"].reshape(-1, 3, 32, 32)


def test_the_split_file_format_is_read_and_malformed_files_are_refused(tmp_path):
    write_split(tmp_path / "s.txt", xvalid=[1, 3, 4], xtest=[0, 2])
    got = read_split_file(tmp_path / "s.txt")
    assert sorted(got) == ["xtest", "xvalid"] and got["xvalid"].tolist() == [1, 3, 4]
    assert got["xvalid"].dtype == np.int64
    (tmp_path / "bad.txt").write_text('{"xvalid": ["str", ["a"]]}')
    with pytest.raises(UserError, match="not \\[\"int\", \\[indices as strings\\]\\]"):
        read_split_file(tmp_path / "bad.txt")
    (tmp_path / "junk.txt").write_text("xvalid = 1, 2")
    with pytest.raises(UserError, match="not a NATS-Bench split file.*AutoDL-Projects"):
        read_split_file(tmp_path / "junk.txt")


def test_cifar100_search_uses_the_xvalid_and_xtest_halves_of_the_split_file(tmp_path):
    test_images = write_cifar100(tmp_path / "cifar-100-python")
    with pytest.raises(UserError, match="needs NATS-Bench's split file cifar100-test-split.txt.*xtest half"):
        search_dataset("cifar100", str(tmp_path))
    xvalid, xtest = list(range(1, 200, 2)), list(range(0, 200, 2))  # odd / even images of the test set
    write_split(tmp_path / SPLIT_FILES["cifar100"].filename, xvalid=xvalid, xtest=xtest)
    data = search_dataset("cifar100", str(tmp_path))
    assert torch.equal(data.valid.images, torch.from_numpy(test_images[xvalid]))
    assert torch.equal(data.test.images, torch.from_numpy(test_images[xtest]))
    assert len(data.train) == 100 and data.num_classes == 100


def test_a_split_file_of_another_set_is_refused(tmp_path):
    write_cifar100(tmp_path / "cifar-100-python")
    write_split(tmp_path / "cifar100-test-split.txt", xvalid=[0, 1, 2], xtest=[2, 3])
    with pytest.raises(UserError, match="overlap.*copy cifar100-test-split.txt"):
        search_dataset("cifar100", str(tmp_path))
    write_split(tmp_path / "cifar100-test-split.txt", xvalid=[0, 1, 2], xtest=[5000])
    with pytest.raises(UserError, match="outside 0..199"):
        search_dataset("cifar100", str(tmp_path))
    write_split(tmp_path / "cifar100-test-split.txt", train=[0], valid=[1])
    with pytest.raises(UserError, match=r"lacks the key\(s\) \['xvalid', 'xtest'\]"):
        search_dataset("cifar100", str(tmp_path))


def test_imagenet16_halves_index_the_kept_120_class_val_images_in_file_order(tmp_path):
    folder = tmp_path / "ImageNet16"
    folder.mkdir()
    rng = np.random.default_rng(1)

    def batch(labels):
        data = rng.integers(0, 256, (len(labels), 768), dtype=np.uint8)
        return data, pickle.dumps({"data": data, "labels": list(labels)}, protocol=2)

    for i in range(1, 11):
        (folder / f"train_data_batch_{i}").write_bytes(batch([1, 120, 500])[1])
    val_labels = [5, 999, 1, 120, 300, 7, 60, 2]  # 999 and 300 are dropped: 6 kept images
    val_data, blob = batch(val_labels)
    (folder / "val_data").write_bytes(blob)
    with pytest.raises(UserError, match="imagenet-16-120-test-split.txt"):
        search_dataset("ImageNet16-120", str(tmp_path))
    write_split(tmp_path / "imagenet-16-120-test-split.txt", xvalid=[0, 3, 4], xtest=[1, 2, 5])
    data = search_dataset("ImageNet16-120", str(tmp_path))
    kept = val_data[[i for i, y in enumerate(val_labels) if y <= 120]].reshape(-1, 3, 16, 16)
    assert torch.equal(data.valid.images, torch.from_numpy(kept[[0, 3, 4]]))
    assert data.valid.labels.tolist() == [4, 6, 59] and data.test.labels.tolist() == [0, 119, 1]
    assert len(data.train) == 20


def test_digits_search_needs_no_split_file():
    assert search_dataset("digits").name == "digits"
