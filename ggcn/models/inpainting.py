"""GGCN+AMS for inpainting (Sec. 5.6): the generator reads the masked image as its hidden variable.

Everything else is GGCN+AMS (:mod:`ggcn.models.cooperative`), unchanged [reading]. The generator
g_α(z | x ⊙ m, m) (:class:`MaskedImageGenerator`) encodes the masked image and the mask into
h = E(x ⊙ m, m), decodes [h, z] with the Table IV "v0" stack into a fill and returns the completion
x̂ = m ⊙ x + (1 − m) ⊙ fill (the paper's is a ResNet-50 autoencoder; ours a small ConvNet encoder).
z is GGCN's code (learned per image with LHS, else fresh; fresh at completion time). f_θ learns
with the JKO rule on real against completed faces, and AMS fills the hole so that the whole image
is likely under f_θ. Every iteration draws a fresh mask per image, of a kind picked from
``mask_kinds`` (:func:`ggcn.models.masks.mixed_masks`), so one model fills every kind.
"""
from __future__ import annotations

from typing import Any

import torch
from torch import Tensor, nn

from ggcn.config import Profile, image_side, recipe
from ggcn.core.langevin import LangevinConfig
from ggcn.core.learner import Options
from ggcn.core.rules import KLRule
from ggcn.models.cooperative import GGCN, GGCN_AMS, GGCN_NO_LHS_AMS, VARIANTS
from ggcn.models.generators import build_generator
from ggcn.models.masks import MASKS, check_kinds, complete, mixed_masks
from ggcn.models.nets import LEAKY_SLOPE, ConvEnergy, down_convs

INPAINTING_NAMES = (GGCN_AMS, GGCN_NO_LHS_AMS)  # the amortized variants; Langevin revision would also move known pixels


class MaskedImageEncoder(nn.Module):
    """E(x ⊙ m, m): stride-2 4×4 convolutions (leaky ReLU) from ``size`` down to 4×4, then a linear
    map to a ``code_dim`` vector. Input: the masked image with the mask as one more channel."""

    def __init__(self, channels: int, image_size: int, width: int, code_dim: int, slope: float = LEAKY_SLOPE):
        super().__init__()
        convs = down_convs(channels + 1, image_size, width, slope)
        self.body = nn.Sequential(*convs, nn.Flatten(), nn.Linear(convs.out_channels * 16, code_dim))

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

    def __init__(self, generator: MaskedImageGenerator, energy: nn.Module, rule: KLRule, sampler: LangevinConfig,
                 *, lhs: bool, mask_kinds: tuple[str, ...] = MASKS, **options: Any):
        if not isinstance(generator, MaskedImageGenerator):
            raise TypeError("InpaintingGGCN needs a MaskedImageGenerator (its input is the masked image)")
        check_kinds(mask_kinds, "mask_kinds")
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


INPAINTING_OPTIONS = ("lr", "lr_generator", "lr_codes", "code_prior", "code_sampling", "jko_weight", "jko_scale",
                      "reading", "sigma", "step_size", "width", "energy_scale", "generator_width", "z_dim", "code_dim",
                      "gen_every", "output")


def build_inpainter(name: str, profile: Profile, channels: int, image_size: int | None = None, *,
                    n_examples: int | None = None, mask_kinds: tuple[str, ...] = MASKS, family: str | None = None,
                    device: str = "cpu", **overrides: Any) -> InpaintingGGCN:
    """An inpainting GGCN+AMS (``"ggcn+ams"``, LHS codes; needs ``n_examples``) or ``"ggcn-lhs+ams"``.

    ``family`` applies the recipe of the same GGCN variant (:func:`ggcn.config.recipe`); ``overrides``
    (:data:`INPAINTING_OPTIONS`, ``code_dim`` the encoder's code, default z_dim) replace single settings. The model
    takes no Langevin steps: the recipe's (else the profile's) number only sets λ's unit, as for GGCN+AMS.
    """
    if name not in INPAINTING_NAMES:
        raise ValueError(f"unknown inpainting variant {name!r}; choose one of {INPAINTING_NAMES} (amortized sampling)")
    by_family = dict(recipe(name, family).options) if family is not None else {}
    unit_steps = by_family.pop("langevin_steps", profile.langevin_steps)  # λ's unit only
    overrides = {**by_family, **overrides}
    get = Options(profile, overrides, INPAINTING_OPTIONS)
    size, z_dim = image_side(image_size, profile), get("z_dim")
    decoder = {"output": overrides["output"]} if "output" in overrides else {}
    generator = MaskedImageGenerator(channels, size, z_dim, get("generator_width", get("width")),
                                     get("code_dim", z_dim), **decoder).to(device)
    energy = ConvEnergy(channels, size, get("width"), scale=get("energy_scale", 1.0)).to(device)
    return InpaintingGGCN(generator, energy, get.rule("jko", unit_steps=unit_steps), get.sampler(n_steps=0),
                          lhs=VARIANTS[name][0], mask_kinds=mask_kinds, n_examples=n_examples, lr=get("lr"),
                          lr_generator=get("lr_generator", get("lr")),
                          **{k: overrides[k] for k in ("lr_codes", "code_prior", "code_sampling", "gen_every")
                             if k in overrides})

