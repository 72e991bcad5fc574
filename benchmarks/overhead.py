"""Per-update overhead of lrrt's sweep loop against a bare hand-written training loop.

Both loops train the same seeded model on the same batches with the same
optimizer for the same number of updates. The bare loop only sets the LR and
runs forward, backward and the optimizer step. Rounds alternate between the
two loops so drifts in machine load hit both, and the result is the ratio of
median per-update times within this one process.

With ``--with-outputs`` the lrrt loop also appends every row to a real
``results.csv`` through ``ResultsWriter``, as ``lrrt run`` does.

Usage: python benchmarks/overhead.py [--updates 300] [--rounds 7] [--hidden 1024]
       [--in-features 256] [--batch-size 128] [--with-outputs]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from lrrt_cli.engine import SweepSettings, run_sweep
from lrrt_cli.results import BASE_COLUMNS, ResultsWriter
from lrrt_cli.schedules import ExponentialRangeTest
from lrrt_cli.steps import build_step_function
from lrrt_cli.stopping import DivergenceRule

CPU = torch.device("cpu")


def make_parts(args: argparse.Namespace, num_samples: int = 4096):
    torch.manual_seed(0)
    inputs = torch.randn(num_samples, args.in_features)
    targets = torch.randint(0, 10, (num_samples,))
    loader = DataLoader(TensorDataset(inputs, targets), batch_size=args.batch_size, shuffle=True,
                        generator=torch.Generator().manual_seed(0))
    hidden = args.hidden
    model = nn.Sequential(nn.Linear(args.in_features, hidden), nn.ReLU(), nn.Linear(hidden, hidden), nn.ReLU(),
                          nn.Linear(hidden, 10))
    optimizer = torch.optim.SGD(model.parameters(), lr=1e-3, momentum=0.9)
    return model, optimizer, loader


def bare_loop(args: argparse.Namespace, updates: int, schedule: ExponentialRangeTest) -> float:
    model, optimizer, loader = make_parts(args)
    criterion = nn.CrossEntropyLoss()
    losses = []
    iterator = iter(loader)
    start = time.perf_counter()
    for step in range(updates):
        try:
            inputs, targets = next(iterator)
        except StopIteration:
            iterator = iter(loader)
            inputs, targets = next(iterator)
        for group in optimizer.param_groups:
            group["lr"] = schedule.lr_at(step)
        optimizer.zero_grad(set_to_none=True)
        loss = criterion(model(inputs), targets)
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    return (time.perf_counter() - start) / updates


def lrrt_loop(args: argparse.Namespace, updates: int, schedule: ExponentialRangeTest) -> float:
    model, optimizer, loader = make_parts(args)
    settings = SweepSettings(schedule=schedule, divergence=DivergenceRule(factor=None))
    rows: list[dict] = []
    with tempfile.TemporaryDirectory() as folder:
        writer = ResultsWriter(Path(folder) / "results.csv", BASE_COLUMNS) if args.with_outputs else None
        on_row = writer.append if writer is not None else rows.append
        start = time.perf_counter()
        result = run_sweep(model, optimizer, loader, build_step_function("cross_entropy"), settings,
                           device=CPU, on_row=on_row)
        elapsed = time.perf_counter() - start
        if writer is not None:
            writer.close()
    assert len(result.rows) == updates, (len(result.rows), result.stop_reason)
    return elapsed / updates


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--updates", type=int, default=300)
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--hidden", type=int, default=1024)
    parser.add_argument("--in-features", type=int, default=256)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--with-outputs", action="store_true", help="write results.csv as lrrt run does")
    args = parser.parse_args()

    # The sweep stays in a range where this model trains normally.
    schedule = ExponentialRangeTest(1e-4, 1e-2, args.updates)
    bare_loop(args, 20, ExponentialRangeTest(1e-4, 1e-2, 20))  # warm-up
    bare_times, lrrt_times = [], []
    for _ in range(args.rounds):
        bare_times.append(bare_loop(args, args.updates, schedule))
        lrrt_times.append(lrrt_loop(args, args.updates, schedule))

    bare = statistics.median(bare_times)
    lrrt = statistics.median(lrrt_times)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, MLP {args.in_features}-{args.hidden}-"
          f"{args.hidden}-10, batch {args.batch_size}, {args.updates} updates x {args.rounds} rounds, "
          f"results.csv {'written' if args.with_outputs else 'not written'}")
    print(f"bare loop : {bare * 1e3:.3f} ms/update (median)")
    print(f"lrrt loop : {lrrt * 1e3:.3f} ms/update (median)")
    print(f"ratio     : {lrrt / bare:.4f}  (target: at most 1.03)")


if __name__ == "__main__":
    main()
