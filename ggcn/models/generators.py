"""Generators g_α(z): the learnable up-sampling networks of GGCN, and the DCGAN pair.

A generator maps a hidden code z ∈ R^d (with an optional class label y) to an image in
[−1, 1], the range of every data set in :mod:`ggcn.measure.data`:

* :class:`DeconvGenerator` -- the paper's "v0" (Table IV): deconvolutions with leaky ReLU 0.02,
  ``1 → 4 → 8 → … → size`` (five at 64×64), a convolution and 2·sigmoid − 1 (or tanh). The table's
  kernels, widths, norms and initial std were lost; ours are DCGAN's (4×4, stride 2, no norm,
  N(0, 0.02²)) [reading].
* :class:`ResNetGenerator` -- a small residual up-sampler, our stand-in for the paper's
  ResNet generator ("v1", best CIFAR-10 model; not described in the text) [reading].
* DCGAN (Radford et al. 2016): :class:`DCGANGenerator` (ReLU, batch norm, tanh, the last layer a
  deconvolution) and :class:`DCGANDiscriminator` (leaky ReLU 0.2, batch norm, one logit).

With ``n_classes > 0`` the code is concatenated with a learned label embedding (conditional
generation): ``g(z, y) = G([z, e(y)])``.
"""
from __future__ import annotations

import math
from abc import ABC, abstractmethod

import torch
from torch import Tensor, nn

from ggcn.models.nets import LEAKY_SLOPE

OUTPUTS = ("sigmoid", "tanh")


def _check_size(image_size: int) -> int:
    """Number of stride-2 up-samplings from 4×4 to ``image_size`` (a power of two ≥ 8)."""
    n_up = math.log2(image_size / 4) if image_size >= 8 else -1
    if n_up < 1 or n_up != int(n_up):
        raise ValueError(f"generators need a power-of-two image size ≥ 8 (8, 16, 32, 64, 128), got {image_size}")
    return int(n_up)


def _normal_init(module: nn.Module, std: float = 0.02) -> None:
    """Weights ~ N(0, std²), biases 0, norm scales 1 (Table IV's isotropic Gaussian; DCGAN's 0.02)."""
    for m in module.modules():
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)):
            nn.init.normal_(m.weight, 0.0, std)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.normal_(m.weight, 1.0, std)
            nn.init.zeros_(m.bias)


class _Generator(nn.Module, ABC):
    """What every generator shares: the input stage (z, or [z, e(y)] with a label embedding e), the
    ``n_up = log2(size/4)`` up-samplings from 4×4 with ``width·2^(n_up−1)`` channels there, and the
    output map to [−1, 1]. A subclass makes its layers in ``layers`` (and runs them in ``decode``)."""

    output_default, normal_init = "sigmoid", True

    def __init__(self, z_dim: int, channels: int = 3, image_size: int = 32, width: int = 64, n_classes: int = 0,
                 label_dim: int = 16, output: str | None = None, slope: float = LEAKY_SLOPE):
        super().__init__()
        if z_dim < 1 or n_classes < 0:
            raise ValueError(f"need z_dim ≥ 1 and n_classes ≥ 0, got z_dim={z_dim}, n_classes={n_classes}")
        self.output = output or self.output_default
        if self.output not in OUTPUTS:
            raise ValueError(f"unknown generator output {output!r}; choose one of {OUTPUTS}")
        self.z_dim, self.n_classes, self.channels, self.image_size = z_dim, n_classes, channels, image_size
        self.embed = nn.Embedding(n_classes, label_dim) if n_classes else None
        n_up = _check_size(image_size)
        self.layers(z_dim + (label_dim if n_classes else 0), width * 2 ** (n_up - 1), n_up, width, slope)
        if self.normal_init:
            _normal_init(self)

    @abstractmethod
    def layers(self, in_dim: int, c: int, n_up: int, width: int, slope: float) -> None:
        """Make the stack's modules: from ``in_dim`` inputs to ``c`` channels at 4×4, ``n_up`` up-samplings."""

    def decode(self, h: Tensor) -> Tensor:
        """The layers on the code h; by default a deconvolution ``body`` from a 1×1 start."""
        return self.body(h[:, :, None, None])

    def forward(self, z: Tensor, y: Tensor | None = None) -> Tensor:
        if z.dim() != 2 or z.shape[1] != self.z_dim:
            raise ValueError(f"codes must have shape (B, {self.z_dim}), got {tuple(z.shape)}")
        if self.embed is None and y is not None:
            raise ValueError("this generator is unconditional; build it with n_classes > 0 to pass labels")
        if self.embed is not None and y is None:
            raise ValueError(f"this generator is conditional ({self.n_classes} classes); pass labels y")
        x = self.decode(z if self.embed is None else torch.cat([z, self.embed(y)], dim=1))
        return torch.tanh(x) if self.output == "tanh" else 2 * torch.sigmoid(x) - 1


class DeconvGenerator(_Generator):
    """Table IV "v0": ``n_up + 1`` deconvolutions with leaky ReLU, channels halving as the side
    doubles (as in DCGAN, down to ``width/2``), then a conv and 2·sigmoid − 1."""

    def layers(self, in_dim: int, c: int, n_up: int, width: int, slope: float) -> None:
        layers: list[nn.Module] = [nn.ConvTranspose2d(in_dim, c, 4, 1, 0), nn.LeakyReLU(slope)]
        for _ in range(n_up):
            layers += [nn.ConvTranspose2d(c, max(c // 2, 1), 4, 2, 1), nn.LeakyReLU(slope)]
            c = max(c // 2, 1)
        self.body = nn.Sequential(*layers, nn.Conv2d(c, self.channels, 3, 1, 1))


class _UpBlock(nn.Module):
    """Residual up-sampling block: nearest ×2, two 3×3 convolutions, a 1×1 skip."""

    def __init__(self, c_in: int, c_out: int, slope: float):
        super().__init__()
        self.up = nn.Upsample(scale_factor=2, mode="nearest")
        self.main = nn.Sequential(
            nn.LeakyReLU(slope), nn.Conv2d(c_in, c_out, 3, 1, 1), nn.LeakyReLU(slope), nn.Conv2d(c_out, c_out, 3, 1, 1)
        )
        self.skip = nn.Conv2d(c_in, c_out, 1)

    def forward(self, x: Tensor) -> Tensor:
        x = self.up(x)
        return self.main(x) + self.skip(x)


class ResNetGenerator(_Generator):
    """A small ResNet up-sampler: linear to 4×4, residual ×2 blocks up to ``image_size``, conv + tanh."""

    output_default, normal_init = "tanh", False

    def layers(self, in_dim: int, c: int, n_up: int, width: int, slope: float) -> None:
        self.stem = nn.Linear(in_dim, c * 16)
        blocks: list[nn.Module] = []
        for _ in range(n_up):
            blocks.append(_UpBlock(c, max(c // 2, width), slope))
            c = max(c // 2, width)
        self.blocks = nn.Sequential(*blocks)
        self.head = nn.Sequential(nn.LeakyReLU(slope), nn.Conv2d(c, self.channels, 3, 1, 1))

    def decode(self, h: Tensor) -> Tensor:
        return self.head(self.blocks(self.stem(h).view(len(h), -1, 4, 4)))


class DCGANGenerator(_Generator):
    """DCGAN's generator: deconvolutions with batch norm and ReLU; the last deconvolution + tanh."""

    output_default = "tanh"

    def layers(self, in_dim: int, c: int, n_up: int, width: int, slope: float) -> None:
        layers: list[nn.Module] = [nn.ConvTranspose2d(in_dim, c, 4, 1, 0, bias=False), nn.BatchNorm2d(c), nn.ReLU()]
        for _ in range(n_up - 1):
            layers += [nn.ConvTranspose2d(c, c // 2, 4, 2, 1, bias=False), nn.BatchNorm2d(c // 2), nn.ReLU()]
            c //= 2
        self.body = nn.Sequential(*layers, nn.ConvTranspose2d(c, self.channels, 4, 2, 1))


class DCGANDiscriminator(nn.Module):
    """DCGAN's discriminator: stride-2 convolutions to 4×4 (batch norm after the first), leaky ReLU
    0.2, and a 4×4 convolution to one logit per image."""

    def __init__(self, channels: int = 3, image_size: int = 32, width: int = 64, slope: float = 0.2):
        super().__init__()
        n_down = _check_size(image_size)
        layers: list[nn.Module] = [nn.Conv2d(channels, width, 4, 2, 1), nn.LeakyReLU(slope)]
        c = width
        for _ in range(n_down - 1):
            layers += [nn.Conv2d(c, 2 * c, 4, 2, 1, bias=False), nn.BatchNorm2d(2 * c), nn.LeakyReLU(slope)]
            c *= 2
        layers.append(nn.Conv2d(c, 1, 4, 1, 0))
        self.body = nn.Sequential(*layers)
        _normal_init(self)

    def forward(self, x: Tensor) -> Tensor:
        return self.body(x).flatten()


GENERATORS = {"v0": DeconvGenerator, "resnet": ResNetGenerator, "dcgan": DCGANGenerator}


def build_generator(
    kind: str, z_dim: int, channels: int, image_size: int, width: int = 64, n_classes: int = 0, **kwargs
) -> nn.Module:
    """``"v0"`` (Table IV deconv stack), ``"resnet"`` (paper profile) or ``"dcgan"``."""
    if kind not in GENERATORS:
        raise ValueError(f"unknown generator {kind!r}; choose one of {tuple(GENERATORS)}")
    return GENERATORS[kind](z_dim, channels, image_size, width, n_classes, **kwargs)
