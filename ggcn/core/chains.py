"""Particle initialisers: where each learning iteration's chains start.

Each has ``draw(n) -> (x0, slots)`` and ``keep(slots, x)``, which stores the revised particles.
"""
from __future__ import annotations

from typing import Callable

import torch
from torch import Tensor


def uniform_noise(shape: tuple[int, ...]) -> Callable[[int], Tensor]:
    """An initialiser function drawing n particles uniformly from [−1, 1]^shape."""
    return lambda n: torch.rand(n, *shape) * 2 - 1


class NoiseInit:
    """Fresh chains every iteration (the non-persistent sampler)."""

    def __init__(self, init_fn: Callable[[int], Tensor], device: str = "cpu"):
        self.init_fn, self.device = init_fn, device

    def draw(self, n: int) -> tuple[Tensor, Tensor | None]:
        return self.init_fn(n).to(self.device), None

    def keep(self, slots: Tensor | None, x: Tensor) -> None:
        """Nothing is kept."""

    def state_dict(self) -> dict:
        return {}

    def load_state_dict(self, state: dict) -> None:
        """No state."""


class PersistentChains(NoiseInit):
    """n chains carried from one learning iteration to the next (the persistent sampler)."""

    def __init__(self, init_fn: Callable[[int], Tensor], n_chains: int, device: str = "cpu"):
        super().__init__(init_fn, device)
        self.x = init_fn(n_chains).to(device)

    def draw(self, n: int) -> tuple[Tensor, Tensor | None]:
        if n > len(self.x):
            raise ValueError(f"asked for {n} particles but only {len(self.x)} persistent chains exist")
        return self.x[:n].clone(), torch.arange(n, device=self.x.device)

    def keep(self, slots: Tensor | None, x: Tensor) -> None:
        self.x[slots] = x.detach()

    def state_dict(self) -> dict:
        return {"x": self.x.clone()}

    def load_state_dict(self, state: dict) -> None:
        self.x = state["x"].to(self.device)


class ReplayBuffer(PersistentChains):
    """A bank of past samples: ``draw`` picks random slots and re-initialises each with
    probability ``reinit_prob`` (Du & Mordatch 2019; the paper's "one-step-ahead" initialisation)."""

    def __init__(
        self, init_fn: Callable[[int], Tensor], capacity: int, reinit_prob: float = 0.05, device: str = "cpu"
    ):
        if not 0.0 <= reinit_prob <= 1.0:
            raise ValueError(f"reinit_prob must lie in [0, 1], got {reinit_prob}")
        super().__init__(init_fn, capacity, device)
        self.reinit_prob = reinit_prob

    def draw(self, n: int) -> tuple[Tensor, Tensor | None]:
        slots = torch.randint(len(self.x), (n,), device=self.x.device)
        x = self.x[slots].clone()
        fresh = torch.rand(n, device=self.x.device) < self.reinit_prob
        if fresh.any():
            x[fresh] = self.init_fn(int(fresh.sum())).to(x)
        return x, slots

    def extend(self, x0: Tensor, fraction: float) -> tuple[Tensor, Tensor | None]:
        """x0 followed by round(fraction·n) chains from the bank, and the bank slots they came from."""
        n_old = round(fraction * len(x0))
        if n_old == 0:
            return x0, None
        x_old, slots = self.draw(n_old)
        return torch.cat([x0, x_old]), slots

    def store(self, x: Tensor, n_new: int, slots: Tensor | None) -> None:
        """The revised bank chains go back to their slots; the ``n_new`` new samples overwrite random slots."""
        if slots is not None:
            self.keep(slots, x[n_new:])
        self.keep(torch.randint(len(self.x), (n_new,), device=x.device), x[:n_new])
