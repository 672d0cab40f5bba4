"""Run profiles: one name picks the scale of every experiment.

* ``smoke`` -- seconds on two CPU cores (CI and the default book build).
* ``teach`` -- a few minutes on a classroom laptop.
* ``paper`` -- the settings the paper states (Sec. 5.1), meant for a GPU.

Chapters pass a profile name and, where they need to, a few overrides::

    cfg = get_profile("smoke", iterations=20)
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, fields, replace
from typing import Any


@dataclass(frozen=True)
class Profile:
    """Scale knobs shared by all chapters.

    ``step_size`` is the Langevin step δ, ``sigma`` the std σ of the Gaussian
    reference q = N(0, σ²I), ``lr`` the learning rate γ of the energy, ``jko_weight``
    the weight λ of the Wasserstein (JKO) term.
    """

    name: str
    image_size: int
    n_images: int
    batch_size: int
    iterations: int
    langevin_steps: int
    step_size: float
    sigma: float
    lr: float
    jko_weight: float
    n_seeds: int
    width: int
    particles: int
    particle_iterations: int
    z_dim: int

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


PROFILES: dict[str, Profile] = {
    "smoke": Profile(
        name="smoke", image_size=16, n_images=16, batch_size=16, iterations=12,
        langevin_steps=10, step_size=0.05, sigma=1.0, lr=1e-3, jko_weight=0.2,
        n_seeds=3, width=16, particles=256, particle_iterations=60, z_dim=16,
    ),
    "teach": Profile(
        name="teach", image_size=32, n_images=64, batch_size=32, iterations=150,
        langevin_steps=20, step_size=0.03, sigma=1.0, lr=1e-3, jko_weight=0.2,
        n_seeds=3, width=32, particles=1000, particle_iterations=300, z_dim=64,
    ),
    "paper": Profile(
        name="paper", image_size=64, n_images=10000, batch_size=100, iterations=100,
        langevin_steps=50, step_size=0.01, sigma=1.0, lr=1e-3, jko_weight=0.2,
        n_seeds=3, width=64, particles=5000, particle_iterations=1000, z_dim=100,
    ),
}


def get_profile(name: str, **overrides: Any) -> Profile:
    """Return the named profile, with ``overrides`` replacing single fields."""
    if name not in PROFILES:
        raise ValueError(
            f"unknown profile {name!r}; choose one of {sorted(PROFILES)} "
            "(smoke: CI seconds, teach: laptop minutes, paper: the paper's settings on a GPU)"
        )
    known = {f.name for f in fields(Profile)}
    unknown = set(overrides) - known
    if unknown:
        raise ValueError(f"unknown profile field(s) {sorted(unknown)}; known fields: {sorted(known)}")
    return replace(PROFILES[name], **overrides)


def resolve_device(device: str = "auto") -> str:
    """``"auto"`` means CUDA when available, else CPU; anything else is checked."""
    import torch

    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise ValueError(f"device {device!r} asked for, but no CUDA device is visible; use device='cpu' or 'auto'")
    if not (device == "cpu" or device.startswith("cuda") or device == "mps"):
        raise ValueError(f"unknown device {device!r}; use 'auto', 'cpu', 'cuda' or 'cuda:N'")
    return device
