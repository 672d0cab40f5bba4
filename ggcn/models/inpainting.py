"""GGCN+AMS for inpainting: the generator reads the masked image instead of only a hidden code.

The paper (Sec. 5.6) feeds GGCN+AMS's generator "an image multiplied by a mask" and treats that
masked image as the hidden variable. Everything else is GGCN+AMS (:mod:`ggcn.models.cooperative`),
unchanged [reading]:

* **Generator** g_α(z | x ⊙ m, m) (:class:`MaskedImageGenerator`): an encoder E reads the masked
  image and the mask and gives a code h = E(x ⊙ m, m); the Table IV "v0" deconvolution stack
  decodes [h, z] into a fill; the output is the *completion* x̂ = m ⊙ x + (1 − m) ⊙ fill, so the
  known pixels are kept and only the hole is generated. The paper's generator is a ResNet-50
  autoencoder; ours is a small ConvNet encoder with the package's deconvolution decoder.
  z is the hidden code GGCN already has: a learned code per training image (LHS) or fresh
  N(0, I) (without LHS); at completion time it is always drawn fresh (:meth:`GGCN.fresh_codes`).
* **Synthesizer** f_θ learns with the JKO rule on (X_obs, X̂): real faces against completed ones.
* **AMS** α ascends the model log-density of the completions, mean [f_θ(x̂) − ||x̂||²/(2σ²)],
  with θ frozen: the hole is filled so that the whole image looks likely to f_θ.
* **Masks**: every learning iteration draws a fresh mask per training image, of a kind picked
  at random from ``mask_kinds`` (:func:`ggcn.models.masks.mixed_masks`), so one model fills every kind.

:class:`InpaintingGGCN` is :class:`ggcn.models.cooperative.GGCN` whose ``step`` first draws the masks
and hands the masked batch to the generator; it trains with :func:`ggcn.core.train.train` (pass
``labels=example_index(x)``, as for every GGCN).
"""
from __future__ import annotations

import math
from typing import Any

import torch
from torch import Tensor, nn

from ggcn.config import Profile, image_side, recipe
from ggcn.models.cooperative import GGCN, GGCN_AMS, GGCN_NO_LHS_AMS, VARIANTS, example_index
from ggcn.core.rules import KLRule, make_rule, weight_unit
from ggcn.models.generators import build_generator
from ggcn.core.langevin import LangevinConfig
from ggcn.models.nets import LEAKY_SLOPE, ConvEnergy, check_image_size
from ggcn.models.masks import MASKS, complete, mixed_masks
from ggcn.core.train import train

NAMES = (GGCN_AMS, GGCN_NO_LHS_AMS)  # the amortized variants; Langevin revision would also move known pixels


class MaskedImageEncoder(nn.Module):
    """E(x ⊙ m, m): stride-2 4×4 convolutions (leaky ReLU) from ``size`` down to 4×4, then a linear
    map to a ``code_dim`` vector. Input: the masked image with the mask as one more channel."""

    def __init__(self, channels: int, image_size: int, width: int, code_dim: int, slope: float = LEAKY_SLOPE):
        super().__init__()
        check_image_size(image_size)
        layers: list[nn.Module] = []
        c_in, c_out = channels + 1, width
        for _ in range(int(math.log2(image_size // 4))):
            layers += [nn.Conv2d(c_in, c_out, 4, 2, 1), nn.LeakyReLU(slope)]
            c_in, c_out = c_out, 2 * c_out
        self.body = nn.Sequential(*layers, nn.Flatten(), nn.Linear(c_in * 16, code_dim))

    def forward(self, masked: Tensor, mask: Tensor) -> Tensor:
        return self.body(torch.cat([masked, mask], dim=1))


class MaskedImageGenerator(nn.Module):
    """g_α(z | x ⊙ m, m) = m ⊙ x + (1 − m) ⊙ G([E(x ⊙ m, m), z]): a completion of the masked image.

    The masked batch is set by :meth:`condition` before the GGCN calls ``generator(z)``; ``z`` must
    then have one row per image. Its attributes (``z_dim``, ``channels``, ``image_size``,
    ``n_classes = 0``) are those GGCN reads from any generator.
    """

    def __init__(self, channels: int, image_size: int, z_dim: int, width: int, code_dim: int, **decoder: Any):
        super().__init__()
        if z_dim < 1 or code_dim < 1:
            raise ValueError(f"need z_dim ≥ 1 and code_dim ≥ 1, got z_dim={z_dim}, code_dim={code_dim}")
        self.encoder = MaskedImageEncoder(channels, image_size, width, code_dim)
        self.decoder = build_generator("v0", code_dim + z_dim, channels, image_size, width, **decoder)
        self.z_dim, self.code_dim, self.channels, self.image_size, self.n_classes = (
            z_dim, code_dim, channels, image_size, 0)
        self._masked: Tensor | None = None
        self._mask: Tensor | None = None

    def condition(self, x: Tensor, mask: Tensor) -> None:
        """Set the batch to complete: images ``(N, C, H, W)`` and masks ``(N, 1, H, W)`` (1 known, 0 hidden)."""
        if x.shape[1:] != (self.channels, self.image_size, self.image_size):
            raise ValueError(f"this generator completes images of shape ({self.channels}, {self.image_size}, "
                             f"{self.image_size}), got {tuple(x.shape[1:])}")
        self._masked, self._mask = complete(x, mask, torch.zeros_like(x)), mask

    def forward(self, z: Tensor, y: Tensor | None = None) -> Tensor:
        if y is not None:
            raise ValueError("the inpainting generator is unconditional; pass no labels")
        if self._mask is None:
            raise RuntimeError("call generator.condition(x, mask) first: it completes a given masked batch")
        if z.shape != (len(self._mask), self.z_dim):
            raise ValueError(f"codes must have shape ({len(self._mask)}, {self.z_dim}) to match the masked "
                             f"batch, got {tuple(z.shape)}")
        fill = self.decoder(torch.cat([self.encoder(self._masked, self._mask), z], dim=1))
        return self._masked + (1 - self._mask) * fill


class InpaintingGGCN(GGCN):
    """GGCN+AMS (or GGCN−LHS+AMS) with a :class:`MaskedImageGenerator`: each learning iteration
    draws masks for the batch, gives the masked batch to the generator, then runs ``GGCN.step``."""

    def __init__(
        self, generator: MaskedImageGenerator, energy: nn.Module, rule: KLRule, sampler: LangevinConfig, *,
        lhs: bool, mask_kinds: tuple[str, ...] = MASKS, **options: Any,
    ):
        if not isinstance(generator, MaskedImageGenerator):
            raise TypeError("InpaintingGGCN needs a MaskedImageGenerator (its input is the masked image)")
        if set(mask_kinds) - set(MASKS) or not mask_kinds:
            raise ValueError(f"mask_kinds must be a non-empty selection of {MASKS}, got {mask_kinds}")
        super().__init__(generator, energy, rule, sampler, lhs=lhs, ams=True, **options)
        self.mask_kinds = tuple(mask_kinds)

    def step(self, x_obs: Tensor, idx: Tensor | None = None) -> dict[str, Tensor]:
        """Fresh masks for the batch, then one GGCN+AMS learning iteration on the completions."""
        masks = mixed_masks(len(x_obs), x_obs.shape[-1], self.mask_kinds, device=str(x_obs.device))
        self.generator.condition(x_obs, masks)
        stats = super().step(x_obs, idx)
        stats["coverage"] = (1 - masks.mean()).detach()
        return stats

    @torch.no_grad()
    def complete(self, x: Tensor, mask: Tensor, z: Tensor | None = None) -> Tensor:
        """Completions x̂ = m ⊙ x + (1 − m) ⊙ fill of ``x`` under ``mask``, from codes ``z``
        (default: fresh codes, :meth:`GGCN.fresh_codes`), in one generator pass."""
        self.generator.condition(x, mask)
        z = self.fresh_codes(len(x)) if z is None else z
        was_training = self.generator.training
        self.generator.eval()
        try:
            return self.synthesize(z, n_steps=0)
        finally:
            self.generator.train(was_training)


OPTIONS = {
    "lr", "lr_generator", "lr_codes", "code_prior", "code_sampling", "jko_weight", "jko_scale", "reading", "sigma",
    "step_size", "width", "energy_scale", "generator_width", "z_dim", "code_dim", "gen_every", "output",
}


def build(
    name: str,
    profile: Profile,
    channels: int,
    image_size: int | None = None,
    *,
    n_examples: int | None = None,
    mask_kinds: tuple[str, ...] = MASKS,
    family: str | None = None,
    device: str = "cpu",
    **overrides: Any,
) -> InpaintingGGCN:
    """An inpainting GGCN+AMS (``"ggcn+ams"``, LHS codes; needs ``n_examples``) or ``"ggcn-lhs+ams"``.

    ``family`` applies the recipe of the same GGCN variant on that data family
    (:func:`ggcn.config.recipe`); ``overrides`` replace single settings. The model takes no Langevin
    steps: the recipe's (else the profile's) number of steps only sets λ's unit, as it does for
    GGCN+AMS. Sizes come from the profile: ``width`` (f_θ and the encoder), ``z_dim`` (the hidden
    code); ``overrides``: ``lr`` (f_θ), ``lr_generator``, ``lr_codes``, ``code_prior``,
    ``code_sampling``, ``jko_weight``, ``jko_scale``, ``reading``, ``sigma``, ``step_size``, ``width``,
    ``energy_scale``, ``generator_width``, ``z_dim``, ``code_dim`` (the encoder's code, default z_dim),
    ``gen_every`` (k) and ``output`` ("sigmoid", "tanh").
    """
    if name not in NAMES:
        raise ValueError(f"unknown inpainting variant {name!r}; choose one of {NAMES} (amortized sampling)")
    by_family = dict(recipe(name, family).options) if family is not None else {}
    unit_steps = by_family.pop("langevin_steps", profile.langevin_steps)  # λ's unit only
    overrides = {**by_family, **overrides}
    if set(overrides) - OPTIONS:
        raise ValueError(f"unknown option(s) {sorted(set(overrides) - OPTIONS)}; allowed: {sorted(OPTIONS)}")
    get = lambda key, default=None: overrides.get(key, getattr(profile, key, default))  # noqa: E731
    size = image_side(image_size, profile)
    lhs, _ = VARIANTS[name]
    z_dim = get("z_dim")
    decoder = {"output": overrides["output"]} if "output" in overrides else {}
    generator = MaskedImageGenerator(channels, size, z_dim, get("generator_width", get("width")),
                                     overrides.get("code_dim", z_dim), **decoder).to(device)
    energy = ConvEnergy(channels, size, get("width"), scale=get("energy_scale", 1.0)).to(device)
    sampler = LangevinConfig(n_steps=0, step_size=get("step_size"), sigma=get("sigma"))
    unit = weight_unit(get("jko_scale", "paper"), unit_steps, sampler.step_size)
    rule = make_rule("jko", get("jko_weight"), get("reading", "consecutive"), unit)
    options = {k: overrides[k] for k in ("lr_codes", "code_prior", "code_sampling", "gen_every") if k in overrides}
    return InpaintingGGCN(
        generator, energy, rule, sampler, lhs=lhs, mask_kinds=mask_kinds, n_examples=n_examples,
        lr=get("lr"), lr_generator=get("lr_generator", get("lr")), **options,
    )


def train_inpainter(
    name: str,
    train_set: Tensor,
    profile: Profile,
    seed: int,
    *,
    iterations: int | None = None,
    mask_kinds: tuple[str, ...] = MASKS,
    device: str = "cpu",
    **overrides: Any,
) -> InpaintingGGCN:
    """Build :func:`build`'s model with weights seeded by ``seed`` and train it on ``train_set`` with
    :func:`ggcn.core.train.train` (batches of the profile's size, a fresh mask per image and iteration);
    ``overrides`` go to :func:`build` (e.g. ``family="faces"`` for the recipe)."""
    torch.manual_seed(seed)
    model = build(name, profile, train_set.shape[1], train_set.shape[-1], n_examples=len(train_set),
                  mask_kinds=mask_kinds, device=device, **overrides)
    train(model, train_set, profile.iterations if iterations is None else iterations,
          batch_size=profile.batch_size, labels=example_index(train_set), seed=seed, device=device)
    return model
