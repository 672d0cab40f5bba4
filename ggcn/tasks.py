"""Tasks on a trained generator model: latent interpolation (inpainting is to come here too).

Interpolation (the paper's Fig. 12, "8 midpoints"): two hidden codes z_a, z_b are clipped to
[−1, 1] (the high-density core of N(0, I), where the generator has been trained most), and the
straight path

    z(t) = (1 − t) z_a + t z_b,   t = 0, 1/(m+1), …, 1,

with the two ends and m midpoints is decoded by the model, one image per code.
"""
from __future__ import annotations

import torch
from torch import Tensor


def latent_path(z_a: Tensor, z_b: Tensor, midpoints: int = 8) -> Tensor:
    """``(midpoints + 2, d)``: the ends clipped to [−1, 1] and the evenly spaced codes between them."""
    if z_a.shape != z_b.shape or z_a.dim() != 1:
        raise ValueError(f"need two codes of the same shape (d,), got {tuple(z_a.shape)} and {tuple(z_b.shape)}")
    if midpoints < 0:
        raise ValueError(f"midpoints must be ≥ 0, got {midpoints}")
    a, b = z_a.clamp(-1, 1), z_b.clamp(-1, 1)
    t = torch.linspace(0, 1, midpoints + 2, device=a.device, dtype=a.dtype)[:, None]
    return (1 - t) * a + t * b


def interpolate(
    model, z_a: Tensor, z_b: Tensor, y: int | None = None, midpoints: int = 8, n_steps: int | None = None
) -> Tensor:
    """Images along :func:`latent_path`, decoded by ``model.synthesize`` (a GGCN; label ``y`` if conditional).

    ``n_steps`` Langevin steps follow the generator (default: the model's own, none with AMS).
    """
    if not hasattr(model, "synthesize"):
        raise TypeError(f"{type(model).__name__} has no synthesize(z, y, n_steps); interpolate a GGCN model")
    path = latent_path(z_a, z_b, midpoints)
    return model.synthesize(path, y, n_steps)
