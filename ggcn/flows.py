"""Learning rules: how θ moves once the particles X~ have been revised.

Both rules return a loss to *minimise* with X~ held constant:

* KL (MLE, the paper's "KL discrete flow"):
      L_KL(θ) = mean f_θ(X_obs) − mean f_θ(X~),     loss = −L_KL.
* JKO (the Wasserstein rule of wGCN, Sec. 4.1) -- [reading], see READING.md:
      x^ = ε X~_t + (1 − ε) X_ref,  ε ~ U[0, 1] per particle,
      L_W(θ) = L_KL(θ) − (λ/2) mean ||∇_x f_θ(x^)||²,
  with X_ref the previous particles X~_{t−1} (``endpoints="consecutive"``, default) or the
  data X_obs (``endpoints="data"``, the WGAN-GP construction). λ = 0 gives the KL rule.
"""
from __future__ import annotations

from typing import Callable

import torch
from torch import Tensor

Energy = Callable[[Tensor], Tensor]
ENDPOINTS = ("consecutive", "data")


class KLRule:
    """Maximum likelihood: raise f on the data, lower it on the particles."""

    name = "kl"

    def loss(self, energy: Energy, x_obs: Tensor, x_syn: Tensor, x_prev: Tensor) -> tuple[Tensor, dict[str, Tensor]]:
        """Return (−L_KL, diagnostics). ``x_prev`` is unused by this rule."""
        f_obs, f_syn = energy(x_obs).mean(), energy(x_syn).mean()
        gap = f_obs - f_syn
        return -gap, {"energy_gap": gap.detach()}


class JKORule(KLRule):
    """KL rule plus the soft gradient-norm term on the displacement interpolation."""

    name = "jko"

    def __init__(self, weight: float = 0.2, endpoints: str = "consecutive"):
        if endpoints not in ENDPOINTS:
            raise ValueError(f"unknown JKO endpoints {endpoints!r}; choose one of {ENDPOINTS}")
        if weight < 0:
            raise ValueError(f"the JKO weight λ must be ≥ 0, got {weight}")
        self.weight, self.endpoints = weight, endpoints

    def loss(self, energy: Energy, x_obs: Tensor, x_syn: Tensor, x_prev: Tensor) -> tuple[Tensor, dict[str, Tensor]]:
        loss, stats = super().loss(energy, x_obs, x_syn, x_prev)
        if self.weight == 0:
            return loss, stats
        x_ref = x_prev if self.endpoints == "consecutive" else _match(x_obs, len(x_syn))
        eps = torch.rand(len(x_syn), *([1] * (x_syn.dim() - 1)), device=x_syn.device, dtype=x_syn.dtype)
        x_hat = (eps * x_syn.detach() + (1 - eps) * x_ref.detach()).requires_grad_(True)
        grad = torch.autograd.grad(energy(x_hat).sum(), x_hat, create_graph=True)[0]
        penalty = grad.flatten(1).pow(2).sum(dim=1).mean()
        stats["jko_penalty"] = penalty.detach()
        return loss + 0.5 * self.weight * penalty, stats


def _match(x: Tensor, n: int) -> Tensor:
    """Repeat or cut the data batch to n rows (textures: one image, many particles)."""
    if len(x) == n:
        return x
    return x[torch.arange(n, device=x.device) % len(x)]


def make_rule(name: str, weight: float = 0.2, endpoints: str = "consecutive") -> KLRule:
    """``"kl"`` or ``"jko"`` (with weight λ and the interpolation ``endpoints``)."""
    if name == "kl":
        return KLRule()
    if name == "jko":
        return JKORule(weight, endpoints)
    raise ValueError(f"unknown learning rule {name!r}; choose 'kl' (GCN, MLE) or 'jko' (wGCN, Wasserstein)")
