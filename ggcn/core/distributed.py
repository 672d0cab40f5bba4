"""Optional data parallelism for paper-scale runs: one process per device, the one training loop.

Each of the W ranks draws its own batch and particles; DDP averages the gradients, ∇θ = (1/W) Σ_r ∇θ L_r,
so every rank takes the same Adam step. Under ``torchrun --nproc_per_node=N script.py``::

    ctx = init_from_env()                                   # gloo on CPU, NCCL on GPUs
    model = distribute(build_model("wgcn", profile, channels=3, device=ctx.device), ctx, seed=seed)
    history = train(model, data, iterations, seed=seed, device=ctx.device,
                    checkpoint_dir=main_only(ckpt_dir, ctx), checkpoint_every=10, progress=ctx.is_main)
    shutdown()

Only rank 0 writes checkpoints (single-process format). At its first step after start or resume each
rank mixes its rank into torch's RNG; a resumed run restarts every rank from rank 0's particles
(reproducible, not bit-identical to an uninterrupted multi-process run).
"""
from __future__ import annotations

import inspect
import os
from dataclasses import dataclass
from typing import Any, TypeVar

import numpy as np
import torch
import torch.distributed as dist
from torch import Tensor, nn
from torch.nn.parallel import DistributedDataParallel

from ggcn.config import resolve_device

WRAPPED = ("energy", "generator")  # the trained networks a model may hold
ENV_VARS = ("RANK", "WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT")
T = TypeVar("T")
# DDP's switch against re-broadcasting buffers at every forward (`broadcast_buffers` before torch 2.14)
_NO_FORWARD_BUFFER_SYNC = (
    {"forward_sync_buffers": False}
    if "forward_sync_buffers" in inspect.signature(DistributedDataParallel.__init__).parameters
    else {"broadcast_buffers": False}
)


@dataclass(frozen=True)
class DistContext:
    """Where this process sits: ``rank`` of ``world_size``, its ``device``, and the ``backend``."""

    rank: int
    world_size: int
    local_rank: int
    device: str
    backend: str

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def init_from_env(device: str = "auto") -> DistContext:
    """Join the process group that torchrun's RANK, WORLD_SIZE, LOCAL_RANK, MASTER_ADDR, MASTER_PORT
    describe: NCCL with one GPU per process (``cuda:LOCAL_RANK``), else gloo on the CPU."""
    if missing := [v for v in ENV_VARS if v not in os.environ]:
        raise RuntimeError(f"environment variables {missing} are not set: start the script with "
                           "`torchrun --nproc_per_node=N script.py` (or set RANK, WORLD_SIZE, MASTER_ADDR, "
                           "MASTER_PORT yourself)")
    rank, world = int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"])
    local_rank = int(os.environ.get("LOCAL_RANK", rank))
    device, backend = resolve_device(device), "gloo"
    if device.startswith("cuda"):
        if local_rank >= torch.cuda.device_count():
            raise RuntimeError(f"LOCAL_RANK {local_rank} has no GPU ({torch.cuda.device_count()} visible); "
                               "start at most one process per GPU (--nproc_per_node)")
        device, backend = f"cuda:{local_rank}", "nccl"
        torch.cuda.set_device(local_rank)
    if not dist.is_initialized():
        dist.init_process_group(backend, rank=rank, world_size=world)
    return DistContext(rank, world, local_rank, device, backend)


def shutdown() -> None:
    """Leave the process group (a no-op when none was joined)."""
    if dist.is_initialized():
        dist.destroy_process_group()


def rank_seed(seed: int, rank: int) -> int:
    """A 63-bit seed mixed from (seed, rank): distinct per rank and, unlike seed + rank, per seed too."""
    return int(np.random.SeedSequence([seed, rank]).generate_state(1, dtype=np.uint64)[0] >> 1)


def main_only(value: T, ctx: DistContext) -> T | None:
    """``value`` on rank 0, ``None`` elsewhere, e.g. ``checkpoint_dir=main_only(path, ctx)``."""
    return value if ctx.is_main else None


def mean_over_ranks(stats: dict[str, Any]) -> dict[str, Tensor]:
    """All-reduce the mean of each scalar in ``stats`` (the same keys on every rank)."""
    keys = sorted(stats)
    values = torch.tensor([float(stats[k]) for k in keys], dtype=torch.float64)
    if dist.get_backend() == "nccl":
        values = values.cuda()  # the device init_from_env made current
    dist.all_reduce(values)
    return dict(zip(keys, (values / dist.get_world_size()).cpu()))


class _DDP(DistributedDataParallel):
    """DDP that saves and loads the plain module's state (no ``module.`` prefix) and shows the module's
    attributes (e.g. ``responses``), so it can stand in for the unwrapped network."""

    def __getattr__(self, name: str) -> Any:
        try:
            return super().__getattr__(name)
        except AttributeError:
            if name == "module":
                raise
            return getattr(self.module, name)

    def state_dict(self, *args: Any, **kwargs: Any) -> dict[str, Any]:
        return self.module.state_dict(*args, **kwargs)

    def load_state_dict(self, state: dict[str, Any], strict: bool = True, assign: bool = False):
        return self.module.load_state_dict(state, strict=strict, assign=assign)


class DistributedModel:
    """A model whose networks are in DDP; ``step`` returns its diagnostics averaged over the ranks, all NaN
    when any rank's particles are not finite (so all ranks raise ``DivergenceError`` together). Every other
    attribute (``particles``, ``sample``, ``state_dict``, …) is the model's own."""

    def __init__(self, model: Any, ctx: DistContext):
        self.model, self.ctx = model, ctx
        self._fold_rng = True

    def __getattr__(self, name: str) -> Any:
        if name in ("model", "ctx"):
            raise AttributeError(name)
        return getattr(self.model, name)

    def step(self, *batch: Tensor) -> dict[str, Tensor]:
        if self._fold_rng:  # every rank arrives with the same RNG state (train's seed, or the checkpoint's)
            torch.manual_seed(rank_seed(int(torch.randint(0, 2**62, (1,))), self.ctx.rank))
            self._fold_rng = False
        stats = self.model.step(*batch)
        particles = self.model.particles
        stats["nonfinite_particles"] = float(particles is not None and not bool(torch.isfinite(particles).all()))
        mean = mean_over_ranks(stats)
        if mean.pop("nonfinite_particles") > 0:
            mean = {k: torch.tensor(float("nan"), dtype=torch.float64) for k in mean}
        return mean

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.model.load_state_dict(state)
        self._fold_rng = True


def distribute(model: Any, ctx: DistContext, *, seed: int = 0) -> DistributedModel:
    """Wrap the model's ``energy`` (and ``generator``) in DDP, which copies rank 0's parameters to every rank,
    and redraw its particle bank (``model.init.x``) under ``rank_seed(seed, rank)``. Buffers are not
    re-broadcast at each forward, so rank 0 alone may sample; batch-norm statistics stay per rank."""
    if not dist.is_initialized():
        raise RuntimeError("no process group: call ggcn.core.distributed.init_from_env() first (under torchrun)")
    device_ids = [ctx.local_rank] if ctx.device.startswith("cuda") else None
    for name in WRAPPED:
        net = getattr(model, name, None)
        trained = isinstance(net, nn.Module) and any(p.requires_grad for p in net.parameters())
        if trained and not isinstance(net, DistributedDataParallel):
            setattr(model, name, _DDP(net, device_ids=device_ids, **_NO_FORWARD_BUFFER_SYNC))
    bank = getattr(getattr(model, "init", None), "x", None)
    if isinstance(bank, Tensor):
        with torch.random.fork_rng(devices=[]):
            torch.default_generator.manual_seed(rank_seed(seed, ctx.rank))
            model.init.x = model.init.init_fn(len(bank)).to(bank)
    return DistributedModel(model, ctx)
