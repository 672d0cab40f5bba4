"""GGCN speed: amortized one-pass sampling vs 100 Langevin steps, and the training iteration time.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/ggcn_family.py            # 32×32 RGB, batch 64, CPU
    .venv/bin/python benchmarks/ggcn_family.py --device cuda --profile paper

Sampling: a GGCN+AMS model draws a batch with one generator pass, or with the generator pass
followed by 100 Langevin steps of its synthesizer (the paper's Fig. 9 comparison). Training:
the mean time of one learning iteration of each variant through ``ggcn.core.train.train`` (which
includes its divergence guard), averaged over whole k = 4 cycles after a warm-up cycle. Timing
does not depend on the pixel values, so the data are uniform noise in [−1, 1].
"""
from __future__ import annotations

import argparse
import statistics
import time


import torch  # noqa: E402

from ggcn.config import get_profile, resolve_device  # noqa: E402
from ggcn.models.cooperative import GGCN_NAMES, build_ggcn, example_index  # noqa: E402
from ggcn.core.train import train  # noqa: E402


def seconds(fn, repeats: int, device: str) -> float:
    """Median wall time of ``fn()`` over ``repeats`` calls (after one warm-up call)."""
    fn()
    times = []
    for _ in range(repeats):
        if device.startswith("cuda"):
            torch.cuda.synchronize()
        start = time.perf_counter()
        fn()
        if device.startswith("cuda"):
            torch.cuda.synchronize()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def iteration_time(name: str, args, profile, data: torch.Tensor, device: str) -> float:
    """Mean seconds per learning iteration of ``name`` over ``args.cycles`` k-cycles after one warm-up cycle."""
    model = build_ggcn(name, profile, args.channels, args.size, n_examples=len(data), device=device)
    stamps: list[float] = []

    def clock(it, model, x_obs):
        if device.startswith("cuda"):
            torch.cuda.synchronize()
        stamps.append(time.perf_counter())

    k = model.gen_every
    train(model, data, k * (args.cycles + 1), batch_size=args.batch, labels=example_index(data), callbacks=[clock],
          device=device)
    return (stamps[-1] - stamps[k - 1]) / (k * args.cycles)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--profile", default="teach")
    parser.add_argument("--size", type=int, default=32)
    parser.add_argument("--channels", type=int, default=3)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--langevin", type=int, default=100, help="Langevin steps of the slow sampler")
    parser.add_argument("--cycles", type=int, default=2, help="timed k-cycles of training per variant")
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()
    device = resolve_device(args.device)
    torch.manual_seed(0)
    profile = get_profile(args.profile)
    data = torch.rand(4 * args.batch, args.channels, args.size, args.size) * 2 - 1

    model = build_ggcn("ggcn+ams", profile, args.channels, args.size, n_examples=len(data), device=device)
    one_pass = seconds(lambda: model.sample(args.batch), 10, device)
    langevin = seconds(lambda: model.sample(args.batch, n_steps=args.langevin), 3, device)
    print(f"# GGCN on {device} (torch threads: {torch.get_num_threads()}), profile {args.profile}: "
          f"{args.channels}×{args.size}×{args.size}, batch {args.batch}, f_θ width {profile.width}, "
          f"z_dim {profile.z_dim}, L = {profile.langevin_steps} Langevin steps while training\n")
    table("sampling a batch", [
        ("GGCN+AMS, one generator pass", f"{one_pass:.4f} s"),
        (f"generator + {args.langevin} Langevin steps", f"{langevin:.4f} s"),
        ("speed-up of the one pass", f"{langevin / one_pass:.0f}×"),
    ])
    table("training iteration", [
        (name, f"{iteration_time(name, args, profile, data, device):.4f} s") for name in GGCN_NAMES
    ])


def table(title: str, rows: list[tuple[str, str]]) -> None:
    """A Markdown table with two columns."""
    width = max(len(title), *(len(r[0]) for r in rows))
    print(f"| {title:<{width}} | {'':>10} |\n|{'-' * (width + 2)}|{'-' * 12}|")
    for name, value in rows:
        print(f"| {name:<{width}} | {value:>10} |")
    print()


if __name__ == "__main__":
    main()
