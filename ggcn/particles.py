"""The 2-D particle world: energies on the plane, particles flowing downhill.

Here the "images" are points x ∈ R², f_θ is a small leaky-ReLU MLP, and the model is the
same Gibbs density p_θ ∝ exp(f_θ(x)) N(0, σ²I) as for images. Learning with the KL or the
JKO rule is the image code path verbatim (:class:`ggcn.models.EnergyModel` and
:func:`ggcn.train.train`); only the energy network differs.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch
from torch import Tensor

from .flows import make_rule
from .langevin import LangevinConfig, PersistentChains
from .models import EnergyModel
from .nets import MLPEnergy
from .train import History, train


def gaussian_init(std: float = 1.0):
    return lambda n: std * torch.randn(n, 2)


def particle_model(
    rule: str = "kl",
    *,
    n_particles: int = 500,
    langevin_steps: int = 20,
    step_size: float = 0.1,
    sigma: float = 2.0,
    lr: float = 3e-3,
    jko_weight: float = 0.2,
    endpoints: str = "consecutive",
    hidden: int = 64,
) -> EnergyModel:
    """A 2-D energy model with persistent chains started from N(0, I)."""
    return EnergyModel(
        MLPEnergy(2, hidden),
        make_rule(rule, jko_weight, endpoints),
        LangevinConfig(n_steps=langevin_steps, step_size=step_size, sigma=sigma),
        PersistentChains(gaussian_init(), n_particles),
        lr=lr,
        n_particles=n_particles,
    )


def potential(model: EnergyModel, points: Tensor) -> Tensor:
    """U_θ(x) = ||x||²/(2σ²) − f_θ(x) at ``points`` (``(n, 2)``)."""
    with torch.no_grad():
        return points.pow(2).sum(1) / (2 * model.sampler.sigma**2) - model.energy(points)


def sliced_wasserstein(x: Tensor, y: Tensor, n_proj: int = 64, seed: int = 0) -> float:
    """Sliced W2 distance between two 2-D point clouds (random directions, sorted projections)."""
    g = torch.Generator().manual_seed(seed)
    theta = torch.rand(n_proj, generator=g) * np.pi
    dirs = torch.stack([torch.cos(theta), torch.sin(theta)], 1)
    m = min(len(x), len(y))
    px = (x[:m] @ dirs.T).sort(0).values
    py = (y[:m] @ dirs.T).sort(0).values
    return float((px - py).pow(2).mean().sqrt())


@dataclass
class ParticleRun:
    """Snapshots of a learning run: particles and the potential on a grid, every few iterations."""

    rule: str
    lim: float
    iterations: list[int] = field(default_factory=list)
    particles: list[np.ndarray] = field(default_factory=list)
    potentials: list[np.ndarray] = field(default_factory=list)
    history: History = field(default_factory=History)


def evolve(
    data: Tensor,
    rule: str = "kl",
    iterations: int = 200,
    *,
    seed: int = 0,
    snapshot_every: int = 20,
    lim: float = 3.0,
    grid: int = 80,
    **model_kw,
) -> ParticleRun:
    """Learn a 2-D energy from ``data`` and record particles + potential every ``snapshot_every``."""
    torch.manual_seed(seed)
    model = particle_model(rule, **model_kw)
    run = ParticleRun(rule=rule, lim=lim)
    axis = torch.linspace(-lim, lim, grid)
    xx, yy = torch.meshgrid(axis, axis, indexing="xy")
    pts = torch.stack([xx.flatten(), yy.flatten()], 1)

    def snapshot(it: int, model: EnergyModel, x_obs: Tensor):
        stats = {"sliced_w2": sliced_wasserstein(model.particles, data)}
        if it % snapshot_every == 0 or it == iterations - 1:
            run.iterations.append(it + 1)
            run.particles.append(model.particles.numpy().copy())
            run.potentials.append(potential(model, pts).reshape(grid, grid).numpy())
        return stats

    run.history = train(model, data, iterations, batch_size=model.n_particles, seed=seed, callbacks=[snapshot])
    return run


def plot_landscape(ax, run: ParticleRun, k: int = -1, data: Tensor | None = None, levels: int = 20):
    """Contour map of U_θ at snapshot ``k`` with the particles on top (the paper's Fig. 1 picture)."""
    lim = run.lim
    u = run.potentials[k]
    ax.contourf(np.linspace(-lim, lim, u.shape[0]), np.linspace(-lim, lim, u.shape[0]), u,
                levels=levels, cmap="viridis_r", alpha=0.85)
    if data is not None:
        ax.scatter(data[:, 0], data[:, 1], s=2, c="white", alpha=0.4, lw=0)
    p = run.particles[k]
    ax.scatter(p[:, 0], p[:, 1], s=3, c="#d55e00", lw=0)
    ax.set_xlim(-lim, lim)
    ax.set_ylim(-lim, lim)
    ax.set_aspect("equal")
    ax.set_xticks([])
    ax.set_yticks([])
    ax.set_title(f"{run.rule.upper()} · iteration {run.iterations[k]}")
    return ax


def animate(run: ParticleRun, data: Tensor | None = None, interval: int = 200):
    """A JavaScript animation (HTML) of the snapshots, for the rendered book."""
    import matplotlib.pyplot as plt
    from matplotlib.animation import FuncAnimation

    fig, ax = plt.subplots(figsize=(4, 4))

    def draw(k: int):
        ax.clear()
        plot_landscape(ax, run, k, data)

    anim = FuncAnimation(fig, draw, frames=len(run.particles), interval=interval)
    html = anim.to_jshtml()
    plt.close(fig)
    return html
