"""LR sweeps against the DeepSpeed values and the evenly spaced grids."""

import math

import pytest

from lrrt_cli.errors import ConfigError
from lrrt_cli.schedules import (
    ExponentialRangeTest,
    Fixed,
    LinearRangeTest,
    LRRangeTest,
    build_schedule,
    first_step_above,
    planned_steps,
)

TUTORIAL = {"lr_range_test_min_lr": 1e-4, "lr_range_test_step_size": 200, "lr_range_test_step_rate": 5}

# (k, continuous, staircase) for m = 1e-4, S = 200, R = 5, as DeepSpeed v0.3.11+ computes them.
TUTORIAL_TABLE = [
    (0, 1.0e-4, 1.0e-4),
    (1, 1.025e-4, 1.0e-4),
    (2, 1.05e-4, 1.0e-4),
    (199, 5.975e-4, 1.0e-4),
    (200, 6.0e-4, 6.0e-4),
    (201, 6.025e-4, 6.0e-4),
    (399, 1.0975e-3, 6.0e-4),
    (400, 1.1e-3, 1.1e-3),
    (1000, 2.6e-3, 2.6e-3),
    (1959, 4.9975e-3, 4.6e-3),
    (1960, 5.0e-3, 4.6e-3),
    (2000, 5.1e-3, 5.1e-3),
]


@pytest.mark.parametrize("step,continuous,staircase", TUTORIAL_TABLE)
def test_lr_range_test_tutorial_values(step, continuous, staircase):
    smooth = LRRangeTest(**TUTORIAL)
    stairs = LRRangeTest(**TUTORIAL, lr_range_test_staircase=True)
    assert smooth.lr_at(step) == pytest.approx(continuous, rel=1e-12)
    assert stairs.lr_at(step) == pytest.approx(staircase, rel=1e-12)


def test_lr_range_test_first_lr_exact():
    assert LRRangeTest(**TUTORIAL).lr_at(0) == 1e-4
    assert LRRangeTest(**TUTORIAL, lr_range_test_staircase=True).lr_at(0) == 1e-4


def test_lr_range_test_reaches_target_at_k_star():
    assert LRRangeTest(**TUTORIAL).first_step_reaching(0.005) == 1960
    fast = LRRangeTest(1e-4, 200, 50)
    assert fast.first_step_reaching(0.005) == 196


DEEPSPEED_UNIT_SETS = [
    (1e-4, 1e-5, 1, True),
    (1e-5, 1e-5, 1, False),
    (1e-4, 1e-3, 10, True),
    (1e-3, 1e-3, 10, False),
    (1e-2, 1e-2, 19, True),
    (1e-2, 1e-2, 19, False),
]


@pytest.mark.parametrize("min_lr,rate,size,staircase", DEEPSPEED_UNIT_SETS)
def test_lr_range_test_deepspeed_properties(min_lr, rate, size, staircase):
    schedule = LRRangeTest(min_lr, size, rate, staircase)
    lrs = [schedule.lr_at(k) for k in range(60)]
    assert lrs[0] == min_lr
    if staircase:
        for block in range(60 // size):
            values = lrs[block * size:(block + 1) * size]
            assert len(set(values)) == 1, f"block {block} is not constant: {values}"
    else:
        assert all(later > earlier for earlier, later in zip(lrs, lrs[1:]))


def test_lr_range_test_staircase_unit_vector():
    schedule = LRRangeTest(1e-2, 19, 1e-2, True)
    expected = [0.01, 0.01, 0.01, 0.01, 0.01, 0.0101, 0.0102, 0.0102]
    for step, value in zip([0, 1, 9, 10, 18, 19, 38, 49], expected):
        assert schedule.lr_at(step) == pytest.approx(value, rel=1e-12), step


def test_exponential_grid_ratios_and_ends():
    schedule = ExponentialRangeTest(1e-3, 1.0, 10)
    lrs = [schedule.lr_at(k) for k in range(10)]
    assert lrs[0] == 1e-3
    assert lrs[-1] == 1.0
    for earlier, later in zip(lrs, lrs[1:]):
        assert later / earlier == pytest.approx(10 ** (1 / 3), rel=1e-12)


def test_linear_grid_gaps_and_ends():
    schedule = LinearRangeTest(1e-3, 1.0, 10)
    lrs = [schedule.lr_at(k) for k in range(10)]
    assert lrs[0] == 1e-3
    assert lrs[-1] == 1.0
    for earlier, later in zip(lrs, lrs[1:]):
        assert later - earlier == pytest.approx(0.111, rel=1e-12)


def test_fixed_is_constant():
    schedule = Fixed(0.01)
    assert {schedule.lr_at(k) for k in range(100)} == {0.01}
    assert schedule.num_steps is None


def test_build_schedule_from_deepspeed_block():
    schedule = build_schedule("LRRangeTest", dict(TUTORIAL, lr_range_test_staircase=False))
    assert schedule == LRRangeTest(1e-4, 200, 5.0, False)


@pytest.mark.parametrize(
    "kind,params,fragment",
    [
        ("ExponentialRangeTest", {"start_lr": 0, "end_lr": 1, "num_steps": 10}, "start_lr: must be greater than 0"),
        ("ExponentialRangeTest", {"start_lr": 1, "end_lr": 0.1, "num_steps": 10}, "must be below end_lr"),
        ("LinearRangeTest", {"start_lr": -1, "end_lr": 1, "num_steps": 10}, "must be 0 or greater"),
        ("ExponentialRangeTest", {"start_lr": 1e-4, "end_lr": 1, "num_steps": 0}, "num_steps: must be at least 1"),
        ("ExponentialRangeTest", {"start_lr": 1e-4, "end_lr": 1, "num_steps": 1}, "at least 2"),
        ("LRRangeTest", {"lr_range_test_min_lr": 1e-4, "lr_range_test_step_size": 0, "lr_range_test_step_rate": 1}, "step_size: must be at least 1"),
        ("LRRangeTest", {"lr_range_test_min_lr": -1, "lr_range_test_step_size": 10, "lr_range_test_step_rate": 1}, "min_lr: must be greater than 0"),
        ("LRRangeTest", {"lr_range_test_min_lr": 1e-4, "lr_range_test_step_size": 10, "lr_range_test_step_rate": "fast"}, "expected a number"),
        ("Fixed", {"lr": 0}, "lr: must be greater than 0"),
        ("Fixed", {"lr": float("inf")}, "must be finite"),
        ("Fixed", {}, "params.lr: missing"),
        ("Fixed", {"lr": 0.1, "lr_max": 1}, "unknown parameter"),
    ],
)
def test_build_schedule_rejects(kind, params, fragment):
    with pytest.raises(ConfigError) as caught:
        build_schedule(kind, params)
    assert fragment in str(caught.value)


def test_build_schedule_unknown_type_lists_valid():
    with pytest.raises(ConfigError, match="valid types are LRRangeTest, ExponentialRangeTest"):
        build_schedule("OneCycle", {})


def test_planned_steps_takes_first_limit():
    sweep = LRRangeTest(1e-3, 10, 5)  # lr_k = 0.001 * (1 + 0.5 k)
    assert planned_steps(sweep, max_steps=None, max_lr=None) is None
    assert planned_steps(sweep, max_steps=50, max_lr=None) == 50
    # 0.001 * (1 + 0.5 k) > 0.1 first at k = 199
    assert first_step_above(sweep, 0.1) == 199
    assert planned_steps(sweep, max_steps=1000, max_lr=0.1) == 199
    exponential = ExponentialRangeTest(1e-4, 1.0, 100)
    assert planned_steps(exponential, max_steps=None, max_lr=None) == 100
    assert planned_steps(exponential, max_steps=None, max_lr=1e-2) == 1 + max(
        k for k in range(100) if exponential.lr_at(k) <= 1e-2
    )
    assert not math.isnan(exponential.lr_at(50))


def test_lr_range_test_uses_deepspeed_defaults():
    assert build_schedule("LRRangeTest", {}) == LRRangeTest(1e-3, 2000, 1.0, False)
    assert build_schedule("LRRangeTest", {"lr_range_test_min_lr": 1e-4}) == LRRangeTest(1e-4, 2000, 1.0, False)


def test_lr_range_test_per_group_list_rejected():
    with pytest.raises(ConfigError, match="per-group lists are not supported.*optimizer.groups"):
        build_schedule("LRRangeTest", {"lr_range_test_min_lr": [1e-4, 1e-5]})
