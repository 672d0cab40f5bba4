"""Rulers: a sample-quality measure per offline data family (digits, faces, texture) that may judge a model
only if its headline number ranks, on its own data, real held-out > blurred real > each of {uniform noise,
flat grey, the mean training image} (:meth:`Ruler.check`). Images are grey ``(N, 1, H, W)`` in [−1, 1]. A
ruler keeps its split: ``train_images`` (train models on these) and ``held_out`` (the "real" row); set
distances compare samples with the training part, so copies of it score better still (memorising is not
caught). Building and scoring are seeded, leave the caller's random state alone and download nothing.
"""
from __future__ import annotations

import math
from abc import ABC, abstractmethod
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ggcn.config import FAMILIES
from ggcn.core.train import train
from ggcn.measure import data
from ggcn.measure.evaluation import check_images, kernel_distance
from ggcn.measure.proxy import ProxyLearner, label_accuracy
from ggcn.models.nets import gabor_dog_bank

REQUIRED_ROWS = ("real", "blurred", "noise", "flat", "mean")
ORDERING = (("real", "blurred"), ("blurred", "noise"), ("blurred", "flat"), ("blurred", "mean"))  # a better than b
REJECT = 10  # the digit classifier's "not a digit" class


@dataclass(frozen=True)
class Check:
    """The outcome of :meth:`Ruler.check`: whether the ordering holds, and the numbers behind it."""

    passed: bool
    message: str


def blur(x: Tensor, sigma: float) -> Tensor:
    """Gaussian blur of standard deviation ``sigma`` pixels (kernel 2⌈3σ⌉+1, reflected borders)."""
    from torchvision.transforms.functional import gaussian_blur

    radius = max(1, math.ceil(3 * sigma))
    return gaussian_blur(x, [2 * radius + 1] * 2, [sigma, sigma])


def filter_responses(x: Tensor) -> Tensor:
    """The 18 Gabor/DoG filters of :func:`ggcn.models.nets.gabor_dog_bank` on grey ``x``, reflected borders."""
    bank = gabor_dog_bank()
    return F.conv2d(F.pad(x, (bank.shape[-1] // 2,) * 4, mode="reflect"), bank)


class Ruler(ABC):
    """A sample-quality measure on one data set, with the reference rows that validate it.

    Rows (``n_rows`` images each): ``real`` = held-out images, ``blurred`` = those blurred by ``blur_sigma``
    px, ``noise`` = uniform in [−1, 1], ``flat`` = all 0, ``mean`` = the mean training image, plus
    :meth:`extra_rows` that show what the ruler cannot see.
    """

    name: str
    primary: str
    higher_is_better: bool
    bar: str  # the "learned" bar of :meth:`learned`, in words

    def __init__(self, train_images: Tensor, held_out: Tensor, *, blur_sigma: float, n_rows: int, seed: int):
        if blur_sigma <= 0:
            raise ValueError(f"blur_sigma must be a positive number of pixels, got {blur_sigma!r}")
        self.train_images, self.held_out = train_images, held_out
        self.blur_sigma, self.n_rows, self.seed = float(blur_sigma), n_rows, seed
        self._references: dict[str, dict[str, float]] | None = None

    @property
    def image_shape(self) -> tuple[int, int, int]:
        """``(C, H, W)`` of the images this ruler reads."""
        return tuple(self.train_images.shape[1:])

    def score(self, x: Tensor) -> dict[str, float]:
        """Every number this ruler gives on the sample set ``x``."""
        return self._measure(self._checked(x))

    @abstractmethod
    def _measure(self, x: Tensor) -> dict[str, float]: ...

    @abstractmethod
    def learned(self, scores: dict[str, float]) -> bool:
        """Whether a sample set with these ``score`` numbers clears the "learned" bar."""

    def extra_rows(self) -> dict[str, Tensor]:
        """Further reference sets (blind spots, copies of the training images)."""
        return {}

    def _checked(self, x: Tensor) -> Tensor:
        """``x`` as CPU floats after checking shape, size and range (ValueError saying what to change)."""
        check_images(x, f"images for the {self.name} ruler")
        c, h, w = self.image_shape
        if tuple(x.shape[1:]) != self.image_shape:
            raise ValueError(f"the {self.name} ruler reads grey images of shape (N, {c}, {h}, {w}); got "
                             f"{tuple(x.shape)}: convert colour to grey and resize to {h}×{w}, or build the ruler "
                             f"with size={x.shape[-1]}")
        if len(x) < 2:
            raise ValueError(f"the {self.name} ruler needs at least 2 images to compare sets; got {len(x)}")
        lo, hi = float(x.min()), float(x.max())
        if lo < -1 - 1e-4 or hi > 1 + 1e-4:
            raise ValueError(f"pixel values must lie in [-1, 1]; got [{lo:.3g}, {hi:.3g}]: rescale the samples "
                             "(x / 127.5 - 1 for bytes) or clamp them with x.clamp(-1, 1) if a sampler overshot")
        return x.detach().float().cpu().clamp(-1, 1)

    def rows(self) -> dict[str, Tensor]:
        """The reference image sets, named as in :data:`REQUIRED_ROWS`, plus :meth:`extra_rows`."""
        shape = (self.n_rows, *self.image_shape)
        g = torch.Generator().manual_seed(self.seed)
        return {"real": self.held_out, "blurred": blur(self.held_out, self.blur_sigma),
                "noise": torch.rand(shape, generator=g) * 2 - 1, "flat": torch.zeros(shape),
                "mean": self.train_images.mean(0, keepdim=True).expand(shape).contiguous(), **self.extra_rows()}

    def references(self) -> dict[str, dict[str, float]]:
        """``score`` of every reference row, computed on the first call and cached."""
        if self._references is None:
            self._references = {name: self.score(x) for name, x in self.rows().items()}
        return self._references

    def check(self) -> Check:
        """Every pair of :data:`ORDERING` strictly in order on ``primary``."""
        return ordering_check(self.name, self.references(), self.primary, self.higher_is_better)


def ordering_check(name: str, references: dict[str, dict[str, float]], key: str, higher_is_better: bool) -> Check:
    """Whether the reference rows (row -> scores) are strictly in the order of :data:`ORDERING` on ``key``."""
    v = {k: references[k][key] for k in REQUIRED_ROWS}
    failures = [f"{a} is not better than {b}" for a, b in ORDERING
                if not (v[a] > v[b] if higher_is_better else v[a] < v[b])]
    numbers, sense = ", ".join(f"{k} {v[k]:.4g}" for k in REQUIRED_ROWS), "higher" if higher_is_better else "lower"
    verdict = "ordering holds" if not failures else "ordering FAILS (" + "; ".join(failures) + ")"
    return Check(not failures, f"{name}: {verdict} on {key} ({sense} is better): {numbers}")


def _augment(x: Tensor) -> Tensor:
    """Rotation ±7°, scale ±7.5 %, shift ±1/8 side, 15 % thickened, 15 % thinned, pixel noise sd ≤ 0.15."""
    n = len(x)
    angle, scale, shift = (torch.rand(n) - 0.5) / 4, 1 + (torch.rand(n) - 0.5) * 0.15, (torch.rand(n, 2) - 0.5) / 4
    cos, sin = scale * torch.cos(angle), scale * torch.sin(angle)
    theta = torch.stack([torch.stack([cos, -sin, shift[:, 0]], 1), torch.stack([sin, cos, shift[:, 1]], 1)], 1)
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    x = F.grid_sample(x + 1, grid, align_corners=False) - 1  # black outside the digit's frame
    u = torch.rand(n, 1, 1, 1)
    thick, thin = F.max_pool2d(x, 3, 1, 1), -F.max_pool2d(-x, 3, 1, 1)
    x = torch.where(u < 0.15, (x + thick) / 2, torch.where(u > 0.85, (x + thin) / 2, x))
    return (x + 0.15 * torch.rand(n, 1, 1, 1) * torch.randn_like(x)).clamp(-1, 1)


class DigitNet(nn.Module):
    """conv3×3·32, ReLU, maxpool, conv3×3·64, ReLU, maxpool, dropout 0.3, linear 128, ReLU (the features),
    linear 11 (digits 0–9 and :data:`REJECT`)."""

    def __init__(self, size: int):
        super().__init__()
        self.body = nn.Sequential(nn.Conv2d(1, 32, 3, 1, 1), nn.ReLU(), nn.MaxPool2d(2),
                                  nn.Conv2d(32, 64, 3, 1, 1), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(),
                                  nn.Dropout(0.3), nn.Linear(64 * (size // 4) ** 2, 128), nn.ReLU())
        self.head = nn.Linear(128, REJECT + 1)

    def features(self, x: Tensor) -> Tensor:
        return self.body(x)

    def forward(self, x: Tensor) -> Tensor:
        return self.head(self.body(x))

    def loss(self, x: Tensor, y: Tensor) -> Tensor:
        """Cross-entropy on one outlier-exposure batch: augmented digits, plus half as many outliers labelled
        :data:`REJECT`: uniform noise (1/2), averages of two digits (1/4) and noisy flat grey levels (1/4), the
        last two augmented so "clean" alone tells nothing."""
        k = max(1, len(x) // 8)
        pairs = (x[torch.randint(len(x), (k,))] + x[torch.randint(len(x), (k,))]) / 2
        levels = (torch.rand(k, 1, 1, 1) * 2 - 1 + 0.1 * torch.randn(k, *x.shape[1:])).clamp(-1, 1)
        noise = torch.rand(2 * k, *x.shape[1:]) * 2 - 1
        inputs = torch.cat([_augment(x), noise, _augment(pairs), _augment(levels)])
        return F.cross_entropy(self(inputs), torch.cat([y, torch.full((4 * k,), REJECT, dtype=y.dtype)]))


class DigitRuler(Ruler):
    """With p = softmax of the 11-way classifier: ``recognised`` (primary) = share of samples with argmax p a
    digit and max p ≥ ``confidence``; ``classes`` = distinct digits among them; ``kid`` = KID of the
    classifier's penultimate features to the training digits'."""

    name, primary, higher_is_better = "digit-classifier", "recognised", True
    bar = "recognised ≥ 0.6 and at least 90 % of the digits asked for among the recognised samples"

    def __init__(self, net: DigitNet, train_images: Tensor, train_labels: Tensor, held_out: Tensor,
                 held_out_labels: Tensor, *, confidence: float, blur_sigma: float, seed: int):
        super().__init__(train_images, held_out, blur_sigma=blur_sigma, n_rows=len(held_out), seed=seed)
        self.net, self.confidence = net.eval(), confidence
        self.train_labels, self.held_out_labels = train_labels, held_out_labels
        with torch.no_grad():
            self._reference_features = net.features(train_images).double()

    @torch.no_grad()
    def _measure(self, x: Tensor) -> dict[str, float]:
        features = self.net.features(x).double()
        conf, pred = F.softmax(self.net.head(features.float()), 1).max(1)
        ok = (conf >= self.confidence) & (pred != REJECT)
        kid, kid_std = kernel_distance(self._reference_features, features)
        return {"recognised": float(ok.float().mean()), "classes": float(pred[ok].unique().numel()),
                "kid": kid, "kid_std": kid_std}

    def label_agreement(self, x: Tensor, y: Tensor) -> float:
        """Share of conditional samples ``x`` whose argmax class is the label ``y`` they were drawn for."""
        if len(y) != len(x):
            raise ValueError(f"label_agreement got {len(x)} samples but {len(y)} labels; pass one label per sample")
        return label_accuracy(self.net, self._checked(x), y)

    def learned(self, scores: dict[str, float], n_classes: int = 10) -> bool:
        """recognised ≥ 0.6 and at least 90 % of the ``n_classes`` digits asked for (9 of 10 when samples are
        drawn without labels) among the recognised samples."""
        return scores["recognised"] >= 0.6 and scores["classes"] >= math.ceil(0.9 * n_classes)

    def extra_rows(self) -> dict[str, Tensor]:
        """``stripes`` (bars 2 px on, 2 px off: junk some seeds' nets take for a digit) and ``train`` copies."""
        bars = (torch.arange(self.image_shape[-1]) % 4 < 2).float() * 2 - 1
        return {"stripes": bars.expand(self.n_rows, *self.image_shape).contiguous(),
                "train": self.train_images[: self.n_rows]}


def digit_ruler(seed: int = 0, size: int = 16, *, n_held_out: int = 500, steps: int = 1500,
                confidence: float = 0.8, blur_sigma: float | None = None) -> DigitRuler:
    """sklearn's 1,797 digits, ``n_held_out`` held out; the classifier trained on the rest.

    The reject class is outlier exposure (Hendrycks et al. 2019) from real digits and synthetic noise only,
    never model samples: Adam (lr 2e-3), ``steps`` batches of 128 digits + 64 outliers. ``blur_sigma``
    defaults to size/16 px, and 0.75 px at 8 px.
    """
    if size % 4 or size < 8:
        raise ValueError(f"the digit ruler needs a size that is a multiple of 4, at least 8 (8 or 16); got {size!r}")
    x, y = data.digits(size)
    perm = torch.randperm(len(x), generator=torch.Generator().manual_seed(seed))
    held, kept = perm[:n_held_out], perm[n_held_out:]
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        net = DigitNet(size)
        train(ProxyLearner(net, lr=2e-3), x[kept], steps, batch_size=128, labels=y[kept], seed=None)
    return DigitRuler(net, x[kept], y[kept], x[held], y[held], confidence=confidence,
                      blur_sigma={8: 0.75}.get(size, size / 16) if blur_sigma is None else blur_sigma, seed=seed)


def face_features(x: Tensor, pool: int = 8) -> Tensor:
    """φ(x) = [x average-pooled to pool×pool, mean_pixels |F_k * x| for the 18 Gabor/DoG filters F_k]."""
    energy = filter_responses(x).abs().mean((2, 3))
    return torch.cat([F.adaptive_avg_pool2d(x, pool).flatten(1), energy], 1).double()


class FaceRuler(Ruler):
    """``kid`` (primary) = KID of :func:`face_features`, standardised per dimension by the training faces,
    between the samples and the training faces."""

    name, primary, higher_is_better = "face-filter-kid", "kid", False
    bar = "KID no worse than the blurred held-out faces'"

    def __init__(self, train_images: Tensor, held_out: Tensor, non_faces: Tensor, *, blur_sigma: float,
                 n_rows: int, seed: int):
        super().__init__(train_images, held_out, blur_sigma=blur_sigma, n_rows=n_rows, seed=seed)
        self.non_faces = non_faces
        f = face_features(train_images)
        self._centre, self._scale = f.mean(0), f.std(0) + 1e-6
        self._reference_features = (f - self._centre) / self._scale

    def _measure(self, x: Tensor) -> dict[str, float]:
        kid, kid_std = kernel_distance(self._reference_features, (face_features(x) - self._centre) / self._scale)
        return {"kid": kid, "kid_std": kid_std}

    def learned(self, scores: dict[str, float]) -> bool:
        """kid no worse than the blurred held-out faces'."""
        return scores["kid"] <= self.references()["blurred"]["kid"]

    def extra_rows(self) -> dict[str, Tensor]:
        """``non-faces`` (skimage's background patches) and ``train`` copies (better than real)."""
        return {"non-faces": self.non_faces, "train": self.train_images}


def face_ruler(seed: int = 0, size: int = 16, *, n_train: int = 60, n_rows: int = 100,
               blur_sigma: float | None = None) -> FaceRuler:
    """skimage's 100 LFW faces: ``n_train`` to train on, the rest held out; blur 0.75·size/16 px by default."""
    if size < 8:
        raise ValueError(f"the face ruler needs images of at least 8×8 pixels (16 or 32 recommended); got {size!r}")
    x = data.lfw_faces(size)
    perm = torch.randperm(len(x), generator=torch.Generator().manual_seed(seed))
    return FaceRuler(x[perm[:n_train]], x[perm[n_train:]], data.lfw_faces(size, faces=False), n_rows=n_rows, seed=seed,
                     blur_sigma=0.75 * size / 16 if blur_sigma is None else blur_sigma)


def gram_matrices(x: Tensor, scales: tuple[int, ...] = (1, 2, 4)) -> list[Tensor]:
    """G_s = (1 / N H_s W_s) Σ_images Σ_pixels r rᵀ, r = the 18 Gabor/DoG responses of x average-pooled by s."""
    responses = (filter_responses(F.avg_pool2d(x, s) if s > 1 else x) for s in scales)
    return [torch.einsum("nchw,ndhw->cd", r, r).double() / (r.shape[0] * r.shape[2] * r.shape[3]) for r in responses]


def gram_distance(a: list[Tensor], b: list[Tensor]) -> float:
    """mean over scales of ||G_a − G_b||_F / ||G_b||_F: 0 for equal statistics, 1 for a flat image."""
    return float(np.mean([float((ga - gb).norm() / gb.norm()) for ga, gb in zip(a, b)]))


class TextureRuler(Ruler):
    """``gram`` (primary) = :func:`gram_distance` to the training crops; ``spread`` = its mean for ``n_spread``
    sets of as many fresh real crops (what a perfect model gets); ``gram_over_spread`` their ratio."""

    name, primary, higher_is_better = "texture-gram", "gram", False
    bar = "Gram distance at most twice the spread of held-out crops"

    def __init__(self, texture: str, train_images: Tensor, held_out: Tensor, *, blur_sigma: float, seed: int,
                 n_spread: int):
        super().__init__(train_images, held_out, blur_sigma=blur_sigma, n_rows=len(held_out), seed=seed)
        self.texture, self.n_spread = texture, n_spread
        self._reference = gram_matrices(train_images)
        self._spread: dict[int, float] = {}

    def spread(self, n: int) -> float:
        """Mean distance of ``n_spread`` sets of ``n`` real crops (crop seeds seed+2, seed+3, ...), cached per n."""
        if n not in self._spread:
            size = self.image_shape[-1]
            sets = [data.texture(self.texture, size, n, self.seed + 2 + k) for k in range(self.n_spread)]
            self._spread[n] = float(np.mean([gram_distance(gram_matrices(s), self._reference) for s in sets]))
        return self._spread[n]

    def _measure(self, x: Tensor) -> dict[str, float]:
        gram, spread = gram_distance(gram_matrices(x), self._reference), self.spread(len(x))
        return {"gram": gram, "spread": spread, "gram_over_spread": gram / spread}

    def learned(self, scores: dict[str, float]) -> bool:
        """gram ≤ 2 × spread."""
        return scores["gram"] <= 2 * scores["spread"]

    def extra_rows(self) -> dict[str, Tensor]:
        """``repeated`` (one crop n times: a collapsed model) and ``phase-scrambled`` (the crops' Fourier
        amplitudes with random phases: the blind spot of second-order statistics, which it passes)."""
        g = torch.Generator().manual_seed(self.seed)
        phase = torch.fft.fft2(torch.rand(self.held_out.shape, generator=g)).angle()  # Hermitian: a real result
        scrambled = torch.fft.ifft2(torch.fft.fft2(self.held_out) * torch.exp(1j * phase)).real.clamp(-1, 1)
        return {"repeated": self.held_out[:1].expand_as(self.held_out).contiguous(), "phase-scrambled": scrambled}


def texture_ruler(name: str = "brick", size: int = 32, seed: int = 0, *, n_train: int = 64, n_rows: int = 16,
                  n_spread: int = 8, blur_sigma: float = 1.0) -> TextureRuler:
    """``n_train`` training crops of a skimage texture (crop seed ``seed``), ``n_rows`` held out (seed+1)."""
    if size < 16:
        raise ValueError(f"the texture ruler needs crops of at least 16×16 pixels (32 recommended); got {size!r}")
    return TextureRuler(name, data.texture(name, size, n_train, seed), data.texture(name, size, n_rows, seed + 1),
                        blur_sigma=blur_sigma, seed=seed, n_spread=n_spread)


RULERS = {"digits": digit_ruler, "faces": face_ruler, "texture": texture_ruler}  # one per ggcn.config.FAMILIES


def ruler_for(family: str, **kw) -> Ruler:
    """The ruler of ``family`` ∈ :data:`ggcn.config.FAMILIES`, built with ``kw``."""
    if family not in RULERS:
        raise ValueError(f"unknown data family {family!r}; choose one of {FAMILIES}")
    return RULERS[family](**kw)
