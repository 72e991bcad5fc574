"""Exact boundaries of the sweeps, the divergence rule and the config checks.

The divergence cases use a smoothing beta of 0, so the smoothed loss equals the raw
loss and each threshold can be hit exactly.
"""

import pytest

from lrrt_cli.config import load_config
from lrrt_cli.errors import ConfigError
from lrrt_cli.schedules import ExponentialRangeTest, LinearRangeTest, build_schedule, first_step_above
from lrrt_cli.stopping import DivergenceMonitor, DivergenceRule


def first_stop(losses, *, burn_in, factor=4.0):
    """Feed unsmoothed losses to the monitor; return (index, reason) of the first stop, or (None, None)."""
    monitor = DivergenceMonitor(DivergenceRule(factor=factor, burn_in_steps=burn_in), beta=0.0)
    for index, loss in enumerate(losses):
        record = monitor.update(loss)
        if record.stop_reason is not None:
            return index, record.stop_reason
    return None, None


# ---------------------------------------------------------------- divergence rule


def test_loss_at_exactly_factor_times_best_continues():
    assert first_stop([1.0, 1.0, 1.0, 4.0, 4.0], burn_in=2) == (None, None)


def test_loss_just_above_factor_times_best_diverges():
    assert first_stop([1.0, 1.0, 1.0, 4.0, 4.001], burn_in=2) == (4, "diverged")


def test_custom_factor_sets_threshold():
    losses = [1.0, 1.0, 1.0, 5.9]
    assert first_stop(losses, burn_in=2, factor=6.0) == (None, None)
    assert first_stop(losses + [6.1], burn_in=2, factor=6.0) == (4, "diverged")
    assert first_stop(losses, burn_in=2, factor=4.0) == (3, "diverged")


def test_negative_best_scales_by_fall_since_burn_in():
    # Reference 10 at the end of the burn-in, best -0.5, so the scale is the fall of 10.5
    # and the run diverges only once the loss is more than 3 * 10.5 above the best.
    losses = [10.0, 10.0, 10.0, 5.0, 0.0, -0.5, 5.0, 20.0, 30.0]
    assert first_stop(losses, burn_in=2) == (None, None)
    assert first_stop(losses + [31.0], burn_in=2) == (None, None)
    assert first_stop(losses + [31.1], burn_in=2) == (9, "diverged")


def test_zero_best_loss_still_diverges():
    # Reference 2, best exactly 0: the scale is the fall of 2, so the threshold is 6.
    losses = [2.0, 2.0, 2.0, 1.0, 0.0, 3.5, 6.0]
    assert first_stop(losses, burn_in=2) == (None, None)
    assert first_stop(losses + [6.5], burn_in=2) == (7, "diverged")


# ---------------------------------------------------------------- sweep ends


def test_exponential_last_lr_is_end_exactly():
    # Without the clamp, 1e-5 * (1.0 / 1e-5) ** 1.0 evaluates to 0.9999999999999999.
    schedule = ExponentialRangeTest(1e-5, 1.0, 50)
    assert schedule.lr_at(49) == 1.0
    assert schedule.lr_at(0) == 1e-5


def test_linear_last_lr_is_end_exactly():
    # Without the clamp, 1e-5 + (3e-5 - 1e-5) * 1.0 evaluates to 2.9999999999999997e-05.
    schedule = LinearRangeTest(1e-5, 3e-5, 10)
    assert schedule.lr_at(9) == 3e-5


def test_first_step_above_end_lr_is_none():
    schedule = ExponentialRangeTest(1e-4, 1.0, 100)
    assert first_step_above(schedule, 1.0) is None
    assert first_step_above(schedule, 2.0) is None
    assert first_step_above(schedule, 0.99) == 99


def test_sweep_with_equal_ends_rejected():
    with pytest.raises(ConfigError, match="start_lr: must be below end_lr"):
        build_schedule("ExponentialRangeTest", {"start_lr": 0.1, "end_lr": 0.1, "num_steps": 10})


def test_fractional_num_steps_rejected():
    with pytest.raises(ConfigError, match="num_steps: expected a whole number of steps, got 10.5"):
        build_schedule("LinearRangeTest", {"start_lr": 0.0, "end_lr": 1.0, "num_steps": 10.5})


def test_integral_float_num_steps_accepted():
    schedule = build_schedule("LinearRangeTest", {"start_lr": 0.0, "end_lr": 1.0, "num_steps": 10.0})
    assert schedule.num_steps == 10
    assert isinstance(schedule.num_steps, int)


# ---------------------------------------------------------------- config checks


def test_max_lr_equal_to_start_lr_rejected(write_config):
    path = write_config({"stop": {"max_lr": 1e-4}})
    with pytest.raises(ConfigError, match="stop.max_lr: the sweep starts at LR 0.0001, which is not below"):
        load_config(path)


@pytest.mark.parametrize("factor", [1, 0.5])
def test_divergence_factor_at_most_one_rejected(write_config, factor):
    path = write_config({"stop": {"divergence_factor": factor}})
    with pytest.raises(ConfigError, match="stop.divergence_factor: must be greater than 1"):
        load_config(path)


def test_unknown_dataset_key_names_nearest(write_config):
    path = write_config({"data": {"train": {"type": "synthetic", "num_sample": 256}}})
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    assert "unknown key data.train.num_sample; did you mean num_samples?" in str(caught.value)
