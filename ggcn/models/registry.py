"""Every model by name: one table from a name to the builder that makes it.

The energy models are :class:`ggcn.core.learner.EnergyModel` s; their names choose the pieces:

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

Their chains start (``init``) from persistent chains, a replay buffer of past particles
(Du & Mordatch 2019) or fresh noise. The GGCN family (MGCN, GGCN, DCGAN) has its own builders.
"""
from __future__ import annotations

import math
from functools import partial
from typing import Any, Callable

import torch
from torch import Tensor, nn

from ggcn.config import Profile, image_side, recipe
from ggcn.core.chains import NoiseInit, PersistentChains, ReplayBuffer, uniform_noise
from ggcn.core.learner import EnergyModel, Options
from ggcn.core.train import check_seed
from ggcn.models import cooperative, dcgan, multigrid
from ggcn.models.nets import ConvEnergy, FilterBank, FrameEnergy, gabor_dog_bank, vgg16_filters

INITS = ("persistent", "buffer", "noise")
ENERGY_OPTIONS = ("lr", "jko_weight", "jko_scale", "langevin_steps", "step_size", "sigma", "width", "grad_clip",
                  "reinit_prob", "energy_scale", "sample_steps", "buffer_size", "frame_weights")


def build_energy(kind: str, channels: int, image_size: int, width: int = 64, filters: str = "gabor",
                 scale: float = 1.0, frame_weights: str = "stationary") -> nn.Module:
    """``"convnet"``: the GCN ConvNet (output gain ``scale``); ``"filters"``: FRAME on the Gabor/DoG bank
    or VGG-16 (``filters="vgg"``) with ``frame_weights`` θ (:data:`~ggcn.models.nets.FRAME_WEIGHTS`)."""
    if kind == "convnet":
        return ConvEnergy(channels, image_size, width, scale=scale)
    if filters not in ("gabor", "vgg"):
        raise ValueError(f"unknown FRAME filters {filters!r}; choose 'gabor' (offline) or 'vgg' (pretrained VGG-16)")
    if filters == "vgg" and channels != 3:
        raise ValueError("VGG-16 filters need 3-channel images; use filters='gabor' for grey images")
    bank = FilterBank(gabor_dog_bank(), channels) if filters == "gabor" else vgg16_filters()
    return FrameEnergy(bank, channels, image_size, scale, frame_weights)


def energy_model(name: str, profile: Profile, channels: int, size: int, *, kind: str, rule: str, reading: str,
                 n_particles: int | None, init: str | None, filters: str, device: str, **overrides: Any) -> EnergyModel:
    """An :class:`EnergyModel`: the energy ``kind``, the rule and its reading come from the table."""
    init = init or "persistent"
    if init not in INITS:
        raise ValueError(f"unknown particle initialiser {init!r}; choose one of {INITS}")
    get = Options(profile, overrides, ENERGY_OPTIONS)
    energy = build_energy(kind, channels, size, get("width"), filters, get("energy_scale", 1.0),
                          get("frame_weights", "stationary")).to(device)
    n, init_fn = n_particles or profile.batch_size, uniform_noise((channels, size, size))
    initialisers = {
        "persistent": lambda: PersistentChains(init_fn, n, device),
        "buffer": lambda: ReplayBuffer(init_fn, get("buffer_size", max(10 * n, 100)), get("reinit_prob", 0.05), device),
        "noise": lambda: NoiseInit(init_fn, device),
    }
    return EnergyModel(energy, get.rule(rule, reading), get.sampler(), initialisers[init](), get("lr"), n,
                       sample_steps=get("sample_steps"))


def _energy(kind: str, rule: str, reading: str = "consecutive") -> Callable[..., EnergyModel]:
    return partial(energy_model, kind=kind, rule=rule, reading=reading)


REGISTRY: dict[str, Callable[..., Any]] = {  # name -> builder(name, profile, channels, size, device=, **options)
    "frame": _energy("filters", "kl"),
    "wframe": _energy("filters", "jko"),
    "gcn": _energy("convnet", "kl"),
    "wgcn": _energy("convnet", "jko"),
    "wgcn-data": _energy("convnet", "jko", "data"),
    "wgcn-proximal": _energy("convnet", "jko", "proximal"),
    **{name: multigrid.build_multigrid for name in multigrid.MULTIGRID_NAMES},
    **{name: cooperative.build_ggcn for name in cooperative.GGCN_NAMES},
    dcgan.DCGAN_NAME: dcgan.build_dcgan,
}
MODELS = tuple(name for name, builder in REGISTRY.items() if getattr(builder, "func", None) is energy_model)
FAMILY = tuple(name for name in REGISTRY if name not in MODELS)  # the GGCN family: MGCN, GGCN, DCGAN


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
) -> Any:
    """Build a model by name at the profile's scale, with the named recipe of a data ``family``.

    ``family`` ("digits", "faces", "texture") applies :func:`ggcn.config.recipe`; ``overrides`` replace single
    settings (without a family the profile's values count). Energy models (:data:`MODELS`) take ``n_particles``,
    ``init`` (:data:`INITS`), ``filters`` and :data:`ENERGY_OPTIONS` (``jko_weight`` λ, ``jko_scale`` its unit,
    ``energy_scale`` the ConvNet's gain, ``sample_steps`` of a fresh sample, …); the GGCN family (:data:`FAMILY`)
    its builder's options. ``seed`` fixes the initial weights and particles and leaves the global random stream
    as it was (``None`` draws from it). The model's ``identity`` (name, channels, side, options) goes into its
    checkpoints, so a resume into another model is refused.
    """
    if name not in REGISTRY:
        raise ValueError(f"unknown model {name!r}; choose one of {sorted(MODELS) + sorted(FAMILY)}")
    size = image_side(image_size, profile)
    if family is not None:
        overrides = {**recipe(name, family).options, **overrides}
        init = overrides.pop("init", init)
    for key in ("lr", "lr_generator", "lr_codes"):
        value = overrides.get(key)
        if value is not None and (not isinstance(value, (int, float)) or not math.isfinite(value) or value <= 0):
            raise ValueError(f"{key} must be a finite number > 0, got {value!r}")
    builder, energy = REGISTRY[name], name in MODELS
    if energy:
        overrides = {**overrides, "n_particles": n_particles, "init": init, "filters": filters}
    elif n_particles is not None or init is not None or filters != "gabor":
        raise ValueError(f"{name!r} does not take n_particles, init or filters; see {builder.__module__}")
    with torch.random.fork_rng(devices=[]):
        if seed is not None:
            torch.manual_seed(check_seed(seed))
        model = builder(name, profile, channels, size, device=device, **overrides)
    if energy:
        overrides["init"] = init or "persistent"
    model.identity = {"model": name, "channels": channels, "image_size": size,
                      "options": {k: _plain(v) for k, v in overrides.items() if v is not None}}
    return model


def _plain(value: Any) -> Any:
    """A picklable, comparable stand-in for an option (a tensor by its shape)."""
    return ("tensor", tuple(value.shape)) if isinstance(value, Tensor) else value
