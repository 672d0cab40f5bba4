"""Data: offline sets that ship inside packages, and real loaders that read a local folder.

All image tensors are ``(N, C, H, W)`` float32 in [−1, 1]. Offline sets need no download:
skimage textures and photos, skimage's LFW faces (100), sklearn's digits, and 2-D toys
(:func:`toy2d`, kept apart because they are points, not images).

Real sets are read from a data root (the chapters' ``data_root`` parameter, or the
``GGCN_DATA`` environment variable), laid out as torchvision leaves them::

    <root>/cifar-10-batches-py/{data_batch_1..5, test_batch, batches.meta}
    <root>/celeba/img_align_celeba/*.jpg   (+ <root>/celeba/list_eval_partition.txt)
    <root>/lsun/bedroom_train/**.{jpg,png,webp}   (images exported from the LMDB, see below)
    <root>/tiny-imagenet-200/{wnids.txt, train/<wnid>/images/*.JPEG,
                              val/images/*.JPEG, val/val_annotations.txt}
    <root>/SUN397/<letter>/<class>/**.jpg
    folder: <root>/<class>/**.{jpg,png,...}  (any ImageFolder; images directly in <root> form one class)

LSUN ships as LMDB databases; reading them needs the extra ``lmdb`` package, so ggcn reads
images exported with ``python data.py export bedroom_train_lmdb --out_dir <root>/lsun/bedroom_train``
from https://github.com/fyu/lsun instead.

:func:`load_images` returns tensors (small to medium ``n``); :func:`image_dataset` returns a
:class:`ImageSet` that decodes on demand, for a ``DataLoader`` at paper scale.
"""
from __future__ import annotations

import math
import os
import pickle
from abc import ABC, abstractmethod
from dataclasses import dataclass
from numbers import Integral
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor
from torch.utils.data import Dataset

from ggcn.core.train import check_seed

TEXTURES = ("brick", "grass", "gravel")
PHOTOS = ("astronaut", "coffee", "chelsea", "rocket", "hubble_deep_field")
TOYS = ("gaussians8", "ring", "moons", "spiral", "gaussian")
REAL_SETS = ("cifar10", "celeba", "lsun-bedroom", "tiny-imagenet", "sun", "folder")
DATA_ENV = "GGCN_DATA"
IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".webp", ".bmp")
CELEBA_CROP = 140  # side of the centre square cut from the 178×218 aligned faces
GREY_WEIGHTS = (0.299, 0.587, 0.114)  # ITU-R 601 luma, as PIL's "L" mode
TINY_IMAGENET_URL = "http://cs231n.stanford.edu/tiny-imagenet-200.zip"


def _to_tensor(images: np.ndarray, size: int) -> Tensor:
    """``(N,H,W)`` or ``(N,H,W,3)`` in [0,1] → ``(N,C,size,size)`` in [−1,1] (antialiased resize)."""
    x = torch.as_tensor(np.asarray(images, dtype=np.float32))
    x = x.unsqueeze(1) if x.dim() == 3 else x.permute(0, 3, 1, 2)
    if x.shape[-1] != size or x.shape[-2] != size:
        x = F.interpolate(x, size=(size, size), mode="bilinear", antialias=True, align_corners=False)
    return (x.clamp(0, 1) * 2 - 1).contiguous()


def _check_size(size: int) -> None:
    if not isinstance(size, Integral) or isinstance(size, bool) or not 4 <= size <= 512:
        raise ValueError(f"image size must be an integer between 4 and 512, got {size!r}")


def _check_count(k: int, what: str, total: int | None = None) -> None:
    """``k`` must be a positive integer (at most ``total`` when given)."""
    if not isinstance(k, Integral) or isinstance(k, bool) or k < 1 or (total is not None and k > total):
        allowed = "a positive integer" if total is None else f"an integer in 1..{total} (the set has {total} images)"
        raise ValueError(f"{what} must be {allowed}, got {k!r}")


def _generator(seed: int) -> torch.Generator:
    """A CPU generator seeded with ``seed`` (an integer in [0, 2**32), as everywhere in ggcn)."""
    return torch.Generator().manual_seed(check_seed(seed))


def _draw(total: int, k: int, seed: int, what: str) -> Tensor:
    """``k`` distinct indices out of ``total``, the same for the same ``seed``."""
    _check_count(k, what, total)
    return torch.randperm(total, generator=_generator(seed))[:k]


def _first(x: Tensor, n: int | None) -> Tensor:
    """The first ``n`` items of ``x`` (all of them for None); ``n`` must fit the set."""
    if n is None:
        return x
    _check_count(n, "n", len(x))
    return x[:n]


def _grey(x: Tensor) -> Tensor:
    """Colour ``(N,3,H,W)`` → luma ``(N,1,H,W)``; one-channel input is returned as is."""
    if x.shape[1] == 1:
        return x
    w = torch.tensor(GREY_WEIGHTS, dtype=x.dtype).view(1, 3, 1, 1)
    return (x * w).sum(1, keepdim=True)


# ----------------------------------------------------------------------------- offline sets


def texture(name: str = "brick", size: int = 32, n_crops: int = 1, seed: int = 0) -> Tensor:
    """A grey skimage texture, ``(n_crops, 1, size, size)``.

    With ``n_crops=1`` the whole 512×512 image is shrunk to ``size``; with more, random
    ``size``-windows are cut from the image shrunk to ``2·size`` (a texture is stationary).
    """
    from skimage import data as skdata

    if name not in TEXTURES:
        raise ValueError(f"unknown texture {name!r}; choose one of {TEXTURES}")
    _check_size(size)
    _check_count(n_crops, "n_crops")
    img = getattr(skdata, name)().astype(np.float32) / 255.0
    if n_crops == 1:
        return _to_tensor(img[None], size)
    big = _to_tensor(img[None], 2 * size)
    g = _generator(seed)
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
    """100 grey 25×25 LFW face crops resized to ``size`` (an offline CelebA stand-in).

    skimage's ``lfw_subset()`` holds 200 crops: the first 100 are faces, the other 100
    are background patches (non-faces), which are left out here.
    """
    from skimage import data as skdata

    _check_size(size)
    faces = skdata.lfw_subset()[:100].astype(np.float32)  # (100, 25, 25) in [0, 1]
    return _first(_to_tensor(faces, size), n)


def digits(size: int = 16, n: int | None = None) -> tuple[Tensor, Tensor]:
    """sklearn's handwritten digits (1,797 images of 8×8) resized to ``size``, with labels 0–9."""
    from sklearn.datasets import load_digits

    _check_size(size)
    d = load_digits()
    x = _to_tensor(d.images.astype(np.float32) / 16.0, size)
    y = torch.as_tensor(d.target, dtype=torch.long)
    return _first(x, n), _first(y, n)


def toy2d(name: str = "gaussians8", n: int = 1000, seed: int = 0) -> Tensor:
    """A 2-D point cloud ``(n, 2)`` roughly inside [−2, 2]²."""
    _check_count(n, "n")
    g = _generator(seed)
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
    if labels is not None and len(labels) != len(x):
        raise ValueError(f"few_shot got {len(x)} images but {len(labels)} labels; they must match")
    idx = _draw(len(x), k, seed, "few-shot size k")
    return x[idx] if labels is None else (x[idx], labels[idx])


OFFLINE: dict[str, Callable[..., Tensor]] = {
    "lfw": lambda size, n=None: lfw_faces(size, n),
    "digits": lambda size, n=None: digits(size, n)[0],
    **{t: (lambda size, n=None, t=t: texture(t, size, n_crops=n or 1)) for t in TEXTURES},
    **{p: (lambda size, n=None, p=p: photo(p, size)) for p in PHOTOS},
}
OFFLINE_SETS = tuple(OFFLINE)
IMAGE_SETS = OFFLINE_SETS + REAL_SETS  # every name load_images / image_dataset accept


# ----------------------------------------------------------------------------- datasets


class ImageSet(Dataset, ABC):
    """Images (and integer labels) decoded on demand.

    An item is ``x`` of shape ``(C, size, size)`` in [−1, 1], or ``(x, y)`` when built
    with ``labels=True``; ``classes[y]`` names a label. :meth:`images` decodes many at once.
    """

    def __init__(self, name: str, size: int, grey: bool, labels: bool,
                 targets: Tensor | None = None, classes: Sequence[str] = ()):
        if labels and targets is None:
            raise ValueError(f"{name} has no class labels; call it with labels=False")
        self.name, self.size, self.grey, self.labels = name, size, grey, labels
        self.targets, self.classes = targets, tuple(classes)

    @abstractmethod
    def __len__(self) -> int: ...

    @abstractmethod
    def _decode(self, idx: Sequence[int]) -> Tensor:
        """Colour or grey images at ``idx`` as ``(len(idx), C, size, size)`` in [−1, 1]."""

    def images(self, idx: Sequence[int]) -> Tensor:
        """The images at ``idx`` (grey when asked), ``(len(idx), C, size, size)``."""
        x = self._decode(idx)
        if x.dim() != 4 or x.shape[-2:] != (self.size, self.size):
            raise ValueError(f"{self.name}: decoded images of shape {tuple(x.shape)}, not the requested "
                             f"{self.size}×{self.size}; resize them to size={self.size} in _decode")
        return _grey(x) if self.grey else x

    def __getitem__(self, i: int) -> Tensor | tuple[Tensor, Tensor]:
        x = self.images([i])[0]
        return (x, self.targets[i]) if self.labels else x


class TensorImages(ImageSet):
    """An in-memory image tensor ``(N, C, S, S)`` (the offline sets); its size is ``S``."""

    def __init__(self, name: str, x: Tensor, targets: Tensor | None, grey: bool, labels: bool):
        if x.dim() != 4 or x.shape[-1] != x.shape[-2]:
            raise ValueError(f"{name}: images must be a tensor (N, C, S, S) of square images, got shape "
                             f"{tuple(x.shape)}; resize or crop them to squares first")
        super().__init__(name, x.shape[-1], grey, labels, targets)
        self.x = x

    def __len__(self) -> int:
        return len(self.x)

    def _decode(self, idx: Sequence[int]) -> Tensor:
        return self.x[torch.as_tensor(idx, dtype=torch.long)]


class ArrayImages(ImageSet):
    """uint8 pixels ``(N, H, W, 3)`` held in memory, resized on demand (CIFAR-10)."""

    def __init__(self, name: str, pixels: np.ndarray, size: int, grey: bool, labels: bool,
                 targets: Tensor | None = None, classes: Sequence[str] = ()):
        super().__init__(name, size, grey, labels, targets, classes)
        self.pixels = pixels

    def __len__(self) -> int:
        return len(self.pixels)

    def _decode(self, idx: Sequence[int]) -> Tensor:
        return _to_tensor(self.pixels[np.asarray(idx, dtype=np.int64)] / np.float32(255), self.size)


class FileImages(ImageSet):
    """Image files, each centre-cropped to a square of side ``crop`` (None: the shorter side) and resized."""

    def __init__(self, name: str, paths: Sequence[Path], size: int, grey: bool, labels: bool,
                 targets: Tensor | None = None, classes: Sequence[str] = (), crop: int | None = None):
        super().__init__(name, size, grey, labels, targets, classes)
        self.paths, self.crop = list(paths), crop

    def __len__(self) -> int:
        return len(self.paths)

    def _decode(self, idx: Sequence[int]) -> Tensor:
        return torch.stack([_load_image(self.paths[i], self.size, self.crop, self.name) for i in idx])


def _open_rgb(path: Path, name: str):
    """The file decoded as an RGB PIL image; a damaged file raises an OSError naming it and the fix."""
    from PIL import Image

    try:
        with Image.open(path) as im:
            return im.convert("RGB")
    except FileNotFoundError:
        raise
    except (OSError, SyntaxError, ValueError) as err:
        raise OSError(f"{name}: cannot read the image file {path} ({err}); the file is damaged or not an image: "
                      "delete or replace it, or download and extract the data set again") from err


def _load_image(path: Path, size: int, crop: int | None, name: str) -> Tensor:
    """One file → ``(3, size, size)`` in [−1, 1]: centre square of side ``crop``, antialiased resize."""
    from PIL import Image

    im = _open_rgb(path, name)
    w, h = im.size
    s = min(w, h) if crop is None else min(crop, w, h)
    left, top = (w - s) // 2, (h - s) // 2
    im = im.crop((left, top, left + s, top + s)).resize((size, size), Image.Resampling.BILINEAR)
    x = torch.from_numpy(np.asarray(im, dtype=np.float32) / 255.0).permute(2, 0, 1)
    return x * 2 - 1


# ----------------------------------------------------------------------------- real sets on disk


@dataclass(frozen=True)
class _Source:
    """Where a real set lives under the data root, what must be in it, and how to get it."""

    folder: str  # relative to the root; "{split}" is filled in
    layout: str
    get: str
    splits: tuple[str, ...]


SOURCES: dict[str, _Source] = {
    "cifar10": _Source(
        "cifar-10-batches-py", "data_batch_1 … data_batch_5, test_batch, batches.meta",
        "download the CIFAR-10 python version (https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz) "
        "and extract it into {root}, or pass download=True on a connected machine",
        ("train", "test")),
    "celeba": _Source(
        "celeba/img_align_celeba", "*.jpg, with list_eval_partition.txt next to the folder (torchvision's layout)",
        "download 'Align&Cropped Images' (img_align_celeba.zip) and list_eval_partition.txt from "
        "https://mmlab.ie.cuhk.edu.hk/projects/CelebA.html into {root}/celeba and unzip there, or pass "
        "download=True on a connected machine (needs the gdown package)",
        ("train", "valid", "test", "all")),
    "lsun-bedroom": _Source(
        "lsun/bedroom_{split}", "image files (.jpg/.png/.webp), in any sub-folders",
        "download bedroom_{split}_lmdb with https://github.com/fyu/lsun (download.py -c bedroom) and export it "
        "to images: python data.py export bedroom_{split}_lmdb --out_dir {root}/lsun/bedroom_{split} "
        "(reading the LMDB directly would need the extra lmdb package); torchvision has no LSUN downloader",
        ("train", "val")),
    "tiny-imagenet": _Source(
        "tiny-imagenet-200", "wnids.txt, train/<wnid>/images/*.JPEG, val/images/*.JPEG, val/val_annotations.txt",
        f"download {TINY_IMAGENET_URL} and unzip it into {{root}}, "
        "or pass download=True on a connected machine",
        ("train", "val")),
    "sun": _Source(
        "SUN397", "<letter>/<class>/*.jpg (torchvision's SUN397 layout)",
        "download http://vision.princeton.edu/projects/2010/SUN/SUN397.tar.gz and extract it into "
        "{root}, or pass download=True on a connected machine; for a few categories use name='folder' "
        "with root={root}/SUN397/<letter>/<class>",
        ("train",)),
    "folder": _Source(
        "", "<class>/*.jpg|png|webp (an ImageFolder; images directly inside form one class)",
        "point root at a folder of images", ("train",)),
}


def data_root(root: str | Path | None = None) -> Path:
    """``root``, or the ``GGCN_DATA`` environment variable when ``root`` is None."""
    root = root if root is not None else os.environ.get(DATA_ENV)
    if not root:
        raise ValueError(
            "real data sets are read from a local folder: pass root=... (the chapters' `data_root` "
            f"parameter) or set the {DATA_ENV} environment variable to the folder that holds the data sets")
    return Path(root).expanduser()


def _root_note(root: Path, path: Path) -> str:
    """What is wrong with the data root itself, if anything, for the missing-data message."""
    if root.is_file():
        return f" (the data root {root} is a file, not a folder)"
    return "" if root.exists() or root == path else f" (the data root {root} does not exist)"


def _expected(name: str, path: Path, root: Path, split: str, note: str = "") -> FileNotFoundError:
    """The error for a missing folder or file: what was expected, the layout, how to get it."""
    src = SOURCES[name]
    return FileNotFoundError(
        f"{name}: expected {path}{_root_note(root, path)}{note}. It should hold "
        f"{src.layout}. To get it: {src.get.format(split=split, root=root)}.")


def _image_files(folder: Path) -> list[Path]:
    """Every image file under ``folder`` (recursively, any letter case), sorted."""
    return sorted(p for p in folder.rglob("*") if p.suffix.lower() in IMAGE_EXTENSIONS and p.is_file())


def _nonempty(files: list[Path], folder: Path) -> list[Path]:
    if not files:
        raise FileNotFoundError(f"no image files ({', '.join(IMAGE_EXTENSIONS)}) found under {folder}")
    return files


def _unpickle(path: Path) -> dict:
    with open(path, "rb") as f:
        return pickle.load(f, encoding="bytes")


def _cifar10(folder: Path, split: str) -> tuple[np.ndarray, Tensor, list[str]]:
    """Pixels ``(N,32,32,3)`` uint8, labels and class names from the python pickles (as torchvision reads them)."""
    names = [f"data_batch_{i}" for i in range(1, 6)] if split == "train" else ["test_batch"]
    pixels, targets = [], []
    for file in [*names, "batches.meta"]:
        if not (folder / file).is_file():
            raise _expected("cifar10", folder, folder.parent, split, f" with the file {file}")
    for file in names:
        batch = _unpickle(folder / file)
        if b"data" not in batch or b"labels" not in batch:
            raise ValueError(f"{folder / file} is not a CIFAR-10 python batch (no b'data'/b'labels'); "
                             "re-extract cifar-10-python.tar.gz")
        pixels.append(np.asarray(batch[b"data"], dtype=np.uint8).reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1))
        targets.extend(batch[b"labels"])
    classes = [c.decode() for c in _unpickle(folder / "batches.meta")[b"label_names"]]
    return np.concatenate(pixels), torch.as_tensor(targets, dtype=torch.long), classes


def _celeba(images: Path, split: str) -> list[Path]:
    """The aligned faces of ``split`` (by list_eval_partition.txt: 0 train, 1 valid, 2 test)."""
    files = _nonempty(sorted(p for p in images.glob("*.jpg")), images)
    if split == "all":
        return files
    partition = images.parent / "list_eval_partition.txt"
    if not partition.is_file():
        raise _expected("celeba", partition, images.parent.parent, split, f" to select split={split!r} (split='all' "
                        "uses every image without it)")
    code = str(("train", "valid", "test").index(split))
    wanted = [line.split()[0] for line in partition.read_text().splitlines() if line.split()[1:] == [code]]
    present = {p.name for p in files}
    missing = [f for f in wanted if f not in present]
    if missing:
        raise FileNotFoundError(f"celeba: {len(missing)} images of split {split!r} listed in {partition} are "
                                f"missing from {images} (first: {missing[0]}); re-extract img_align_celeba.zip")
    return [images / f for f in wanted]


def _tiny_imagenet(folder: Path, split: str) -> tuple[list[Path], Tensor, list[str]]:
    """Tiny ImageNet files and labels; a label is the line of the image's wnid in wnids.txt."""
    wnids_file = folder / "wnids.txt"
    if not wnids_file.is_file():
        raise _expected("tiny-imagenet", folder, folder.parent, split, " with the file wnids.txt")
    wnids = wnids_file.read_text().split()
    index = {w: i for i, w in enumerate(wnids)}
    pairs: list[tuple[Path, str]] = []
    if split == "train":
        for w in wnids:
            images = folder / "train" / w / "images"
            if not images.is_dir():
                raise _expected("tiny-imagenet", images, folder.parent, split)
            pairs += [(p, w) for p in _nonempty(_image_files(images), images)]
    else:
        notes = folder / "val" / "val_annotations.txt"
        if not notes.is_file():
            raise _expected("tiny-imagenet", notes, folder.parent, split)
        rows = [line.split()[:2] for line in notes.read_text().splitlines() if line.strip()]
        pairs = [(folder / "val" / "images" / f, w) for f, w in rows]
        missing = [p for p, _ in pairs if not p.is_file()]
        if missing:
            raise FileNotFoundError(f"tiny-imagenet: {len(missing)} validation images listed in {notes} are "
                                    f"missing (first: {missing[0]}); re-extract tiny-imagenet-200.zip")
    unknown = sorted({w for _, w in pairs} - set(index))
    if unknown:
        raise ValueError(f"tiny-imagenet: wnids {unknown[:3]} are not in {wnids_file}; the folder is inconsistent")
    return [p for p, _ in pairs], torch.as_tensor([index[w] for _, w in pairs], dtype=torch.long), wnids


def _image_folder(folder: Path) -> tuple[list[Path], Tensor, list[str]]:
    """An ImageFolder: the label of a file is its parent folder relative to ``folder``, in sorted order."""
    files = _nonempty(_image_files(folder), folder)
    parents = [p.parent.relative_to(folder).as_posix() for p in files]
    classes = sorted(set(parents))
    index = {c: i for i, c in enumerate(classes)}
    return files, torch.as_tensor([index[c] for c in parents], dtype=torch.long), classes


def _download(name: str, root: Path, split: str) -> None:
    """Fetch ``name`` into ``root`` with torchvision (needs internet)."""
    import torchvision.datasets as tvd
    from torchvision.datasets.utils import download_and_extract_archive

    fetch = {
        "cifar10": lambda: tvd.CIFAR10(str(root), train=split == "train", download=True),
        "celeba": lambda: tvd.CelebA(str(root), split="all", download=True),
        "tiny-imagenet": lambda: download_and_extract_archive(TINY_IMAGENET_URL, str(root)),
        "sun": lambda: tvd.SUN397(str(root), download=True),
    }
    if name not in fetch:
        raise ValueError(f"{name} cannot be downloaded by ggcn; {SOURCES[name].get.format(split=split, root=root)}")
    root.mkdir(parents=True, exist_ok=True)
    fetch[name]()


def _real(name: str, root: Path, size: int, split: str, labels: bool, grey: bool) -> ImageSet:
    """Open real set ``name`` under ``root``."""
    folder = root / SOURCES[name].folder.format(split=split)
    if not folder.is_dir():
        lmdb = folder.with_name(folder.name + "_lmdb")
        note = f" (found the LMDB {lmdb}; export it to image files)" if lmdb.exists() else ""
        raise _expected(name, folder, root, split, note)
    if name == "cifar10":
        pixels, targets, classes = _cifar10(folder, split)
        return ArrayImages(name, pixels, size, grey, labels, targets, classes)
    if name == "celeba":
        return FileImages(name, _celeba(folder, split), size, grey, labels, crop=CELEBA_CROP)
    if name == "lsun-bedroom":
        return FileImages(name, _nonempty(_image_files(folder), folder), size, grey, labels)
    paths, targets, classes = _tiny_imagenet(folder, split) if name == "tiny-imagenet" else _image_folder(folder)
    return FileImages(name, paths, size, grey, labels, targets, classes)


# ----------------------------------------------------------------------------- entry points


def _offline(name: str, size: int, labels: bool, grey: bool) -> ImageSet:
    """An offline set as an :class:`ImageSet` (digits carry labels 0–9)."""
    x, y = digits(size) if name == "digits" else (OFFLINE[name](size), None)
    return TensorImages(name, x, y, grey, labels)


def _check_request(name: str, size: int, split: str) -> None:
    """Known name, valid size, a split the set has."""
    if name not in IMAGE_SETS:
        hint = f"; {name!r} is a 2-D point set, use toy2d({name!r})" if name in TOYS else ""
        raise ValueError(f"unknown data set {name!r}{hint}; choose one of {IMAGE_SETS}")
    _check_size(size)
    splits = SOURCES[name].splits if name in SOURCES else ("train",)
    if split not in splits:
        raise ValueError(f"{name} has the splits {splits}, got split={split!r}")


def image_dataset(name: str, root: str | Path | None = None, size: int = 32, split: str = "train",
                  labels: bool = False, download: bool = False, grey: bool = False) -> ImageSet:
    """A :class:`ImageSet` over one of :data:`IMAGE_SETS`, for a ``DataLoader`` at paper scale.

    Items are ``x`` (``(C, size, size)`` in [−1, 1]) or ``(x, y)`` with ``labels=True``.
    Real sets (:data:`REAL_SETS`) read ``root`` (default: ``$GGCN_DATA``) in the layout of
    the module docstring; ``download=True`` fetches a missing set with torchvision
    (CIFAR-10, CelebA, Tiny ImageNet, SUN397; not LSUN, which needs the LMDB export).
    Offline sets ignore ``root`` and ``download``. ``grey=True`` turns colour into luma.
    """
    _check_request(name, size, split)
    if name in OFFLINE:
        return _offline(name, size, labels, grey)
    root = data_root(root)
    if download and not (root / SOURCES[name].folder.format(split=split)).is_dir():
        _download(name, root, split)
    return _real(name, root, size, split, labels, grey)


def load_images(name: str, root: str | Path | None = None, size: int = 32, n: int | None = None,
                split: str = "train", labels: bool = False, download: bool = False, grey: bool = False,
                seed: int = 0) -> Tensor | tuple[Tensor, Tensor]:
    """Images of one of :data:`IMAGE_SETS` as a tensor ``(N, C, size, size)`` in [−1, 1].

    ``n`` draws that many images at random without replacement (fixed by ``seed``); None
    takes them all. For a texture, ``n > 1`` gives ``n`` random crops (see :func:`texture`).
    With ``labels=True`` returns ``(x, y)``. Other arguments as in :func:`image_dataset`.
    """
    if name in TEXTURES:
        _check_request(name, size, split)
        if labels:
            raise ValueError(f"{name} has no class labels; call it with labels=False")
        if n is not None:
            _check_count(n, "n")
        return texture(name, size, n_crops=1 if n is None else n, seed=seed)
    ds = image_dataset(name, root, size, split, labels, download, grey)
    idx = list(range(len(ds))) if n is None else _draw(len(ds), n, seed, "n").tolist()
    x = ds.images(idx)
    return (x, ds.targets[idx]) if labels else x
