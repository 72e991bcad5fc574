"""Bad inputs to every command: one clear message, the right exit code, no traceback.

Each case writes real files under ``tmp_path``, runs one command through the
Typer app and checks that stderr contains exactly one message. That message is one
``error: ...`` or ``no suggestion: ...`` line, or, for a config with several
problems, a first line followed by indented ``  - `` lines. It names the file,
key or value at fault, and the expected fragments include the suggested fix.
Placeholders in the expected fragments: ``{cfg}`` is the folder holding the
configs and ``{tmp}`` is the test's ``tmp_path``.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
import yaml
from typer.testing import CliRunner

from lrrt_cli.cli import app

from conftest import TINY_CONFIG, merge

runner = CliRunner()

# A valid 60-row curve that falls, flattens and rises over five decades of LR.
GOOD_CURVE = "lr,loss\n" + "".join(
    f"{10 ** (-5 + 5 * row / 59)!r},{2.0 - math.tanh(4 * (row / 59 - 0.5)) + 3 * max(0, row / 59 - 0.8)!r}\n"
    for row in range(60)
)

EMPTY_DATASET_MODULE = '''
import torch
from torch.utils.data import TensorDataset


def empty_dataset():
    return TensorDataset(torch.zeros(0, 20), torch.zeros(0, dtype=torch.long))


def float_step(model, batch):
    inputs, targets = batch
    return float(torch.nn.functional.cross_entropy(model(inputs), targets))
'''


@dataclass
class Workspace:
    """The folders a case writes into: ``cfg`` contains the configs and the fixture models."""

    tmp: Path
    cfg: Path

    def config(self, changes: dict[str, Any] | None = None, *, name: str = "run.yaml") -> str:
        """Write the tiny test config merged with ``changes`` and return its path."""
        path = self.cfg / name
        path.write_text(yaml.safe_dump(merge(TINY_CONFIG, changes or {}), sort_keys=False))
        return str(path)

    def file(self, name: str, text: str) -> str:
        """Write ``text`` to ``name`` in the config folder and return its path."""
        path = self.cfg / name
        path.write_text(text, encoding="utf-8")
        return str(path)

    def csv(self, text: str, name: str = "results.csv") -> str:
        """Write a results CSV under ``tmp`` and return its path."""
        path = self.tmp / name
        path.write_text(text, encoding="utf-8")
        return str(path)

    def run_dir(self) -> str:
        return str(self.tmp / "out")


@dataclass(frozen=True)
class Case:
    id: str
    arguments: Callable[[Workspace], list[str]]
    exit_code: int
    expected: tuple[str, ...]
    prefix: str = "error"
    several_problems: bool = False


def run(changes: dict[str, Any] | None = None, *extra: str) -> Callable[[Workspace], list[str]]:
    """Arguments for ``lrrt run`` on the tiny config merged with ``changes``."""
    return lambda ws: ["run", ws.config(changes), "--output", ws.run_dir(), "--quiet", *extra]


def check(changes: dict[str, Any] | None = None, *extra: str) -> Callable[[Workspace], list[str]]:
    """Arguments for ``lrrt check`` on the tiny config merged with ``changes``."""
    return lambda ws: ["check", ws.config(changes), *extra]


def scheduler(schedule_type: str, **params: Any) -> dict[str, Any]:
    return {"scheduler": {"type": schedule_type, "params": params}}


def csv_train(path: str, target: str = "y") -> dict[str, Any]:
    return {"data": {"train": {"type": "csv", "path": path, "target": target}}}


def tensors_train(path: str) -> dict[str, Any]:
    return {"data": {"train": {"type": "tensors", "path": path}}}


def with_csv_data(text: str, target: str = "y") -> Callable[[Workspace], list[str]]:
    def arguments(ws: Workspace) -> list[str]:
        ws.file("train.csv", text)
        return run(csv_train("train.csv", target))(ws)

    return arguments


def with_npz_data(**arrays: np.ndarray) -> Callable[[Workspace], list[str]]:
    def arguments(ws: Workspace) -> list[str]:
        np.savez(ws.cfg / "train.npz", **arrays)
        return run(tensors_train("train.npz"))(ws)

    return arguments


def with_pt_data(payload: Any) -> Callable[[Workspace], list[str]]:
    def arguments(ws: Workspace) -> list[str]:
        torch.save(payload, ws.cfg / "train.pt")
        return run(tensors_train("train.pt"))(ws)

    return arguments


def with_helpers(changes: dict[str, Any]) -> Callable[[Workspace], list[str]]:
    """``lrrt run`` with a helper module ``helpers.py`` beside the config."""

    def arguments(ws: Workspace) -> list[str]:
        ws.file("helpers.py", EMPTY_DATASET_MODULE)
        return run(changes)(ws)

    return arguments


def plot(csv_text: str, *extra: str) -> Callable[[Workspace], list[str]]:
    return lambda ws: ["plot", ws.csv(csv_text), *extra]


def suggest(csv_text: str, *extra: str) -> Callable[[Workspace], list[str]]:
    return lambda ws: ["suggest", ws.csv(csv_text), *extra]


def under_a_file(ws: Workspace, name: str) -> str:
    """Return a path below a regular file, which no process can create, not even one run by root."""
    blocker = ws.tmp / "blocker"
    blocker.write_text("a regular file, not a folder\n")
    return str(blocker / name)


def existing_folder(ws: Workspace, name: str) -> str:
    folder = ws.tmp / name
    folder.mkdir()
    return str(folder)


def taken_run_folder(ws: Workspace) -> list[str]:
    folder = ws.tmp / "out"
    folder.mkdir()
    (folder / "results.csv").write_text("step,lr,loss\n")
    return ["run", ws.config(), "--output", str(folder), "--quiet"]


def output_is_a_file(ws: Workspace) -> list[str]:
    target = ws.tmp / "taken"
    target.write_text("keep me\n")
    return ["run", ws.config(), "--output", str(target), "--quiet"]


NAN_CURVE = "lr,loss\n1e-3,nan\n1e-2,nan\n1e-1,nan\n"
FLAT_THEN_UP = "lr,loss\n1e-5,0.40\n1e-4,0.45\n1e-3,0.60\n1e-2,1.20\n1e-1,4.00\n"

CONFIG_CASES = [
    Case("config-missing", lambda ws: ["check", str(ws.cfg / "nope.yaml")], 2,
         ("config file {cfg}/nope.yaml does not exist", ".yaml or .json")),
    Case("config-is-a-folder", lambda ws: ["check", str(ws.cfg)], 2,
         ("config path {cfg} is a folder", ".yaml or .json")),
    Case("config-empty", lambda ws: ["check", ws.file("empty.yaml", "\n")], 2,
         ("config file {cfg}/empty.yaml is empty",)),
    Case("config-yaml-syntax",
         lambda ws: ["check", ws.file("bad.yaml", "name: x\nseed: 1\nmodel: {factory: [unclosed\n")], 2,
         ("{cfg}/bad.yaml: line 4", "invalid YAML", "fix the syntax")),
    Case("config-yaml-bad-indent",
         lambda ws: ["run", ws.file("indent.yaml", "name: x\nmodel:\n  factory: models.py:tiny_mlp\n kwargs: {}\n")], 2,
         ("{cfg}/indent.yaml: line 4", "invalid YAML", "fix the syntax")),
    Case("config-json-syntax",
         lambda ws: ["check", ws.file("bad.json", '{\n  "name": "x",\n  "model": }\n')], 2,
         ("{cfg}/bad.json: line 3", "invalid JSON", "fix the syntax")),
    Case("config-not-a-mapping", lambda ws: ["check", ws.file("list.yaml", "- model\n- data\n")], 2,
         ("{cfg}/list.yaml", "top level must be a mapping", "got list")),
    Case("type-seed-text", check({"seed": "zero"}), 2,
         ("{cfg}/run.yaml", "seed: expected a whole number, got 'zero'")),
    Case("type-batch-size-text", check({"data": {"batch_size": "32x"}}), 2,
         ("data.batch_size: expected a whole number, got '32x'",)),
    Case("type-lr-text", check(scheduler("Fixed", lr="fast")), 2,
         ("scheduler.params.lr: expected a number, got 'fast'",)),
    Case("type-section-not-mapping", check({"stop": 5}), 2,
         ("stop: expected a mapping of keys, got 5",)),
    Case("type-shuffle-text", check({"data": {"shuffle": "yes"}}), 2,
         ("data.shuffle: expected true or false, got 'yes'",)),
    Case("lr-zero-start", check(scheduler("ExponentialRangeTest", start_lr=0, end_lr=1.0, num_steps=50)), 2,
         ("scheduler.params.start_lr: must be greater than 0, got 0",)),
    Case("lr-negative-fixed", check(scheduler("Fixed", lr=-0.1)), 2,
         ("scheduler.params.lr: must be greater than 0, got -0.1",)),
    Case("lr-zero-min-lr", check(scheduler("LRRangeTest", lr_range_test_min_lr=0, lr_range_test_step_size=10,
                                           lr_range_test_step_rate=5), "--set", "stop.max_steps=50"), 2,
         ("scheduler.params.lr_range_test_min_lr: must be greater than 0, got 0",)),
    Case("lr-negative-max-lr", check({"stop": {"max_lr": -1.0}}), 2,
         ("stop.max_lr: must be greater than 0, got -1.0",)),
    Case("step-size-zero", check(scheduler("LRRangeTest", lr_range_test_min_lr=1e-4, lr_range_test_step_size=0,
                                           lr_range_test_step_rate=5), "--set", "stop.max_steps=50"), 2,
         ("scheduler.params.lr_range_test_step_size: must be at least 1, got 0",)),
    Case("step-rate-negative", check(scheduler("LRRangeTest", lr_range_test_min_lr=1e-4, lr_range_test_step_size=10,
                                               lr_range_test_step_rate=-5), "--set", "stop.max_steps=50"), 2,
         ("scheduler.params.lr_range_test_step_rate: must be greater than 0, got -5",)),
    Case("num-steps-negative", check(scheduler("ExponentialRangeTest", start_lr=1e-4, end_lr=1.0, num_steps=-5)), 2,
         ("scheduler.params.num_steps: must be at least 1, got -5",)),
    Case("num-steps-one", check(scheduler("LinearRangeTest", start_lr=0, end_lr=1.0, num_steps=1)), 2,
         ("scheduler.params.num_steps: must be at least 2", "got 1")),
    Case("max-steps-zero", check({"stop": {"max_steps": 0}}), 2,
         ("stop.max_steps: must be greater than 0, got 0",)),
    Case("max-steps-option-negative", run(None, "--max-steps", "-3"), 2,
         ("stop.max_steps: must be greater than 0, got -3",)),
    Case("batch-size-zero", check({"data": {"batch_size": 0}}), 2,
         ("data.batch_size: must be greater than 0, got 0",)),
    Case("batch-size-negative", run({"data": {"batch_size": -16}}), 2,
         ("data.batch_size: must be greater than 0, got -16",)),
    Case("accumulation-zero", check({"training": {"gradient_accumulation_steps": 0}}), 2,
         ("training.gradient_accumulation_steps: must be greater than 0, got 0",)),
    Case("start-lr-not-below-end", check(scheduler("ExponentialRangeTest", start_lr=1.0, end_lr=0.1, num_steps=50)),
         2, ("scheduler.params.start_lr: must be below end_lr", "start_lr=1.0", "end_lr=0.1")),
    Case("start-lr-equals-end", check(scheduler("LinearRangeTest", start_lr=0.1, end_lr=0.1, num_steps=50)),
         2, ("scheduler.params.start_lr: must be below end_lr",)),
    Case("start-lr-above-max-lr", check({"stop": {"max_lr": 1e-5}}), 2,
         ("stop.max_lr: the sweep starts at LR 0.0001", "lower the start LR or raise stop.max_lr")),
    Case("lrrangetest-without-end",
         check(scheduler("LRRangeTest", lr_range_test_min_lr=1e-4, lr_range_test_step_size=200,
                         lr_range_test_step_rate=5, lr_range_test_staircase=False)), 2,
         ("LRRangeTest has no end", "set stop.max_steps or stop.max_lr")),
    Case("scheduler-unknown", check(scheduler("Cosine", lr=0.1)), 2,
         ("scheduler.type: unknown scheduler 'Cosine'",
          "valid types are LRRangeTest, ExponentialRangeTest, LinearRangeTest, Fixed")),
    Case("scheduler-unknown-param", check(scheduler("Fixed", lr=0.1, warmup=5)), 2,
         ("scheduler.params.warmup: unknown parameter for Fixed", "valid parameters are lr")),
    Case("optimizer-unknown-check", check({"optimizer": {"type": "Adamm"}}), 2,
         ("optimizer.type: unknown optimizer 'Adamm'", "valid types are", "Adam, AdamW")),
    Case("optimizer-unknown-run", run({"optimizer": {"type": "Adamm"}}), 2,
         ("optimizer.type: unknown optimizer 'Adamm'", "SGD")),
    Case("optimizer-param-unknown", run({"optimizer": {"params": {"betas": [0.9, 0.99]}}}), 2,
         ("optimizer.params: SGD rejected", "betas", "it accepts", "momentum")),
    Case("optimizer-param-invalid", run({"optimizer": {"params": {"momentum": -1}}}), 2,
         ("optimizer.params: SGD rejected", "momentum")),
    Case("loss-unknown", check({"loss": "hinge"}), 2,
         ("loss: unknown loss 'hinge'", "cross_entropy, mse, l1, smooth_l1, nll, bce_with_logits")),
    Case("dataset-type-unknown", check({"data": {"train": {"type": "parquet", "path": "x.parquet"}}}), 2,
         ("data.train.type: unknown dataset type 'parquet'",
          "valid types are sklearn, csv, tensors, factory, synthetic, torchvision")),
    Case("dataset-sklearn-unknown", check({"data": {"train": {"type": "sklearn", "name": "mnist"}}}), 2,
         ("data.train.name: unknown scikit-learn dataset 'mnist'", "digits, iris")),
    Case("dataset-key-missing", check({"data": {"train": {"type": "csv", "target": "y"}}}), 2,
         ("data.train.path: missing; a csv dataset needs it",)),
    Case("device-unknown", check({"device": "gpu"}), 2,
         ("device: expected auto, cpu, cuda, cuda:N or mps, got 'gpu'",)),
    Case("key-unknown", check({"optimizer": {"typ": "SGD"}}), 2,
         ("unknown key optimizer.typ; did you mean type?",)),
    Case("key-required-missing", lambda ws: ["check", ws.file("nomodel.yaml", yaml.safe_dump(
        {key: value for key, value in TINY_CONFIG.items() if key != "model"}))], 2,
         ("{cfg}/nomodel.yaml", "model: missing; this key is required")),
    Case("several-problems", check({"sed": 1, "data": {"batch_size": 0}, "loss": "hinge"}), 2,
         ("{cfg}/run.yaml: 3 problems found:", "  - unknown key sed; did you mean seed?",
          "  - data.batch_size: must be greater than 0, got 0", "  - loss: unknown loss 'hinge'"),
         several_problems=True),
    Case("set-unknown-key", check(None, "--set", "stop.max_step=3"), 2,
         ("--set 'stop.max_step=3': unknown key stop.max_step; did you mean max_steps?",)),
    Case("set-unknown-section", run(None, "--set", "trainer.epochs=3"), 2,
         ("--set 'trainer.epochs=3': unknown key trainer", "did you mean training?")),
    Case("set-without-equals", check(None, "--set", "stop.max_steps"), 2,
         ("--set 'stop.max_steps': expected KEY=VALUE", "--set stop.max_steps=200")),
    Case("set-invalid-yaml-value", check(None, "--set", "seed=[1"), 2,
         ("--set 'seed=[1': the value is not valid YAML", "quote")),
    Case("set-wrong-type", check(None, "--set", "data.batch_size=many"), 2,
         ("data.batch_size: expected a whole number, got 'many'",)),
    Case("factory-file-missing", check({"model": {"factory": "nope.py:build"}}), 2,
         ("model.factory: file {cfg}/nope.py does not exist", "relative paths start at the config's folder")),
    Case("factory-callable-missing", check({"model": {"factory": "models.py:tiny_mpl"}}), 2,
         ("model.factory: {cfg}/models.py has no callable named 'tiny_mpl'",
          "callables defined there:", "tiny_mlp", "slow_mlp")),
    Case("factory-module-missing", check({"model": {"factory": "no_such_package.models:build"}}), 2,
         ("model.factory: cannot import module 'no_such_package.models'", "install it")),
    Case("factory-spec-malformed", check({"model": {"factory": "models.py"}}), 2,
         ("model.factory: expected FILE.py:CALLABLE or package.module:CALLABLE, got 'models.py'",)),
    Case("step-callable-missing", check({"training": {"step": "models.py:train_step"}}), 2,
         ("training.step: {cfg}/models.py has no callable named 'train_step'", "vector_loss_step")),
    Case("loss-callable-missing", check({"loss": "models.py:focal"}), 2,
         ("loss: {cfg}/models.py has no callable named 'focal'",)),
]

RUN_CASES = [
    Case("factory-returns-dict", run({"model": {"factory": "models.py:not_a_module"}}), 2,
         ("model.factory {cfg}/models.py:not_a_module returned dict", "must return a torch.nn.Module")),
    Case("model-without-parameters", run({"model": {"factory": "torch.nn:ReLU"}}), 2,
         ("the model from model.factory has no trainable parameters", "return a model with at least one")),
    Case("dataset-factory-returns-list",
         run({"data": {"train": {"type": "factory", "factory": "models.py:not_a_dataset"}}}), 2,
         ("data.train.factory returned list", "must return a torch Dataset or DataLoader")),
    Case("dataset-factory-empty",
         with_helpers({"data": {"train": {"type": "factory", "factory": "helpers.py:empty_dataset"}}}), 2,
         ("data.train: the dataset is empty", "at least one sample")),
    Case("csv-data-missing", run(csv_train("absent.csv")), 2,
         ("CSV file {cfg}/absent.csv does not exist", "data.train.path")),
    Case("csv-data-empty", with_csv_data("a,b,y\n"), 2,
         ("{cfg}/train.csv: the CSV has no data rows",)),
    Case("csv-data-without-target", with_csv_data("a,b\n1,2\n3,4\n", target="label"), 2,
         ("{cfg}/train.csv: no target column 'label'", "the columns are a, b", "set data.train.target")),
    Case("csv-data-text-in-feature", with_csv_data("a,y\n1,0\nfoo,1\n"), 2,
         ("{cfg}/train.csv: line 3, column 'a': expected a number, got 'foo'",)),
    Case("tensors-data-missing-arrays", with_npz_data(features=np.zeros((4, 20)), labels=np.zeros(4)), 2,
         ("{cfg}/train.npz: no array named 'inputs'", "the file contains features, labels",
          "set data.train.inputs and data.train.targets")),
    Case("tensors-data-not-a-dict", with_pt_data(torch.zeros(4, 20)), 2,
         ("{cfg}/train.pt: expected a dict of named tensors, got Tensor", "torch.save({{'inputs': x")),
    Case("tensors-data-length-mismatch",
         with_npz_data(inputs=np.zeros((8, 20), dtype=np.float32), targets=np.zeros(5, dtype=np.int64)), 2,
         ("8 inputs but 5 targets",)),
    Case("tensors-data-wrong-suffix", lambda ws: run(tensors_train(ws.file("train.txt", "1 2 3\n")))(ws), 2,
         ("unsupported tensors file type '.txt'", "use .pt or .npz")),
    Case("batch-larger-than-data-drop-last",
         run({"data": {"train": {"type": "synthetic", "num_samples": 50}, "batch_size": 64, "drop_last": True}}), 2,
         ("data.batch_size=64 is larger than the 50 samples", "lower data.batch_size or set data.drop_last: false")),
    Case("val-fraction-takes-all-rows",
         run({"data": {"train": {"type": "synthetic", "num_samples": 3}, "val": {"fraction": 0.9}}}), 2,
         ("data.val.fraction=0.9 leaves no training rows out of 3",)),
    Case("loss-not-scalar", run({"training": {"step": "models.py:vector_loss_step"}}), 2,
         ("training.step {cfg}/models.py:vector_loss_step returned a loss of shape (16,)", ".mean()")),
    Case("loss-not-a-tensor", with_helpers({"training": {"step": "helpers.py:float_step"}}), 2,
         ("training.step {cfg}/helpers.py:float_step returned float", "scalar loss tensor")),
    Case("output-shape-too-small", run({"model": {"kwargs": {"num_classes": 3}}}), 2,
         ("loss 'cross_entropy' cannot compare the model output of shape (16, 3)", "targets of shape (16,)",
          "Target 3 is out of bounds; change",
          "change the model's output size or the loss")),
    Case("output-shape-mse-vs-classes", run({"loss": "mse"}), 2,
         ("loss 'mse' cannot compare the model output of shape (16, 4)", "targets of shape (16,)")),
    Case("output-path-is-a-file", output_is_a_file, 2,
         ("output path {tmp}/taken is a file, not a folder", "--output")),
    Case("output-under-a-file",
         lambda ws: ["run", ws.config(), "--output", under_a_file(ws, "run"), "--quiet"], 2,
         ("cannot create run folder {tmp}/blocker/run", "choose another with --output")),
    Case("output-folder-not-empty", taken_run_folder, 2,
         ("run folder {tmp}/out already contains results.csv", "pass --force")),
]

PLOT_CASES = [
    Case("plot-csv-missing", lambda ws: ["plot", str(ws.tmp / "absent.csv")], 2,
         ("results file {tmp}/absent.csv does not exist",)),
    Case("plot-csv-is-a-folder", lambda ws: ["plot", existing_folder(ws, "results.csv")], 2,
         ("results file {tmp}/results.csv is a folder",)),
    Case("plot-csv-empty", plot(""), 2,
         ("{tmp}/results.csv: the file is empty", "'lr' and 'loss'")),
    Case("plot-csv-header-only", plot("lr,loss\n"), 2,
         ("{tmp}/results.csv: the file has a header but no data rows",)),
    Case("plot-csv-without-lr", plot("step,loss\n0,2.3\n1,2.2\n"), 2,
         ("{tmp}/results.csv: line 1: missing column(s) lr", "needs 'lr' and 'loss' columns")),
    Case("plot-csv-without-loss", plot("step,lr\n0,0.001\n1,0.01\n"), 2,
         ("{tmp}/results.csv: line 1: missing column(s) loss",)),
    Case("plot-csv-text-in-lr", plot("lr,loss\n0.001,2.3\n1e-2x,2.2\n"), 2,
         ("{tmp}/results.csv: line 3, column 'lr': expected a number, got '1e-2x'", "fix or remove that row")),
    Case("plot-csv-short-row", plot("step,lr,loss\n0,0.001,2.3\n1,0.01\n"), 2,
         ("{tmp}/results.csv: line 3, column 'loss': the row has 2 cells",)),
    Case("plot-csv-all-nan", plot(NAN_CURVE), 2,
         ("{tmp}/results.csv: nothing to plot", "NaN or infinite from the first data row on",
          "re-run the range test with a lower start LR")),
    Case("plot-unsupported-extension", plot(GOOD_CURVE, "-o", "curve.jpg"), 2,
         ("curve.jpg: unsupported plot file type (extension '.jpg')", ".png, .svg or .pdf")),
    Case("plot-output-under-a-file", lambda ws: plot(GOOD_CURVE, "-o", under_a_file(ws, "plot.png"))(ws), 2,
         ("cannot write the plot to {tmp}/blocker/plot.png: {tmp}/blocker is a file, not a folder",
          "choose another output path")),
    Case("plot-output-is-a-folder", lambda ws: plot(GOOD_CURVE, "-o", existing_folder(ws, "plot.png"))(ws), 2,
         ("cannot write {tmp}/plot.png", "is a folder", "choose another output file")),
    Case("plot-label-count", plot(GOOD_CURVE, "--label", "a", "--label", "b"), 2,
         ("got 2 --label value(s) for 1 results file(s)", "give one --label per results file")),
]

SUGGEST_CASES = [
    Case("suggest-batch-size-missing", suggest(GOOD_CURVE), 2,
         ("--batch-size is required", "--batch-size 2048")),
    Case("suggest-batch-size-zero", suggest(GOOD_CURVE, "-b", "0"), 2,
         ("--batch-size must be a positive integer", "got 0")),
    Case("suggest-batch-size-negative", suggest(GOOD_CURVE, "--batch-size", "-8"), 2,
         ("--batch-size must be a positive integer", "got -8")),
    Case("suggest-csv-missing", lambda ws: ["suggest", str(ws.tmp / "absent.csv"), "-b", "64"], 2,
         ("results file {tmp}/absent.csv does not exist",)),
    Case("suggest-csv-empty", suggest("", "-b", "64"), 2,
         ("{tmp}/results.csv: the file is empty",)),
    Case("suggest-csv-without-lr", suggest("step,loss\n0,2.3\n", "-b", "64"), 2,
         ("{tmp}/results.csv: line 1: missing column(s) lr",)),
    Case("suggest-csv-without-loss", suggest("lr,val_loss\n0.001,2.3\n", "-b", "64"), 2,
         ("{tmp}/results.csv: line 1: missing column(s) loss",)),
    Case("suggest-csv-text-in-loss", suggest("lr,loss\n0.001,2.3\n0.01,high\n", "-b", "64"), 2,
         ("{tmp}/results.csv: line 3, column 'loss': expected a number, got 'high'",)),
    Case("suggest-csv-all-nan", suggest(NAN_CURVE, "-b", "64"), 3,
         ("non-finite",), prefix="no suggestion"),
    Case("suggest-no-descent", suggest(FLAT_THEN_UP, "-b", "64"), 3,
         ("no descending section",), prefix="no suggestion"),
    Case("suggest-min-ratio", suggest(GOOD_CURVE, "-b", "64", "--min-ratio", "1"), 2,
         ("--min-ratio must be a number above 1", "got 1.0")),
    Case("suggest-max-lr-negative", suggest(GOOD_CURVE, "-b", "64", "--max-lr", "-0.1"), 2,
         ("--max-lr must be a positive finite LR, got -0.1",)),
    Case("suggest-total-steps-zero", suggest(GOOD_CURVE, "-b", "64", "--total-steps", "0"), 2,
         ("--total-steps must be a positive integer, got 0",)),
    Case("suggest-method-unknown", suggest(GOOD_CURVE, "-b", "64", "--method", "slide"), 2,
         ("--method must be one of steepest, minimum, valley, divergence, got 'slide'",)),
    Case("suggest-format-unknown", suggest(GOOD_CURVE, "-b", "64", "--format", "toml"), 2,
         ("--format must be one of", "got 'toml'")),
    Case("suggest-no-batch-of-test", suggest(GOOD_CURVE, "-b", "64"), 2,
         ("{tmp}/results.csv: there is no usable samples column", "pass --test-batch-size")),
    Case("suggest-no-runs", lambda ws: ["suggest", "-b", "64"], 2,
         ("no results.csv found under", "run 'lrrt run CONFIG' first")),
]

CASES = CONFIG_CASES + RUN_CASES + PLOT_CASES + SUGGEST_CASES


def message_lines(stderr: str) -> list[str]:
    return stderr.rstrip("\n").splitlines()


@pytest.mark.parametrize("case", CASES, ids=[case.id for case in CASES])
def test_bad_input_gives_one_message(case: Case, config_dir: Path, tmp_path: Path,
                                     monkeypatch: pytest.MonkeyPatch) -> None:
    # Commands run from an empty folder, so a default run folder or runs/ lookup stays inside tmp_path.
    workdir = tmp_path / "workdir"
    workdir.mkdir()
    monkeypatch.chdir(workdir)
    workspace = Workspace(tmp=tmp_path, cfg=config_dir)

    result = runner.invoke(app, case.arguments(workspace))

    assert "Traceback" not in result.stderr, result.stderr
    assert result.exit_code == case.exit_code, result.stderr
    assert result.stdout == ""
    lines = message_lines(result.stderr)
    assert lines, "stderr is empty"
    assert lines[0].startswith(f"{case.prefix}: "), result.stderr
    if case.several_problems:
        assert len(lines) > 2, result.stderr
        assert all(line.startswith("  - ") for line in lines[1:]), result.stderr
    else:
        assert len(lines) == 1, result.stderr
    for fragment in case.expected:
        expected = fragment.format(cfg=config_dir, tmp=tmp_path)
        assert expected in result.stderr, f"{expected!r} not in {result.stderr!r}"



def can_write_despite_mode(folder: Path) -> bool:
    """Return True when permission bits do not stop this process from writing, as for root."""
    probe = folder / ".write-probe"
    try:
        probe.write_text("probe")
    except PermissionError:
        return False
    probe.unlink()
    return True


@pytest.mark.parametrize("command", ["run", "plot"])
def test_output_folder_without_write_permission(command: str, config_dir: Path, tmp_path: Path) -> None:
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    try:
        if os.access(locked, os.W_OK) or can_write_despite_mode(locked):
            pytest.skip("this process can write to a folder with mode 0o500 (it runs as root); "
                        "the output-under-a-file cases cover unwritable locations here")
        workspace = Workspace(tmp=tmp_path, cfg=config_dir)
        if command == "run":
            arguments = ["run", workspace.config(), "--output", str(locked / "run"), "--quiet"]
            expected = f"cannot create run folder {locked / 'run'} (Permission denied)"
        else:
            arguments = ["plot", workspace.csv(GOOD_CURVE), "-o", str(locked / "plot.png")]
            expected = f"cannot write {locked / 'plot.png'}: Permission denied"

        result = runner.invoke(app, arguments)

        assert result.exit_code == 2
        assert "Traceback" not in result.stderr
        lines = message_lines(result.stderr)
        assert len(lines) == 1, result.stderr
        assert lines[0].startswith("error: ")
        assert expected in lines[0]
    finally:
        locked.chmod(0o700)


# Typer parses option types and required arguments before lrrt's code runs, so these
# errors keep Click's layout: a usage line, a hint and one "Error:" line. They still
# exit 2 without a traceback and name the option or argument.
PARSER_CASES = [
    (["suggest", "results.csv", "--batch-size", "big"], ("--batch-size",)),
    (["run", "--max-steps", "ten", "config.yaml"], ("--max-steps",)),
    (["run"], ("CONFIG",)),
    (["plot"], ("RESULTS.csv",)),
    (["check", "config.yaml", "--no-such-option"], ("--no-such-option",)),
    (["train", "config.yaml"], ("train",)),
]


@pytest.mark.parametrize(("arguments", "expected"), PARSER_CASES, ids=[" ".join(case[0]) for case in PARSER_CASES])
def test_command_line_parse_error_exit_2(arguments: list[str], expected: tuple[str, ...]) -> None:
    result = runner.invoke(app, arguments)

    assert result.exit_code == 2
    assert "Traceback" not in result.stderr
    assert result.stdout == ""
    for fragment in expected:
        assert fragment in result.stderr
    error_lines = [line for line in result.stderr.splitlines() if line.startswith("Error: ")]
    assert len(error_lines) == 1, result.stderr
