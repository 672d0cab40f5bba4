"""One plot style for the whole book: white backgrounds, a colour-blind-safe palette.

Every model has a fixed colour (:data:`MODEL_COLORS`) so GCN is the same blue in every chapter; the
particle world draws potentials U as filled contours with particles and their paths on top.
"""
from typing import Sequence

import matplotlib.pyplot as plt
import numpy as np
import seaborn as sns
from torch import Tensor

PALETTE = sns.color_palette("colorblind")
# The learning rules by themselves (2-D particle world) share a colour with a model: KL as GCN, JKO as wGCN.
MODEL_COLORS = {**dict.fromkeys(("gcn", "frame", "mgcn", "kl"), PALETTE[0]),
                **dict.fromkeys(("wgcn", "wframe", "wmgcn", "jko"), PALETTE[3]),
                "wgcn-data": PALETTE[1], "jko-data": PALETTE[1], "wgcn-proximal": PALETTE[6], "ggcn": PALETTE[2],
                "ggcn+ams": PALETTE[4], "ggcn-lhs+ams": PALETTE[8], "ggcn-lhs": PALETTE[9], "dcgan": PALETTE[7],
                "data": (0.2, 0.2, 0.2)}


def use_style() -> None:
    """Apply the book's matplotlib style (call once at the top of a chapter)."""
    sns.set_theme(context="notebook", style="whitegrid", palette=PALETTE)
    plt.rcParams.update({**dict.fromkeys(("figure.facecolor", "axes.facecolor", "savefig.facecolor"), "white"),
                         "figure.dpi": 100, "axes.titlesize": "medium", "figure.autolayout": False})


def color(name: str):
    """The fixed colour of a model or rule (case-insensitive); one spare colour for any other name."""
    return MODEL_COLORS.get(name.lower(), PALETTE[5])


def image_grid(x: Tensor, nrow: int = 8, ax=None, title: str | None = None):
    """Show a batch ``(B,C,H,W)`` in [−1, 1] as one grid image on ``ax``."""
    from torchvision.utils import make_grid

    grid = make_grid(x.detach().float().cpu().clamp(-1, 1), nrow=nrow, padding=1, pad_value=1.0)  # (3, H, W)
    ax = ax or plt.gca()
    ax.imshow(((grid + 1) / 2).permute(1, 2, 0).numpy(), cmap="gray", vmin=0, vmax=1, interpolation="nearest")
    ax.set_axis_off()
    if title:
        ax.set_title(title)
    return ax


def curves(ax, x: Sequence[float], runs: dict[str, np.ndarray], ylabel: str, xlabel: str = "learning iteration",
           log: bool = False):
    """Mean ± one standard deviation band over seeds; ``runs[name]`` has shape (n_seeds, T)."""
    for name, y in runs.items():
        y = np.atleast_2d(np.asarray(y, dtype=float))
        mean, std = np.nanmean(y, 0), np.nanstd(y, 0)
        ax.plot(x, mean, label=f"{name} (n={len(y)})", color=color(name), lw=2)
        if len(y) > 1:
            ax.fill_between(x, mean - std, mean + std, color=color(name), alpha=0.2, lw=0)
    ax.set(xlabel=xlabel, ylabel=ylabel)
    if log:
        ax.set_yscale("log")
    ax.legend(frameon=False)
    return ax


def cell_grid(ax, values: np.ndarray, rows: Sequence[str], columns: Sequence[str], labels: np.ndarray,
              title: str, cmap: str = "rocket_r", log: bool = False):
    """A sweep as a grid of cells: colour by ``values`` (rows × columns; log scale if ``log``, NaN and ∞
    grey), each cell written with its ``labels``."""
    shown = np.where(np.isfinite(values), values, np.nan)
    norm = plt.matplotlib.colors.LogNorm() if log and np.isfinite(shown).any() else None
    sns.heatmap(shown, ax=ax, annot=labels, fmt="", cmap=cmap, norm=norm, cbar=False, linewidths=0.5,
                xticklabels=columns, yticklabels=rows, annot_kws={"fontsize": "small"})
    ax.set_facecolor("0.8")
    for i, j in zip(*np.nonzero(~np.isfinite(shown))):  # seaborn writes no label on a masked cell
        ax.text(j + 0.5, i + 0.5, labels[i][j], ha="center", va="center", fontsize="small")
    ax.set_title(title)
    return ax


# ---------------------------------------------------------------------------
# The particle world

PARTICLE_COLOR = "#e69f00"  # orange, visible on the whole colormap


def plot_potential(ax, u: np.ndarray, lim: float, levels: int = 18, clip: float = 0.9):
    """Filled contours of a potential grid ``u`` over [−lim, lim]².

    Levels span the lower ``clip`` quantile of u so the wells stay readable when the
    landscape has steep walls; higher values share the top colour.
    """
    top = float(np.quantile(u[np.isfinite(u)], clip))
    axis, steps = np.linspace(-lim, lim, u.shape[0]), np.linspace(0, top, levels)
    cmap = sns.color_palette("mako", as_cmap=True)  # dark-to-light blue-green: dark valleys, light hills
    ax.contourf(axis, axis, np.minimum(u, top), levels=steps, cmap=cmap)
    ax.contour(axis, axis, u, levels=steps[1::3], colors="white", linewidths=0.4, alpha=0.5)
    ax.set(xlim=(-lim, lim), ylim=(-lim, lim), aspect="equal", xticks=[], yticks=[])
    ax.grid(False)
    return ax


def plot_particles(ax, x: np.ndarray, *, color: str = PARTICLE_COLOR, size: float = 4, label: str | None = None):
    """Particles as small dots with a thin dark edge."""
    ax.scatter(*np.asarray(x)[:, :2].T, s=size, c=color, edgecolors="black", linewidths=0.15, label=label, zorder=3)
    return ax


def plot_trajectories(ax, trajectory: np.ndarray, n_show: int = 25, color: str = PARTICLE_COLOR):
    """Paths of the first ``n_show`` particles of a recorded chain ``(T, n, 2)``: start ○, end ●."""
    path = np.asarray(trajectory)[:, :n_show]
    ax.plot(path[..., 0], path[..., 1], color="white", lw=0.6, alpha=0.6, zorder=2)  # one line per particle
    ax.scatter(path[0, :, 0], path[0, :, 1], s=14, facecolors="none", edgecolors="white", lw=0.8, zorder=3)
    ax.scatter(path[-1, :, 0], path[-1, :, 1], s=16, c=color, edgecolors="black", lw=0.4, zorder=4)
    return ax


def plot_snapshot(ax, potential: np.ndarray, points: np.ndarray, lim: float, data=None, title: str | None = None):
    """Contour map of a potential grid with particles (orange) and, if given, data (white) on top."""
    plot_potential(ax, potential, lim)
    if data is not None:
        ax.scatter(*np.asarray(data)[:, :2].T, s=2, c="white", alpha=0.5, lw=0, zorder=2)
    plot_particles(ax, points)
    if title is not None:
        ax.set_title(title)
    return ax
