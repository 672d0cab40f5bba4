"""One learner contract, and the energy update of Algorithm 1 written once.

A learner steps on a batch (and, where it learns per example, the batch's example indices), draws
fresh samples and saves itself. Every energy-based model learns f_θ by :meth:`Synthesizer.update`:

    X~_{t−1} (where the chains start) → L Langevin steps → X~_t → one Adam step on the rule's loss,

the models differ only in where the chains start: an initialiser (:class:`EnergyModel`), the grid
below (:mod:`ggcn.models.multigrid`) or a generator (:mod:`ggcn.models.cooperative`).
"""
from __future__ import annotations

from dataclasses import replace
from typing import Any, Iterable, Protocol, runtime_checkable

import torch
from torch import Tensor, nn

from ggcn.config import Profile
from ggcn.core.chains import NoiseInit, PersistentChains
from ggcn.core.langevin import Chain, LangevinConfig, langevin
from ggcn.core.rules import KLRule, make_rule, weight_unit

BETAS = (0.5, 0.999)


@runtime_checkable
class Learner(Protocol):
    particles: Tensor | None  # the last iteration's samples

    def step(self, x_obs: Tensor, idx: Tensor | None = None) -> dict[str, Tensor]: ...
    def sample(self, n: int, *args: Any, **kwargs: Any) -> Tensor: ...
    def state_dict(self) -> dict[str, Any]: ...
    def load_state_dict(self, state: dict[str, Any]) -> None: ...


def states(parts: dict[str, Any]) -> dict[str, Any]:
    """The ``state_dict`` of every named part."""
    return {name: part.state_dict() for name, part in parts.items()}


def load_states(parts: dict[str, Any], state: dict[str, Any]) -> None:
    for name, part in parts.items():
        part.load_state_dict(state.get(name, {}))


class Options:
    """A profile's settings with a model's ``overrides`` on top; options the model does not take are refused."""

    def __init__(self, profile: Profile, overrides: dict[str, Any], allowed: Iterable[str]):
        unknown = sorted(set(overrides) - set(allowed))
        if unknown:
            raise ValueError(f"unknown option(s) {unknown}; allowed: {sorted(allowed)}")
        self.profile, self.overrides = profile, overrides

    def __call__(self, key: str, default: Any = None) -> Any:
        value = self.overrides.get(key, getattr(self.profile, key, default))
        return default if value is None else value

    def sampler(self, n_steps: int | None = None) -> LangevinConfig:
        return LangevinConfig(n_steps=self("langevin_steps") if n_steps is None else n_steps,
                              step_size=self("step_size"), sigma=self("sigma"), grad_clip=self("grad_clip"))

    def rule(self, name: str, reading: str = "consecutive", unit_steps: int | None = None) -> KLRule:
        """The rule ``name`` with weight λ in the unit of ``jko_scale`` (of ``unit_steps`` Langevin steps)."""
        steps = self("langevin_steps") if unit_steps is None else unit_steps
        unit = weight_unit(self("jko_scale", "paper"), steps, self("step_size"))
        return make_rule(name, self("jko_weight"), self("reading", reading), unit)


class Synthesizer:
    """f_θ with its rule, its sampler and its Adam optimizer (θ's gradient clipped to norm
    ``max_grad_norm`` before each step when given)."""

    def __init__(self, energy: nn.Module, rule: KLRule, sampler: LangevinConfig, lr: float,
                 betas: tuple[float, float] = BETAS, max_grad_norm: float | None = None):
        self.energy, self.rule, self.sampler, self.max_grad_norm = energy, rule, sampler, max_grad_norm
        self.optimizer = torch.optim.Adam(energy.parameters(), lr=lr, betas=betas)

    def update(self, x_obs: Tensor, x_prev: Tensor, x_syn: Tensor | None = None,
               energy: nn.Module | None = None) -> tuple[Chain, dict[str, Tensor]]:
        """Revise X~_{t−1} = ``x_prev`` by L Langevin steps (unless ``x_syn`` is given), then take one
        optimizer step on the rule's loss with X~_t fixed; returns the chain and detached diagnostics."""
        energy = self.energy if energy is None else energy
        stats: dict[str, Tensor] = {}
        if x_syn is None:
            chain = langevin(energy, x_prev, self.sampler, diagnostics=True)
            stats["grad_norm"] = chain.grad_norm.mean() if chain.grad_norm is not None else torch.zeros(())
        else:
            chain = Chain(x_syn)
        loss, rule_stats = self.rule.loss(energy, x_obs, chain.x, x_prev)
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if self.max_grad_norm is not None:
            nn.utils.clip_grad_norm_(self.energy.parameters(), self.max_grad_norm)
        self.optimizer.step()
        return chain, {**stats, **rule_stats, "loss": loss.detach()}

    def revise(self, x0: Tensor, n_steps: int | None = None, energy: nn.Module | None = None) -> Tensor:
        """``n_steps`` (default L) Langevin steps from ``x0``, θ fixed."""
        steps = self.sampler.n_steps if n_steps is None else n_steps
        return langevin(self.energy if energy is None else energy, x0, replace(self.sampler, n_steps=steps)).x

    def parts(self) -> dict[str, Any]:
        return {"energy": self.energy, "optimizer": self.optimizer, "rule": self.rule}


class EnergyModel(Synthesizer):
    """A Gibbs model p_θ ∝ exp(f_θ) N(0, σ²I) whose chains start from an initialiser (FRAME, GCN, wGCN).

    ``sample`` draws *fresh* samples: ``sample_steps`` Langevin steps from the initialiser's noise.
    """

    def __init__(self, energy: nn.Module, rule: KLRule, sampler: LangevinConfig, init: NoiseInit, lr: float,
                 n_particles: int, betas: tuple[float, float] = BETAS, sample_steps: int | None = None,
                 max_grad_norm: float | None = None):
        super().__init__(energy, rule, sampler, lr, betas, max_grad_norm)
        self.init, self.n_particles = init, n_particles
        self.sample_steps = sampler.n_steps if sample_steps is None else sample_steps
        self.particles: Tensor | None = None

    def step(self, x_obs: Tensor, idx: Tensor | None = None) -> dict[str, Tensor]:
        """Algorithm 1: draw X~_{t−1}, revise it to X~_t, keep X~_t, one step on the rule's loss."""
        x_prev, slots = self.init.draw(self.n_particles)
        chain, stats = self.update(x_obs, x_prev)
        self.init.keep(slots, chain.x)
        self.particles = chain.x
        return stats

    def sample(self, n: int, n_steps: int | None = None) -> Tensor:
        """n fresh samples: ``n_steps`` (default ``sample_steps``) Langevin steps from the initialiser's noise."""
        return self.revise(self.init.init_fn(n).to(self.init.device), self.sample_steps if n_steps is None else n_steps)

    def chains(self, n: int) -> Tensor:
        """n of the particles the model learned from (persistent chains or buffer slots), as they are."""
        if not isinstance(self.init, PersistentChains):
            raise ValueError("this model starts fresh chains every iteration and keeps none; use sample(n)")
        if n > len(self.init.x):
            raise ValueError(f"the model keeps {len(self.init.x)} chains; cannot show {n}")
        return self.init.x[:n].clone()

    def responses(self, x: Tensor) -> Tensor:
        """The energy's own filter responses (first layer), for the response distance."""
        with torch.no_grad():
            return self.energy.responses(x)

    def state_dict(self) -> dict[str, Any]:
        return states({**self.parts(), "init": self.init})

    def load_state_dict(self, state: dict[str, Any]) -> None:
        load_states({**self.parts(), "init": self.init}, state)
