"""Images ``(N, C, H, W)`` in [−1, 1]: offline sets shipped in packages (skimage textures, photos and LFW faces,
sklearn digits; 2-D point toys apart), and real sets read from ``root`` (the chapters' ``data_root``, or
``$GGCN_DATA``) as torchvision leaves them (:func:`load_images` gives tensors, :func:`image_dataset` an
:class:`ImageSet` that decodes on demand)::

    <root>/cifar-10-batches-py/{data_batch_1..5, test_batch, batches.meta}
    <root>/celeba/img_align_celeba/*.jpg   (+ <root>/celeba/list_eval_partition.txt)
    <root>/lsun/bedroom_train/**.{jpg,png,webp}   (exported from the LMDB with fyu/lsun's data.py export)
    <root>/tiny-imagenet-200/{wnids.txt, train/<wnid>/images/*.JPEG, val/images/*.JPEG, val/val_annotations.txt}
    <root>/SUN397/<letter>/<class>/**.jpg
    folder: <root>/<class>/**.{jpg,png,...}  (any ImageFolder; images directly in <root> form one class)
"""
from __future__ import annotations

import math
import os
import pickle
from abc import ABC, abstractmethod
from dataclasses import dataclass
from numbers import Integral
from pathlib import Path
from typing import Any, Callable, Sequence

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
Items = tuple["list[Path] | Tensor", "Tensor | None", Sequence[str]]  # files or uint8 pixels, labels, class names


def _resized(x: Tensor, size: int) -> Tensor:
    """``(N, C, H, W)`` in [0, 1] → ``(N, C, size, size)`` in [−1, 1] (antialiased bilinear resize)."""
    if x.shape[-2:] != (size, size):
        x = F.interpolate(x, size=(size, size), mode="bilinear", antialias=True, align_corners=False)
    return (x.clamp(0, 1) * 2 - 1).contiguous()


def _to_tensor(images: np.ndarray, size: int) -> Tensor:
    """``(N, H, W)`` or ``(N, H, W, 3)`` in [0, 1] → ``(N, C, size, size)`` in [−1, 1]."""
    x = torch.as_tensor(np.asarray(images, dtype=np.float32))
    return _resized(x.unsqueeze(1) if x.dim() == 3 else x.permute(0, 3, 1, 2), size)


def _check_size(size: int) -> None:
    if not isinstance(size, Integral) or isinstance(size, bool) or not 4 <= size <= 512:
        raise ValueError(f"image size must be an integer between 4 and 512, got {size!r}")


def _check_count(k: int, what: str, total: int | None = None) -> int:
    """``k``, which must be a positive integer (at most ``total`` when given)."""
    if not isinstance(k, Integral) or isinstance(k, bool) or k < 1 or (total is not None and k > total):
        allowed = "a positive integer" if total is None else f"an integer in 1..{total} (the set has {total} images)"
        raise ValueError(f"{what} must be {allowed}, got {k!r}")
    return k


def _draw(total: int, k: int, seed: int) -> Tensor:
    """``k`` of ``range(total)`` drawn without replacement by ``seed``."""
    g = torch.Generator().manual_seed(check_seed(seed))
    return torch.randperm(total, generator=g)[:_check_count(k, "n", total)]


def _first(x: Tensor, n: int | None) -> Tensor:
    return x if n is None else x[:_check_count(n, "n", len(x))]


def texture(name: str = "brick", size: int = 32, n_crops: int = 1, seed: int = 0) -> Tensor:
    """A grey skimage texture ``(n_crops, 1, size, size)``: the whole 512×512 image shrunk to ``size``, or
    with ``n_crops > 1`` random ``size``-windows of the image shrunk to ``2·size`` (a texture is stationary)."""
    from skimage import data as skdata
    if name not in TEXTURES:
        raise ValueError(f"unknown texture {name!r}; choose one of {TEXTURES}")
    _check_size(size)
    _check_count(n_crops, "n_crops")
    img = getattr(skdata, name)().astype(np.float32) / 255.0
    if n_crops == 1:
        return _to_tensor(img[None], size)
    big = _to_tensor(img[None], 2 * size)
    ij = torch.randint(0, size + 1, (n_crops, 2), generator=torch.Generator().manual_seed(check_seed(seed)))
    return torch.stack([big[0, :, i : i + size, j : j + size] for i, j in ij.tolist()])


def photo(name: str = "astronaut", size: int = 32) -> Tensor:
    """One skimage photo, centre-cropped square, ``(1, 3, size, size)``."""
    from skimage import data as skdata
    if name not in PHOTOS:
        raise ValueError(f"unknown photo {name!r}; choose one of {PHOTOS}")
    _check_size(size)
    img = getattr(skdata, name)()
    img = np.repeat(img[..., None], 3, -1) if img.ndim == 2 else img[..., :3]
    (h, w), s = img.shape[:2], min(img.shape[:2])
    img = img[None, (h - s) // 2 : (h + s) // 2, (w - s) // 2 : (w + s) // 2]
    return _to_tensor(img.astype(np.float32) / 255.0, size)


def lfw_faces(size: int = 16, n: int | None = None, faces: bool = True) -> Tensor:
    """The 100 grey 25×25 LFW faces of skimage's ``lfw_subset()`` at ``size`` (or its 100 non-faces)."""
    from skimage import data as skdata
    _check_size(size)
    crops = skdata.lfw_subset()[:100] if faces else skdata.lfw_subset()[100:]
    return _first(_to_tensor(crops.astype(np.float32), size), n)


def digits(size: int = 16, n: int | None = None) -> tuple[Tensor, Tensor]:
    """sklearn's handwritten digits (1,797 images of 8×8) resized to ``size``, with labels 0–9."""
    from sklearn.datasets import load_digits
    _check_size(size)
    d = load_digits()
    x = _to_tensor(d.images.astype(np.float32) / 16.0, size)
    return _first(x, n), _first(torch.as_tensor(d.target, dtype=torch.long), n)


def toy2d(name: str = "gaussians8", n: int = 1000, seed: int = 0) -> Tensor:
    """A 2-D point cloud ``(n, 2)`` roughly inside [−2, 2]²."""
    _check_count(n, "n")
    g = torch.Generator().manual_seed(check_seed(seed))  # seeds are integers in [0, 2**32), as everywhere in ggcn
    if name == "gaussians8":
        a = torch.randint(0, 8, (n,), generator=g).float() * math.pi / 4
        return 1.5 * torch.stack([torch.cos(a), torch.sin(a)], 1) + 0.1 * torch.randn(n, 2, generator=g)
    if name == "ring":
        t, r = torch.rand(n, generator=g) * 2 * math.pi, 1.5 + 0.08 * torch.randn(n, generator=g)
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


OFFLINE: dict[str, Callable[[int], tuple[Tensor, Tensor | None]]] = {  # size -> (images, labels or None)
    "lfw": lambda size: (lfw_faces(size), None),
    "digits": digits,
    **{t: (lambda size, t=t: (texture(t, size), None)) for t in TEXTURES},
    **{p: (lambda size, p=p: (photo(p, size), None)) for p in PHOTOS},
}
OFFLINE_SETS = tuple(OFFLINE)
IMAGE_SETS = OFFLINE_SETS + REAL_SETS  # every name load_images / image_dataset accept


class ImageSet(Dataset, ABC):
    """Images decoded on demand: items ``x`` ``(C, size, size)`` in [−1, 1], or ``(x, y)`` with ``labels``; a
    subclass gives ``__len__`` and ``_decode``."""

    def __init__(self, name: str, size: int, grey: bool, labels: bool,
                 targets: Tensor | None = None, classes: Sequence[str] = ()):
        if labels and targets is None:
            raise ValueError(f"{name} has no class labels; call it with labels=False")
        self.name, self.size, self.grey, self.labels = name, size, grey, labels
        self.targets, self.classes = targets, tuple(classes)

    @abstractmethod
    def _decode(self, idx: Sequence[int]) -> Tensor:
        """Colour or grey images at ``idx`` as ``(len(idx), C, size, size)`` in [−1, 1]."""

    def images(self, idx: Sequence[int]) -> Tensor:
        """The images at ``idx`` (grey when asked), ``(len(idx), C, size, size)``."""
        x = self._decode(idx)
        if x.dim() != 4 or x.shape[-2:] != (self.size, self.size):
            raise ValueError(f"{self.name}: decoded images of shape {tuple(x.shape)}, not the requested "
                             f"{self.size}×{self.size}; resize them to size={self.size} in _decode")
        if self.grey and x.shape[1] == 3:  # ITU-R 601 luma
            x = (x * torch.tensor(GREY_WEIGHTS, dtype=x.dtype).view(1, 3, 1, 1)).sum(1, keepdim=True)
        return x

    def __getitem__(self, i: int) -> Tensor | tuple[Tensor, Tensor]:
        x = self.images([i])[0]
        return (x, self.targets[i]) if self.labels else x

    def draw(self, n: int | None = None, seed: int = 0) -> Tensor | tuple[Tensor, Tensor]:
        """``n`` images drawn without replacement by ``seed`` (None: all), with their labels when ``labels``."""
        idx = list(range(len(self))) if n is None else _draw(len(self), n, seed).tolist()
        return (self.images(idx), self.targets[idx]) if self.labels else self.images(idx)


class TensorImages(ImageSet):
    """Square images ``(N, C, S, S)`` in memory: floats in [−1, 1] of size S, or uint8 bytes resized to ``size``."""

    def __init__(self, name: str, x: Tensor, targets: Tensor | None, grey: bool, labels: bool,
                 size: int | None = None, classes: Sequence[str] = ()):
        if x.dim() != 4 or x.shape[-1] != x.shape[-2]:
            raise ValueError(f"{name}: images must be a tensor (N, C, S, S) of square images, got shape "
                             f"{tuple(x.shape)}; resize or crop them to squares first")
        super().__init__(name, size or x.shape[-1], grey, labels, targets, classes)
        self.x = x

    def __len__(self) -> int:
        return len(self.x)

    def _decode(self, idx: Sequence[int]) -> Tensor:
        x = self.x[torch.as_tensor(idx, dtype=torch.long)]
        return _resized(x.float() / 255, self.size) if x.dtype == torch.uint8 else x


class FileImages(ImageSet):
    """Image files, each centre-cropped to a square of side ``crop`` (None: the shorter side) and resized."""

    def __init__(self, name: str, paths: Sequence[Path], size: int, grey: bool, labels: bool,
                 targets: Tensor | None = None, classes: Sequence[str] = (), crop: int | None = None):
        super().__init__(name, size, grey, labels, targets, classes)
        self.paths, self.crop = list(paths), crop

    def __len__(self) -> int:
        return len(self.paths)

    def _decode(self, idx: Sequence[int]) -> Tensor:
        return torch.stack([self._read(self.paths[i]) for i in idx])

    def _read(self, path: Path) -> Tensor:
        """One file → ``(3, size, size)`` in [−1, 1]; a damaged file raises an OSError naming it and the fix."""
        from PIL import Image
        try:
            with Image.open(path) as im:
                im = im.convert("RGB")
        except FileNotFoundError:
            raise
        except (OSError, SyntaxError, ValueError) as err:
            raise OSError(f"{self.name}: cannot read the image file {path} ({err}); the file is damaged or not an "
                          "image: delete or replace it, or download and extract the data set again") from err
        w, h = im.size
        s = min(w, h) if self.crop is None else min(self.crop, w, h)
        left, top = (w - s) // 2, (h - s) // 2
        im = im.crop((left, top, left + s, top + s)).resize((self.size, self.size), Image.Resampling.BILINEAR)
        return torch.from_numpy(np.asarray(im, dtype=np.float32) / 255.0).permute(2, 0, 1) * 2 - 1


def data_root(root: str | Path | None = None) -> Path:
    """``root``, or the ``GGCN_DATA`` environment variable when ``root`` is None."""
    root = root if root is not None else os.environ.get(DATA_ENV)
    if not root:
        raise ValueError("real data sets are read from a local folder: pass root=... (the chapters' `data_root` "
                         f"parameter) or set the {DATA_ENV} environment variable to the folder holding the data sets")
    return Path(root).expanduser()


def _expected(name: str, path: Path, root: Path, split: str, note: str = "") -> FileNotFoundError:
    """The error for a missing folder or file: what was expected, the layout, how to get it."""
    if root.is_file():
        note = f" (the data root {root} is a file, not a folder){note}"
    elif not root.exists() and root != path:
        note = f" (the data root {root} does not exist){note}"
    src = SOURCES[name]
    return FileNotFoundError(f"{name}: expected {path}{note}. It should hold {src.layout}. "
                             f"To get it: {src.get.format(split=split, root=root)}.")


def _required(name: str, folder: Path, file: str, root: Path, split: str, why: str = "") -> Path:
    if not (folder / file).is_file():
        raise _expected(name, folder, root, split, f" with the file {file}{why}")
    return folder / file


def _image_files(folder: Path) -> list[Path]:
    """Every image file under ``folder`` (recursively, any letter case), sorted; at least one."""
    files = sorted(p for p in folder.rglob("*") if p.suffix.lower() in IMAGE_EXTENSIONS and p.is_file())
    if not files:
        raise FileNotFoundError(f"no image files ({', '.join(IMAGE_EXTENSIONS)}) found under {folder}")
    return files


def _present(name: str, paths: list[Path], listing: Path, split: str, archive: str) -> list[Path]:
    if missing := [p for p in paths if not p.is_file()]:
        raise FileNotFoundError(f"{name}: {len(missing)} images of split {split!r} listed in {listing} are missing "
                                f"(first: {missing[0].name}); re-extract {archive}")
    return paths


def _cifar10(folder: Path, root: Path, split: str) -> Items:
    """Pixels ``(N, 3, 32, 32)`` uint8, labels and class names from the python pickles."""
    names = [f"data_batch_{i}" for i in range(1, 6)] if split == "train" else ["test_batch"]
    files = [_required("cifar10", folder, file, root, split) for file in [*names, "batches.meta"]]
    pixels, targets = [], []
    for file in files[:-1]:
        batch = pickle.loads(file.read_bytes(), encoding="bytes")
        if b"data" not in batch or b"labels" not in batch:
            raise ValueError(f"{file} is not a CIFAR-10 python batch (no b'data'/b'labels'); "
                             "re-extract cifar-10-python.tar.gz")
        pixels.append(torch.from_numpy(np.asarray(batch[b"data"], dtype=np.uint8).reshape(-1, 3, 32, 32)))
        targets.extend(batch[b"labels"])
    classes = [c.decode() for c in pickle.loads(files[-1].read_bytes(), encoding="bytes")[b"label_names"]]
    return torch.cat(pixels), torch.as_tensor(targets, dtype=torch.long), classes


def _celeba(images: Path, root: Path, split: str) -> Items:
    """The aligned faces of ``split`` (by list_eval_partition.txt: 0 train, 1 valid, 2 test)."""
    if split == "all":
        return _image_files(images), None, ()
    partition = _required("celeba", images.parent, "list_eval_partition.txt", root, split,
                          f" to select split={split!r} (split='all' uses every image without it)")
    code = str(("train", "valid", "test").index(split))
    wanted = [images / line.split()[0] for line in partition.read_text().splitlines() if line.split()[1:] == [code]]
    return _present("celeba", wanted, partition, split, "img_align_celeba.zip"), None, ()


def _tiny_imagenet(folder: Path, root: Path, split: str) -> Items:
    """Tiny ImageNet files and labels; a label is the line of the image's wnid in wnids.txt."""
    wnids_file = _required("tiny-imagenet", folder, "wnids.txt", root, split)
    wnids = wnids_file.read_text().split()
    if split == "train":
        if missing := [w for w in wnids if not (folder / "train" / w / "images").is_dir()]:
            raise _expected("tiny-imagenet", folder / "train" / missing[0] / "images", root, split)
        pairs = [(p, w) for w in wnids for p in _image_files(folder / "train" / w / "images")]
    else:
        notes = _required("tiny-imagenet", folder, "val/val_annotations.txt", root, split)
        pairs = [(folder / "val" / "images" / line.split()[0], line.split()[1])
                 for line in notes.read_text().splitlines() if line.strip()]
        _present("tiny-imagenet", [p for p, _ in pairs], notes, split, "tiny-imagenet-200.zip")
    if unknown := sorted({w for _, w in pairs} - set(wnids)):
        raise ValueError(f"tiny-imagenet: wnids {unknown[:3]} are not in {wnids_file}; the folder is inconsistent")
    index = {w: i for i, w in enumerate(wnids)}
    return [p for p, _ in pairs], torch.as_tensor([index[w] for _, w in pairs], dtype=torch.long), wnids


def _image_folder(folder: Path, root: Path, split: str) -> Items:
    """An ImageFolder: the label of a file is its parent folder relative to ``folder``, in sorted order."""
    files = _image_files(folder)
    parents = [p.parent.relative_to(folder).as_posix() for p in files]
    index = {c: i for i, c in enumerate(sorted(set(parents)))}
    return files, torch.as_tensor([index[c] for c in parents], dtype=torch.long), list(index)


@dataclass(frozen=True)
class _Source:
    """Where a real set lives under the root ("{split}" is filled in), its layout, how to get and read it."""

    folder: str
    layout: str
    get: str
    splits: tuple[str, ...]
    read: Callable[[Path, Path, str], Items]
    fetch: Callable[[Any, Path, str], Any] | None = None  # (torchvision.datasets, root, split)
    crop: int | None = None


SOURCES: dict[str, _Source] = {
    "cifar10": _Source(
        "cifar-10-batches-py", "data_batch_1 … data_batch_5, test_batch, batches.meta",
        "download the CIFAR-10 python version (https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz) "
        "and extract it into {root}, or pass download=True on a connected machine",
        ("train", "test"), _cifar10,
        lambda tvd, root, split: tvd.CIFAR10(str(root), train=split == "train", download=True)),
    "celeba": _Source(
        "celeba/img_align_celeba", "*.jpg, with list_eval_partition.txt next to the folder (torchvision's layout)",
        "download 'Align&Cropped Images' (img_align_celeba.zip) and list_eval_partition.txt from "
        "https://mmlab.ie.cuhk.edu.hk/projects/CelebA.html into {root}/celeba and unzip there, or pass "
        "download=True on a connected machine (needs the gdown package)",
        ("train", "valid", "test", "all"), _celeba,
        lambda tvd, root, split: tvd.CelebA(str(root), split="all", download=True), CELEBA_CROP),
    "lsun-bedroom": _Source(
        "lsun/bedroom_{split}", "image files (.jpg/.png/.webp), in any sub-folders",
        "download bedroom_{split}_lmdb with https://github.com/fyu/lsun (download.py -c bedroom) and export it "
        "to images: python data.py export bedroom_{split}_lmdb --out_dir {root}/lsun/bedroom_{split} "
        "(reading the LMDB directly would need the extra lmdb package); torchvision has no LSUN downloader",
        ("train", "val"), lambda folder, root, split: (_image_files(folder), None, ())),
    "tiny-imagenet": _Source(
        "tiny-imagenet-200", "wnids.txt, train/<wnid>/images/*.JPEG, val/images/*.JPEG, val/val_annotations.txt",
        f"download {TINY_IMAGENET_URL} and unzip it into {{root}}, or pass download=True on a connected machine",
        ("train", "val"), _tiny_imagenet,
        lambda tvd, root, split: tvd.utils.download_and_extract_archive(TINY_IMAGENET_URL, str(root))),
    "sun": _Source(
        "SUN397", "<letter>/<class>/*.jpg (torchvision's SUN397 layout)",
        "download http://vision.princeton.edu/projects/2010/SUN/SUN397.tar.gz and extract it into "
        "{root}, or pass download=True on a connected machine; for a few categories use name='folder' "
        "with root={root}/SUN397/<letter>/<class>",
        ("train",), _image_folder, lambda tvd, root, split: tvd.SUN397(str(root), download=True)),
    "folder": _Source(
        "", "<class>/*.jpg|png|webp (an ImageFolder; images directly inside form one class)",
        "point root at a folder of images", ("train",), _image_folder),
}


def image_dataset(name: str, root: str | Path | None = None, size: int = 32, split: str = "train",
                  labels: bool = False, download: bool = False, grey: bool = False) -> ImageSet:
    """An :class:`ImageSet` of one of :data:`IMAGE_SETS`; ``download=True`` fetches a missing real set with
    torchvision (not LSUN: export its LMDB); offline sets ignore ``root``. ``grey=True`` gives luma."""
    if name not in IMAGE_SETS:
        hint = f"; {name!r} is a 2-D point set, use toy2d({name!r})" if name in TOYS else ""
        raise ValueError(f"unknown data set {name!r}{hint}; choose one of {IMAGE_SETS}")
    _check_size(size)
    if split not in (splits := SOURCES[name].splits if name in SOURCES else ("train",)):
        raise ValueError(f"{name} has the splits {splits}, got split={split!r}")
    if name in OFFLINE:
        return TensorImages(name, *OFFLINE[name](size), grey, labels)
    root, src = data_root(root), SOURCES[name]
    folder = root / src.folder.format(split=split)
    if download and not folder.is_dir():
        if src.fetch is None:
            raise ValueError(f"{name} cannot be downloaded by ggcn; {src.get.format(split=split, root=root)}")
        import torchvision.datasets
        root.mkdir(parents=True, exist_ok=True)
        src.fetch(torchvision.datasets, root, split)
    if not folder.is_dir():
        lmdb = folder.with_name(folder.name + "_lmdb")
        raise _expected(name, folder, root, split,
                        f" (found the LMDB {lmdb}; export it to image files)" if lmdb.exists() else "")
    items, targets, classes = src.read(folder, root, split)
    if isinstance(items, Tensor):
        return TensorImages(name, items, targets, grey, labels, size, classes)
    return FileImages(name, items, size, grey, labels, targets, classes, src.crop)


def load_images(name: str, root: str | Path | None = None, size: int = 32, n: int | None = None,
                split: str = "train", labels: bool = False, download: bool = False, grey: bool = False,
                seed: int = 0) -> Tensor | tuple[Tensor, Tensor]:
    """A tensor of :func:`image_dataset`'s images (``(x, y)`` with ``labels``): ``n`` drawn without replacement
    by ``seed`` (None: all), or for a texture ``n`` random crops (:func:`texture`)."""
    ds = image_dataset(name, root, size, split, labels, download, grey)
    if name in TEXTURES:  # n random crops
        return texture(name, size, n_crops=1 if n is None else _check_count(n, "n"), seed=seed)
    return ds.draw(n, seed)
