"""Tests for the suggestion methods on hand-written and seeded loss curves."""

from __future__ import annotations

import math

import numpy as np
import pytest

from lrrt_cli.analysis import (
    METHODS,
    CurveAnalysis,
    analyze_curve,
    find_descent,
    log_slopes,
    pick_valley,
    smooth_loss,
)

NAN = math.nan
INF = math.inf

# A NaN/inf tail after a descent.
F1_LR = [1e-6, 1e-5, 1e-4, 1e-3, 1e-2, 1e-1, 1e0, 1e1, 1e2]
F1_LOSS = [2.303, 2.301, 2.290, 2.150, 1.600, 1.050, 2.900, NAN, INF]
# A short monotone series ending in NaN.
F2_LR = [1e-4, 1e-3, 1e-2, 1e-1, 1e0, 1e1, 1e2]
F2_LOSS = [0.90, 0.89, 0.87, 0.86, 0.85, 0.84, NAN]
# Negative losses that improve, then blow up.
F3_LR = [10.0**exponent for exponent in range(-5, 4)]
F3_LOSS = [-0.10, -0.12, -0.20, -0.45, -0.90, -1.30, -1.10, -0.20, 3.00]
# The minimum is the first row: the loss only rises.
F8_LR = [1e-5, 1e-4, 1e-3, 1e-2, 1e-1]
F8_LOSS = [0.40, 0.45, 0.60, 1.20, 4.00]

# A sigmoid fall centred at lr = 10**-3.5 plus an exponential rise: the fastai-style
# synthetic sweep of 100 log-spaced LRs from 1e-7 to 10.
SWEEP_LR = np.logspace(-7, 1, 100)
TRUE_STEEPEST_LOG10 = -3.503  # argmin of d(loss)/d(log10 lr), found on a 1e5-point grid
TRUE_MINIMUM_LOG10 = -1.740


def sweep_loss(lr: np.ndarray) -> np.ndarray:
    x = np.log10(lr)
    return 2.5 - 1.5 / (1 + np.exp(-2 * (x + 3.5))) + 0.5 * np.exp(2 * (x + 0.5))


def assert_picks_valid(analysis: CurveAnalysis) -> None:
    """Check the invariants every pick must satisfy."""
    assert analysis.descent is not None
    first, last = analysis.descent
    for pick in analysis.picks.values():
        assert first <= pick.index <= last, pick
        assert pick.index >= analysis.first_index, pick
        if analysis.stop_index is not None:
            assert pick.index < analysis.stop_index, pick
        assert pick.lr == analysis.lr[pick.index]
        assert pick.loss == analysis.smoothed[pick.index]
        assert math.isfinite(pick.loss)
        assert pick.rule


def test_f1_nan_tail_cut_at_stop():
    analysis = analyze_curve(F1_LR, F1_LOSS)

    assert analysis.stop_index == 7
    assert analysis.reason is None
    assert set(analysis.picks) == set(METHODS)
    assert_picks_valid(analysis)
    assert math.isnan(analysis.smoothed[7])
    assert math.isnan(analysis.smoothed[8])
    assert 1e-3 <= analysis.picks["steepest"].lr <= 1e-1
    assert analysis.picks["minimum"].lr == 1e-1
    assert analysis.picks["divergence"].lr <= 1e-1


def test_f2_short_monotone_never_picks_nan_row():
    analysis = analyze_curve(F2_LR, F2_LOSS)

    assert analysis.stop_index == 6
    assert_picks_valid(analysis)
    for pick in analysis.picks.values():
        assert pick.index <= 5


def test_f3_negative_losses():
    analysis = analyze_curve(F3_LR, F3_LOSS)

    assert analysis.reason is None
    assert_picks_valid(analysis)
    for pick in analysis.picks.values():
        assert 1e-3 <= pick.lr <= 1e0, pick
    assert analysis.picks["minimum"].lr == 1e0
    assert analysis.pick_for(None).method == "divergence"


def test_f8_minimum_at_first_row_gives_reason():
    analysis = analyze_curve(F8_LR, F8_LOSS)

    assert analysis.picks == {}
    assert analysis.descent is None
    assert analysis.reason.startswith("no descending section")
    assert set(analysis.failures) == set(METHODS)


def test_clean_sweep_picks_known_points():
    analysis = analyze_curve(SWEEP_LR, sweep_loss(SWEEP_LR))

    assert_picks_valid(analysis)
    assert abs(math.log10(analysis.picks["steepest"].lr) - TRUE_STEEPEST_LOG10) < 0.2
    assert abs(math.log10(analysis.picks["minimum"].lr) - TRUE_MINIMUM_LOG10) < 0.2
    assert analysis.picks["divergence"].lr < analysis.picks["minimum"].lr
    assert analysis.picks["steepest"].lr < analysis.picks["divergence"].lr
    assert analysis.first_index == 5


@pytest.mark.parametrize("seed", range(10))
def test_noisy_sweep_steepest_within_half_decade(seed):
    rng = np.random.default_rng(seed)
    loss = sweep_loss(SWEEP_LR) + rng.normal(0.0, 0.05, SWEEP_LR.size)

    analysis = analyze_curve(SWEEP_LR, loss)

    assert_picks_valid(analysis)
    assert abs(math.log10(analysis.picks["steepest"].lr) - TRUE_STEEPEST_LOG10) <= 0.5


@pytest.mark.parametrize("row", [30, 45, 60, 66, 99])
def test_one_row_dip_is_never_picked(row):
    loss = sweep_loss(SWEEP_LR)
    loss[row] -= 3.0

    analysis = analyze_curve(SWEEP_LR, loss)

    assert_picks_valid(analysis)
    for pick in analysis.picks.values():
        assert pick.index != row, pick
    assert abs(math.log10(analysis.picks["minimum"].lr) - TRUE_MINIMUM_LOG10) < 0.2


def test_dip_just_before_nan_is_not_picked():
    trend = sweep_loss(SWEEP_LR)[:75]
    loss = trend.tolist()
    loss[-1] -= 3.0
    loss.append(NAN)

    analysis = analyze_curve(SWEEP_LR[:76], loss)

    assert analysis.stop_index == 75
    assert abs(analysis.smoothed[74] - trend[74]) < 0.1
    for pick in analysis.picks.values():
        assert pick.index != 74, pick
    assert abs(math.log10(analysis.picks["minimum"].lr) - TRUE_MINIMUM_LOG10) < 0.2


def test_every_loss_non_finite():
    analysis = analyze_curve([1e-3, 1e-2, 1e-1], [NAN, INF, NAN])

    assert analysis.stop_index == 0
    assert analysis.picks == {}
    assert "non-finite" in analysis.reason
    assert all(math.isnan(value) for value in analysis.smoothed)


def test_too_few_points():
    analysis = analyze_curve([1e-3, 1e-2, 1e-1], [2.0, 1.0, 3.0])

    assert analysis.picks == {}
    assert analysis.reason.startswith("too few points")


def test_single_row():
    analysis = analyze_curve([1e-3], [1.0])

    assert analysis.reason.startswith("too few points")
    assert analysis.first_index == 0


def test_linear_sweep_from_zero_drops_zero_lr_row():
    lr = np.linspace(0.0, 1.0, 50)
    loss = 2.0 - np.tanh(lr * 6) + 4 * np.clip(lr - 0.7, 0, None) ** 2

    analysis = analyze_curve(lr, loss, burn_in_fraction=0.0)

    assert any("not positive" in note for note in analysis.notes)
    assert math.isnan(analysis.smoothed[0])
    assert analysis.first_index == 1
    assert_picks_valid(analysis)


def test_falling_lr_gives_reason():
    analysis = analyze_curve([1e-3, 1e-2, 1e-1, 1e-2, 1e-1, 1.0], [3, 2, 1, 1, 1, 2])

    assert "the LR falls" in analysis.reason
    assert analysis.picks == {}


def test_fixed_lr_gives_reason():
    analysis = analyze_curve([1e-3] * 20, np.linspace(2.0, 1.0, 20))

    assert "never changes" in analysis.reason


def test_flat_noisy_curve_has_no_descent():
    rng = np.random.default_rng(3)
    loss = 0.1 + rng.normal(0.0, 0.01, SWEEP_LR.size)

    analysis = analyze_curve(SWEEP_LR, loss)

    assert analysis.reason.startswith("no descending section")
    assert "already be trained" in analysis.reason


def test_constant_curve_has_no_descent():
    analysis = analyze_curve(SWEEP_LR, np.full(SWEEP_LR.size, 0.7))

    assert analysis.reason.startswith("no descending section")


def test_deepspeed_linear_sweep_divergence_near_turn():
    step = np.arange(2400)
    lr = 1e-4 * (1 + 5 * step / 200)
    loss = 1.0 - 0.5 * np.tanh((lr - 0.002) / 0.001) + np.where(lr > 0.0055, (lr - 0.0055) * 2000, 0)

    analysis = analyze_curve(lr, loss)

    assert_picks_valid(analysis)
    assert 0.004 <= analysis.picks["divergence"].lr < analysis.picks["minimum"].lr
    assert analysis.window == 115


def test_staircase_sweep_picks_inside_descent():
    step = np.arange(2000)
    lr = 1e-4 * (1 + 5 * np.floor(step / 200))
    loss = 1.0 - 0.5 * np.tanh((lr - 0.0015) / 0.001) + 0.001 * np.sin(step)

    analysis = analyze_curve(lr, loss)

    assert analysis.reason is None
    assert_picks_valid(analysis)


def test_mismatched_lengths_raise():
    with pytest.raises(ValueError, match="equal length"):
        analyze_curve([1e-3, 1e-2], [1.0])


def test_invalid_burn_in_fraction_raises():
    with pytest.raises(ValueError, match="burn_in_fraction"):
        analyze_curve(SWEEP_LR, sweep_loss(SWEEP_LR), burn_in_fraction=0.5)


def test_smoother_adds_no_lag_on_a_ramp():
    ramp = np.linspace(3.0, 1.0, 41)

    smoothed = smooth_loss(ramp, 5)

    np.testing.assert_allclose(smoothed, ramp, rtol=0, atol=1e-12)


def test_smoother_removes_last_row_spike():
    values = np.linspace(3.0, 1.0, 20)
    values[-1] = -10.0

    smoothed = smooth_loss(values, 3)

    assert smoothed[-1] > 0.5


def test_slopes_use_real_lr_spacing():
    lr = np.array([1e-5, 3e-5, 1e-4, 1e-3, 2e-3, 1e-2, 1e-1, 1.0])
    loss = 2.0 * np.log10(lr)

    slopes = log_slopes(np.log10(lr), loss, 1)

    np.testing.assert_allclose(slopes[1:-1], 2.0, rtol=1e-12)
    assert math.isnan(slopes[0])
    assert math.isnan(slopes[-1])


def test_valley_of_short_run_is_inside_it():
    # fastai's valley returns the highest LR (0.1) for these losses.
    log_lr = np.log10([1e-4, 1e-3, 1e-2, 1e-1])
    loss = np.array([2.0, 1.0, 3.0, 5.0])

    descent = find_descent(log_lr, loss, tolerance=0.0, min_drop=0.0)
    index = pick_valley(log_lr, descent)

    assert descent == (0, 1)
    assert index in (0, 1)


def test_valley_is_middle_in_log_lr():
    log_lr = np.log10(np.array([1e-6, 1e-5, 1e-4, 1e-3, 1e-2, 2e-2, 5e-2, 1e-1]))

    index = pick_valley(log_lr, (1, 7))

    assert index == 3


def test_long_curve_is_fast():
    lr = np.logspace(-7, 1, 20000)
    rng = np.random.default_rng(0)
    loss = sweep_loss(lr) + rng.normal(0.0, 0.05, lr.size)

    analysis = analyze_curve(lr, loss)

    assert_picks_valid(analysis)
    assert abs(math.log10(analysis.picks["steepest"].lr) - TRUE_STEEPEST_LOG10) < 0.3


def test_divergence_backs_off_below_flat_bottom():
    # A descent over two decades, then a long flat noisy bottom before the blow-up:
    # the pick must sit clearly below the lowest loss, not one row under it.
    lr = np.logspace(-4, 0, 400)
    log_lr = np.log10(lr)
    loss = np.where(log_lr < -2, 2.0 - 0.9 * (log_lr + 4), 0.2)
    loss = np.where(log_lr > -0.5, 0.2 + 20 * (log_lr + 0.5) ** 2, loss)
    loss = loss + np.random.default_rng(0).normal(0.0, 0.01, lr.size)

    analysis = analyze_curve(lr, loss)

    divergence = analysis.picks["divergence"]
    minimum = analysis.picks["minimum"]
    assert divergence.lr < minimum.lr
    first, last = analysis.descent
    span = math.log10(lr[last] / lr[first])
    assert math.log10(minimum.lr / divergence.lr) == pytest.approx(min(0.1 * span, math.log10(2)), abs=0.02)
    assert_picks_valid(analysis)


def test_noisy_divergent_tail_does_not_hide_descent():
    # A short linear sweep: the loss falls from 1.3 to 0.3, then diverges with jumps
    # of several units. The tail's jumps must not count as the descent's noise.
    rng = np.random.default_rng(1)
    lr = 1e-3 * (1 + np.arange(80) * 20 / 3)
    descent = np.linspace(1.3, 0.3, 30) + rng.normal(0.0, 0.08, 30)
    tail = 0.3 + np.linspace(0.0, 1.0, 50) ** 2 * 10 + rng.normal(0.0, 3.0, 50) * np.linspace(0.2, 1.0, 50)
    analysis = analyze_curve(lr, np.concatenate([descent, tail]))

    assert analysis.reason is None
    assert analysis.picks["divergence"].index < 30
    assert_picks_valid(analysis)
