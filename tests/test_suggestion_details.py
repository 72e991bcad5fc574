"""Exact details of the curve analysis, the 1Cycle step size and the plot's NaN cut."""

import math
from pathlib import Path

import numpy as np
import pytest

from lrrt_cli.analysis import estimate_noise, find_descent, pick_divergence
from lrrt_cli.one_cycle import suggest_from_results
from lrrt_cli.plotting import AXES_LOSS_VS_LR, GID_VALIDATION, build_figure
from lrrt_cli.results import Results, load_results


def tutorial_sweep(test_batch: int, updates: int = 2400) -> Results:
    """DeepSpeed's LRRangeTest with m=1e-4, S=200, R=5: the loss falls, then turns up past LR 0.0055."""
    step = np.arange(updates)
    lr = 1e-4 * (1 + 5 * step / 200)
    loss = 1.0 - 0.5 * np.tanh((lr - 0.002) / 0.001) + np.where(lr > 0.0055, (lr - 0.0055) * 2000, 0)
    columns = {
        "step": step.astype(float).tolist(),
        "lr": lr.tolist(),
        "loss": loss.tolist(),
        "samples": ((step + 1) * test_batch).astype(float).tolist(),
    }
    return Results(path=Path("sweep/results.csv"), columns=columns)


# ---------------------------------------------------------------- analysis


def test_noise_estimate_of_white_noise():
    rng = np.random.default_rng(0)
    trend = np.linspace(2.0, 1.0, 20_000)
    assert estimate_noise(trend + rng.normal(0.0, 0.1, trend.size)) == pytest.approx(0.1, rel=0.05)


def test_descent_tie_on_span_goes_to_larger_drop():
    # Two sections, each two decades long: rows 0-2 fall by 0.2, rows 3-5 by 2.
    smoothed = np.array([1.0, 0.9, 0.8, 5.0, 4.0, 3.0])
    log_lr = np.arange(6.0)
    assert find_descent(log_lr, smoothed, tolerance=1e-9, min_drop=0.01) == (3, 5)


def flat_bottom_curve(bottom_rise: float) -> tuple[np.ndarray, np.ndarray]:
    """Rows 0-20 fall from 1 to 0, then rows 21-40 stay ``bottom_rise`` above the lowest point."""
    log_lr = np.linspace(-4.0, 0.0, 41)
    smoothed = np.concatenate([np.linspace(1.0, 0.0, 21), np.full(20, bottom_rise)])
    return log_lr, smoothed


def test_rise_under_tenth_of_drop_ignored():
    log_lr, smoothed = flat_bottom_curve(0.05)
    pick = pick_divergence(log_lr, smoothed, (0, 20), min_rise=0.01, stopped=False)
    assert pick.note is not None
    assert "never clearly turned up" in pick.note


def test_rise_over_tenth_of_drop_turns():
    log_lr, smoothed = flat_bottom_curve(0.15)
    pick = pick_divergence(log_lr, smoothed, (0, 20), min_rise=0.01, stopped=False)
    assert pick.note is None


# ---------------------------------------------------------------- step size and LRs


@pytest.mark.parametrize(("batch_size", "expected"), [(2000, 502), (8192, 123)])
def test_step_size_rounds_half_up(batch_size, expected):
    # 1960 updates at batch 512 are 1,003,520 samples: 501.76 batches of 2000, 122.5 of 8192.
    suggestion = suggest_from_results(tutorial_sweep(512), batch_size=batch_size, max_lr=0.005)
    assert suggestion.step_size.samples == 1960 * 512
    assert suggestion.params.cycle_first_step_size == expected
    assert suggestion.params.cycle_second_step_size == expected


def test_recorded_lr_one_ulp_below_target_counts():
    results = tutorial_sweep(2048)
    results.columns["lr"][1960] = math.nextafter(0.005, 0.0)
    suggestion = suggest_from_results(results, batch_size=2048, max_lr=0.005)
    assert suggestion.step_size.update_index == 1960
    assert suggestion.params.cycle_first_step_size == 1960


def test_batch_change_of_exactly_8x_does_not_warn():
    suggestion = suggest_from_results(tutorial_sweep(256), batch_size=2048, max_lr=0.005)
    assert not any("re-run the range test" in warning for warning in suggestion.warnings)


def test_conflicting_test_batch_option_warns():
    suggestion = suggest_from_results(tutorial_sweep(512), batch_size=2048, max_lr=0.005, test_batch_size=1024)
    assert suggestion.test_batch_size == 512
    assert suggestion.params.cycle_first_step_size == 490
    assert any("--test-batch-size 1024 differs from the test's batch size 512" in warning
               for warning in suggestion.warnings)


def test_scaled_max_lr_sets_min_lr():
    suggestion = suggest_from_results(tutorial_sweep(512), batch_size=2048, max_lr=0.005,
                                      lr_scaling="linear", min_ratio=10)
    assert suggestion.params.cycle_max_lr == pytest.approx(0.02, rel=1e-12)
    assert suggestion.params.cycle_min_lr == pytest.approx(0.002, rel=1e-12)


# ---------------------------------------------------------------- plot


def test_validation_after_first_nan_not_drawn(tmp_path):
    lines = ["step,lr,loss,val_loss"]
    for step in range(80):
        lr = 1e-5 * 10 ** (step / 20)
        loss = "nan" if step >= 60 else f"{2.0 - 0.01 * step!r}"
        val_loss = f"{2.1 - 0.01 * step!r}" if step % 10 == 0 else ""
        lines.append(f"{step},{lr!r},{loss},{val_loss}")
    path = tmp_path / "results.csv"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    results = load_results(path)

    figure = build_figure([results])
    lr_axes = next(axes for axes in figure.axes if axes.get_label() == AXES_LOSS_VS_LR)
    validation = [line for line in lr_axes.get_lines() if line.get_gid() == GID_VALIDATION]

    assert len(validation) == 1
    assert list(validation[0].get_xdata()) == [results.lr[step] for step in range(0, 60, 10)]
