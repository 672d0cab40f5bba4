"""The particle world of the theory chapters: points on the plane (and on the line) flowing downhill.

Here the "images" are points x ∈ R², f_θ is a small leaky-ReLU MLP, and the model is the same Gibbs
density p_θ ∝ exp(f_θ(x)) N(0, σ²I) as for images; learning with the KL or the JKO rule is the image
code path verbatim (:class:`ggcn.core.learner.EnergyModel`, :func:`ggcn.experiments.runs.fit`).

* fixed energies (:class:`MixtureEnergy`) to watch Langevin particles on a known landscape;
* :func:`evolve` / :func:`compare` learn a 2-D energy with the KL rule or either reading of the JKO
  rule (:data:`RULES`) in a regime of :data:`ggcn.config.PRESETS`;
* the 1-D Gaussian world, where the Fokker–Planck flow and its JKO steps have closed forms.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable, Sequence

import numpy as np
import torch
from torch import Tensor, nn

from ggcn.config import ParticlePreset, get_preset
from ggcn.core.chains import PersistentChains
from ggcn.core.langevin import LangevinConfig
from ggcn.core.learner import EnergyModel
from ggcn.core.rules import make_rule
from ggcn.experiments.runs import Results, fit
from ggcn.measure.scores import sliced_w2_to
from ggcn.models.nets import MLPEnergy

# ---------------------------------------------------------------------------
# Fixed energies on the plane


class MixtureEnergy(nn.Module):
    """The f whose Gibbs density is a Gaussian mixture.

    With f(x) = log Σ_k w_k N(x; μ_k, s²I) + ||x||²/(2σ²), the model
    p ∝ exp(f) N(0, σ²I) is exactly the mixture Σ_k w_k N(μ_k, s²I), and the energy
    U(x) = ||x||²/(2σ²) − f(x) is −log of the mixture density (up to a constant).
    It has no parameters: Langevin moves the particles, nothing learns.
    """

    def __init__(self, centres: Tensor, std: float, sigma: float, weights: Tensor | None = None):
        super().__init__()
        centres = torch.as_tensor(centres, dtype=torch.float32)
        if centres.dim() != 2:
            raise ValueError(f"centres must have shape (K, d), got {tuple(centres.shape)}")
        if std <= 0 or sigma <= 0:
            raise ValueError(f"the mode std s and the reference σ must be > 0, got s={std}, σ={sigma}")
        k = len(centres)
        weights = torch.full((k,), 1.0 / k) if weights is None else torch.as_tensor(weights, dtype=torch.float32)
        if weights.shape != (k,) or (weights <= 0).any():
            raise ValueError(f"weights must be {k} positive numbers, got {weights.tolist()}")
        self.register_buffer("centres", centres)
        self.register_buffer("weights", weights / weights.sum())
        self.std, self.sigma = float(std), float(sigma)

    def log_density(self, x: Tensor) -> Tensor:
        """log Σ_k w_k N(x; μ_k, s²I), one value per row of ``x``."""
        sq = (x[:, None, :] - self.centres[None]).pow(2).sum(-1)
        log_norm = -0.5 * x.shape[1] * math.log(2 * math.pi * self.std**2)
        return torch.logsumexp(self.weights.log() - sq / (2 * self.std**2), dim=1) + log_norm

    def forward(self, x: Tensor) -> Tensor:
        return self.log_density(x) + x.pow(2).sum(1) / (2 * self.sigma**2)

    def sample(self, n: int, seed: int = 0) -> Tensor:
        """n exact draws from the mixture (to compare Langevin particles with)."""
        g = torch.Generator().manual_seed(seed)
        k = torch.multinomial(self.weights, n, replacement=True, generator=g)
        return self.centres[k] + self.std * torch.randn(n, self.centres.shape[1], generator=g)


def three_wells(sigma: float = 2.0) -> MixtureEnergy:
    """Chapter 1's landscape: three wells of unequal depth (weights 0.5, 0.3, 0.2), std 0.3."""
    centres = torch.tensor([[-1.3, -0.7], [1.3, -0.7], [0.0, 1.3]])
    return MixtureEnergy(centres, std=0.3, sigma=sigma, weights=torch.tensor([0.5, 0.3, 0.2]))


# ---------------------------------------------------------------------------
# Learning a 2-D energy

# (rule, reading): "kl" is GCN's maximum-likelihood step; "jko" is wGCN with x^ between X~_{t-1} and X~_t,
# "jko-data" wGCN with x^ between X_obs and X~_t  [readings]
RULES: dict[str, tuple[str, str]] = {"kl": ("kl", "consecutive"), "jko": ("jko", "consecutive"),
                                     "jko-data": ("jko", "data")}


# Controls: the KL rule made steadier by means that have nothing Wasserstein about them. Weights are
# the preset's λ (the JKO rule's own weight); θ's gradient is clipped to norm 1 before each Adam step.
# kl-clip: gradient clipping of θ; kl-r1: KL + (λ/2) ||∇_x f||² at the data only;
# kl-energy: KL + λ (f(X_obs)² + f(X~)²)
CONTROLS: dict[str, tuple[str, dict[str, float]]] = {"kl-clip": ("kl", {"max_grad_norm": 1.0}), "kl-r1": ("r1", {}),
                                                     "kl-energy": ("energy-penalty", {})}


# The arms of the regularisation sweep (chapter 2): (rule, preset fields) per arm — the JKO rule at three
# weights around the paper's 0.2, and the KL rule plain and with each control.
ARMS: dict[str, tuple[str, dict[str, float]]] = {
    "kl": ("kl", {}), **{f"jko-{w:g}": ("jko", {"jko_weight": w}) for w in (0.02, 0.2, 2.0)},
    **{name: (name, {}) for name in CONTROLS}}


def gaussian_init(std: float = 1.0) -> Callable[[int], Tensor]:
    """Start particles from N(0, std² I) on the plane."""
    return lambda n: std * torch.randn(n, 2)


def particle_model(rule: str = "kl", *, n_particles: int = 500, preset: str | ParticlePreset = "stable",
                   **overrides) -> EnergyModel:
    """A 2-D energy model (MLP f_θ) with persistent chains started from N(0, I).

    ``rule`` is a key of :data:`RULES` or :data:`CONTROLS`; ``overrides`` replace fields of the preset.
    """
    if rule not in RULES and rule not in CONTROLS:
        raise ValueError(f"unknown rule {rule!r}; choose one of {sorted(RULES)} or a control {sorted(CONTROLS)}")
    name, options = CONTROLS.get(rule, (None, {}))
    name, reading = RULES.get(rule, (name, "consecutive"))
    p = get_preset(preset, **overrides)
    return EnergyModel(MLPEnergy(2, p.hidden), make_rule(name, p.jko_weight, reading),
                       LangevinConfig(n_steps=p.langevin_steps, step_size=p.step_size, sigma=p.sigma),
                       PersistentChains(gaussian_init(), n_particles), lr=p.lr, n_particles=n_particles, **options)


def potential(energy: Callable[[Tensor], Tensor], sigma: float, points: Tensor) -> Tensor:
    """U(x) = ||x||²/(2σ²) − f(x) at ``points`` (``(n, 2)``)."""
    with torch.no_grad():
        return points.pow(2).sum(1) / (2 * sigma**2) - energy(points)


def potential_grid(energy: Callable[[Tensor], Tensor], sigma: float, lim: float = 3.0, grid: int = 80) -> np.ndarray:
    """U on a ``grid × grid`` lattice over [−lim, lim]² (rows: y, columns: x), shifted to min 0."""
    yy, xx = torch.meshgrid(*[torch.linspace(-lim, lim, grid)] * 2, indexing="ij")
    u = potential(energy, sigma, torch.stack([xx.flatten(), yy.flatten()], 1)).reshape(grid, grid)
    return (u - u.min()).numpy()


@dataclass
class ParticleRun(Results):
    """One learning run: the sliced-W2 curve, and snapshots of particles and potential."""

    rule: str
    lim: float
    sliced_w2: np.ndarray  # one value per iteration, NaN after a divergence
    iterations: np.ndarray  # the iterations of the snapshots
    particles: np.ndarray  # (snapshots, n, 2)
    potentials: np.ndarray  # (snapshots, grid, grid)
    diverged_at: int  # the iteration with non-finite particles, −1 if none


def evolve(data: Tensor, rule: str = "kl", iterations: int = 200, *, seed: int = 0,
           preset: str | ParticlePreset = "stable", n_particles: int = 500, snapshot_every: int = 20,
           lim: float = 3.0, grid: int = 80, **overrides) -> ParticleRun:
    """Learn a 2-D energy from ``data`` with ``rule`` (a key of :data:`RULES`), recording the sliced W2
    between particles and data every iteration and particles + potential every ``snapshot_every``
    iterations (and at the last). A diverged run stops there: the rest of ``sliced_w2`` is NaN."""
    p, curve, to_data = get_preset(preset, **overrides), np.full(iterations, np.nan), sliced_w2_to(data)
    snaps: dict[str, list] = {"iterations": [], "particles": [], "potentials": []}

    def snapshot(it: int, model: EnergyModel, x_obs: Tensor) -> dict[str, float]:
        curve[it] = to_data(model.particles)
        if it % snapshot_every == 0 or it == iterations - 1:
            snaps["iterations"].append(it + 1)
            snaps["particles"].append(model.particles.numpy().copy())
            snaps["potentials"].append(potential_grid(model.energy, p.sigma, lim, grid))
        return {"sliced_w2": curve[it]}

    run = fit(lambda: particle_model(rule, n_particles=n_particles, preset=p), data, None, seed,
              iterations=iterations, batch_size=n_particles, on_examples=False, callbacks=[snapshot])
    return ParticleRun(rule, lim, curve, *map(np.array, snaps.values()),
                       int(np.isfinite(curve).sum()) if run.diverged else -1)


def compare(data: Tensor, rules: Sequence[str] = tuple(RULES), seeds: Sequence[int] = (0, 1, 2),
            iterations: int = 200, **evolve_kw) -> dict[str, list[ParticleRun]]:
    """The same data, seeds and regime for every rule: ``{rule: [run per seed]}``."""
    return {rule: [evolve(data, rule, iterations, seed=s, **evolve_kw) for s in seeds] for rule in rules}


# ---------------------------------------------------------------------------
# The 1-D Gaussian world: f ≡ 0, so U(x) = x²/(2σ²) and Langevin is an Ornstein–Uhlenbeck process.


@dataclass(frozen=True)
class Gaussian1D:
    """N(mean, std²) on the line."""

    mean: float
    std: float


def fokker_planck_ou(start: Gaussian1D, t: float, sigma: float) -> Gaussian1D:
    """The exact Fokker–Planck solution at time t for dX = −X/σ² dt + √2 dW from a Gaussian:

    m(t) = m₀ e^{−t/σ²},   v(t) = σ² + (v₀ − σ²) e^{−2t/σ²}.
    """
    decay = math.exp(-t / sigma**2)
    return Gaussian1D(start.mean * decay, math.sqrt(sigma**2 + (start.std**2 - sigma**2) * decay**2))


def free_energy(g: Gaussian1D, sigma: float) -> float:
    """F(ρ) = ∫ρ log ρ + ∫Uρ minus its minimum, i.e. KL(N(m, s²) ‖ N(0, σ²))."""
    r = g.std**2 / sigma**2
    return 0.5 * (r + g.mean**2 / sigma**2 - 1 - math.log(r))


def jko_step(g: Gaussian1D, h: float, sigma: float) -> Gaussian1D:
    """One JKO step ρ⁺ = argmin_ρ F(ρ) + W2²(ρ, g)/(2h) for U(x) = x²/(2σ²).

    The minimiser is Gaussian. With F(N(m, s²)) = −log s + (m² + s²)/(2σ²) + const and
    W2² = (m − m₀)² + (s − s₀)², the first-order conditions give
    m = m₀ / (1 + h/σ²) and a = 1/σ² + 1/h, a s² − (s₀/h) s − 1 = 0 (positive root).
    """
    if h <= 0:
        raise ValueError(f"the JKO time step h must be > 0, got {h}")
    a, b = 1 / sigma**2 + 1 / h, g.std / h
    return Gaussian1D(g.mean / (1 + h / sigma**2), (b + math.sqrt(b * b + 4 * a)) / (2 * a))


def w2_to_gaussian(x: Tensor, g: Gaussian1D) -> float:
    """W2 between the empirical measure of 1-D samples ``x`` and N(m, s²), by sorting.

    In 1-D the optimal transport map is monotone: match the i-th smallest sample with the
    Gaussian quantile at level (i − ½)/n.
    """
    xs = x.flatten().double().sort().values
    q = g.mean + g.std * torch.special.ndtri((torch.arange(len(xs), dtype=torch.float64) + 0.5) / len(xs))
    return float((xs - q).pow(2).mean().sqrt())


def zero_energy(x: Tensor) -> Tensor:
    """f ≡ 0: the model is the Gaussian reference N(0, σ²I) itself."""
    return 0.0 * x.flatten(1).sum(1)
