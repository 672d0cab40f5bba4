"""One plot style for the whole book: white backgrounds, a colour-blind-safe palette.

Every model has a fixed colour (:data:`MODEL_COLORS`) so GCN is the same blue in every chapter.
"""
from __future__ import annotations

from typing import Sequence

import matplotlib

import matplotlib.pyplot as plt
import numpy as np
import seaborn as sns
from torch import Tensor

PALETTE = sns.color_palette("colorblind")
MODEL_COLORS = {
    "gcn": PALETTE[0], "frame": PALETTE[0], "mgcn": PALETTE[0],
    "wgcn": PALETTE[3], "wframe": PALETTE[3], "wmgcn": PALETTE[3],
    "wgcn-data": PALETTE[1], "wgcn-proximal": PALETTE[6],
    "ggcn": PALETTE[2], "ggcn+ams": PALETTE[4], "ggcn-lhs+ams": PALETTE[8], "ggcn-lhs": PALETTE[9],
    "dcgan": PALETTE[7], "data": (0.2, 0.2, 0.2),
    # the learning rules by themselves (2-D particle world): KL as GCN, JKO as wGCN
    "kl": PALETTE[0], "jko": PALETTE[3], "jko-data": PALETTE[1],
}


def use_style() -> None:
    """Apply the book's matplotlib style (call once at the top of a chapter)."""
    sns.set_theme(context="notebook", style="whitegrid", palette=PALETTE)
    matplotlib.rcParams.update({
        "figure.facecolor": "white", "axes.facecolor": "white", "savefig.facecolor": "white",
        "figure.dpi": 100, "axes.titlesize": "medium", "figure.autolayout": False,
    })


def color(name: str):
    return MODEL_COLORS.get(name.lower(), PALETTE[5])


def to_image(x: Tensor) -> np.ndarray:
    """A tensor image in [−1, 1], ``(C,H,W)``, as an ``(H,W[,3])`` array in [0, 1]."""
    img = ((x.detach().float().cpu().clamp(-1, 1) + 1) / 2).numpy()
    return img[0] if img.shape[0] == 1 else img.transpose(1, 2, 0)


def image_grid(x: Tensor, nrow: int = 8, ax=None, title: str | None = None):
    """Show a batch ``(B,C,H,W)`` in [−1, 1] as one grid image on ``ax``."""
    from torchvision.utils import make_grid

    grid = make_grid(x.detach().float().cpu().clamp(-1, 1), nrow=nrow, padding=1, pad_value=1.0)
    ax = ax or plt.gca()
    ax.imshow(to_image(grid), cmap="gray", vmin=0, vmax=1, interpolation="nearest")
    ax.set_axis_off()
    if title:
        ax.set_title(title)
    return ax


def image_rows(batches: dict[str, Tensor], nrow: int = 8, size: float = 1.6):
    """One panel per entry of ``batches`` (e.g. data, GCN, wGCN), side by side."""
    fig, axes = plt.subplots(1, len(batches), figsize=(size * len(batches) * 1.6, size * 1.8))
    for ax, (name, x) in zip(np.atleast_1d(axes), batches.items()):
        image_grid(x, nrow=nrow, ax=ax, title=name)
    fig.tight_layout()
    return fig


def curves(
    ax, x: Sequence[float], runs: dict[str, np.ndarray], ylabel: str, xlabel: str = "learning iteration", log: bool = False
):
    """Mean ± one standard deviation band over seeds; ``runs[name]`` has shape (n_seeds, T)."""
    for name, y in runs.items():
        y = np.atleast_2d(np.asarray(y, dtype=float))
        mean, std = np.nanmean(y, 0), np.nanstd(y, 0)
        ax.plot(x, mean, label=f"{name} (n={len(y)})", color=color(name), lw=2)
        if len(y) > 1:
            ax.fill_between(x, mean - std, mean + std, color=color(name), alpha=0.2, lw=0)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    if log:
        ax.set_yscale("log")
    ax.legend(frameon=False)
    return ax
