"""Optional data parallelism for paper-scale runs: one process per device, the one training loop.

Each of the W processes (ranks) draws its own data batch and its own particles, runs its own
Langevin chains, and computes the rule's loss on them; DistributedDataParallel averages the
parameter gradients, ∇θ = (1/W) Σ_r ∇θ L_r, so every rank takes the same Adam step and the
energies stay identical. This is one learning iteration with W times the batch and particles.

Launch a script with ``torchrun --nproc_per_node=N script.py``; inside it::

    ctx = init_from_env()                                   # gloo on CPU, NCCL on GPUs
    model = distribute(build_model("wgcn", profile, channels=3, device=ctx.device), ctx, seed=seed)
    history = train(model, data, iterations, seed=seed, device=ctx.device,
                    checkpoint_dir=main_only(ckpt_dir, ctx), checkpoint_every=10, progress=ctx.is_main)
    shutdown()

``ggcn.core.train.train`` runs unchanged: :class:`DistributedModel` is a model like any other whose
``step`` also averages its diagnostics over the ranks, and only rank 0 gets a checkpoint folder.
Checkpoints have the single-process format and load into a model built without this module.
(If a run diverges, ranks without a checkpoint folder write their last good state to a temporary
folder, as ``train`` does when given none.)

Randomness per rank: ``distribute`` redraws the particle bank from a seed mixed from
(seed, rank), and at its first step (and the first after loading a checkpoint) the model mixes the
rank into torch's global RNG, so Langevin noise, buffer draws and data batches differ between
ranks from then on (the first batch after start or resume is the one all ranks drew). A resumed
run restarts every rank from rank 0's particles and is reproducible, but not bit-identical to an
uninterrupted multi-process run.
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
    """Join the process group described by torchrun's variables RANK, WORLD_SIZE, LOCAL_RANK,
    MASTER_ADDR and MASTER_PORT: NCCL with one GPU per process (``cuda:LOCAL_RANK``), else gloo on the CPU."""
    missing = [v for v in ENV_VARS if v not in os.environ]
    if missing:
        raise RuntimeError(
            f"environment variables {missing} are not set: start the script with "
            "`torchrun --nproc_per_node=N script.py` (or set RANK, WORLD_SIZE, MASTER_ADDR, MASTER_PORT yourself)"
        )
    rank, world = int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"])
    local_rank = int(os.environ.get("LOCAL_RANK", rank))
    device = resolve_device(device)
    if device.startswith("cuda"):
        if local_rank >= torch.cuda.device_count():
            raise RuntimeError(
                f"LOCAL_RANK {local_rank} has no GPU ({torch.cuda.device_count()} visible); "
                "start at most one process per GPU (--nproc_per_node)"
            )
        device, backend = f"cuda:{local_rank}", "nccl"
        torch.cuda.set_device(local_rank)
    else:
        backend = "gloo"
    if not dist.is_initialized():
        dist.init_process_group(backend, rank=rank, world_size=world)
    return DistContext(rank, world, local_rank, device, backend)


def shutdown() -> None:
    """Leave the process group (a no-op when none was joined)."""
    if dist.is_initialized():
        dist.destroy_process_group()


def rank_seed(seed: int, rank: int) -> int:
    """A 63-bit seed mixed from (seed, rank): distinct per rank, and unlike seed + rank, distinct per seed too."""
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
    values = (values / dist.get_world_size()).cpu()
    return dict(zip(keys, values))


# DDP's switch against re-broadcasting buffers at every forward (`broadcast_buffers` before torch 2.14)
_NO_FORWARD_BUFFER_SYNC = (
    {"forward_sync_buffers": False}
    if "forward_sync_buffers" in inspect.signature(DistributedDataParallel.__init__).parameters
    else {"broadcast_buffers": False}
)


class _DDP(DistributedDataParallel):
    """DDP that saves and loads the plain module's state (no ``module.`` prefix) and shows its attributes
    (e.g. ``responses``), so the wrapped model is interchangeable with an unwrapped one."""

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
    """A model whose trained networks are in DDP, trained by the unchanged :func:`ggcn.core.train.train`.

    ``step`` runs the model's own learning iteration on this rank's batch and particles and returns
    the diagnostics averaged over all ranks; a non-finite particle on any rank turns them into NaN on
    every rank, so all ranks raise ``DivergenceError`` at the same iteration instead of waiting for
    each other. Other attributes (``sample``, ``energy``, ``init``, …) are the model's own.
    """

    def __init__(self, model: Any, ctx: DistContext):
        self.model, self.ctx = model, ctx
        self._fold_rng = True

    @property
    def particles(self) -> Tensor | None:
        return self.model.particles

    def __getattr__(self, name: str) -> Any:
        if name in ("model", "ctx"):
            raise AttributeError(name)
        return getattr(self.model, name)

    def step(self, *batch: Tensor) -> dict[str, Tensor]:
        if self._fold_rng:  # every rank arrives with the same RNG state (train's seed, or the checkpoint's)
            draw = int(torch.randint(0, 2**62, (1,)))
            torch.manual_seed(rank_seed(draw, self.ctx.rank))
            self._fold_rng = False
        stats = self.model.step(*batch)
        particles = self.model.particles
        stats["nonfinite_particles"] = float(particles is not None and not bool(torch.isfinite(particles).all()))
        mean = mean_over_ranks(stats)
        if mean.pop("nonfinite_particles") > 0:
            mean = {k: torch.tensor(float("nan"), dtype=torch.float64) for k in mean}
        return mean

    def state_dict(self) -> dict[str, Any]:
        return self.model.state_dict()

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.model.load_state_dict(state)
        self._fold_rng = True


def distribute(model: Any, ctx: DistContext, *, seed: int = 0) -> DistributedModel:
    """Wrap the model's ``energy`` (and ``generator``, if it has one) in DDP and give this rank its own particles.

    DDP copies rank 0's parameters to every rank. Buffers are not re-broadcast at each forward (the
    energies' buffers are constant filters), so a forward pass needs no other rank: rank 0 alone may
    sample or evaluate; batch-norm running statistics of a generator stay per rank (rank 0's are saved).
    A particle bank (persistent chains or replay buffer, ``model.init.x``) is redrawn from the model's
    own initialiser under ``rank_seed(seed, rank)``.
    """
    if not dist.is_initialized():
        raise RuntimeError("no process group: call ggcn.core.distributed.init_from_env() first (under torchrun)")
    device_ids = [ctx.local_rank] if ctx.device.startswith("cuda") else None
    for name in WRAPPED:
        net = getattr(model, name, None)
        if isinstance(net, nn.Module) and not isinstance(net, DistributedDataParallel):
            if any(p.requires_grad for p in net.parameters()):
                setattr(model, name, _DDP(net, device_ids=device_ids, **_NO_FORWARD_BUFFER_SYNC))
    init = getattr(model, "init", None)
    bank = getattr(init, "x", None)
    if isinstance(bank, Tensor):
        with torch.random.fork_rng(devices=[]):
            torch.default_generator.manual_seed(rank_seed(seed, ctx.rank))
            init.x = init.init_fn(len(bank)).to(bank)
    return DistributedModel(model, ctx)
