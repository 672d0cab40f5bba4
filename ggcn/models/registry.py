"""FRAME, wFRAME, GCN and wGCN: one energy, one particle initialiser, one learning rule.

Every model here is an :class:`EnergyModel`; the names only choose the pieces:

=============  =========================  ===================================
name           energy f_θ                 learning rule
=============  =========================  ===================================
frame          fixed filters, learned θ   KL (MLE)
wframe         fixed filters, learned θ   JKO, consecutive reading
gcn            ConvNet                    KL (MLE)
wgcn           ConvNet                    JKO, consecutive reading [reading]
wgcn-data      ConvNet                    JKO, data reading [reading]
wgcn-proximal  ConvNet                    JKO, proximal reading [reading]
=============  =========================  ===================================

Where the chains start (``init``): persistent chains, a replay buffer of past particles
(Du & Mordatch 2019) or fresh noise every iteration. Whatever trained it, :meth:`EnergyModel.sample`
draws *fresh* samples: ``sample_steps`` Langevin steps from the initialiser's noise.
"""
from __future__ import annotations

import math
from dataclasses import replace
from typing import Any

import torch
from torch import Tensor, nn

from ggcn.models import cooperative
from ggcn.models import dcgan
from ggcn.models import multigrid
from ggcn.config import Profile, image_side, recipe
from ggcn.core.rules import KLRule, make_rule, weight_unit
from ggcn.core.langevin import Chain, LangevinConfig, NoiseInit, PersistentChains, ReplayBuffer, langevin, uniform_noise
from ggcn.models.nets import ConvEnergy, FilterBank, FrameEnergy, gabor_dog_bank, vgg16_filters
from ggcn.core.train import check_seed


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
        sample_steps: int | None = None,
    ):
        self.energy, self.rule, self.sampler, self.init = energy, rule, sampler, init
        self.n_particles = n_particles
        self.sample_steps = sampler.n_steps if sample_steps is None else sample_steps
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
        """n fresh samples: ``n_steps`` (default ``sample_steps``) Langevin steps from the initialiser's noise."""
        x0 = self.init.init_fn(n).to(self.init.device)
        steps = self.sample_steps if n_steps is None else n_steps
        return langevin(self.energy, x0, replace(self.sampler, n_steps=steps)).x

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
        return {
            "energy": self.energy.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "init": self.init.state_dict(),
            "rule": self.rule.state_dict(),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.energy.load_state_dict(state["energy"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.init.load_state_dict(state["init"])
        self.rule.load_state_dict(state.get("rule", {}))


MODELS = {
    "frame": ("filters", "kl", "consecutive"),
    "wframe": ("filters", "jko", "consecutive"),
    "gcn": ("convnet", "kl", "consecutive"),
    "wgcn": ("convnet", "jko", "consecutive"),
    "wgcn-data": ("convnet", "jko", "data"),
    "wgcn-proximal": ("convnet", "jko", "proximal"),
}
INITS = ("persistent", "buffer", "noise")
FAMILY = {  # the GGCN family: name -> the module whose build(name, profile, channels, image_size, device=, **options) makes it
    "mgcn": multigrid, "wmgcn": multigrid,
    "ggcn": cooperative, "ggcn-lhs": cooperative, "ggcn+ams": cooperative, "ggcn-lhs+ams": cooperative,
    "dcgan": dcgan,
}


def build_energy(kind: str, channels: int, image_size: int, width: int = 64, filters: str = "gabor",
                 scale: float = 1.0) -> nn.Module:
    """``"convnet"``: the GCN ConvNet (output gain ``scale``); ``"filters"``: FRAME on the Gabor/DoG bank
    or VGG-16 (``filters="vgg"``)."""
    if kind == "convnet":
        return ConvEnergy(channels, image_size, width, scale=scale)
    if filters == "gabor":
        bank = FilterBank(gabor_dog_bank(), channels)
    elif filters == "vgg":
        if channels != 3:
            raise ValueError("VGG-16 filters need 3-channel images; use filters='gabor' for grey images")
        bank = vgg16_filters()
    else:
        raise ValueError(f"unknown FRAME filters {filters!r}; choose 'gabor' (offline) or 'vgg' (pretrained VGG-16)")
    return FrameEnergy(bank, channels, image_size, scale)


EBM_OPTIONS = {
    "lr", "jko_weight", "jko_scale", "langevin_steps", "step_size", "sigma", "width", "grad_clip", "reinit_prob",
    "energy_scale", "sample_steps", "buffer_size",
}


def build_model(
    name: str,
    profile: Profile,
    channels: int,
    image_size: int | None = None,
    *,
    family: str | None = None,
    n_particles: int | None = None,
    init: str | None = None,
    filters: str = "gabor",
    device: str = "cpu",
    seed: int | None = 0,
    **overrides: Any,
) -> EnergyModel:
    """Build a model by name at the profile's scale, with the named recipe of a data ``family``.

    ``family`` ("digits", "faces", "texture") applies :func:`ggcn.config.recipe` (the settings that
    make that model learn on that data); ``overrides`` replace single settings. Without a family the
    profile's own values are used. Options of :data:`MODELS`: ``lr``, ``jko_weight`` (λ) and
    ``jko_scale`` (its unit, see :func:`ggcn.core.rules.weight_unit`), ``langevin_steps``, ``step_size``,
    ``sigma``, ``width``, ``energy_scale`` (the ConvNet's output gain), ``grad_clip``, ``init``
    ("persistent", "buffer", "noise"), ``buffer_size``, ``reinit_prob`` and ``sample_steps`` (Langevin
    steps of a fresh sample). Names of the GGCN family (:data:`FAMILY`) go to their module's
    ``build``, which takes its own options.

    ``seed`` fixes the initial weights and particles (the global random stream is left as it was;
    ``None`` draws them from it). The model's ``identity`` (name, channels, side, options) goes into
    its checkpoints, so a resume into another model is refused.
    """
    size = image_side(image_size, profile)
    if family is not None:
        overrides = {**recipe(name, family).options, **overrides}
        init = overrides.pop("init", init)
    _check_rates(overrides)
    with torch.random.fork_rng(devices=[]):
        if seed is not None:
            torch.manual_seed(check_seed(seed))
        model = _build(name, profile, channels, size, n_particles, init, filters, device, overrides)
    options = {**overrides, **({"init": init or "persistent", "n_particles": n_particles, "filters": filters}
                               if name in MODELS else {})}
    model.identity = {"model": name, "channels": channels, "image_size": size,
                      "options": {k: _plain(v) for k, v in options.items() if v is not None}}
    return model


def _check_rates(options: dict[str, Any]) -> None:
    for key in ("lr", "lr_generator", "lr_codes"):
        value = options.get(key)
        if value is not None and (not isinstance(value, (int, float)) or not math.isfinite(value) or value <= 0):
            raise ValueError(f"{key} must be a finite number > 0, got {value!r}")


def _plain(value: Any) -> Any:
    """A picklable, comparable stand-in for an option (a tensor by its shape)."""
    return ("tensor", tuple(value.shape)) if isinstance(value, Tensor) else value


def _build(name: str, profile: Profile, channels: int, size: int, n_particles: int | None, init: str | None,
           filters: str, device: str, overrides: dict[str, Any]) -> Any:
    if name in FAMILY:
        if n_particles is not None or init is not None or filters != "gabor":
            raise ValueError(f"{name!r} does not take n_particles, init or filters; see {FAMILY[name].__name__}.build")
        return FAMILY[name].build(name, profile, channels, size, device=device, **overrides)
    if name not in MODELS:
        raise ValueError(f"unknown model {name!r}; choose one of {sorted(MODELS) + sorted(FAMILY)}")
    init = init or "persistent"
    if init not in INITS:
        raise ValueError(f"unknown particle initialiser {init!r}; choose one of {INITS}")
    if set(overrides) - EBM_OPTIONS:
        raise ValueError(f"unknown option(s) {sorted(set(overrides) - EBM_OPTIONS)}; allowed: {sorted(EBM_OPTIONS)}")
    get = lambda key, default=None: overrides.get(key, getattr(profile, key, default))  # noqa: E731
    kind, rule_name, reading = MODELS[name]
    energy = build_energy(kind, channels, size, get("width"), filters, get("energy_scale", 1.0)).to(device)
    sampler = LangevinConfig(
        n_steps=get("langevin_steps"), step_size=get("step_size"), sigma=get("sigma"), grad_clip=get("grad_clip")
    )
    n = n_particles or profile.batch_size
    init_fn = uniform_noise((channels, size, size))
    if init == "persistent":
        initialiser: NoiseInit = PersistentChains(init_fn, n, device)
    elif init == "buffer":
        initialiser = ReplayBuffer(init_fn, get("buffer_size", max(10 * n, 100)), get("reinit_prob", 0.05), device)
    else:
        initialiser = NoiseInit(init_fn, device)
    unit = weight_unit(get("jko_scale", "paper"), sampler.n_steps, sampler.step_size)
    rule = make_rule(rule_name, get("jko_weight"), reading, unit)
    return EnergyModel(energy, rule, sampler, initialiser, get("lr"), n, sample_steps=get("sample_steps"))
