"""Warnings `lrrt suggest` gives when its block stretches what the test measured."""

from test_suggest_cli import suggest, write_sweep


def test_max_lr_above_tested_range_warns(tmp_path):
    sweep = write_sweep(tmp_path / "run" / "results.csv", 512, updates=300)
    result = suggest(str(sweep), "-b", "512", "--max-lr", "5", "--total-steps", "1000")
    assert result.exit_code == 0, result.output
    assert "--max-lr 5 is above the largest LR the test trained at" in result.stderr


def test_max_lr_past_the_minimum_warns(tmp_path):
    sweep = write_sweep(tmp_path / "run" / "results.csv", 512, updates=4800)  # lowest loss near LR 0.0053
    result = suggest(str(sweep), "-b", "512", "--max-lr", "0.0115")
    assert result.exit_code == 0, result.output
    assert "more than twice the LR of the lowest loss" in result.stderr


def test_short_half_cycle_warns(tmp_path):
    sweep = write_sweep(tmp_path / "run" / "results.csv", 8)
    result = suggest(str(sweep), "-b", "4096")
    assert result.exit_code == 0, result.output
    assert "each half cycle is only" in result.stderr
    assert "pass --total-steps" in result.stderr


def test_single_step_grammar(tmp_path):
    sweep = write_sweep(tmp_path / "run" / "results.csv", 1)
    result = suggest(str(sweep), "-b", "4096", "--format", "text")
    assert "1 steps" not in result.stdout + result.stderr
