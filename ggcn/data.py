"""Data: offline sets that ship inside packages, and real loaders that read a local folder.

All image tensors are ``(N, C, H, W)`` float32 in [−1, 1]. Offline sets need no download:
skimage textures and photos, skimage's LFW subset (200 faces), sklearn's digits, and 2-D toys.
"""
from __future__ import annotations

import math
from typing import Callable

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

TEXTURES = ("brick", "grass", "gravel")
PHOTOS = ("astronaut", "coffee", "chelsea", "rocket", "hubble_deep_field")
TOYS = ("gaussians8", "ring", "moons", "spiral", "gaussian")


def _to_tensor(images: np.ndarray, size: int) -> Tensor:
    """``(N,H,W)`` or ``(N,H,W,3)`` in [0,1] → ``(N,C,size,size)`` in [−1,1] (antialiased resize)."""
    x = torch.as_tensor(np.asarray(images, dtype=np.float32))
    x = x.unsqueeze(1) if x.dim() == 3 else x.permute(0, 3, 1, 2)
    if x.shape[-1] != size or x.shape[-2] != size:
        x = F.interpolate(x, size=(size, size), mode="bilinear", antialias=True, align_corners=False)
    return (x.clamp(0, 1) * 2 - 1).contiguous()


def _check_size(size: int) -> None:
    if not isinstance(size, int) or size < 4 or size > 512:
        raise ValueError(f"image size must be an integer between 4 and 512, got {size!r}")


def texture(name: str = "brick", size: int = 32, n_crops: int = 1, seed: int = 0) -> Tensor:
    """A grey skimage texture, ``(n_crops, 1, size, size)``.

    With ``n_crops=1`` the whole 512×512 image is shrunk to ``size``; with more, random
    ``size``-windows are cut from the image shrunk to ``2·size`` (a texture is stationary).
    """
    from skimage import data as skdata

    if name not in TEXTURES:
        raise ValueError(f"unknown texture {name!r}; choose one of {TEXTURES}")
    _check_size(size)
    img = getattr(skdata, name)().astype(np.float32) / 255.0
    if n_crops == 1:
        return _to_tensor(img[None], size)
    big = _to_tensor(img[None], 2 * size)
    g = torch.Generator().manual_seed(seed)
    ij = torch.randint(0, size + 1, (n_crops, 2), generator=g)
    return torch.stack([big[0, :, i : i + size, j : j + size] for i, j in ij.tolist()])


def photo(name: str = "astronaut", size: int = 32) -> Tensor:
    """One skimage photo, centre-cropped square, ``(1, 3, size, size)``."""
    from skimage import color
    from skimage import data as skdata

    if name not in PHOTOS:
        raise ValueError(f"unknown photo {name!r}; choose one of {PHOTOS}")
    _check_size(size)
    img = getattr(skdata, name)()
    img = color.gray2rgb(img) if img.ndim == 2 else img[..., :3]
    h, w = img.shape[:2]
    s = min(h, w)
    img = img[(h - s) // 2 : (h - s) // 2 + s, (w - s) // 2 : (w - s) // 2 + s]
    return _to_tensor(img[None].astype(np.float32) / 255.0, size)


def lfw_faces(size: int = 16, n: int | None = None) -> Tensor:
    """skimage's LFW subset: 200 grey 25×25 face crops resized to ``size`` (a CelebA stand-in)."""
    from skimage import data as skdata

    _check_size(size)
    faces = skdata.lfw_subset().astype(np.float32)  # (200, 25, 25) in [0, 1]
    x = _to_tensor(faces, size)
    return x[:n] if n else x


def digits(size: int = 16, n: int | None = None) -> tuple[Tensor, Tensor]:
    """sklearn's handwritten digits (1,797 images of 8×8) resized to ``size``, with labels 0–9."""
    from sklearn.datasets import load_digits

    _check_size(size)
    d = load_digits()
    x = _to_tensor(d.images.astype(np.float32) / 16.0, size)
    y = torch.as_tensor(d.target, dtype=torch.long)
    return (x[:n], y[:n]) if n else (x, y)


def toy2d(name: str = "gaussians8", n: int = 1000, seed: int = 0) -> Tensor:
    """A 2-D point cloud ``(n, 2)`` roughly inside [−2, 2]²."""
    g = torch.Generator().manual_seed(seed)
    if name == "gaussians8":
        k = torch.randint(0, 8, (n,), generator=g).float()
        centres = 1.5 * torch.stack([torch.cos(k * math.pi / 4), torch.sin(k * math.pi / 4)], 1)
        return centres + 0.1 * torch.randn(n, 2, generator=g)
    if name == "ring":
        t = torch.rand(n, generator=g) * 2 * math.pi
        r = 1.5 + 0.08 * torch.randn(n, generator=g)
        return torch.stack([r * torch.cos(t), r * torch.sin(t)], 1)
    if name == "moons":
        from sklearn.datasets import make_moons

        x, _ = make_moons(n, noise=0.06, random_state=seed)
        return torch.as_tensor(x, dtype=torch.float32).sub(torch.tensor([0.5, 0.25])).mul(1.2)
    if name == "spiral":
        t = torch.sqrt(torch.rand(n, generator=g)) * 3 * math.pi
        x = torch.stack([t * torch.cos(t), t * torch.sin(t)], 1) / (1.6 * math.pi)
        return x + 0.05 * torch.randn(n, 2, generator=g)
    if name == "gaussian":
        return torch.tensor([0.8, -0.4]) + 0.3 * torch.randn(n, 2, generator=g)
    raise ValueError(f"unknown 2-D toy {name!r}; choose one of {TOYS}")


def few_shot(x: Tensor, k: int, seed: int = 0, labels: Tensor | None = None):
    """k examples drawn without replacement (with their labels when given)."""
    if not 0 < k <= len(x):
        raise ValueError(f"few-shot size k must be in 1..{len(x)}, got {k}")
    idx = torch.randperm(len(x), generator=torch.Generator().manual_seed(seed))[:k]
    return x[idx] if labels is None else (x[idx], labels[idx])


OFFLINE: dict[str, Callable[..., Tensor]] = {
    "lfw": lambda size, n=None: lfw_faces(size, n),
    "digits": lambda size, n=None: digits(size, n)[0],
    **{t: (lambda size, n=None, t=t: texture(t, size, n_crops=n or 1)) for t in TEXTURES},
    **{p: (lambda size, n=None, p=p: photo(p, size)) for p in PHOTOS},
}
