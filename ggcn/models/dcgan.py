"""DCGAN (Radford et al. 2016): the adversarial baseline beside the energy-based models.

A generator G(z), z ~ N(0, I), and a discriminator D(x) (a logit) play the non-saturating game:

    D maximises  mean log σ(D(X_obs)) + mean log(1 − σ(D(G(z)))),
    G maximises  mean log σ(D(G(z))),

each with Adam (lr 2·10⁻⁴, β₁ = 0.5), one update each per iteration. Same data pipeline as the
other models: images in [−1, 1], a tanh output. The networks live in :mod:`ggcn.models.generators`.
"""
from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ggcn.config import Profile, image_side
from ggcn.core.learner import BETAS, Options, load_states, states
from ggcn.models.generators import DCGANDiscriminator, DCGANGenerator

DCGAN_NAME = "dcgan"


class DCGAN:
    """``step(x)`` updates D then G; ``sample(n)`` runs G in eval mode; ``particles`` = last fake batch."""

    def __init__(self, generator: nn.Module, discriminator: nn.Module, lr: float = 2e-4,
                 betas: tuple[float, float] = BETAS):
        self.generator, self.discriminator = generator, discriminator
        self.z_dim: int = generator.z_dim
        self.opt_generator = torch.optim.Adam(generator.parameters(), lr=lr, betas=betas)
        self.opt_discriminator = torch.optim.Adam(discriminator.parameters(), lr=lr, betas=betas)
        self.particles: Tensor | None = None

    def step(self, x_obs: Tensor, idx: Tensor | None = None) -> dict[str, Tensor]:
        self.generator.train()
        self.discriminator.train()
        z = torch.randn(len(x_obs), self.z_dim, device=x_obs.device)
        fake = self.generator(z)
        d_real, d_fake = self.discriminator(x_obs), self.discriminator(fake.detach())
        d_loss = F.binary_cross_entropy_with_logits(d_real, torch.ones_like(d_real)) + \
            F.binary_cross_entropy_with_logits(d_fake, torch.zeros_like(d_fake))
        self.opt_discriminator.zero_grad(set_to_none=True)
        d_loss.backward()
        self.opt_discriminator.step()
        d_gen = self.discriminator(fake)
        g_loss = F.binary_cross_entropy_with_logits(d_gen, torch.ones_like(d_gen))
        self.opt_generator.zero_grad(set_to_none=True)
        g_loss.backward(inputs=list(self.generator.parameters()))
        self.opt_generator.step()
        self.particles = fake.detach()
        return {
            "d_loss": d_loss.detach(), "g_loss": g_loss.detach(),
            "d_real": torch.sigmoid(d_real).mean().detach(), "d_fake": torch.sigmoid(d_fake).mean().detach(),
        }

    def sample(self, n: int) -> Tensor:
        self.generator.eval()
        with torch.no_grad():
            return self.generator(torch.randn(n, self.z_dim, device=next(self.generator.parameters()).device))

    def parts(self) -> dict[str, Any]:
        return {"generator": self.generator, "discriminator": self.discriminator,
                "opt_generator": self.opt_generator, "opt_discriminator": self.opt_discriminator}

    def state_dict(self) -> dict[str, Any]:
        return states(self.parts())

    def load_state_dict(self, state: dict[str, Any]) -> None:
        load_states(self.parts(), state)


DCGAN_OPTIONS = ("lr", "width", "z_dim")


def build_dcgan(
    name: str, profile: Profile, channels: int, image_size: int | None = None, *, device: str = "cpu", **overrides: Any
) -> DCGAN:
    """A DCGAN at the profile's scale (``width``, ``z_dim``); ``lr`` defaults to DCGAN's 2·10⁻⁴."""
    if name != DCGAN_NAME:
        raise ValueError(f"unknown baseline {name!r}; choose {DCGAN_NAME!r}")
    get = Options(profile, overrides, DCGAN_OPTIONS)
    size = image_side(image_size, profile)
    generator = DCGANGenerator(get("z_dim"), channels, size, get("width")).to(device)
    discriminator = DCGANDiscriminator(channels, size, get("width")).to(device)
    return DCGAN(generator, discriminator, overrides.get("lr", 2e-4))
