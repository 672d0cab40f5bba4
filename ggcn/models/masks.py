"""Inpainting (the paper's Fig. 11 and Table III): masks, completions, baselines and scores.

A mask m ∈ {0, 1}^{H×W} keeps the pixels where m = 1 and hides the hole where m = 0; its *coverage*
is the hidden fraction 1 − mean m. The paper names three kinds (:data:`MASKS`): a square box, random
spots, and both. A completion keeps every known pixel, x̂ = m ⊙ x + (1 − m) ⊙ fill. Two fills need
no learning: the mean training image (:func:`mean_fill`) and harmonic interpolation from the
neighbours (:func:`diffusion_fill`).
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor

MASKS = ("square", "spot", "spot+square")  # the paper's Square, Spot and SpotSquare
SQUARE_FRACTION, SPOT_COVERAGE, EXTRA_SPOT_COVERAGE = 0.25, 0.25, 0.1  # defaults of the three kinds


def _check_fraction(value: float, what: str) -> None:
    if not 0.0 < value < 1.0:
        raise ValueError(f"{what} is a fraction of the image and must lie in (0, 1), got {value}")


def _check_shape(n: int, size: int) -> None:
    if n < 1 or size < 2:
        raise ValueError(f"masks need n ≥ 1 images of side size ≥ 2, got n={n}, size={size}")


def default_spot(size: int) -> int:
    """Side of one spot: an eighth of the image side (at least 1 pixel)."""
    return max(1, size // 8)


def square_mask(n: int, size: int, fraction: float = SQUARE_FRACTION, device: str = "cpu") -> Tensor:
    """``(n, 1, size, size)``: a centred square hole of side round(size·√fraction), 1 elsewhere.

    The hidden fraction is side²/size², the nearest a square of whole pixels gets to ``fraction``.
    """
    _check_shape(n, size)
    _check_fraction(fraction, "the square's area fraction")
    side = min(size, max(1, round(size * math.sqrt(fraction))))
    start = (size - side) // 2
    mask = torch.ones(n, 1, size, size, device=device)
    mask[..., start:start + side, start:start + side] = 0
    return mask


def add_spots(mask: Tensor, coverage: float, spot: int, generator: torch.Generator | None = None) -> Tensor:
    """Punch square spots of side ``spot`` at uniform random places into every mask until its hidden
    fraction reaches ``coverage`` (overshooting by less than one spot, spot²/size²). Returns a new mask."""
    _check_fraction(coverage, "the spot coverage")
    size = mask.shape[-1]
    if not 1 <= spot <= size:
        raise ValueError(f"spot side must lie in 1..{size}, got {spot}")
    mask = mask.clone()
    rows = torch.arange(size, device=mask.device)
    while True:
        todo = (1 - mask.flatten(1).mean(1)) < coverage
        if not todo.any():
            return mask
        k = int(todo.sum())
        corner = torch.randint(0, size - spot + 1, (k, 2), generator=generator).to(mask.device)
        inside_r, inside_c = ((rows[None] >= c) & (rows[None] < c + spot) for c in corner.split(1, dim=1))
        spots = (inside_r[:, :, None] & inside_c[:, None, :])[:, None]
        mask[todo] = mask[todo] * (~spots).to(mask.dtype)


def spot_mask(n: int, size: int, coverage: float = SPOT_COVERAGE, spot: int | None = None,
              generator: torch.Generator | None = None, device: str = "cpu") -> Tensor:
    """``(n, 1, size, size)``: random square spots (side ``spot``, default size/8) hiding ``coverage``."""
    _check_shape(n, size)
    return add_spots(torch.ones(n, 1, size, size, device=device), coverage, spot or default_spot(size), generator)


def spot_square_mask(n: int, size: int, fraction: float = SQUARE_FRACTION, coverage: float = EXTRA_SPOT_COVERAGE,
                     spot: int | None = None, generator: torch.Generator | None = None,
                     device: str = "cpu") -> Tensor:
    """The centred square of :func:`square_mask` plus spots hiding about ``coverage`` more of the image."""
    square = square_mask(n, size, fraction, device)
    total = float(1 - square[0].mean()) + coverage
    _check_fraction(total, "the square fraction plus the spot coverage")
    return add_spots(square, total, spot or default_spot(size), generator)


def make_masks(kind: str, n: int, size: int, generator: torch.Generator | None = None, device: str = "cpu") -> Tensor:
    """``n`` masks of one of :data:`MASKS` with the default fractions (the square is the same for every image)."""
    if kind not in MASKS:
        raise ValueError(f"unknown mask kind {kind!r}; choose one of {MASKS}")
    if kind == "square":
        return square_mask(n, size, device=device)
    make = spot_mask if kind == "spot" else spot_square_mask
    return make(n, size, generator=generator, device=device)


def mixed_masks(n: int, size: int, kinds: tuple[str, ...] = MASKS, generator: torch.Generator | None = None,
                device: str = "cpu") -> Tensor:
    """``n`` masks, each of a kind drawn uniformly from ``kinds`` (for learning to fill every kind)."""
    check_kinds(kinds)
    pick = torch.randint(0, len(kinds), (n,), generator=generator)
    masks = torch.ones(n, 1, size, size, device=device)
    for i, kind in enumerate(kinds):
        chosen = (pick == i).nonzero().flatten().tolist()
        if chosen:
            masks[chosen] = make_masks(kind, len(chosen), size, generator, device)
    return masks


def check_kinds(kinds: tuple[str, ...], what: str = "kinds") -> None:
    if not kinds or set(kinds) - set(MASKS):
        raise ValueError(f"{what} must be a non-empty selection of {MASKS}, got {kinds}")


def coverage(mask: Tensor) -> Tensor:
    """The hidden fraction 1 − mean m of each mask, ``(n,)``."""
    return 1 - mask.flatten(1).float().mean(1)


def _check_pair(x: Tensor, mask: Tensor) -> None:
    if x.dim() != 4 or mask.shape != (len(x), 1, *x.shape[-2:]):
        raise ValueError(f"need images (N, C, H, W) and masks (N, 1, H, W); got {tuple(x.shape)} and "
                         f"{tuple(mask.shape)}")
    if not torch.all((mask == 0) | (mask == 1)):
        raise ValueError("masks must hold only 0 (hidden) and 1 (known)")


def complete(x: Tensor, mask: Tensor, fill: Tensor) -> Tensor:
    """x̂ = m ⊙ x + (1 − m) ⊙ fill: the known pixels of ``x``, the hole from ``fill``."""
    _check_pair(x, mask)
    return mask * x + (1 - mask) * fill


def mean_fill(x: Tensor, mask: Tensor, mean_image: Tensor) -> Tensor:
    """Baseline: fill the hole with the per-pixel mean of the training images, ``mean_image`` (C, H, W)."""
    if mean_image.shape != x.shape[1:]:
        raise ValueError(f"mean_image must have shape {tuple(x.shape[1:])}, got {tuple(mean_image.shape)}")
    return complete(x, mask, mean_image.expand_as(x))


def diffusion_fill(x: Tensor, mask: Tensor, iterations: int | None = None) -> Tensor:
    """Baseline: harmonic interpolation of the hole. From the mean of the known pixels, ``iterations``
    (default 2·side², enough for a hole as wide as the image) Jacobi steps of the discrete Laplace equation,
    x ← m ⊙ x + (1 − m) ⊙ mean₃ₓ₃(x) (edges replicated); a linear ramp is reproduced exactly."""
    _check_pair(x, mask)
    steps = 2 * x.shape[-1] ** 2 if iterations is None else iterations
    if steps < 0:
        raise ValueError(f"iterations must be ≥ 0, got {steps}")
    known = mask.expand_as(x)
    start = (x * known).sum((2, 3), keepdim=True) / known.sum((2, 3), keepdim=True).clamp_min(1)
    kept, hole = known * x, 1 - known
    y = kept + hole * start
    for _ in range(steps):
        y = kept + hole * F.avg_pool2d(F.pad(y, (1, 1, 1, 1), mode="replicate"), 3, stride=1)
    return y


def split_holdout(x: Tensor, n_test: int, seed: int = 0) -> tuple[Tensor, Tensor]:
    """(train, test): ``n_test`` images drawn at random (fixed by ``seed``) are held out for completion."""
    if not 1 <= n_test < len(x):
        raise ValueError(f"n_test must lie in 1..{len(x) - 1} (the set has {len(x)} images), got {n_test}")
    order = torch.randperm(len(x), generator=torch.Generator().manual_seed(seed))
    return x[order[n_test:]], x[order[:n_test]]

