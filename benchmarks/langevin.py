"""How fast is the one Langevin sampler, and how much memory does a smoke run take?

Prints, for the GCN ConvNet at 32×32 and 64×64 (batch 100):

* Langevin steps/s of ``ggcn.core.langevin.langevin`` and of a bare autograd loop on the same net,
* GFLOP per step (forward + input gradient, counted by ``FlopCounterMode``) and GFLOP/s,
* the ratio ours / bare (target ≥ 0.95: the sampler adds no measurable overhead),

and the peak resident memory of a smoke-profile wGCN training run on the LFW faces, measured
in a child process (target ≤ 2 GB). Run from the repository root::

    .venv/bin/python benchmarks/langevin.py            # 1–5 minutes on 2 cores, by how busy they are
    .venv/bin/python benchmarks/langevin.py --quick    # fewer steps and repeats
"""
from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import time
from collections import Counter
from typing import Callable


import torch  # noqa: E402
from torch import Tensor, nn  # noqa: E402
from torch.utils._python_dispatch import TorchDispatchMode  # noqa: E402
from torch.utils.flop_counter import FlopCounterMode  # noqa: E402

from ggcn.core.langevin import LangevinConfig, frozen, langevin  # noqa: E402
from ggcn.models.nets import ConvEnergy  # noqa: E402

BATCH = 100
CFG = LangevinConfig(n_steps=1, step_size=0.01, sigma=1.0)  # the paper's δ; σ = 1
RATIO_TARGET = 0.95
RSS_TARGET_GB = 2.0

SMOKE_RUN = """
from ggcn.config import get_profile
from ggcn.measure.data import lfw_faces
from ggcn.models.registry import build_model
from ggcn.core.train import train
p = get_profile("smoke")
model = build_model("wgcn", p, channels=1)
train(model, lfw_faces(p.image_size, p.n_images), p.iterations, batch_size=p.batch_size, seed=0)
"""

Runner = Callable[[nn.Module, Tensor, int], Tensor]


def bare_loop(net: nn.Module, x: Tensor, n_steps: int, cfg: LangevinConfig = CFG) -> Tensor:
    """The textbook loop the sampler is measured against: same update, no extras."""
    half, inv_var = cfg.step_size**2 / 2, 1.0 / cfg.sigma**2
    for _ in range(n_steps):
        x = x.detach().requires_grad_()
        g = torch.autograd.grad(net(x).sum(), x)[0]
        with torch.no_grad():
            x = x + half * (g - x * inv_var) + cfg.step_size * torch.randn_like(x)
    return x


def ours(net: nn.Module, x: Tensor, n_steps: int, cfg: LangevinConfig = CFG) -> Tensor:
    return langevin(net, x, LangevinConfig(**{**vars(cfg), "n_steps": n_steps})).x


def step_flops(net: nn.Module, x: Tensor) -> int:
    """FLOPs of one forward pass plus the input gradient (what one Langevin step computes)."""
    counter = FlopCounterMode(display=False)
    with frozen(net), counter:  # the counter's module hooks reject autograd.grad; with frozen
        x = x.detach().requires_grad_()  # parameters, backward() computes the input gradient only
        net(x).sum().backward()
    return counter.get_total_flops()


class OperatorCounter(TorchDispatchMode):
    """Counts the aten operators dispatched inside the block (forward and backward)."""

    def __init__(self):
        super().__init__()
        self.calls: Counter[str] = Counter()

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        self.calls[func.name()] += 1
        return func(*args, **(kwargs or {}))


def operators(run: Runner, net: nn.Module, x: Tensor, n_steps: int) -> Counter[str]:
    """The aten operators ``n_steps`` steps of ``run`` issue: a count that no load can disturb."""
    counter = OperatorCounter()
    with counter:
        run(net, x, n_steps)
    return counter.calls


def rates(runs: dict[str, Runner], net: nn.Module, x: Tensor, n_steps: int, repeats: int) -> dict[str, list[float]]:
    """Steps/s (wall clock) of each runner in ``repeats`` timed runs of ``n_steps`` steps, after a warm-up.

    The runners take turns within each repeat (in alternating order), so a neighbour's load on a
    shared machine hits both alike and their per-repeat ratio stays meaningful.
    """
    for run in runs.values():
        run(net, x, max(2, n_steps // 2))
    out: dict[str, list[float]] = {name: [] for name in runs}
    for r in range(repeats):
        for name in list(runs)[:: 1 if r % 2 == 0 else -1]:
            start = time.perf_counter()
            runs[name](net, x, n_steps)
            out[name].append(n_steps / (time.perf_counter() - start))
    return out


def median_ratio(a: list[float], b: list[float]) -> float:
    """Median over repeats of a[i] / b[i]."""
    return statistics.median(x / y for x, y in zip(a, b))


def smoke_peak_rss_gb() -> float:
    """Peak resident memory of a smoke wGCN training run in a child process, in GB."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    subprocess.run([sys.executable, "-c", SMOKE_RUN], check=True)
    peak_kb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss  # kilobytes on Linux
    if peak_kb <= before:
        raise RuntimeError("the smoke run did not register a peak resident size; is this Linux?")
    return peak_kb * 1024 / 1e9


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="fewer steps and repeats (noisier numbers)")
    args = parser.parse_args()
    n_steps, repeats = (3, 5) if args.quick else (5, 11)
    load_before = os.getloadavg()[0]
    print(f"torch {torch.__version__} · {torch.get_num_threads()} threads · {os.cpu_count()} CPUs · batch {BATCH}"
          f" · {repeats} repeats of {n_steps} steps per runner · load average {load_before:.1f}")
    header = (f"{'net':<34} {'GFLOP/step':>10} {'bare st/s':>10} {'ours st/s':>10} {'bare GF/s':>10}"
              f" {'ours GF/s':>10} {'ours/bare':>10} {'(fastest)':>10}")
    print(header)
    print("-" * len(header))
    ratios = []
    torch.manual_seed(0)
    for size in (32, 64):
        net = ConvEnergy(3, size, 64)
        x = torch.rand(BATCH, 3, size, size) * 2 - 1
        gflop = step_flops(net, x) / 1e9
        timed = rates({"bare": bare_loop, "ours": ours}, net, x, n_steps, repeats)
        bare, mine = statistics.median(timed["bare"]), statistics.median(timed["ours"])
        ratio = median_ratio(timed["ours"], timed["bare"])
        ratios.append(ratio)
        widths = "/".join(str(m.out_channels) for m in net.body if isinstance(m, nn.Conv2d))
        name = f"ConvEnergy {size}×{size} ({widths})"
        print(f"{name:<34} {gflop:>10.2f} {bare:>10.2f} {mine:>10.2f} {bare * gflop:>10.1f} {mine * gflop:>10.1f}"
              f" {ratio:>10.3f} {max(timed['ours']) / max(timed['bare']):>10.3f}")
    n = 4
    ops = {name: operators(run, ConvEnergy(3, 32, 8), torch.zeros(2, 3, 32, 32), n) for name, run in
           (("bare", bare_loop), ("ours", ours))}
    extra, missing = ops["ours"] - ops["bare"], ops["bare"] - ops["ours"]
    rss = smoke_peak_rss_gb()
    load_after = os.getloadavg()[0]
    print()
    print("GFLOP/step: forward + input gradient. st/s, GF/s: median over repeats.")
    print("ours/bare: median per-repeat ratio; (fastest): ratio of each runner's fastest repeat.")
    print(f"aten operators per step (load-independent): bare {sum(ops['bare'].values()) / n:g},"
          f" ours {sum(ops['ours'].values()) / n:g}; only in ours, over {n} steps: {dict(extra) or 'none'};"
          f" only in bare: {dict(missing) or 'none'}")
    print(f"sampler overhead: worst ours/bare = {min(ratios):.3f} (target ≥ {RATIO_TARGET})"
          f" -> {'ok' if min(ratios) >= RATIO_TARGET else 'BELOW TARGET'}")
    print(f"smoke wGCN training (lfw_faces) peak RSS = {rss:.2f} GB (target ≤ {RSS_TARGET_GB} GB)"
          f" -> {'ok' if rss <= RSS_TARGET_GB else 'ABOVE TARGET'}")
    if max(load_before, load_after) > (os.cpu_count() or 1):
        print(f"note: the machine was busy (load average {load_before:.1f} → {load_after:.1f} on"
              f" {os.cpu_count()} CPUs); absolute speeds are low and the ratios noisy -- rerun when it is idle.")


if __name__ == "__main__":
    main()
