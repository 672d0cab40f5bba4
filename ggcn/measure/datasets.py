"""Labelled image sets of the quality chapter, split into training images and a held-out reference,
and images as uint8 for small artifacts."""
from __future__ import annotations

import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from ggcn.config import Plan
from ggcn.measure import data


def to_uint8(x: Tensor) -> np.ndarray:
    """Images in [−1, 1] as uint8 in [0, 255] (small artifacts)."""
    return ((x.detach().float().cpu().clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8).numpy()


def from_uint8(x: np.ndarray) -> Tensor:
    """The inverse of :func:`to_uint8`, back to a float tensor in [−1, 1]."""
    return torch.as_tensor(np.asarray(x), dtype=torch.float32) / 127.5 - 1


@dataclass
class Labelled:
    """A labelled image set split into training images and a held-out real reference."""

    name: str
    x: Tensor
    y: Tensor
    real: Tensor
    real_y: Tensor
    classes: tuple[str, ...]

    def first_classes(self, k: int) -> "Labelled":
        """The same set restricted to labels 0..k−1 (the conditional runs)."""
        if not 1 <= k <= len(self.classes):
            raise ValueError(f"{self.name} has {len(self.classes)} classes; cannot keep the first {k}")
        keep, keep_real = self.y < k, self.real_y < k
        return Labelled(self.name, self.x[keep], self.y[keep], self.real[keep_real], self.real_y[keep_real],
                        self.classes[:k])


def split(x: Tensor, y: Tensor, n_real: int, seed: int = 0) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """A seeded split into (train x, train y, held-out x, held-out y) with ``n_real`` held out."""
    if not 2 <= n_real < len(x):
        raise ValueError(f"cannot hold out {n_real} of {len(x)} images; need 2 ≤ n_real < {len(x)}")
    perm = torch.randperm(len(x), generator=torch.Generator().manual_seed(seed))
    return x[perm[n_real:]], y[perm[n_real:]], x[perm[:n_real]], y[perm[:n_real]]


def digits_set(plan: Plan, seed: int = 0) -> Labelled:
    """sklearn's digits at ``plan.table_size``, ``plan.n_real`` of them held out."""
    x, y = data.digits(plan.table_size)
    x_train, y_train, real, real_y = split(x, y, plan.n_real, seed)
    return Labelled("digits", x_train[: plan.n_train], y_train[: plan.n_train], real, real_y, tuple("0123456789"))


HELD_OUT = {"cifar10": "test", "tiny-imagenet": "val"}  # the split that serves as the real reference


def real_set(name: str, root: str | Path, size: int, plan: Plan, seed: int = 0) -> Labelled:
    """A labelled real set from a data root: CIFAR-10 (reference: its test split) or Tiny ImageNet
    (reference: its validation split); ``plan.n_train`` / ``plan.n_real`` seeded random images of each."""
    if name not in HELD_OUT:
        raise ValueError(f"the quality chapter reads {sorted(HELD_OUT)} from a data root, not {name!r}")
    train_set, reference = (data.image_dataset(name, root, size, s, labels=True) for s in ("train", HELD_OUT[name]))
    x, y = train_set.draw(_count(plan.n_train, len(train_set)), seed)
    real, real_y = reference.draw(_count(plan.n_real, len(reference)), seed)
    return Labelled(name, x, y, real, real_y, train_set.classes)


def _count(n: int | None, total: int) -> int | None:
    return None if n is None or n >= total else n


def standin_folder(root: str | Path, size: int, per_class: int, seed: int = 0) -> Path:
    """Write an ImageFolder ``<root>/<photo>/<i>.png``: ``per_class`` random ``size×size`` crops of
    each of scikit-image's photos (one class per photo), read from a 4×``size`` shrink of it.

    The offline stand-in for Tiny ImageNet: colour natural images in a few classes, read through the
    same folder loader (``load_images("folder", ...)``) as any real ImageFolder.
    """
    from PIL import Image

    root = Path(root)
    g = torch.Generator().manual_seed(seed)
    for name in data.PHOTOS:
        big = data.photo(name, 4 * size)[0]
        (folder := root / name).mkdir(parents=True, exist_ok=True)
        for i, (r, c) in enumerate(torch.randint(0, 3 * size + 1, (per_class, 2), generator=g).tolist()):
            Image.fromarray(to_uint8(big[:, r:r + size, c:c + size]).transpose(1, 2, 0)).save(folder / f"{i:04d}.png")
    return root


def standin_set(plan: Plan, seed: int = 0) -> Labelled:
    """The Tiny ImageNet stand-in (:func:`standin_folder`) at ``plan.tiny_size``, a quarter held out."""
    size = plan.tiny_size
    with tempfile.TemporaryDirectory(prefix="ggcn-standin-") as tmp:
        folder = standin_folder(tmp, size, plan.standin_per_class, seed)
        images = data.image_dataset("folder", root=folder, size=size, labels=True)
        x, y = images.draw()
    x_train, y_train, real, real_y = split(x, y, len(x) // 4, seed)
    return Labelled("stand-in", x_train, y_train, real, real_y, images.classes)


def table_set(plan: Plan, data_root: str | Path | None = None, seed: int = 0) -> Labelled:
    """Part 2's data: CIFAR-10 (32×32) from ``data_root``, or sklearn's digits without one."""
    return digits_set(plan, seed) if data_root is None else real_set("cifar10", data_root, 32, plan, seed)


def tiny_set(plan: Plan, data_root: str | Path | None = None, seed: int = 0) -> tuple[Labelled, str]:
    """Part 3's data and a note on it: Tiny ImageNet from ``data_root`` when it is there, else the
    offline stand-in (:func:`standin_set`), with the reason."""
    if data_root is not None:
        try:
            return real_set("tiny-imagenet", data_root, plan.tiny_size, plan, seed), ""
        except FileNotFoundError as err:
            return standin_set(plan, seed), f"Tiny ImageNet was not found under the data root ({err})"
    return standin_set(plan, seed), "no data root was given"
