"""Dataset specs to loaders, on real scikit-learn data and real files."""

import numpy as np
import pytest
import torch

from lrrt_cli.config import load_config
from lrrt_cli.data import build_loaders
from lrrt_cli.errors import ConfigError, DataError


def loaders_for(write_config, train, **data):
    return build_loaders(load_config(write_config({"data": dict({"train": train}, **data)})))


@pytest.mark.parametrize(
    "name,num_samples,num_features,dtype",
    [
        ("digits", 1797, 64, torch.int64),
        ("iris", 150, 4, torch.int64),
        ("wine", 178, 13, torch.int64),
        ("breast_cancer", 569, 30, torch.int64),
        ("diabetes", 442, 10, torch.float32),
    ],
)
def test_sklearn_datasets(write_config, name, num_samples, num_features, dtype):
    loaders = loaders_for(write_config, {"type": "sklearn", "name": name})
    inputs, targets = loaders.train.dataset.tensors
    assert inputs.shape == (num_samples, num_features)
    assert targets.dtype == dtype
    assert loaders.num_train_samples == num_samples
    # standardized with the training rows' statistics
    assert inputs.mean(dim=0).abs().max() < 1e-4


def test_val_fraction_is_seeded_and_disjoint(write_config):
    train = {"type": "sklearn", "name": "iris"}
    first = loaders_for(write_config, train, val={"fraction": 0.2})
    second = loaders_for(write_config, train, val={"fraction": 0.2})
    assert len(first.val.dataset) == 30
    assert len(first.train.dataset) == 120
    assert torch.equal(first.val.dataset.tensors[0], second.val.dataset.tensors[0])
    train_rows = {tuple(row.tolist()) for row in first.train.dataset.tensors[0]}
    assert not any(tuple(row.tolist()) in train_rows for row in first.val.dataset.tensors[0])


def test_csv_with_string_labels_and_feature_subset(config_dir, write_config):
    (config_dir / "flowers.csv").write_text(
        "petal,sepal,junk,species\n1.0,2.0,x,setosa\n1.5,2.5,y,versicolor\n0.5,1.0,z,setosa\n"
    )
    loaders = loaders_for(write_config, {"type": "csv", "path": "flowers.csv", "target": "species",
                                         "features": ["petal", "sepal"], "standardize": False})
    inputs, targets = loaders.train.dataset.tensors
    assert inputs.tolist() == [[1.0, 2.0], [1.5, 2.5], [0.5, 1.0]]
    assert targets.tolist() == [0, 1, 0]


def test_csv_without_target_column(config_dir, write_config):
    (config_dir / "d.csv").write_text("a,b\n1,2\n")
    with pytest.raises(DataError, match="no target column 'label'; the columns are a, b"):
        loaders_for(write_config, {"type": "csv", "path": "d.csv", "target": "label"})


def test_csv_text_in_feature_names_line(config_dir, write_config):
    (config_dir / "d.csv").write_text("a,y\n1,0\nfoo,1\n")
    with pytest.raises(DataError, match="line 3, column 'a': expected a number, got 'foo'"):
        loaders_for(write_config, {"type": "csv", "path": "d.csv", "target": "y"})


def test_tensors_pt_and_npz(config_dir, write_config):
    inputs = np.arange(40, dtype=np.float32).reshape(10, 4)
    targets = np.arange(10) % 3
    torch.save({"x": torch.from_numpy(inputs), "y": torch.from_numpy(targets)}, config_dir / "d.pt")
    np.savez(config_dir / "d.npz", x=inputs, y=targets)
    for name in ("d.pt", "d.npz"):
        loaders = loaders_for(write_config, {"type": "tensors", "path": name, "inputs": "x", "targets": "y"})
        loaded_inputs, loaded_targets = loaders.train.dataset.tensors
        assert loaded_inputs.tolist() == inputs.tolist()
        assert loaded_targets.tolist() == targets.tolist()


def test_tensors_missing_array_lists_contents(config_dir, write_config):
    np.savez(config_dir / "d.npz", features=np.zeros((4, 2)), labels=np.zeros(4))
    with pytest.raises(DataError, match="no array named 'inputs'.*the file contains features, labels"):
        loaders_for(write_config, {"type": "tensors", "path": "d.npz"})


def test_npz_with_objects_is_not_unpickled(config_dir, write_config):
    np.savez(config_dir / "d.npz", inputs=np.array([{"a": 1}], dtype=object), targets=np.zeros(1))
    with pytest.raises(DataError, match="contains object arrays, which only load through pickle"):
        loaders_for(write_config, {"type": "tensors", "path": "d.npz"})


def test_factory_dataset_and_loader(write_config):
    dataset = loaders_for(write_config, {"type": "factory", "factory": "models.py:dict_dataset", "kwargs": {"num_samples": 40}})
    assert len(dataset.train.dataset) == 40
    loader = loaders_for(write_config, {"type": "factory", "factory": "models.py:loader_factory", "kwargs": {"batch_size": 5}})
    assert loader.train.batch_size == 5


def test_factory_not_a_dataset(write_config):
    with pytest.raises(DataError, match="returned list; it must return a torch Dataset or DataLoader"):
        loaders_for(write_config, {"type": "factory", "factory": "models.py:not_a_dataset"})


def test_synthetic_is_seeded(write_config):
    spec = {"type": "synthetic", "num_samples": 50, "num_features": 3, "num_classes": 2, "seed": 7}
    first = loaders_for(write_config, spec).train.dataset.tensors
    second = loaders_for(write_config, spec).train.dataset.tensors
    assert torch.equal(first[0], second[0])
    assert torch.equal(first[1], second[1])
    assert first[0].shape == (50, 3)


def test_batch_larger_than_dataset_with_drop_last(write_config):
    with pytest.raises(DataError, match="data.batch_size=64 is larger than the 50 samples and drop_last is on"):
        loaders_for(write_config, {"type": "synthetic", "num_samples": 50}, batch_size=64, drop_last=True)


def test_empty_csv_dataset(config_dir, write_config):
    (config_dir / "d.csv").write_text("a,y\n")
    with pytest.raises(DataError, match="no data rows"):
        loaders_for(write_config, {"type": "csv", "path": "d.csv", "target": "y"})


def test_torchvision_absent_or_named(write_config):
    try:
        import torchvision  # noqa: F401
    except ImportError:
        with pytest.raises(ConfigError, match="torchvision is not installed"):
            loaders_for(write_config, {"type": "torchvision", "name": "MNIST"})
    else:
        with pytest.raises((ConfigError, DataError)):
            loaders_for(write_config, {"type": "torchvision", "name": "NoSuchSet"})


def test_separate_val_csv_uses_training_classes_and_scaling(config_dir, write_config):
    (config_dir / "train.csv").write_text("a,y\n1,cat\n2,dog\n3,fish\n4,dog\n")
    (config_dir / "val.csv").write_text("a,y\n8,fish\n1,cat\n")
    loaders = loaders_for(write_config, {"type": "csv", "path": "train.csv", "target": "y"},
                          val={"type": "csv", "path": "val.csv", "target": "y"})
    val_inputs, val_targets = loaders.val.dataset.tensors
    assert val_targets.tolist() == [2, 0]  # fish and cat keep their training indices
    train_values = np.array([1.0, 2.0, 3.0, 4.0])
    expected = (np.array([8.0, 1.0]) - train_values.mean()) / train_values.std()
    assert val_inputs[:, 0].tolist() == pytest.approx(expected.tolist(), rel=1e-6)


def test_val_csv_with_unknown_class(config_dir, write_config):
    (config_dir / "train.csv").write_text("a,y\n1,cat\n2,dog\n")
    (config_dir / "val.csv").write_text("a,y\n1,bird\n")
    with pytest.raises(DataError, match="'bird' do not occur in the training data"):
        loaders_for(write_config, {"type": "csv", "path": "train.csv", "target": "y"},
                    val={"type": "csv", "path": "val.csv", "target": "y"})


def test_batch_size_of_nested_batches():
    import collections

    from lrrt_cli.data import batch_size_of, move_to_device

    pair = collections.namedtuple("Pair", "inputs targets")(torch.zeros(8, 3), torch.zeros(8))
    moved = move_to_device(pair, torch.device("cpu"))
    assert type(moved).__name__ == "Pair"
    assert batch_size_of(pair) == 8
    user_dict = collections.UserDict({"ids": ["a"] * 6, "x": torch.zeros(6, 2)})
    assert isinstance(move_to_device(user_dict, torch.device("cpu")), collections.UserDict)
    assert batch_size_of(user_dict) == 6
