"""FRAME, wFRAME, GCN and wGCN: one energy, one particle initialiser, one learning rule.

Every model here is an :class:`EnergyModel`; the names only choose the pieces:

=========  =========================  ===============================
name       energy f_θ                 learning rule
=========  =========================  ===============================
frame      fixed filters, learned θ   KL (MLE)
wframe     fixed filters, learned θ   JKO, consecutive endpoints
gcn        ConvNet                    KL (MLE)
wgcn       ConvNet                    JKO, consecutive endpoints
wgcn-data  ConvNet                    JKO, data endpoints [reading]
=========  =========================  ===============================
"""
from __future__ import annotations

from importlib import import_module
from typing import Any

import torch
from torch import Tensor, nn

from .config import Profile
from .flows import KLRule, make_rule
from .langevin import Chain, LangevinConfig, NoiseInit, PersistentChains, ReplayBuffer, langevin, uniform_noise
from .nets import ConvEnergy, FilterBank, FrameEnergy, gabor_dog_bank, vgg16_filters


class EnergyModel:
    """A Gibbs model p_θ ∝ exp(f_θ) N(0, σ²I) learned from revised particles.

    One learning iteration (Algorithm 1): draw X~_{t−1} from the initialiser, run L Langevin
    steps to get X~_t, keep X~_t, and take one Adam step on the rule's loss.
    """

    def __init__(
        self,
        energy: nn.Module,
        rule: KLRule,
        sampler: LangevinConfig,
        init: NoiseInit,
        lr: float,
        n_particles: int,
        betas: tuple[float, float] = (0.5, 0.999),
    ):
        self.energy, self.rule, self.sampler, self.init = energy, rule, sampler, init
        self.n_particles = n_particles
        self.optimizer = torch.optim.Adam(energy.parameters(), lr=lr, betas=betas)
        self.particles: Tensor | None = None
        self.last_chain: Chain | None = None

    def step(self, x_obs: Tensor) -> dict[str, Tensor]:
        """One learning iteration on the batch ``x_obs``; returns detached diagnostics."""
        x_prev, slots = self.init.draw(self.n_particles)
        chain = langevin(self.energy, x_prev, self.sampler, diagnostics=True)
        self.init.keep(slots, chain.x)
        loss, stats = self.rule.loss(self.energy, x_obs, chain.x, x_prev)
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.optimizer.step()
        self.particles, self.last_chain = chain.x, chain
        stats["loss"] = loss.detach()
        stats["grad_norm"] = chain.grad_norm.mean() if chain.grad_norm is not None else torch.tensor(0.0)
        return stats

    @torch.no_grad()
    def energy_of(self, x: Tensor) -> Tensor:
        return self.energy(x)

    def sample(self, n: int, n_steps: int | None = None) -> Tensor:
        """n fresh samples: chains from the initialiser (not stored back), L Langevin steps."""
        x0, _ = self.init.draw(n)
        cfg = self.sampler if n_steps is None else LangevinConfig(**{**vars(self.sampler), "n_steps": n_steps})
        return langevin(self.energy, x0, cfg).x

    def responses(self, x: Tensor) -> Tensor:
        """The energy's own filter responses (first layer), for the response distance."""
        with torch.no_grad():
            return self.energy.responses(x)

    def state_dict(self) -> dict[str, Any]:
        return {
            "energy": self.energy.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "init": self.init.state_dict(),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.energy.load_state_dict(state["energy"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.init.load_state_dict(state["init"])


MODELS = {
    "frame": ("filters", "kl", "consecutive"),
    "wframe": ("filters", "jko", "consecutive"),
    "gcn": ("convnet", "kl", "consecutive"),
    "wgcn": ("convnet", "jko", "consecutive"),
    "wgcn-data": ("convnet", "jko", "data"),
}
INITS = ("persistent", "buffer", "noise")
FAMILY = {  # the GGCN family: name -> module with build(name, profile, channels, image_size, device=, **options)
    "mgcn": "multigrid", "wmgcn": "multigrid",
    "ggcn": "cooperative", "ggcn-lhs": "cooperative", "ggcn+ams": "cooperative", "ggcn-lhs+ams": "cooperative",
    "dcgan": "dcgan",
}


def build_energy(kind: str, channels: int, image_size: int, width: int = 64, filters: str = "gabor") -> nn.Module:
    """``"convnet"``: the GCN ConvNet; ``"filters"``: FRAME on the Gabor/DoG bank or VGG-16 (``filters="vgg"``)."""
    if kind == "convnet":
        return ConvEnergy(channels, image_size, width)
    if filters == "gabor":
        bank = FilterBank(gabor_dog_bank(), channels)
    elif filters == "vgg":
        if channels != 3:
            raise ValueError("VGG-16 filters need 3-channel images; use filters='gabor' for grey images")
        bank = vgg16_filters()
    else:
        raise ValueError(f"unknown FRAME filters {filters!r}; choose 'gabor' (offline) or 'vgg' (pretrained VGG-16)")
    return FrameEnergy(bank, channels, image_size)


def build_model(
    name: str,
    profile: Profile,
    channels: int,
    image_size: int | None = None,
    *,
    n_particles: int | None = None,
    init: str = "persistent",
    filters: str = "gabor",
    device: str = "cpu",
    **overrides: Any,
) -> EnergyModel:
    """Build one of :data:`MODELS` at the profile's scale.

    ``overrides`` may set ``lr``, ``jko_weight``, ``langevin_steps``, ``step_size``, ``sigma``,
    ``width``, ``grad_clip`` and ``reinit_prob``. Names of the GGCN family (:data:`FAMILY`) go to
    their module's ``build``, which takes its own options.
    """
    if name in FAMILY:
        if n_particles is not None or init != "persistent" or filters != "gabor":
            raise ValueError(f"{name!r} does not take n_particles, init or filters; see ggcn.{FAMILY[name]}.build")
        return import_module(f".{FAMILY[name]}", __package__).build(name, profile, channels, image_size,
                                                                    device=device, **overrides)
    if name not in MODELS:
        raise ValueError(f"unknown model {name!r}; choose one of {sorted(MODELS) + sorted(FAMILY)}")
    if init not in INITS:
        raise ValueError(f"unknown particle initialiser {init!r}; choose one of {INITS}")
    allowed = {"lr", "jko_weight", "langevin_steps", "step_size", "sigma", "width", "grad_clip", "reinit_prob"}
    if set(overrides) - allowed:
        raise ValueError(f"unknown option(s) {sorted(set(overrides) - allowed)}; allowed: {sorted(allowed)}")
    get = lambda key: overrides.get(key, getattr(profile, key, None))  # noqa: E731
    size = image_size or profile.image_size
    kind, rule_name, endpoints = MODELS[name]
    energy = build_energy(kind, channels, size, get("width"), filters).to(device)
    sampler = LangevinConfig(
        n_steps=get("langevin_steps"), step_size=get("step_size"), sigma=get("sigma"), grad_clip=get("grad_clip")
    )
    n = n_particles or profile.batch_size
    init_fn = uniform_noise((channels, size, size))
    if init == "persistent":
        initialiser: NoiseInit = PersistentChains(init_fn, n, device)
    elif init == "buffer":
        initialiser = ReplayBuffer(init_fn, max(10 * n, 100), overrides.get("reinit_prob", 0.05), device)
    else:
        initialiser = NoiseInit(init_fn, device)
    rule = make_rule(rule_name, get("jko_weight"), endpoints)
    return EnergyModel(energy, rule, sampler, initialiser, get("lr"), n)
