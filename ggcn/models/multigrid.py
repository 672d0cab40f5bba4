"""Multi-grid GCN (MGCN, Gao et al. 2018, KL rule per grid) and the paper's wMGCN (JKO rule per grid).

An image is seen on grids s_1 < … < s_K = image size (e.g. 1 → 4 → 16 → 32); down-sampling is the
block average, up-sampling pixel replication, so ``down(up(x)) == x`` exactly. The coarsest grid
only starts the chains (Gao et al. keep no model on the 1×1 grid); every finer grid k has its own
energy f_k (a ConvEnergy from 8×8 up, an MLP below) and optimizer. One learning iteration starts at
x = down(X_obs, s_1) and on each finer grid runs the energy update of Algorithm 1 from
up(x, s_k) on (down(X_obs, s_k), X~_k), carrying X~_k up. wMGCN's "previous population" is the
chains' start on that grid, the up-sampled particles of the coarser grid [reading].
"""
from __future__ import annotations

import copy
import math
from typing import Any

import torch
from torch import Tensor, nn
import torch.nn.functional as F

from ggcn.config import Profile, image_side
from ggcn.core.langevin import LangevinConfig
from ggcn.core.learner import BETAS, Options, Synthesizer, load_states, states
from ggcn.core.rules import KLRule
from ggcn.models.nets import LEAKY_SLOPE, ConvEnergy, MLPEnergy

MGCN, WMGCN = "mgcn", "wmgcn"
MULTIGRID_NAMES = {MGCN: "kl", WMGCN: "jko"}  # name -> learning rule of every grid


def _factor(x: Tensor, size: int) -> int:
    ratio = x.shape[-1] / size
    if x.shape[-1] != x.shape[-2] or ratio < 1 or ratio != 2 ** round(math.log2(ratio)):
        raise ValueError(f"grids must be square with a power-of-two ratio; cannot go {tuple(x.shape[-2:])} → {size}")
    return int(ratio)


def down(x: Tensor, size: int) -> Tensor:
    """Block average to ``size × size`` (pairwise means of 2×2 blocks, repeated)."""
    for _ in range(int(math.log2(_factor(x, size)))):
        x = 0.5 * (x[..., ::2] + x[..., 1::2])
        x = 0.5 * (x[..., ::2, :] + x[..., 1::2, :])
    return x


def up(x: Tensor, size: int) -> Tensor:
    """Pixel replication to ``size × size``."""
    if size < x.shape[-1] or size % x.shape[-1] or x.shape[-1] != x.shape[-2]:
        raise ValueError(f"up-sampling goes from a square grid to a multiple of its size; got {x.shape[-1]} → {size}")
    return x if size == x.shape[-1] else F.interpolate(x, size=(size, size), mode="nearest")


def default_grids(image_size: int) -> tuple[int, ...]:
    """Gao et al.'s ladder 1 → 4 → 16 → … (×4 each) ending at ``image_size``: 64 → (1, 4, 16, 64)."""
    sizes = [1]
    while sizes[-1] * 4 < image_size:
        sizes.append(sizes[-1] * 4)
    return (*sizes, image_size)


def check_grids(sizes: tuple[int, ...], image_size: int) -> None:
    if not sizes or sizes[-1] != image_size or any(b <= a for a, b in zip(sizes, sizes[1:])):
        raise ValueError(f"grid sizes {sizes} must increase and end at the image size {image_size}")
    if any(image_size % s or 2 ** round(math.log2(image_size // s)) != image_size // s for s in sizes):
        raise ValueError(f"every grid size must divide {image_size} by a power of two; got {sizes}")


def grid_energy(channels: int, size: int, width: int, scale: float = 1.0) -> nn.Module:
    """ConvEnergy on grids of 8 px and more, a leaky-ReLU MLP below (both with output gain ``scale``)."""
    if size >= 8:
        return ConvEnergy(channels, size, width, scale=scale)
    return MLPEnergy(channels * size**2, width, depth=2, slope=LEAKY_SLOPE, scale=scale)


class MultiGridModel:
    """MGCN / wMGCN: one :class:`Synthesizer` per grid above the coarsest, its chains started from the
    grid below; ``particles`` holds the finest grid's samples of the last iteration. ``sample`` starts
    from coarse training images: those given, or ones remembered from the batches seen in training."""

    def __init__(self, energies: list[nn.Module], sizes: tuple[int, ...], rule: KLRule, sampler: LangevinConfig,
                 lr: float, betas: tuple[float, float] = BETAS, memory: int = 1024):
        if len(energies) != len(sizes) - 1:
            raise ValueError(f"need one energy per grid above the coarsest: {len(energies)} energies for grids {sizes}")
        # each grid its own copy of the rule: the proximal reading keeps one θ_{t−1} per grid
        self.grids = [Synthesizer(e, copy.deepcopy(rule), sampler, lr, betas) for e in energies]
        self.sizes, self.sampler, self.memory = tuple(sizes), sampler, memory
        self.coarse_bank: Tensor | None = None
        self.particles: Tensor | None = None

    def step(self, x_obs: Tensor, idx: Tensor | None = None) -> dict[str, Tensor]:
        """One learning iteration on every grid; returns per-grid diagnostics (keys end in ``_<size>``)."""
        x = down(x_obs, self.sizes[0])
        self._remember(x)
        stats: dict[str, Tensor] = {"loss": torch.zeros((), device=x_obs.device)}
        for size, grid in zip(self.sizes[1:], self.grids):
            chain, grid_stats = grid.update(down(x_obs, size), up(x, size))
            x = chain.x
            stats["loss"] = stats["loss"] + grid_stats.pop("loss")
            stats.update({f"{k}_{size}": v for k, v in grid_stats.items()})
        self.particles = x
        return stats

    def sample(self, n: int, start: Tensor | None = None, n_steps: int | None = None) -> Tensor:
        """Carry ``n`` chains from the coarsest grid up; ``start`` is (n, C, s_1, s_1) coarse images."""
        if start is None:
            if self.coarse_bank is None:
                raise ValueError("MGCN samples start from coarse training images: train first or pass start=")
            start = self.coarse_bank[torch.randint(len(self.coarse_bank), (n,))]
        if start.shape[-1] != self.sizes[0]:
            raise ValueError(f"start images must be {self.sizes[0]}×{self.sizes[0]}, got {tuple(start.shape)}")
        x = start
        for size, grid in zip(self.sizes[1:], self.grids):
            x = grid.revise(up(x, size), n_steps)
        return x

    def _remember(self, x_coarse: Tensor) -> None:
        bank = x_coarse.detach() if self.coarse_bank is None else torch.cat([self.coarse_bank, x_coarse.detach()])
        self.coarse_bank = bank[-self.memory :]

    def state_dict(self) -> dict[str, Any]:
        return {"grids": [states(grid.parts()) for grid in self.grids], "coarse_bank": self.coarse_bank}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        for grid, grid_state in zip(self.grids, state["grids"]):
            load_states(grid.parts(), grid_state)
        self.coarse_bank = state["coarse_bank"]


MULTIGRID_OPTIONS = ("lr", "jko_weight", "jko_scale", "reading", "langevin_steps", "step_size", "sigma", "width",
                     "energy_scale", "grad_clip", "sizes")


def build_multigrid(
    name: str, profile: Profile, channels: int, image_size: int | None = None, *, device: str = "cpu", **overrides: Any
) -> MultiGridModel:
    """Build ``"mgcn"`` or ``"wmgcn"`` at the profile's scale with the :data:`MULTIGRID_OPTIONS` in ``overrides``;
    ``sizes`` defaults to :func:`default_grids`."""
    if name not in MULTIGRID_NAMES:
        raise ValueError(f"unknown multi-grid model {name!r}; choose one of {sorted(MULTIGRID_NAMES)}")
    get = Options(profile, overrides, MULTIGRID_OPTIONS)
    size = image_side(image_size, profile)
    sizes = tuple(get("sizes") or default_grids(size))
    check_grids(sizes, size)
    energies = [grid_energy(channels, s, get("width"), get("energy_scale", 1.0)).to(device) for s in sizes[1:]]
    return MultiGridModel(energies, sizes, get.rule(MULTIGRID_NAMES[name]), get.sampler(), get("lr"))
