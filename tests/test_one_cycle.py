"""Tests for the schedule simulators and the 1Cycle block builder."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from lrrt_cli.errors import EXIT_NO_SUGGESTION, ConfigError, NoSuggestionError
from lrrt_cli.one_cycle import (
    FORMATS,
    OneCycleParams,
    ScheduleCheckError,
    check_deepspeed_schedule,
    deepspeed_one_cycle_lr,
    deepspeed_one_cycle_momentum,
    suggest_from_results,
    torch_cyclic_lr,
    torch_one_cycle,
)
from lrrt_cli.results import Results

DEEPSPEED_ONE_CYCLE_FIELDS = {
    "cycle_min_lr", "cycle_max_lr", "decay_lr_rate", "cycle_first_step_size",
    "cycle_second_step_size", "cycle_first_stair_count", "cycle_second_stair_count",
    "decay_step_size", "cycle_momentum", "cycle_min_mom", "cycle_max_mom", "decay_mom_rate",
}


def one_cycle(lo, hi, *, t1, t2=None, decay_lr_rate=0.0, decay_step_size=0,
              min_mom=0.8, max_mom=0.9, decay_mom_rate=0.0) -> OneCycleParams:
    return OneCycleParams(
        cycle_min_lr=lo, cycle_max_lr=hi, decay_lr_rate=decay_lr_rate,
        cycle_first_step_size=t1, cycle_second_step_size=t1 if t2 is None else t2,
        cycle_first_stair_count=0, cycle_second_stair_count=0, decay_step_size=decay_step_size,
        cycle_momentum=True, cycle_min_mom=min_mom, cycle_max_mom=max_mom, decay_mom_rate=decay_mom_rate,
    )


def assert_values(actual: np.ndarray, expected: dict[int, float], rel: float = 1e-7) -> None:
    for step, value in expected.items():
        assert actual[step] == pytest.approx(value, rel=rel, abs=0), f"step {step}"


def lrrt_sweep(test_batch: int | None, updates: int = 2400, *, with_samples: bool = True,
               metadata: dict | None = None) -> Results:
    """DeepSpeed LRRangeTest m=1e-4, S=200, R=5 with a loss that falls, then turns up past 0.0055."""
    step = np.arange(updates)
    lr = 1e-4 * (1 + 5 * step / 200)
    loss = 1.0 - 0.5 * np.tanh((lr - 0.002) / 0.001) + np.where(lr > 0.0055, (lr - 0.0055) * 2000, 0)
    columns = {"step": step.astype(float).tolist(), "lr": lr.tolist(), "loss": loss.tolist()}
    if with_samples:
        columns["samples"] = ((step + 1) * test_batch).astype(float).tolist()
    return Results(path=Path("sweep/results.csv"), columns=columns, metadata=metadata)


def curve(lr, loss) -> Results:
    return Results(path=Path("curve.csv"), columns={"lr": list(lr), "loss": list(loss)})


# ---------------------------------------------------------------- DeepSpeed OneCycle


def test_deepspeed_vector_a():
    params = one_cycle(1e-5, 1e-2, t1=10, decay_lr_rate=1e-3, decay_step_size=10)

    lr = deepspeed_one_cycle_lr(params, 60)

    assert lr[0] == 1e-5
    assert lr[10] == 1e-2
    assert_values(lr, {1: 0.001009, 2: 0.002008, 5: 0.005005, 9: 0.009001, 11: 0.009001,
                       19: 0.001009, 20: 1e-5, 21: 9.9990001e-06, 22: 9.9980004e-06,
                       30: 9.99000999e-06, 40: 9.98003992e-06, 59: 9.96115151e-06})


def test_deepspeed_vector_b_asymmetric():
    params = one_cycle(0.002, 0.005, t1=10, t2=30)

    lr = deepspeed_one_cycle_lr(params, 41)

    assert lr[10] == 0.005
    assert_values(lr, {5: 0.0035, 11: 0.0049, 20: 0.004, 25: 0.0035, 39: 0.0021, 40: 0.002})


def test_deepspeed_decay_rate_vector():
    params = one_cycle(1e-3, 1e-1, t1=21, decay_lr_rate=1e-1, decay_step_size=21)

    lr = deepspeed_one_cycle_lr(params, 64)

    assert lr[21] == 0.1
    assert_values(lr, {0: 0.001, 1: 0.0057142857, 20: 0.0952857143, 22: 0.0952857143,
                       41: 0.0057142857, 42: 0.001, 43: 9.95260664e-4, 63: 9.09090909e-4})


def test_deepspeed_zero_decay_step_keeps_min_lr():
    params = one_cycle(1e-5, 1e-1, t1=10, decay_lr_rate=0.0, decay_step_size=0)

    lr = deepspeed_one_cycle_lr(params, 40)

    assert lr[10] == 0.1
    assert np.all(lr[20:] == 1e-5)


def test_deepspeed_tutorial_config_vector():
    params = one_cycle(1e-4, 1e-3, t1=1000, decay_lr_rate=1e-3, decay_step_size=1000,
                       min_mom=0.85, max_mom=0.99)

    lr = deepspeed_one_cycle_lr(params, 12001)
    momentum = deepspeed_one_cycle_momentum(params, 2001)

    assert_values(lr, {0: 1e-4, 1: 1.009e-4, 250: 3.25e-4, 500: 5.5e-4, 999: 9.991e-4, 1000: 1e-3,
                       1001: 9.991e-4, 1500: 5.5e-4, 1999: 1.009e-4, 2000: 1e-4, 2001: 9.99999e-5,
                       3000: 9.99000999e-5, 12000: 9.9009901e-5})
    assert_values(momentum, {1: 0.98986, 500: 0.92, 1000: 0.85, 2000: 0.99})


def test_deepspeed_momentum_vector():
    params = one_cycle(1e-3, 1e-2, t1=10, decay_step_size=10, min_mom=0.08, max_mom=0.09,
                       decay_mom_rate=1e-3)

    momentum = deepspeed_one_cycle_momentum(params, 31)

    assert_values(momentum, {0: 0.09, 1: 0.089, 5: 0.085, 10: 0.08, 11: 0.081, 19: 0.089,
                             20: 0.09, 21: 0.090009, 22: 0.090018, 30: 0.09009})


def test_deepspeed_unit_test_shapes():
    for lo, hi, rate, t1, decay_step in [(1e-5, 1e-2, 1e-3, 10, 10), (1e-3, 1e-1, 0, 21, 21),
                                         (1e-3, 1e-1, 1e-1, 21, 21), (1e-5, 1e-1, 0, 10, 0)]:
        lr = deepspeed_one_cycle_lr(one_cycle(lo, hi, t1=t1, decay_lr_rate=rate,
                                              decay_step_size=decay_step), 4 * t1)
        assert lr[0] == lo
        assert lr[t1] == hi
        assert np.all(np.diff(lr[: t1 + 1]) > 0)
        assert np.all(np.diff(lr[t1 : 2 * t1 + 1]) < 0)
        if rate > 0:
            assert np.all(np.diff(lr[2 * t1 :]) < 0)


# ---------------------------------------------------------------- PyTorch schedulers


def test_torch_one_cycle_defaults_vector():
    schedule = torch_one_cycle(max_lr=0.005, total_steps=4000)

    assert_values(schedule.lr, {0: 2e-4, 1199: 5e-3, 3999: 2e-8}, rel=1e-12)
    assert_values(schedule.lr, {600: 2.60314e-3, 2599: 2.50001e-3}, rel=1e-5)
    assert_values(schedule.momentum, {0: 0.95, 1199: 0.85, 3999: 0.95}, rel=1e-12)


def test_torch_one_cycle_three_phase_linear_vector():
    schedule = torch_one_cycle(max_lr=0.005, total_steps=4000, pct_start=0.5,
                               anneal_strategy="linear", three_phase=True, div_factor=2.5)

    assert_values(schedule.lr, {0: 0.002, 1000: 3.50075e-3, 1999: 0.005, 2000: 4.9985e-3,
                                3000: 3.49775e-3, 3998: 0.002, 3999: 2e-7}, rel=1e-6)


def test_torch_one_cycle_linear_two_phase_vector():
    schedule = torch_one_cycle(max_lr=1.0, total_steps=10, anneal_strategy="linear")

    expected = [0.04, 0.52, 1.0, 0.857143, 0.714287, 0.57143, 0.428574, 0.285717, 0.142861, 4e-6]
    np.testing.assert_allclose(schedule.lr, expected, rtol=1e-5)


def test_torch_one_cycle_rejects_degenerate_phases():
    with pytest.raises(ValueError, match="do not increase"):
        torch_one_cycle(max_lr=0.01, total_steps=2, pct_start=0.5, three_phase=True)


def test_torch_cyclic_vector():
    lr = torch_cyclic_lr(base_lr=0.002, max_lr=0.005, step_size_up=2000, steps=6001)

    assert_values(lr, {0: 0.002, 1000: 0.0035, 2000: 0.005, 3000: 0.0035, 4000: 0.002, 6000: 0.005},
                  rel=1e-12)


def test_torch_cyclic_matches_deepspeed_cycle():
    params = one_cycle(0.002, 0.005, t1=10, t2=30, decay_lr_rate=1e-2, decay_step_size=10)

    deepspeed = deepspeed_one_cycle_lr(params, 41)
    cyclic = torch_cyclic_lr(base_lr=0.002, max_lr=0.005, step_size_up=10, step_size_down=30, steps=41)

    np.testing.assert_array_equal(deepspeed, cyclic)


# ---------------------------------------------------------------- schedule checks


def test_check_rejects_zero_step_size():
    with pytest.raises(ScheduleCheckError, match="decay_step_size"):
        check_deepspeed_schedule(one_cycle(1e-3, 1e-2, t1=10, decay_step_size=0), 40)


def test_check_rejects_momentum_above_one():
    params = one_cycle(1e-3, 1e-2, t1=10, decay_step_size=10, decay_mom_rate=0.1)

    with pytest.raises(ScheduleCheckError, match="beta1"):
        check_deepspeed_schedule(params, 1000)


def test_check_rejects_min_above_max():
    with pytest.raises(ScheduleCheckError, match="peaks"):
        check_deepspeed_schedule(one_cycle(1e-2, 1e-3, t1=10, decay_step_size=10), 40)


# ---------------------------------------------------------------- the worked examples


def test_worked_example_batch_2048():
    suggestion = suggest_from_results(lrrt_sweep(2048), batch_size=2048, max_lr=0.005)

    assert suggestion.params.cycle_first_step_size == 1960
    assert suggestion.params.cycle_second_step_size == 1960
    assert suggestion.params.cycle_max_lr == 0.005
    assert suggestion.step_size.update_index == 1960
    assert suggestion.step_size.samples == 1960 * 2048
    assert suggestion.test_batch_size == 2048
    assert suggestion.warnings == []


def test_worked_example_batch_512():
    suggestion = suggest_from_results(lrrt_sweep(512), batch_size=2048, max_lr=0.005)

    assert suggestion.params.cycle_first_step_size == 490
    assert suggestion.params.cycle_second_step_size == 490
    assert suggestion.test_batch_size == 512


def test_worked_example_without_samples_column():
    results = lrrt_sweep(None, with_samples=False)

    suggestion = suggest_from_results(results, batch_size=2048, max_lr=0.005, test_batch_size=512)

    assert suggestion.params.cycle_first_step_size == 490
    assert suggestion.step_size.source == "update index x test batch size"


def test_test_batch_from_run_json():
    results = lrrt_sweep(None, with_samples=False, metadata={"global_batch_size": 2048})

    suggestion = suggest_from_results(results, batch_size=2048, max_lr=0.005)

    assert suggestion.params.cycle_first_step_size == 1960
    assert suggestion.test_batch_source == "run.json global_batch_size"


def test_missing_test_batch_is_config_error():
    results = lrrt_sweep(None, with_samples=False)

    with pytest.raises(ConfigError, match="--test-batch-size"):
        suggest_from_results(results, batch_size=2048, max_lr=0.005)


def test_max_lr_beyond_recorded_range():
    with pytest.raises(ConfigError, match="above the largest LR"):
        suggest_from_results(lrrt_sweep(512), batch_size=2048, max_lr=0.5)


def test_total_steps_replaces_measurement():
    suggestion = suggest_from_results(lrrt_sweep(512), batch_size=2048, max_lr=0.5, total_steps=4000)

    assert suggestion.params.cycle_first_step_size == 1800
    assert suggestion.params.cycle_second_step_size == 1800
    assert suggestion.pytorch["OneCycleLR"]["total_steps"] == 4000
    assert suggestion.pytorch["OneCycleLR"]["pct_start"] == 0.45


def test_tiny_total_steps_never_gives_zero_step():
    suggestion = suggest_from_results(lrrt_sweep(512), batch_size=2048, max_lr=0.005, total_steps=1)

    assert suggestion.params.cycle_first_step_size == 1
    assert suggestion.params.decay_step_size == 1
    assert "OneCycleLR" not in suggestion.pytorch
    assert any("too short" in warning for warning in suggestion.warnings)


def test_huge_target_batch_rounds_step_up_to_one():
    suggestion = suggest_from_results(lrrt_sweep(512), batch_size=10**9, max_lr=0.005)

    assert suggestion.params.cycle_first_step_size == 1
    assert any("rounded up to 1" in warning for warning in suggestion.warnings)
    assert any("re-run the range test" in warning for warning in suggestion.warnings)


def test_batch_change_above_8x_warns():
    suggestion = suggest_from_results(lrrt_sweep(256), batch_size=4096, max_lr=0.005)

    ratio_warnings = [warning for warning in suggestion.warnings if "16x" in warning]
    assert len(ratio_warnings) == 1
    assert "re-run the range test at the target batch size" in ratio_warnings[0]


def test_batch_change_of_4x_does_not_warn():
    suggestion = suggest_from_results(lrrt_sweep(512), batch_size=2048, max_lr=0.005)

    assert not any("re-run" in warning for warning in suggestion.warnings)


@pytest.mark.parametrize(("rule", "expected"), [("linear", 0.02), ("sqrt", 0.01)])
def test_lr_scaling_is_named_heuristic(rule, expected):
    suggestion = suggest_from_results(lrrt_sweep(512), batch_size=2048, max_lr=0.005, lr_scaling=rule)

    assert suggestion.params.cycle_max_lr == pytest.approx(expected, rel=1e-12)
    assert suggestion.params.cycle_first_step_size == 490
    assert suggestion.to_dict()["lr_scaling"] == {"rule": rule, "factor": pytest.approx(expected / 0.005),
                                                  "heuristic": True}
    assert any("heuristic" in line for line in suggestion.reasoning)


def test_default_method_picks_near_the_turn():
    suggestion = suggest_from_results(lrrt_sweep(2048), batch_size=2048)

    assert suggestion.method == "divergence"
    assert 0.004 <= suggestion.params.cycle_max_lr <= 0.0055
    assert suggestion.params.cycle_min_lr == pytest.approx(suggestion.params.cycle_max_lr / 10)
    update = suggestion.step_size.update_index
    assert suggestion.params.cycle_first_step_size == update
    assert 1e-4 * (1 + 5 * update / 200) >= suggestion.params.cycle_max_lr


@pytest.mark.parametrize("method", ["steepest", "minimum", "valley", "divergence"])
def test_each_method_gives_checked_block(method):
    suggestion = suggest_from_results(lrrt_sweep(512), batch_size=2048, method=method)

    assert suggestion.method == method
    pick = suggestion.analysis.picks[method]
    assert suggestion.params.cycle_max_lr <= pick.lr
    assert suggestion.params.cycle_max_lr > 0.99 * pick.lr


# ---------------------------------------------------------------- no suggestion and bad options


def test_no_descent_raises_no_suggestion():
    results = curve([1e-5, 1e-4, 1e-3, 1e-2, 1e-1], [0.40, 0.45, 0.60, 1.20, 4.00])

    with pytest.raises(NoSuggestionError, match="no descending section") as caught:
        suggest_from_results(results, batch_size=64, test_batch_size=64)
    assert caught.value.exit_code == EXIT_NO_SUGGESTION


def test_max_lr_override_on_flat_curve_warns():
    results = curve(np.logspace(-5, 0, 50), np.full(50, 0.3))

    suggestion = suggest_from_results(results, batch_size=64, test_batch_size=64, max_lr=1e-3)

    assert suggestion.method == "max_lr"
    assert any("no suggestion" in warning for warning in suggestion.warnings)


@pytest.mark.parametrize(
    ("options", "match"),
    [
        ({"batch_size": 0}, "--batch-size"),
        ({"batch_size": -5}, "--batch-size"),
        ({"batch_size": 2.5}, "--batch-size"),
        ({"min_ratio": 1.0}, "--min-ratio"),
        ({"min_ratio": math.nan}, "--min-ratio"),
        ({"max_lr": -1.0}, "--max-lr"),
        ({"max_lr": math.inf}, "--max-lr"),
        ({"test_batch_size": 0}, "--test-batch-size"),
        ({"total_steps": 0}, "--total-steps"),
        ({"lr_scaling": "cubic"}, "--lr-scaling"),
        ({"method": "slide"}, "--method"),
        ({"cycle_min_mom": 0.95, "cycle_max_mom": 0.9}, "momentum"),
        ({"decay_lr_rate": -1.0}, "--decay-lr-rate"),
    ],
)
def test_invalid_option_is_config_error(options, match):
    arguments = {"batch_size": 2048, **options}

    with pytest.raises(ConfigError, match=match):
        suggest_from_results(lrrt_sweep(512), **arguments)


# ---------------------------------------------------------------- output forms


def assert_no_missing_values(value) -> None:
    if isinstance(value, dict):
        for item in value.values():
            assert_no_missing_values(item)
    elif isinstance(value, list):
        for item in value:
            assert_no_missing_values(item)
    else:
        assert value is not None
        if isinstance(value, float):
            assert math.isfinite(value)


def test_to_dict_is_strict_json():
    suggestion = suggest_from_results(lrrt_sweep(512), batch_size=2048)

    payload = suggestion.to_dict()
    text = json.dumps(payload, allow_nan=False)

    assert_no_missing_values(payload)
    assert set(payload["deepspeed"]["scheduler"]["params"]) == DEEPSPEED_ONE_CYCLE_FIELDS
    assert set(payload["methods"]) == {"steepest", "minimum", "valley", "divergence"}
    assert payload["reasoning"]
    assert "NaN" not in text


def test_deepspeed_block_has_every_field():
    suggestion = suggest_from_results(lrrt_sweep(512), batch_size=2048)

    block = json.loads(suggestion.render("deepspeed"))

    assert block["scheduler"]["type"] == "OneCycle"
    assert set(block["scheduler"]["params"]) == DEEPSPEED_ONE_CYCLE_FIELDS
    assert block["scheduler"]["params"]["decay_step_size"] >= 1


@pytest.mark.parametrize("fmt", FORMATS)
def test_rendered_formats_have_no_missing_values(fmt):
    suggestion = suggest_from_results(lrrt_sweep(512), batch_size=2048)

    text = suggestion.render(fmt)

    for word in ("NaN", "nan", "null", "None", "inf"):
        assert word not in text, word


def test_unknown_format_raises():
    suggestion = suggest_from_results(lrrt_sweep(512), batch_size=2048)

    with pytest.raises(ValueError, match="unknown format"):
        suggestion.render("toml")


# ---------------------------------------------------------------- property test

loss_values = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True),
    st.floats(min_value=-1e300, max_value=1e300),
    st.floats(min_value=-1e-300, max_value=1e-300),
    st.sampled_from([0.0, 1.0, -1.0, math.nan, math.inf, -math.inf]),
)


@st.composite
def random_curves(draw):
    count = draw(st.one_of(st.integers(min_value=1, max_value=8), st.integers(min_value=9, max_value=120)))
    start = draw(st.floats(min_value=-12, max_value=2))
    span = draw(st.floats(min_value=0, max_value=10))
    lr = np.logspace(start, start + span, count).tolist()
    if draw(st.booleans()):
        lr[0] = draw(st.sampled_from([0.0, -1e-3, math.nan]))
    kind = draw(st.sampled_from(["random", "constant", "sweep", "sweep", "sweep"]))
    if kind == "random":
        loss = draw(st.lists(loss_values, min_size=count, max_size=count))
    elif kind == "constant":
        loss = [draw(loss_values)] * count
    else:
        loss = draw(noisy_sweeps(count))
    return lr, loss


@st.composite
def noisy_sweeps(draw, count):
    """A fall then a rise, at any scale and offset, with noise, spikes and a NaN tail."""
    scale = draw(st.sampled_from([1e-300, 1e-12, 1.0, 1e12, 1e300]))
    offset = draw(st.sampled_from([0.0, -1.0, 1.0])) * scale
    x = np.linspace(-1, 1, count)
    centre = draw(st.floats(min_value=-0.8, max_value=0.8))
    shape = -np.tanh(4 * (x - centre)) + draw(st.floats(min_value=0, max_value=3)) * np.exp(3 * x)
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    shape = shape + draw(st.floats(min_value=0, max_value=0.2)) * rng.normal(0, 1, count)
    loss = (offset + scale * shape / 4).tolist()
    for _ in range(draw(st.integers(0, 2))):
        loss[draw(st.integers(0, count - 1))] = draw(loss_values)
    if draw(st.booleans()):
        tail = draw(st.integers(0, count - 1))
        loss[tail:] = [math.nan] * (count - tail)
    return loss


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(random_curves(), st.sampled_from([1, 64, 4096]))
def test_random_curves_give_block_or_reason(data, batch_size):
    lr, loss = data
    results = curve(lr, loss)

    try:
        suggestion = suggest_from_results(results, batch_size=batch_size, test_batch_size=64)
    except NoSuggestionError as error:
        assert str(error)
        return

    params = suggestion.params
    assert params.cycle_first_step_size >= 1
    assert params.cycle_second_step_size >= 1
    assert params.decay_step_size >= 1
    assert 0 < params.cycle_min_lr < params.cycle_max_lr
    assert math.isfinite(params.cycle_max_lr)
    assert_no_missing_values(suggestion.to_dict())
    for fmt in FORMATS:
        assert "NaN" not in suggestion.render(fmt)
    analysis = suggestion.analysis
    for pick in analysis.picks.values():
        assert analysis.descent[0] <= pick.index <= analysis.descent[1]
        assert analysis.stop_index is None or pick.index < analysis.stop_index
