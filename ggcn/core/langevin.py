"""The one Langevin sampler (the initialisers it starts from are in :mod:`ggcn.core.chains`).

A particle x moves on the energy U_θ(x) = ||x||²/(2σ²) − f_θ(x) by the Euler–Maruyama
step of dX = −∇U dt + √2 dW with dt = δ²/2 (READING.md, "GCN"):

    x ← x − (δ²/2) (x/σ² − ∇_x f_θ(x)) + δ ε,    ε ~ N(0, I).

Parameters are frozen while sampling and only ∇_x f is taken.
"""
from __future__ import annotations

import math
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Callable, Iterator

import torch
from torch import Tensor, nn


@dataclass(frozen=True)
class LangevinConfig:
    """δ = ``step_size``, σ = ``sigma``; ``noise=False`` gives gradient descent on U; ``grad_clip`` caps
    the per-particle norm of ∇_x f; ``clamp`` keeps particles in a box."""

    n_steps: int = 20
    step_size: float = 0.03
    sigma: float = 1.0
    noise: bool = True
    grad_clip: float | None = None
    clamp: tuple[float, float] | None = None

    def __post_init__(self) -> None:
        if isinstance(self.n_steps, bool) or not isinstance(self.n_steps, int) or self.n_steps < 0:
            raise ValueError(f"Langevin n_steps must be an integer ≥ 0, got {self.n_steps!r}")
        for name in ("step_size", "sigma") + (("grad_clip",) if self.grad_clip is not None else ()):
            value = getattr(self, name)
            if not isinstance(value, (int, float)) or not math.isfinite(value) or value <= 0:
                raise ValueError(f"Langevin {name} must be a finite number > 0, got {value!r}")
        if self.clamp is not None and not self.clamp[0] < self.clamp[1]:
            raise ValueError(f"Langevin clamp must be a box (low, high) with low < high, got {self.clamp!r}")


@dataclass
class Chain:
    """The end of a Langevin run, with what was asked to be recorded along the way."""

    x: Tensor
    trajectory: Tensor | None = None  # (n_recorded, B, ...) on CPU
    grad_norm: Tensor | None = None  # (n_steps,) mean ||∇_x f|| per step


@contextmanager
def frozen(module: nn.Module) -> Iterator[nn.Module]:
    """Turn off ``requires_grad`` of every parameter inside the block, then restore each flag."""
    params = list(module.parameters())
    flags = [p.requires_grad for p in params]
    for p in params:
        p.requires_grad_(False)
    try:
        yield module
    finally:
        for p, flag in zip(params, flags):
            p.requires_grad_(flag)


def langevin(
    energy: Callable[[Tensor], Tensor],
    x0: Tensor,
    cfg: LangevinConfig,
    *,
    record_every: int = 0,
    diagnostics: bool = False,
) -> Chain:
    """Run ``cfg.n_steps`` Langevin steps from ``x0`` on p_θ ∝ exp(f_θ(x)) N(0, σ²I).

    ``record_every=k`` keeps every k-th state (and the first and last) in ``Chain.trajectory``;
    ``diagnostics=True`` records the mean input-gradient norm per step. It works inside
    ``torch.no_grad()`` too: the sampler needs ∇_x f, so it turns gradients on for itself.
    """
    half = cfg.step_size**2 / 2
    inv_var = 1.0 / cfg.sigma**2
    x = x0.detach()
    frames = [x.cpu()] if record_every else None
    norms = [] if diagnostics else None
    module = energy if isinstance(energy, nn.Module) else nn.Module()
    with frozen(module), torch.enable_grad():
        for step in range(cfg.n_steps):
            x = x.detach().requires_grad_(True)
            grad = torch.autograd.grad(energy(x).sum(), x)[0]
            x = x.detach()
            if cfg.grad_clip is not None or diagnostics:
                gnorm = grad.flatten(1).norm(dim=1)
                if norms is not None:
                    norms.append(gnorm.mean())
                if cfg.grad_clip is not None:
                    scale = (cfg.grad_clip / (gnorm + 1e-12)).clamp(max=1.0)
                    grad = grad * scale.view(-1, *([1] * (grad.dim() - 1)))
            x = x + half * (grad - x * inv_var)
            if cfg.noise:
                x = x + cfg.step_size * torch.randn_like(x)
            if cfg.clamp is not None:
                x = x.clamp(*cfg.clamp)
            if frames is not None and ((step + 1) % record_every == 0 or step + 1 == cfg.n_steps):
                frames.append(x.cpu())
    return Chain(
        x=x,
        trajectory=torch.stack(frames) if frames is not None else None,
        grad_norm=torch.stack(norms) if norms else None,
    )
