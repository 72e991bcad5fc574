"""``lrrt suggest``: print the 1Cycle block for a target global batch size.

The block goes to stdout and nothing else does, so ``lrrt suggest ... > block.json``
writes valid JSON. Notes and warnings go to stderr. Exit codes: 0 a block was
printed, 2 invalid input, 3 no suggestion (the reason is on stderr). This module
never imports torch.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from lrrt_cli.analysis import DEFAULT_METHOD, METHODS
from lrrt_cli.commands.common import handle_errors, warn
from lrrt_cli.errors import ConfigError
from lrrt_cli.one_cycle import (
    DEFAULT_MAX_MOMENTUM,
    DEFAULT_MIN_MOMENTUM,
    DEFAULT_MIN_RATIO,
    FORMATS,
    LR_SCALING_RULES,
    suggest_from_results,
)
from lrrt_cli.results import find_latest_results, load_results

RUNS_DIR = "runs"


@handle_errors
def suggest_command(
    results_path: Annotated[
        Path | None,
        typer.Argument(
            metavar="[RESULTS.csv]",
            help="Results CSV with 'lr' and 'loss' columns. Default: the most recently "
            f"written results.csv under ./{RUNS_DIR}/.",
            show_default=False,
        ),
    ] = None,
    batch_size: Annotated[
        int | None,
        typer.Option(
            "--batch-size", "-b",
            help="Required. Target global batch size in samples per optimizer step "
            "(per-device batch x devices x gradient accumulation).",
            show_default=False,
        ),
    ] = None,
    method: Annotated[
        str | None,
        typer.Option(
            help=f"Method that sets cycle_max_lr: {', '.join(METHODS)}. "
            f"Default: {DEFAULT_METHOD}, falling back to another method if it finds no LR.",
            show_default=False,
        ),
    ] = None,
    min_ratio: Annotated[
        float,
        typer.Option(help="cycle_min_lr = cycle_max_lr / MIN_RATIO; must be above 1."),
    ] = DEFAULT_MIN_RATIO,
    max_lr: Annotated[
        float | None,
        typer.Option(
            help="Use this LR as cycle_max_lr in place of the method's pick (read on the "
            "test's LR axis, before --lr-scaling).",
            show_default=False,
        ),
    ] = None,
    test_batch_size: Annotated[
        int | None,
        typer.Option(
            help="Global batch size of the range test, in samples per update; needed only "
            "when the CSV has no samples column and no run.json beside it.",
            show_default=False,
        ),
    ] = None,
    total_steps: Annotated[
        int | None,
        typer.Option(
            help="Known training length in optimizer steps; the cycle then takes 90% of it "
            "instead of the measured step size.",
            show_default=False,
        ),
    ] = None,
    lr_scaling: Annotated[
        str,
        typer.Option(
            help=f"Heuristic LR rescaling from the test's batch to --batch-size: "
            f"{', '.join(LR_SCALING_RULES)}.",
        ),
    ] = "none",
    momentum: Annotated[
        bool,
        typer.Option(
            "--momentum/--no-momentum",
            help="Cycle momentum (Adam beta1) inversely to the LR (cycle_momentum).",
        ),
    ] = True,
    min_momentum: Annotated[
        float, typer.Option(help="cycle_min_mom: momentum at the LR peak.")
    ] = DEFAULT_MIN_MOMENTUM,
    max_momentum: Annotated[
        float, typer.Option(help="cycle_max_mom: momentum at the cycle's ends.")
    ] = DEFAULT_MAX_MOMENTUM,
    decay_lr_rate: Annotated[
        float,
        typer.Option(
            help="decay_lr_rate: after the cycle the LR is cycle_min_lr / (1 + RATE x "
            "steps_after_cycle / decay_step_size); 0 keeps it at cycle_min_lr.",
        ),
    ] = 0.0,
    output_format: Annotated[
        str,
        typer.Option("--format", "-f", help=f"Output format: {', '.join(FORMATS)}."),
    ] = "deepspeed",
) -> None:
    """Print a 1Cycle schedule for a target batch size from a range-test results file."""
    if batch_size is None:
        raise ConfigError("--batch-size is required: give the target global batch size, for example --batch-size 2048")
    if output_format not in FORMATS:
        raise ConfigError(f"--format must be one of {', '.join(FORMATS)}, got {output_format!r}")

    if results_path is None:
        results_path = find_latest_results(RUNS_DIR)
        sys.stderr.write(f"reading {results_path} (the most recently written run under {RUNS_DIR}/)\n")
    results = load_results(results_path)
    suggestion = suggest_from_results(
        results,
        batch_size=batch_size,
        method=method,
        min_ratio=min_ratio,
        max_lr=max_lr,
        test_batch_size=test_batch_size,
        total_steps=total_steps,
        lr_scaling=lr_scaling,
        cycle_momentum=momentum,
        cycle_min_mom=min_momentum,
        cycle_max_mom=max_momentum,
        decay_lr_rate=decay_lr_rate,
    )
    text = suggestion.render(output_format)
    for message in suggestion.warnings:
        warn(message)
    sys.stdout.write(text)
    sys.stdout.flush()
