"""Smoothing and the divergence rule on hand-made loss sequences."""

import math
import random

import pytest

from lrrt_cli.stopping import DivergenceMonitor, DivergenceRule, LossSmoother, burn_in_steps, smooth_losses


def run_monitor(losses, factor=4.0, burn_in=5):
    """Feed losses one at a time; return (stop index, stop reason) or (None, None)."""
    monitor = DivergenceMonitor(DivergenceRule(factor=factor, burn_in_steps=burn_in))
    for index, loss in enumerate(losses):
        record = monitor.update(loss)
        if record.stop_reason:
            return index, record.stop_reason
    return None, None


def test_smoothing_vector():
    assert smooth_losses([2, 1, 1, 4]) == pytest.approx([2.0, 1.49494949, 1.32662223, 2.01535452], rel=1e-8)


def test_smoothing_first_value_is_first_loss():
    assert LossSmoother().update(3.25) == 3.25


def test_positive_losses_diverge_like_four_times_best():
    losses = [2.3, 2.2, 2.0, 1.6, 1.2, 0.9, 0.7, 0.6, 0.55, 0.5] + [0.5 * 1.5**k for k in range(1, 30)]
    index, reason = run_monitor(losses)
    assert reason == "diverged"
    smoothed = smooth_losses(losses[: index + 1])
    best = min(smoothed[5:index])
    assert smoothed[index] > 4 * best
    assert all(value <= 4 * min(smoothed[5 : j + 1]) for j, value in enumerate(smoothed[:index]) if j >= 5)


def test_negative_losses_improve_then_blow_up():
    improving = [-0.1 - 0.05 * k for k in range(30)]  # down to -1.55
    blow_up = [-1.5, -1.0, 0.0, 2.0, 5.0, 10.0, 20.0, 40.0, 80.0]
    index, reason = run_monitor(improving + blow_up)
    assert reason == "diverged"
    assert index >= len(improving), "stopped while the loss was still improving"


def test_negative_losses_keep_improving_never_stop():
    index, _ = run_monitor([-0.1 * k for k in range(200)])
    assert index is None


def test_flat_noisy_low_losses_do_not_stop():
    rng = random.Random(0)
    losses = [0.02 + rng.uniform(-0.015, 0.015) for _ in range(300)]
    losses[2] = 0.0005  # one lucky batch during the burn-in
    index, _ = run_monitor(losses, burn_in=15)
    assert index is None


def test_non_finite_stops_during_burn_in():
    assert run_monitor([1.0, float("nan")], burn_in=10) == (1, "non_finite_loss")
    assert run_monitor([1.0, 0.9, float("inf")], burn_in=10) == (2, "non_finite_loss")


def test_rule_off_never_diverges():
    losses = [1.0] * 10 + [10.0**k for k in range(1, 8)]
    assert run_monitor(losses, factor=None) == (None, None)


def test_no_divergence_during_burn_in():
    losses = [1.0, 0.01, 5.0, 9.0, 12.0]
    assert run_monitor(losses, burn_in=10) == (None, None)


def test_rule_is_scale_invariant():
    losses = [-(0.5 - 0.01 * k) for k in range(40)] + [1.0, 3.0, 9.0, 27.0]
    reference = run_monitor(losses)
    assert reference[1] == "diverged"
    for scale in (1e-6, 1e3):
        assert run_monitor([loss * scale for loss in losses]) == reference


def test_burn_in_proportional_with_floor():
    assert burn_in_steps(1000, 0.05, 10) == 50
    assert burn_in_steps(100, 0.05, 10) == 10
    assert burn_in_steps(None, 0.05, 10) == 10


def test_best_loss_tracked_after_burn_in():
    monitor = DivergenceMonitor(DivergenceRule(burn_in_steps=3))
    records = [monitor.update(loss) for loss in [0.1, 5.0, 5.0, 5.0, 4.0]]
    assert records[2].best_loss is None
    assert records[3].best_loss is not None
    assert not math.isnan(records[4].smoothed_loss)
    assert records[4].stop_reason is None
