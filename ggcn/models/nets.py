"""Energy networks f_θ(x): a batch ``(B, ...)`` to ``(B,)``, the tilt of p_θ(x) = exp(f_θ(x)) N(x; 0, σ²I) / Z(θ).

Piecewise-linear activations (leaky ReLU, ReLU) keep the Hessian of f zero almost everywhere, which
the JKO rule relies on (paper, Remark 2).
"""
from __future__ import annotations

import math
from pathlib import Path

import torch
from torch import Tensor, nn
import torch.nn.functional as F

LEAKY_SLOPE = 0.02  # the paper's leaky-ReLU slope (Table IV)


class ConvEnergy(nn.Module):
    """The GCN bottom-up ConvNet for square images of side 8, 16, 32, 64 or 128.

    ``log2(size/4)`` stride-2 4×4 convolutions halve the side down to 4×4 while
    doubling the channels (``width``, ``2·width``, ...; with ``min_convs`` in all, :func:`down_convs`); a final 4×4 convolution
    gives the scalar, multiplied by a fixed gain c (``scale``): f_θ(x) = c · ConvNet_θ(x).

    The gain sets the energy's scale against the Langevin drift (δ²/2)·∇f: with a small σ, ∇f must
    reach ~1/σ² per pixel before the chains draw anything, and Adam (steps of about γ per weight)
    would take thousands of iterations to grow that far. c = 1 is the plain ConvNet.
    """

    def __init__(self, channels: int = 3, image_size: int = 32, width: int = 64, slope: float = LEAKY_SLOPE,
                 scale: float = 1.0, min_convs: int = 2):
        super().__init__()
        if not scale > 0:
            raise ValueError(f"the energy scale c must be > 0, got {scale}")
        self.body = down_convs(channels, image_size, width, slope, min_convs)
        self.head = nn.Conv2d(self.body.out_channels, 1, 4, 1, 0)
        self.channels, self.image_size, self.scale = channels, image_size, float(scale)

    def forward(self, x: Tensor) -> Tensor:
        return self.scale * self.head(self.body(x)).flatten()

    def responses(self, x: Tensor) -> Tensor:
        """Spatially averaged responses of the first layer's filters, ``(B, width)``."""
        return self.body[1](self.body[0](x)).mean(dim=(2, 3))


def down_convs(channels: int, image_size: int, width: int, slope: float = LEAKY_SLOPE,
               min_convs: int = 1) -> nn.Sequential:
    """``log2(size/4)`` stride-2 4×4 convolutions with leaky ReLU, ``width``, ``2·width``, … channels, to 4×4,
    after as many 3×3 stride-1 convolutions of ``width`` channels as it takes to make ``min_convs`` in all.

    At 8 px the halving is one convolution, and with the head a two-layer net, which on 8-px digits levels
    off near half its samples recognised; :class:`ConvEnergy` asks for two (GCN on chapter 5's 8-px digits,
    300 iterations, seeds 0–2: 63–67 % recognised in all 10 digits, digit KID 22–25, against 54 %, 10 digits
    after 600 iterations without the 3×3 one; a one-layer net twice as wide drew 58 % after 300).
    """
    check_image_size(image_size)
    n_down = int(math.log2(image_size // 4))
    lead = max(0, min_convs - n_down)
    layers: list[nn.Module] = []
    c_in = channels
    for _ in range(lead):
        layers += [nn.Conv2d(c_in, width, 3, 1, 1), nn.LeakyReLU(slope)]
        c_in = width
    c_out = 2 * width if lead else width
    for _ in range(n_down):
        layers += [nn.Conv2d(c_in, c_out, 4, 2, 1), nn.LeakyReLU(slope)]
        c_in, c_out = c_out, c_out * 2
    body = nn.Sequential(*layers)
    body.out_channels = c_in
    return body


def check_image_size(image_size: int) -> None:
    if image_size not in (8, 16, 32, 64, 128):
        raise ValueError(
            f"image size {image_size} is not supported by the GCN ConvNet; use 8, 16, 32, 64 or 128 "
            "(resize the data with the dataset's `size=` argument)"
        )


def gabor_dog_bank(size: int = 7, n_orient: int = 4, scales: tuple[float, ...] = (1.0, 2.0)) -> Tensor:
    """A classical FRAME filter bank ``(K, 1, size, size)`` of zero-mean, unit-norm filters: Gabor cosine and
    sine pairs at ``n_orient`` orientations and each scale, and a difference of Gaussians per scale (Zhu et al.)."""
    r = torch.arange(size, dtype=torch.float64) - (size - 1) / 2
    yy, xx = torch.meshgrid(r, r, indexing="ij")
    filters = []
    for s in scales:
        env = torch.exp(-(xx**2 + yy**2) / (2 * s**2))
        for k in range(n_orient):
            u = xx * math.cos(math.pi * k / n_orient) + yy * math.sin(math.pi * k / n_orient)
            filters += [env * torch.cos(2 * math.pi * u / (4 * s)), env * torch.sin(2 * math.pi * u / (4 * s))]
        wide = torch.exp(-(xx**2 + yy**2) / (2 * (2 * s) ** 2))
        filters.append(env / env.sum() - wide / wide.sum())
    bank = torch.stack(filters)
    bank = bank - bank.mean(dim=(1, 2), keepdim=True)
    bank = bank / bank.flatten(1).norm(dim=1)[:, None, None]
    return bank.unsqueeze(1).float()


class FilterBank(nn.Module):
    """Fixed filters applied to every colour channel separately: ``(B,C,H,W) → (B,K·C,H,W)``."""

    def __init__(self, bank: Tensor, channels: int):
        super().__init__()
        self.register_buffer("weight", bank.repeat(channels, 1, 1, 1))
        self.channels = channels
        self.padding = bank.shape[-1] // 2

    def forward(self, x: Tensor) -> Tensor:
        return F.conv2d(x, self.weight, padding=self.padding, groups=self.channels)


VGG16_FILE = "vgg16-397923af.pth"  # torchvision's file name for VGG16_Weights.IMAGENET1K_V1


def vgg16_filters(n_convs: int = 4, weights_path: str | Path | None = None, download: bool = False) -> nn.Module:
    """The paper's "deep FRAME" bank: the first ``n_convs`` conv layers (with ReLU and pooling) of an ImageNet
    VGG-16. Pass ``weights_path``, place the file in torch's hub cache, or ``download=True`` when connected."""
    from torchvision.models import vgg16

    cache = Path(torch.hub.get_dir()) / "checkpoints" / VGG16_FILE
    path = Path(weights_path) if weights_path is not None else cache
    if path.exists():
        state = torch.load(path, map_location="cpu", weights_only=True)
    elif download:
        from torchvision.models import VGG16_Weights

        try:
            state = VGG16_Weights.IMAGENET1K_V1.get_state_dict(progress=False)
        except Exception as err:  # network refused, proxy, ...
            raise FileNotFoundError(_vgg_help(path)) from err
    else:
        raise FileNotFoundError(_vgg_help(path))
    net = vgg16()
    net.load_state_dict(state)
    layers, seen = [], 0
    for layer in net.features:
        if seen == n_convs and isinstance(layer, nn.Conv2d):
            break
        layers.append(layer)
        seen += isinstance(layer, nn.Conv2d)
    body = nn.Sequential(*layers).eval()
    for p in body.parameters():
        p.requires_grad_(False)
    return body


def _vgg_help(path: Path) -> str:
    return (
        f"VGG-16 weights not found at {path}. The deep FRAME filters need torchvision's ImageNet VGG-16 "
        f"weights ({VGG16_FILE}): on a connected machine run "
        "`python -c \"import torchvision; torchvision.models.vgg16(weights='IMAGENET1K_V1')\"` "
        f"and copy the file to {path}, or pass weights_path=. Offline, use the classical Gabor/DoG bank "
        "(filters='gabor')."
    )


FRAME_WEIGHTS = ("stationary", "position")


class FrameEnergy(nn.Module):
    """FRAME: f_θ(x) = c Σ_k Σ_pixels θ_k h([F_k * x]) (``weights="stationary"``, the texture model) or
    c Σ_k Σ_pixels θ_{k,pixel} h([F_k * x]) (``"position"``: one weight per filter and pixel, the FRAME of
    object patterns, Lu, Zhu & Wu 2016); fixed filters F_k, h = ReLU, only θ is learned.

    θ starts at 0, so the initial model is the Gaussian reference itself; the fixed gain c
    (``scale``) plays the part it plays in :class:`ConvEnergy`.
    """

    def __init__(self, filters: nn.Module, channels: int, image_size: int, scale: float = 1.0,
                 weights: str = "stationary"):
        super().__init__()
        if weights not in FRAME_WEIGHTS:
            raise ValueError(f"unknown FRAME weights {weights!r}; choose one of {FRAME_WEIGHTS}")
        self.filters, self.scale = filters, float(scale)
        with torch.no_grad():
            maps = filters(torch.zeros(1, channels, image_size, image_size)).shape[1:]
        self.theta = nn.Parameter(torch.zeros(maps if weights == "position" else maps[:1]))

    def forward(self, x: Tensor) -> Tensor:
        h = F.relu(self.filters(x))
        if self.theta.dim() == 1:
            return self.scale * (h.sum(dim=(2, 3)) @ self.theta)
        return self.scale * (h * self.theta).sum(dim=(1, 2, 3))

    def responses(self, x: Tensor) -> Tensor:
        """Spatially averaged filter responses h(F_k * x), ``(B, K)``."""
        return F.relu(self.filters(x)).mean(dim=(2, 3))


class MLPEnergy(nn.Module):
    """A small leaky-ReLU MLP energy on flattened inputs (the 2-D particle world, MGCN's small grids)."""

    def __init__(self, dim: int = 2, hidden: int = 64, depth: int = 3, slope: float = 0.2, scale: float = 1.0):
        super().__init__()
        layers: list[nn.Module] = []
        for d in [dim] + [hidden] * (depth - 1):
            layers += [nn.Linear(d, hidden), nn.LeakyReLU(slope)]
        self.net, self.scale = nn.Sequential(*layers, nn.Linear(hidden, 1)), float(scale)

    def forward(self, x: Tensor) -> Tensor:
        return self.scale * self.net(x.flatten(1)).flatten()
