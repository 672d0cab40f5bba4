"""What Table II would cost at the teach profile: CPU seconds of each model's training at a side and sample count.

Chapter 5 trains every model of ``ggcn.experiments.quality.TABLE_MODELS`` on the offline digits for the teach
plan's iterations and ``table_seeds`` seeds. This script times a few iterations of each (one thread,
``quality.generate`` as the chapter calls it) and extrapolates to the plan's iterations, for the plan's side
and sample count and for the ones asked for, so a change of scale can be priced before it is recorded.
The chain models keep one persistent chain per sample, so their cost grows with the number of samples.
"""
from __future__ import annotations

import argparse
import time
from dataclasses import replace

import torch

from ggcn.config import get_profile, plan_for
from ggcn.experiments import quality
from ggcn.measure.datasets import table_set

BUDGET = 900.0  # CPU seconds of one chapter at teach


def cost(side: int, n_samples: int, iterations: int) -> dict[str, float]:
    """Extrapolated CPU seconds of one seed's training per model at ``side`` pixels and ``n_samples`` samples."""
    plan = replace(plan_for("teach"), table_size=side, n_samples=n_samples)
    data, profile = table_set(plan, None, 0), get_profile("teach")
    seconds = {}
    for name in quality.TABLE_MODELS:
        start = time.process_time()
        quality.generate(name, data.x, profile, 0, n_samples=n_samples, iterations=iterations,
                         **quality.model_options(name, plan, "digits"))
        seconds[name] = (time.process_time() - start) / iterations * plan.iterations_of(name)
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scales", default="8x90,16x90,16x501", help="comma-separated SIDExSAMPLES pairs")
    parser.add_argument("--iterations", type=int, default=20, help="iterations timed per model")
    args = parser.parse_args()
    torch.set_num_threads(1)
    seeds = plan_for("teach").table_seeds
    print(f"one thread; {args.iterations} iterations timed per model, extrapolated to the teach plan's; "
          f"{seeds} seeds; chapter budget {BUDGET:.0f} CPU-s")
    print(f"{'scale':>9s} " + " ".join(f"{m:>9s}" for m in quality.TABLE_MODELS) + f" {'× seeds':>9s}")
    for scale in args.scales.split(","):
        side, n = (int(v) for v in scale.split("x"))
        seconds = cost(side, n, args.iterations)
        total = seeds * sum(seconds.values())
        print(f"{scale:>9s} " + " ".join(f"{seconds[m]:9.1f}" for m in quality.TABLE_MODELS)
              + f" {total:9.1f}" + ("  over budget" if total > BUDGET else ""), flush=True)


if __name__ == "__main__":
    main()
