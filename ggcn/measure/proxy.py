"""Proxy features: a small network trained in seconds on the same data, and the "proxy FID" on it.

The proxy FID is the Fréchet distance ||μ_r − μ_g||² + tr(Σ_r + Σ_g − 2 (Σ_r Σ_g)^{1/2}) of the FID, but
on the features of a small network trained on the book's offline data instead of Inception-v3 (which
means little on 16×16 digits): it ranks models on the same data and features, and is *not* comparable
with FID values reported in papers. :class:`ProxyClassifier` (labelled data; its penultimate layer, and
it reads off the labels of conditional samples) and :class:`ProxyAutoencoder` (unlabelled data; the code
of a ConvNet encoder with a linear decoder) are trained by :func:`fit_proxy` with the package's one loop.
"""
from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ggcn.core.train import train
from ggcn.measure.evaluation import fid_with_features
from ggcn.models.nets import LEAKY_SLOPE


def _trunk(channels: int, width: int, n_features: int) -> nn.Sequential:
    """Three convolutions (the last two stride 2), a pool to 2×2, then a linear map to the features."""
    return nn.Sequential(nn.Conv2d(channels, width, 3, 1, 1), nn.LeakyReLU(LEAKY_SLOPE),
                         nn.Conv2d(width, 2 * width, 4, 2, 1), nn.LeakyReLU(LEAKY_SLOPE),
                         nn.Conv2d(2 * width, 2 * width, 4, 2, 1), nn.LeakyReLU(LEAKY_SLOPE),
                         nn.AdaptiveAvgPool2d(2), nn.Flatten(), nn.Linear(8 * width, n_features))


class ProxyClassifier(nn.Module):
    """``features(x)``: ``(B, n_features)``; ``forward(x)``: class logits."""

    def __init__(self, channels: int, n_classes: int, width: int = 16, n_features: int = 32):
        super().__init__()
        self.trunk = _trunk(channels, width, n_features)
        self.classify = nn.Sequential(nn.LeakyReLU(LEAKY_SLOPE), nn.Linear(n_features, n_classes))

    def features(self, x: Tensor) -> Tensor:
        return F.leaky_relu(self.trunk(x), LEAKY_SLOPE)

    def forward(self, x: Tensor) -> Tensor:
        return self.classify(self.trunk(x))

    def loss(self, x: Tensor, y: Tensor) -> Tensor:
        return F.cross_entropy(self(x), y)


class ProxyAutoencoder(nn.Module):
    """``features(x)``: the encoder's code; a linear decoder reconstructs x from it."""

    def __init__(self, channels: int, image_size: int, width: int = 16, n_features: int = 32):
        super().__init__()
        self.encode = _trunk(channels, width, n_features)
        self.decode = nn.Linear(n_features, channels * image_size**2)

    def features(self, x: Tensor) -> Tensor:
        return self.encode(x)

    def loss(self, x: Tensor) -> Tensor:
        return F.mse_loss(torch.tanh(self.decode(self.encode(x))), x.flatten(1))


class ProxyLearner:
    """Adam on a network's own ``loss``; a model for :func:`ggcn.core.train.train` (no particles)."""

    def __init__(self, net: nn.Module, lr: float = 3e-3):
        self.net = net
        self.optimizer = torch.optim.Adam(net.parameters(), lr=lr)
        self.particles: Tensor | None = None

    def step(self, x: Tensor, *y: Tensor) -> dict[str, Tensor]:
        loss = self.net.loss(x, *y)
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.optimizer.step()
        return {"loss": loss.detach()}

    def state_dict(self) -> dict[str, Any]:
        return {"net": self.net.state_dict(), "optimizer": self.optimizer.state_dict()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.net.load_state_dict(state["net"])
        self.optimizer.load_state_dict(state["optimizer"])


def fit_proxy(x: Tensor, y: Tensor | None = None, *, iterations: int = 300, batch_size: int = 64, seed: int = 0,
              width: int = 16, n_features: int = 32) -> nn.Module:
    """A :class:`ProxyClassifier` (labels given) or :class:`ProxyAutoencoder` (none), trained, in eval mode.

    Seeded by ``seed`` without touching the caller's random state.
    """
    if x.dim() != 4:
        raise ValueError(f"proxy networks read image batches (N, C, H, W), got shape {tuple(x.shape)}")
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        net: nn.Module = (ProxyAutoencoder(x.shape[1], x.shape[-1], width, n_features) if y is None
                          else ProxyClassifier(x.shape[1], int(y.max()) + 1, width, n_features))
        train(ProxyLearner(net), x, iterations, batch_size=batch_size, labels=y, seed=None)
    return net.eval()


def proxy_fid(real: Tensor, fake: Tensor, net: nn.Module, batch_size: int = 256) -> float:
    """The proxy FID: the Fréchet distance on the proxy network's ``features`` (computed where the network is)."""
    device = str(next(net.parameters()).device)
    return fid_with_features(real, fake, net.features, batch_size=batch_size, device=device)


def label_accuracy(net: ProxyClassifier, x: Tensor, y: Tensor | int) -> float:
    """Fraction of images ``x`` that the proxy classifier assigns to the labels ``y``."""
    with torch.no_grad():
        pred = net.eval()(x).argmax(1)
    y = torch.full_like(pred, y) if isinstance(y, int) else y.to(pred.device)
    return float((pred == y).float().mean())
