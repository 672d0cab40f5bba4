"""The particle world of the theory chapters: points on the plane (and on the line) flowing downhill.

Here the "images" are points x ∈ R², f_θ is a small leaky-ReLU MLP, and the model is the
same Gibbs density p_θ ∝ exp(f_θ(x)) N(0, σ²I) as for images. Learning with the KL or the
JKO rule is the image code path verbatim (:class:`ggcn.models.registry.EnergyModel` and
:func:`ggcn.core.train.train`); only the energy network differs.

Four parts:

* fixed energies (:class:`MixtureEnergy`) to watch Langevin particles on a known landscape;
* named learning regimes (:data:`PRESETS`) and :func:`evolve` / :func:`compare`, which learn a
  2-D energy with the KL rule or either reading of the JKO rule (:data:`RULES`);
* the 1-D Gaussian world, where the Fokker–Planck flow and its JKO steps have closed forms;
* contour plots of U_θ with particles and trajectories on top, and an animation.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field, fields, replace
from typing import Callable, Sequence

import numpy as np
import torch
from torch import Tensor, nn

from ggcn.core.rules import make_rule
from ggcn.core.langevin import LangevinConfig, PersistentChains
from ggcn.models.registry import EnergyModel
from ggcn.models.nets import MLPEnergy
from ggcn.core.train import DivergenceError, History, train

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
        d = x.shape[1]
        sq = (x[:, None, :] - self.centres[None]).pow(2).sum(-1)
        log_norm = -0.5 * d * math.log(2 * math.pi * self.std**2)
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


def mode_spread(x: Tensor, centres: Tensor) -> float:
    """Root-mean-square distance of each particle to its nearest centre, per coordinate.

    For exact samples of an isotropic mixture with well separated modes this is ≈ s;
    particles that have collapsed onto the modes give ≈ 0.
    """
    d2 = (x[:, None, :] - centres[None]).pow(2).sum(-1).min(dim=1).values
    return float((d2.mean() / x.shape[1]).sqrt())


def well_shares(x: Tensor, centres: Tensor) -> np.ndarray:
    """Fraction of the particles whose nearest centre is each of ``centres`` (sums to 1)."""
    nearest = (x[:, None, :] - centres[None]).pow(2).sum(-1).argmin(dim=1)
    return np.bincount(nearest.cpu().numpy(), minlength=len(centres)) / len(x)


# ---------------------------------------------------------------------------
# Learning a 2-D energy: regimes, rules, runs


@dataclass(frozen=True)
class ParticlePreset:
    """A learning regime of the 2-D world (sizes come from the profile, not from here).

    ``lr`` is the Adam learning rate γ of f_θ, ``langevin_steps`` L and ``step_size`` δ the
    Langevin sampler per learning iteration, ``sigma`` the reference std σ, ``jko_weight``
    the weight λ of the JKO gradient-norm term, ``hidden`` the width of the MLP energy.
    """

    lr: float
    langevin_steps: int
    step_size: float
    sigma: float = 2.0
    jko_weight: float = 0.2
    hidden: int = 64

    def describe(self) -> str:
        """The regime in the book's symbols, for titles and captions."""
        return (f"γ = {self.lr:g}, L = {self.langevin_steps}, δ = {self.step_size:g}, "
                f"σ = {self.sigma:g}, λ = {self.jko_weight:g}")


PRESETS: dict[str, ParticlePreset] = {
    # Small Langevin steps: the particles keep up with a landscape that changes slowly, and
    # wells as narrow as the data's (std 0.1) stay inside the sampler's stability limit.
    "stable": ParticlePreset(lr=3e-3, langevin_steps=10, step_size=0.07),
    # Aggressive on purpose: the same number of Langevin steps, each 4× longer than "stable"'s,
    # and a 3× larger learning rate. Wells steep enough for the data make these particles
    # overshoot, and the landscape chases them; this is where the paper expects the KL flow to
    # become disorderly and the JKO flow to stay orderly.
    "unstable": ParticlePreset(lr=1e-2, langevin_steps=10, step_size=0.3),
}

RULES: dict[str, tuple[str, str]] = {
    "kl": ("kl", "consecutive"),  # GCN's maximum-likelihood step
    "jko": ("jko", "consecutive"),  # wGCN, x^ between X~_{t-1} and X~_t  [reading]
    "jko-data": ("jko", "data"),  # wGCN, x^ between X_obs and X~_t      [reading]
}


def get_preset(preset: str | ParticlePreset, **overrides) -> ParticlePreset:
    """A preset by name (or as given), with single fields replaced by ``overrides``."""
    if isinstance(preset, str):
        if preset not in PRESETS:
            raise ValueError(f"unknown particle preset {preset!r}; choose one of {sorted(PRESETS)}")
        preset = PRESETS[preset]
    known = {f.name for f in fields(ParticlePreset)}
    if set(overrides) - known:
        raise ValueError(f"unknown preset field(s) {sorted(set(overrides) - known)}; known: {sorted(known)}")
    return replace(preset, **overrides)


def gaussian_init(std: float = 1.0) -> Callable[[int], Tensor]:
    """Start particles from N(0, std² I) on the plane."""
    return lambda n: std * torch.randn(n, 2)


def particle_model(
    rule: str = "kl", *, n_particles: int = 500, preset: str | ParticlePreset = "stable", **overrides
) -> EnergyModel:
    """A 2-D energy model (MLP f_θ) with persistent chains started from N(0, I).

    ``rule`` is a key of :data:`RULES`; ``overrides`` replace fields of the preset.
    """
    if rule not in RULES:
        raise ValueError(f"unknown rule {rule!r}; choose one of {sorted(RULES)}")
    p = get_preset(preset, **overrides)
    name, reading = RULES[rule]
    return EnergyModel(
        MLPEnergy(2, p.hidden),
        make_rule(name, p.jko_weight, reading),
        LangevinConfig(n_steps=p.langevin_steps, step_size=p.step_size, sigma=p.sigma),
        PersistentChains(gaussian_init(), n_particles),
        lr=p.lr,
        n_particles=n_particles,
    )


def potential(energy: Callable[[Tensor], Tensor], sigma: float, points: Tensor) -> Tensor:
    """U(x) = ||x||²/(2σ²) − f(x) at ``points`` (``(n, 2)``)."""
    with torch.no_grad():
        return points.pow(2).sum(1) / (2 * sigma**2) - energy(points)


def potential_grid(energy: Callable[[Tensor], Tensor], sigma: float, lim: float = 3.0, grid: int = 80) -> np.ndarray:
    """U on a ``grid × grid`` lattice over [−lim, lim]² (rows: y, columns: x), shifted to min 0."""
    axis = torch.linspace(-lim, lim, grid)
    yy, xx = torch.meshgrid(axis, axis, indexing="ij")
    u = potential(energy, sigma, torch.stack([xx.flatten(), yy.flatten()], 1)).reshape(grid, grid)
    return (u - u.min()).numpy()


def sliced_w2_to(reference: Tensor, n_proj: int = 48) -> Callable[[Tensor], float]:
    """Sliced W2 distance to a fixed 2-D point cloud, as a function of another cloud.

    Average over ``n_proj`` evenly spaced directions in [0, π) of W2² between the projected
    clouds, computed from their quantile functions (1-D optimal transport matches sorted
    values), then the square root. The reference's projections are sorted once; the other
    cloud may have any size.
    """
    angle = torch.arange(n_proj, dtype=torch.float64) * math.pi / n_proj
    dirs = torch.stack([torch.cos(angle), torch.sin(angle)], 1).to(reference)
    ref = (dirs @ reference.T).sort(1).values
    levels = (torch.arange(ref.shape[1], dtype=ref.dtype, device=ref.device) + 0.5) / ref.shape[1]

    def distance(x: Tensor) -> float:
        if not torch.isfinite(x).all():
            return float("nan")
        px = _quantiles((dirs @ x.to(reference).T).sort(1).values, levels)
        return float((px - ref).pow(2).mean().sqrt())

    return distance


def sliced_wasserstein(x: Tensor, y: Tensor, n_proj: int = 48) -> float:
    """Sliced W2 distance between two 2-D point clouds (see :func:`sliced_w2_to`)."""
    return sliced_w2_to(y, n_proj)(x)


def _quantiles(sorted_rows: Tensor, levels: Tensor) -> Tensor:
    """Empirical quantile functions of sorted rows at ``levels`` (left-continuous inverse CDF)."""
    m = sorted_rows.shape[1]
    idx = (levels * m).floor().long().clamp(max=m - 1)
    return sorted_rows[:, idx]


@dataclass
class ParticleRun:
    """One learning run: the sliced-W2 curve and snapshots of particles and potential."""

    rule: str
    preset: ParticlePreset
    lim: float
    sliced_w2: np.ndarray = field(default_factory=lambda: np.zeros(0))  # one value per iteration
    iterations: list[int] = field(default_factory=list)  # iterations of the snapshots
    particles: list[np.ndarray] = field(default_factory=list)
    potentials: list[np.ndarray] = field(default_factory=list)
    history: History = field(default_factory=History)
    diverged_at: int | None = None  # iteration with non-finite particles, if any


def evolve(
    data: Tensor,
    rule: str = "kl",
    iterations: int = 200,
    *,
    seed: int = 0,
    preset: str | ParticlePreset = "stable",
    n_particles: int = 500,
    snapshot_every: int = 20,
    lim: float = 3.0,
    grid: int = 80,
    **overrides,
) -> ParticleRun:
    """Learn a 2-D energy from ``data`` with ``rule`` (a key of :data:`RULES`).

    Records the sliced W2 distance between particles and data at every iteration and the
    particles + potential every ``snapshot_every`` iterations (and at the last). A run whose
    particles become non-finite stops there: ``diverged_at`` says when, and the rest of
    ``sliced_w2`` is NaN.
    """
    torch.manual_seed(seed)
    p = get_preset(preset, **overrides)
    model = particle_model(rule, n_particles=n_particles, preset=p)
    run = ParticleRun(rule=rule, preset=p, lim=lim)
    curve = np.full(iterations, np.nan)
    to_data = sliced_w2_to(data)

    def snapshot(it: int, model: EnergyModel, x_obs: Tensor) -> dict[str, float]:
        curve[it] = to_data(model.particles)
        if it % snapshot_every == 0 or it == iterations - 1:
            run.iterations.append(it + 1)
            run.particles.append(model.particles.numpy().copy())
            run.potentials.append(potential_grid(model.energy, p.sigma, lim, grid))
        return {"sliced_w2": curve[it]}

    try:
        run.history = train(model, data, iterations, batch_size=n_particles, seed=seed, callbacks=[snapshot])
    except DivergenceError:
        run.diverged_at = int(np.isfinite(curve).sum())
    run.sliced_w2 = curve
    return run


def compare(
    data: Tensor,
    rules: Sequence[str] = tuple(RULES),
    seeds: Sequence[int] = (0, 1, 2),
    iterations: int = 200,
    **evolve_kw,
) -> dict[str, list[ParticleRun]]:
    """The same data, seeds and regime for every rule: ``{rule: [run per seed]}``."""
    return {rule: [evolve(data, rule, iterations, seed=s, **evolve_kw) for s in seeds] for rule in rules}


def final_distance(curve: np.ndarray, last: float = 0.25) -> float:
    """Mean of a per-iteration distance (sliced W2, response distance) over the last ``last``
    fraction of a run's iterations; ∞ if the run diverged (non-finite values there).

    Averaging over a window rather than taking the last value keeps a single lucky or unlucky
    iteration from deciding a comparison.
    """
    curve = np.asarray(curve, dtype=float)
    window = curve[-max(1, int(round(last * len(curve)))):]
    return float(window.mean()) if np.isfinite(window).all() else float("inf")


def failed(curve: np.ndarray) -> bool:
    """A run failed if its particles became non-finite or it ended farther from the data than
    after its first iteration (learning moved the particles away from the data)."""
    curve = np.asarray(curve, dtype=float)
    return bool(not np.isfinite(curve).all() or curve[-1] > curve[0])


def describe_values(values: Sequence[float]) -> str:
    """Per-seed values as text: ``"0.123 ± 0.012"`` (mean ± sd), noting diverged (infinite) runs."""
    v = np.asarray(values, dtype=float)
    finite = v[np.isfinite(v)]
    text = f"{finite.mean():.3g} ± {finite.std():.2g}" if len(finite) else "—"
    if len(finite) < len(v):
        text += f" ({len(v) - len(finite)} of {len(v)} diverged)"
    return text


def verdict(candidate: Sequence[float], baseline: Sequence[float]) -> str:
    """Compare per-seed values of a distance, conservatively.

    ``"lower"`` if every candidate seed is below every baseline seed, ``"higher"`` if every one
    is above, otherwise ``"indistinguishable within the seed spread"`` (the seed ranges overlap).
    Infinite values (diverged runs) compare as larger than any finite one.
    """
    a, b = np.asarray(candidate, dtype=float), np.asarray(baseline, dtype=float)
    if a.size == 0 or b.size == 0 or np.isnan(a).any() or np.isnan(b).any():
        raise ValueError("verdict needs at least one non-NaN value per side (use final_distance on each run)")
    if a.max() < b.min():
        return "lower"
    if a.min() > b.max():
        return "higher"
    return "indistinguishable within the seed spread"


def versus(outcome: str, baseline: str) -> str:
    """A :func:`verdict` as a phrase, e.g. ``versus("lower", "KL's")`` → ``"lower than KL's"``."""
    if outcome in ("lower", "higher"):
        return f"{outcome} than {baseline}"
    return f"indistinguishable from {baseline} within the seed spread"


# ---------------------------------------------------------------------------
# The 1-D Gaussian world: f ≡ 0, so U(x) = x²/(2σ²) and Langevin is an Ornstein–Uhlenbeck process.


@dataclass(frozen=True)
class Gaussian1D:
    """N(mean, std²) on the line."""

    mean: float
    std: float

    def as_dict(self) -> dict[str, float]:
        return asdict(self)


def fokker_planck_ou(start: Gaussian1D, t: float, sigma: float) -> Gaussian1D:
    """The exact Fokker–Planck solution at time t for dX = −X/σ² dt + √2 dW from a Gaussian:

    m(t) = m₀ e^{−t/σ²},   v(t) = σ² + (v₀ − σ²) e^{−2t/σ²}.
    """
    decay = math.exp(-t / sigma**2)
    var = sigma**2 + (start.std**2 - sigma**2) * decay**2
    return Gaussian1D(start.mean * decay, math.sqrt(var))


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
    a = 1 / sigma**2 + 1 / h
    b = g.std / h
    return Gaussian1D(g.mean / (1 + h / sigma**2), (b + math.sqrt(b * b + 4 * a)) / (2 * a))


def w2_to_gaussian(x: Tensor, g: Gaussian1D) -> float:
    """W2 between the empirical measure of 1-D samples ``x`` and N(m, s²), by sorting.

    In 1-D the optimal transport map is monotone: match the i-th smallest sample with the
    Gaussian quantile at level (i − ½)/n.
    """
    xs = x.flatten().double().sort().values
    n = len(xs)
    levels = (torch.arange(n, dtype=torch.float64) + 0.5) / n
    q = g.mean + g.std * torch.special.ndtri(levels)
    return float((xs - q).pow(2).mean().sqrt())


def zero_energy(x: Tensor) -> Tensor:
    """f ≡ 0: the model is the Gaussian reference N(0, σ²I) itself."""
    return 0.0 * x.flatten(1).sum(1)


# ---------------------------------------------------------------------------
# Pictures

LANDSCAPE_CMAP = "mako"  # seaborn's dark-to-light blue-green: dark valleys, light hills
PARTICLE_COLOR = "#e69f00"  # orange, visible on the whole colormap
DATA_COLOR = "white"


def plot_potential(ax, u: np.ndarray, lim: float, levels: int = 18, clip: float = 0.9):
    """Filled contours of a potential grid ``u`` over [−lim, lim]².

    Levels span the lower ``clip`` quantile of u so the wells stay readable when the
    landscape has steep walls; higher values share the top colour.
    """
    import seaborn as sns

    top = float(np.quantile(u[np.isfinite(u)], clip))
    cmap = sns.color_palette(LANDSCAPE_CMAP, as_cmap=True)
    axis = np.linspace(-lim, lim, u.shape[0])
    ax.contourf(axis, axis, np.minimum(u, top), levels=np.linspace(0, top, levels), cmap=cmap)
    ax.contour(axis, axis, u, levels=np.linspace(0, top, levels)[1::3], colors="white", linewidths=0.4, alpha=0.5)
    ax.set_xlim(-lim, lim)
    ax.set_ylim(-lim, lim)
    ax.set_aspect("equal")
    ax.set_xticks([])
    ax.set_yticks([])
    ax.grid(False)
    return ax


def plot_particles(ax, x: np.ndarray, *, color: str = PARTICLE_COLOR, size: float = 4, label: str | None = None):
    """Particles as small dots with a thin dark edge."""
    x = np.asarray(x)
    ax.scatter(x[:, 0], x[:, 1], s=size, c=color, edgecolors="black", linewidths=0.15, label=label, zorder=3)
    return ax


def plot_trajectories(ax, trajectory: np.ndarray, n_show: int = 25, color: str = PARTICLE_COLOR):
    """Paths of the first ``n_show`` particles of a recorded chain ``(T, n, 2)``: start ○, end ●."""
    path = np.asarray(trajectory)[:, :n_show]
    for i in range(path.shape[1]):
        ax.plot(path[:, i, 0], path[:, i, 1], color="white", lw=0.6, alpha=0.6, zorder=2)
    ax.scatter(path[0, :, 0], path[0, :, 1], s=14, facecolors="none", edgecolors="white", lw=0.8, zorder=3)
    ax.scatter(path[-1, :, 0], path[-1, :, 1], s=16, c=color, edgecolors="black", lw=0.4, zorder=4)
    return ax


def plot_snapshot(ax, potential: np.ndarray, points: np.ndarray, lim: float, data=None, title: str | None = None):
    """Contour map of a potential grid with particles (orange) and, if given, data (white) on top."""
    plot_potential(ax, potential, lim)
    if data is not None:
        d = np.asarray(data)
        ax.scatter(d[:, 0], d[:, 1], s=2, c=DATA_COLOR, alpha=0.5, lw=0, zorder=2)
    plot_particles(ax, points)
    if title is not None:
        ax.set_title(title)
    return ax


def plot_landscape(ax, run: ParticleRun, k: int = -1, data: Tensor | None = None, title: str | None = None):
    """Contour map of U_θ at snapshot ``k`` with the particles on top (the paper's Fig. 1 picture)."""
    title = title if title is not None else f"{run.rule.upper()} · iteration {run.iterations[k]}"
    return plot_snapshot(ax, run.potentials[k], run.particles[k], run.lim, data, title)


def animate(run: ParticleRun, data: Tensor | None = None, interval: int = 200) -> str:
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
