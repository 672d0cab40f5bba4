"""Multi-grid GCN (MGCN, Gao et al. 2018) and its Wasserstein version wMGCN.

An image is seen on grids of increasing size s_1 < s_2 < … < s_K = image size (e.g.
1 → 4 → 16 → 32). Down-sampling is the block average, up-sampling pixel replication, so
``down(up(x)) == x`` exactly. The coarsest grid only gives the chains their start (as in Gao et
al., who keep no model on the 1×1 grid); every finer grid k has its own energy f_k (a ConvEnergy
from 8×8 up, :class:`DenseEnergy` below that) and its own Adam optimizer. One learning iteration:

1. start the chains at the coarsest version of the training batch, x = down(X_obs, s_1);
2. on each finer grid in turn: x_init = up(x, s_k), L Langevin steps of
   f_k give X~_k, and f_k learns from (down(X_obs, s_k), X~_k) with the grid's rule --
   KL for MGCN, JKO for wMGCN, whose "previous population" is the chains' starting point
   x_init on that grid (the up-sampled particles of the coarser grid) [reading];
3. carry X~_k up to the next grid.

=======  ==================  =========================================
name     learning rule       notes
=======  ==================  =========================================
mgcn     KL (MLE) per grid   Gao et al. 2018
wmgcn    JKO per grid        the paper's wMGCN; reading as in flows
=======  ==================  =========================================
"""
from __future__ import annotations

import copy
import math
from typing import Any

import torch
from torch import Tensor, nn
import torch.nn.functional as F

from ggcn.config import Profile, image_side
from ggcn.core.rules import KLRule, make_rule, weight_unit
from ggcn.core.langevin import LangevinConfig, langevin
from ggcn.models.nets import LEAKY_SLOPE, ConvEnergy

MGCN, WMGCN = "mgcn", "wmgcn"
NAMES = {MGCN: "kl", WMGCN: "jko"}


def _factor(x: Tensor, size: int) -> int:
    ratio = x.shape[-1] / size
    if x.shape[-1] != x.shape[-2] or ratio < 1 or ratio != 2 ** round(math.log2(ratio)):
        raise ValueError(
            f"grids must be square with a power-of-two ratio; cannot go from {tuple(x.shape[-2:])} to {size}"
        )
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
        raise ValueError(
            f"up-sampling goes from a square grid to a multiple of its size; got {tuple(x.shape[-2:])} → {size}"
        )
    return x if size == x.shape[-1] else F.interpolate(x, size=(size, size), mode="nearest")


def default_grids(image_size: int) -> tuple[int, ...]:
    """Gao et al.'s ladder 1 → 4 → 16 → … (×4 each), ending at ``image_size``.

    16 → (1, 4, 16), 32 → (1, 4, 16, 32), 64 → (1, 4, 16, 64).
    """
    sizes = [1]
    while sizes[-1] * 4 < image_size:
        sizes.append(sizes[-1] * 4)
    return (*sizes, image_size)


def check_grids(sizes: tuple[int, ...], image_size: int) -> None:
    if not sizes or sizes[-1] != image_size or any(b <= a for a, b in zip(sizes, sizes[1:])):
        raise ValueError(f"grid sizes {sizes} must increase and end at the image size {image_size}")
    if any(image_size % s or 2 ** round(math.log2(image_size // s)) != image_size // s for s in sizes):
        raise ValueError(f"every grid size must divide {image_size} by a power of two; got {sizes}")


class DenseEnergy(nn.Module):
    """A small leaky-ReLU MLP energy for grids smaller than 8×8 (1×1, 2×2, 4×4)."""

    def __init__(self, channels: int, image_size: int, width: int = 64, slope: float = LEAKY_SLOPE,
                 scale: float = 1.0):
        super().__init__()
        self.scale = float(scale)
        d = channels * image_size**2
        self.net = nn.Sequential(
            nn.Flatten(), nn.Linear(d, width), nn.LeakyReLU(slope), nn.Linear(width, width), nn.LeakyReLU(slope),
            nn.Linear(width, 1),
        )

    def forward(self, x: Tensor) -> Tensor:
        return self.scale * self.net(x).flatten()


def grid_energy(channels: int, size: int, width: int, scale: float = 1.0) -> nn.Module:
    """ConvEnergy on grids of 8 px and more, :class:`DenseEnergy` below (both with output gain ``scale``)."""
    return ConvEnergy(channels, size, width, scale=scale) if size >= 8 else DenseEnergy(channels, size, width,
                                                                                        scale=scale)


class MultiGridModel:
    """MGCN / wMGCN: one energy, rule and optimizer per grid above the coarsest, chains carried from
    coarse to fine.

    ``particles`` holds the finest grid's samples of the last iteration. ``sample`` starts from
    coarse training images: those given, or ones remembered from the batches seen in training.
    """

    def __init__(
        self,
        energies: list[nn.Module],
        sizes: tuple[int, ...],
        rule: KLRule,
        sampler: LangevinConfig,
        lr: float,
        betas: tuple[float, float] = (0.5, 0.999),
        memory: int = 1024,
    ):
        if len(energies) != len(sizes) - 1:
            raise ValueError(f"need one energy per grid above the coarsest: {len(energies)} energies for grids {sizes}")
        self.energies, self.sizes, self.sampler = energies, tuple(sizes), sampler
        self.rules = [copy.deepcopy(rule) for _ in energies]  # the proximal reading keeps one θ_{t−1} per grid
        self.optimizers = [torch.optim.Adam(e.parameters(), lr=lr, betas=betas) for e in energies]
        self.memory = memory
        self.coarse_bank: Tensor | None = None
        self.particles: Tensor | None = None

    def step(self, x_obs: Tensor) -> dict[str, Tensor]:
        """One learning iteration on every grid; returns per-grid diagnostics (keys end in ``_<size>``)."""
        x = down(x_obs, self.sizes[0])
        self._remember(x)
        stats: dict[str, Tensor] = {}
        total = torch.zeros((), device=x_obs.device)
        for size, energy, rule, optimizer in zip(self.sizes[1:], self.energies, self.rules, self.optimizers):
            x_init = up(x, size)
            chain = langevin(energy, x_init, self.sampler, diagnostics=True)
            loss, grid_stats = rule.loss(energy, down(x_obs, size), chain.x, x_init)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            x = chain.x
            total = total + loss.detach()
            stats.update({f"{k}_{size}": v for k, v in grid_stats.items()})
            stats[f"grad_norm_{size}"] = chain.grad_norm.mean() if chain.grad_norm is not None else torch.zeros(())
        self.particles = x
        stats["loss"] = total
        return stats

    def sample(self, n: int, start: Tensor | None = None, n_steps: int | None = None) -> Tensor:
        """Carry ``n`` chains from the coarsest grid up; ``start`` is (n, C, s_1, s_1) coarse images."""
        if start is None:
            if self.coarse_bank is None:
                raise ValueError("MGCN samples start from coarse training images: train first or pass start=")
            start = self.coarse_bank[torch.randint(len(self.coarse_bank), (n,))]
        if start.shape[-1] != self.sizes[0]:
            raise ValueError(f"start images must be {self.sizes[0]}×{self.sizes[0]}, got {tuple(start.shape)}")
        cfg = self.sampler if n_steps is None else LangevinConfig(**{**vars(self.sampler), "n_steps": n_steps})
        x = start
        for size, energy in zip(self.sizes[1:], self.energies):
            x = langevin(energy, up(x, size), cfg).x
        return x

    def _remember(self, x_coarse: Tensor) -> None:
        bank = x_coarse.detach() if self.coarse_bank is None else torch.cat([self.coarse_bank, x_coarse.detach()])
        self.coarse_bank = bank[-self.memory :]

    def state_dict(self) -> dict[str, Any]:
        return {
            "energies": [e.state_dict() for e in self.energies],
            "optimizers": [o.state_dict() for o in self.optimizers],
            "rules": [r.state_dict() for r in self.rules],
            "coarse_bank": self.coarse_bank,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        for energy, optimizer, e_state, o_state in zip(
            self.energies, self.optimizers, state["energies"], state["optimizers"]
        ):
            energy.load_state_dict(e_state)
            optimizer.load_state_dict(o_state)
        for rule, r_state in zip(self.rules, state.get("rules", [{}] * len(self.rules))):
            rule.load_state_dict(r_state)
        self.coarse_bank = state["coarse_bank"]


OPTIONS = {"lr", "jko_weight", "jko_scale", "reading", "langevin_steps", "step_size", "sigma", "width", "energy_scale",
           "grad_clip", "sizes"}


def build(
    name: str, profile: Profile, channels: int, image_size: int | None = None, *, device: str = "cpu", **overrides: Any
) -> MultiGridModel:
    """Build ``"mgcn"`` or ``"wmgcn"`` at the profile's scale; ``sizes`` defaults to :func:`default_grids`.

    ``overrides`` may set ``lr``, ``jko_weight``, ``jko_scale``, ``reading``, ``langevin_steps``,
    ``step_size``, ``sigma``, ``width``, ``energy_scale``, ``grad_clip`` and ``sizes``.
    """
    if name not in NAMES:
        raise ValueError(f"unknown multi-grid model {name!r}; choose one of {sorted(NAMES)}")
    if set(overrides) - OPTIONS:
        raise ValueError(f"unknown option(s) {sorted(set(overrides) - OPTIONS)}; allowed: {sorted(OPTIONS)}")
    get = lambda key: overrides.get(key, getattr(profile, key, None))  # noqa: E731
    size = image_side(image_size, profile)
    sizes = tuple(overrides.get("sizes") or default_grids(size))
    check_grids(sizes, size)
    energies = [grid_energy(channels, s, get("width"), get("energy_scale") or 1.0).to(device) for s in sizes[1:]]
    sampler = LangevinConfig(
        n_steps=get("langevin_steps"), step_size=get("step_size"), sigma=get("sigma"), grad_clip=get("grad_clip")
    )
    unit = weight_unit(get("jko_scale") or "paper", sampler.n_steps, sampler.step_size)
    rule = make_rule(NAMES[name], get("jko_weight"), overrides.get("reading", "consecutive"), unit)
    return MultiGridModel(energies, sizes, rule, sampler, get("lr"))
