"""Learning rules: how θ moves once the particles X~ have been revised (a loss to minimise, X~ fixed).

* KL (MLE, the paper's "KL discrete flow"): L_KL(θ) = mean f_θ(X_obs) − mean f_θ(X~), loss = −L_KL.
* JKO (wGCN's Wasserstein rule, Sec. 4.1) [reading], see READING.md: with x^ = ε X~_t + (1 − ε) X_ref,
  ε ~ U[0, 1] per particle, L_W(θ) = L_KL(θ) − (λ/2) mean ||∇_x f_θ(x^) − G(x^)||², in three readings:
  ``"consecutive"`` (default) X_ref = X~_{t−1}, G = 0; ``"data"`` X_ref = X_obs (WGAN-GP), G = 0;
  ``"proximal"`` X_ref = X~_{t−1}, G = ∇_x f_{θ_{t−1}} of a frozen copy of the previous θ, so the term
  vanishes at a stationary θ and the rule keeps the MLE point. λ = 0 is the KL rule in every reading.

λ's unit (:func:`weight_unit`): the penalty is summed over pixels, so one λ means different things at
different sizes and Langevin settings. In the JKO step the displacement cost is W2²/(2h), h the Langevin
time of one iteration; ``scale="langevin-time"`` takes h = L·δ²/2 as λ = 1 (the sampler's own JKO step),
``scale="paper"`` keeps λ as the paper states it (0.2 on CelebA, 0.112 on CIFAR-10), summed over pixels.
"""
from __future__ import annotations

from typing import Any, Callable

import torch
from torch import Tensor, nn
from torch.func import functional_call

Energy = Callable[[Tensor], Tensor]
READINGS = ("consecutive", "data", "proximal")
WEIGHT_SCALES = ("paper", "langevin-time")


def weight_unit(scale: str, n_steps: int, step_size: float) -> float:
    """What λ = 1 stands for: 1 (``"paper"``) or the Langevin time h = L·δ²/2 (``"langevin-time"``)."""
    if scale == "paper":
        return 1.0
    if scale == "langevin-time":
        return n_steps * step_size**2 / 2
    raise ValueError(f"unknown JKO weight scale {scale!r}; choose one of {WEIGHT_SCALES}")


class KLRule:
    """Maximum likelihood: raise f on the data, lower it on the particles."""

    name = "kl"

    def loss(self, energy: Energy, x_obs: Tensor, x_syn: Tensor, x_prev: Tensor) -> tuple[Tensor, dict[str, Tensor]]:
        """Return (−L_KL, diagnostics). ``x_prev`` is unused by this rule."""
        return self.kl_loss(energy(x_obs), energy(x_syn))

    @staticmethod
    def kl_loss(f_obs: Tensor, f_syn: Tensor) -> tuple[Tensor, dict[str, Tensor]]:
        """−L_KL = −(mean f_θ(X_obs) − mean f_θ(X~)) from the energies, with the gap as diagnostic."""
        gap = f_obs.mean() - f_syn.mean()
        return -gap, {"energy_gap": gap.detach()}

    def state_dict(self) -> dict[str, Any]:
        return {}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """The KL rule keeps no state."""


class JKORule(KLRule):
    """The KL rule plus (λ·unit / 2) · mean ||∇_x f_θ(x^) − G(x^)||² on the displacement interpolation
    (``weight`` is λ in units of ``unit``, :func:`weight_unit`)."""

    name = "jko"

    def __init__(self, weight: float = 0.2, reading: str = "consecutive", unit: float = 1.0):
        if reading not in READINGS:
            raise ValueError(f"unknown JKO reading {reading!r}; choose one of {READINGS}")
        if not weight >= 0 or not unit > 0:
            raise ValueError(f"the JKO weight λ must be ≥ 0 and its unit > 0, got λ={weight}, unit={unit}")
        self.weight, self.reading, self.unit = weight, reading, unit
        self.previous: dict[str, Tensor] | None = None  # θ_{t−1} of the proximal reading

    def loss(self, energy: Energy, x_obs: Tensor, x_syn: Tensor, x_prev: Tensor) -> tuple[Tensor, dict[str, Tensor]]:
        loss, stats = super().loss(energy, x_obs, x_syn, x_prev)
        if self.weight == 0:
            return loss, stats
        x_ref = x_obs if self.reading == "data" else x_prev
        eps = torch.rand(len(x_syn), *([1] * (x_syn.dim() - 1)), device=x_syn.device, dtype=x_syn.dtype)
        x_hat = (eps * x_syn.detach() + (1 - eps) * _match(x_ref, len(x_syn)).detach()).requires_grad_(True)
        grad = _input_gradient(energy, x_hat)
        if self.reading == "proximal":
            grad = grad - self._previous_gradient(energy, x_hat)
        penalty = _mean_square_norm(grad)
        stats["jko_penalty"] = penalty.detach()
        return loss + 0.5 * self.weight * self.unit * penalty, stats

    def _previous_gradient(self, energy: Energy, x_hat: Tensor) -> Tensor:
        """∇_x f_{θ_{t−1}}(x^) from the frozen copy, which then moves on to θ_t (θ_{−1} = θ_0)."""
        if not isinstance(energy, nn.Module):
            raise ValueError("the proximal JKO reading needs an nn.Module energy (it keeps a copy of θ)")
        current = {k: v.detach().clone() for k, v in energy.state_dict().items()}
        previous, self.previous = self.previous or current, current
        x = x_hat.detach().requires_grad_(True)
        return torch.autograd.grad(functional_call(energy, previous, (x,)).sum(), x)[0]

    def state_dict(self) -> dict[str, Any]:
        return {"previous": self.previous}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.previous = state.get("previous")


class R1Rule(KLRule):
    """A control for the JKO rule: the KL rule plus (λ/2) · mean ||∇_x f_θ(X_obs)||², the same kind of
    gradient penalty taken at the data only (R1, Mescheder et al. 2018), off the particles' path."""

    name = "r1"

    def __init__(self, weight: float = 0.2):
        self.weight = weight

    def loss(self, energy: Energy, x_obs: Tensor, x_syn: Tensor, x_prev: Tensor) -> tuple[Tensor, dict[str, Tensor]]:
        loss, stats = super().loss(energy, x_obs, x_syn, x_prev)
        penalty = _mean_square_norm(_input_gradient(energy, x_obs.detach().requires_grad_(True)))
        stats["r1_penalty"] = penalty.detach()
        return loss + 0.5 * self.weight * penalty, stats


class EnergyPenaltyRule(KLRule):
    """A control: the KL rule plus α · (mean f_θ(X_obs)² + mean f_θ(X~)²), which keeps the energies
    small (the regulariser of Du & Mordatch 2019) without looking at gradients."""

    name = "energy-penalty"

    def __init__(self, weight: float = 0.2):
        self.weight = weight

    def loss(self, energy: Energy, x_obs: Tensor, x_syn: Tensor, x_prev: Tensor) -> tuple[Tensor, dict[str, Tensor]]:
        f_obs, f_syn = energy(x_obs), energy(x_syn)
        loss, stats = self.kl_loss(f_obs, f_syn)
        penalty = f_obs.pow(2).mean() + f_syn.pow(2).mean()
        return loss + self.weight * penalty, {**stats, "energy_penalty": penalty.detach()}


CONTROLS = {"r1": R1Rule, "energy-penalty": EnergyPenaltyRule}


def _input_gradient(energy: Energy, x: Tensor) -> Tensor:
    """∇_x f_θ(x) at a leaf ``x`` that requires grad, kept differentiable in θ (for a penalty on it)."""
    return torch.autograd.grad(energy(x).sum(), x, create_graph=True)[0]


def _mean_square_norm(grad: Tensor) -> Tensor:
    """mean over the batch of ||g||²."""
    return grad.flatten(1).pow(2).sum(dim=1).mean()


def _match(x: Tensor, n: int) -> Tensor:
    """Repeat or cut the data batch to n rows (textures: one image, many particles)."""
    return x if len(x) == n else x[torch.arange(n, device=x.device) % len(x)]


def make_rule(name: str, weight: float = 0.2, reading: str = "consecutive", unit: float = 1.0) -> KLRule:
    """``"kl"`` or ``"jko"`` (with weight λ in units of ``unit``, and its ``reading``), or one of the
    :data:`CONTROLS` (weight λ) that regularise the KL rule without the Wasserstein term."""
    if name == "kl":
        return KLRule()
    if name == "jko":
        return JKORule(weight, reading, unit)
    if name in CONTROLS:
        return CONTROLS[name](weight)
    raise ValueError(f"unknown learning rule {name!r}; choose 'kl' (GCN, MLE), 'jko' (wGCN, Wasserstein) "
                     f"or a control {sorted(CONTROLS)}")
