"""Runners for the image-quality chapter (paper Sec. 5.2–5.3, Figs. 4–5 and 8, Table II).

Three experiments, each built from the package's pieces (``build_model`` + the one ``train``):

* **Stability across data sets** -- GCN and both readings of wGCN on a texture, faces and
  digits over several seeds (:func:`stability`, a loop over :func:`ggcn.experiments.rules.compare_rules`).
* **Image quality (Table II)** -- each model of the table is trained on a labelled image set,
  sampled and scored (:func:`quality_table`), unconditionally and conditionally.
* **Conditional vs unconditional GGCN (Fig. 8)** -- the same runner with one model.

Conditional learning, two ways [reading]:

* models with a label input -- the GGCN family -- learn one model: g_α([z, e(y)]) and f_θ(x, y)
  (see :mod:`ggcn.models.cooperative`);
* every other model (GCN, wGCN, wFRAME, MGCN, DCGAN) learns **one model per class** on that
  class's images, the way FRAME-type models are made class-conditional; the samples of class y
  are the samples of model y. The paper does not say how its conditional GCN rows were made.

Settings: every model is built with the recipe of its data family (:data:`DATA_FAMILY`,
:func:`ggcn.config.recipe`); a plan overrides only what it names.

Samples: the chains X~ for GCN, wGCN and wFRAME (their replay buffer's slots; one per scored
sample), fresh draws for MGCN (from coarse training images), GGCN (fresh codes) and DCGAN.

Scores (every name says which network produced it; a proxy is never called FID or IS):

* **proxy FID** -- the Fréchet distance ||μ_r − μ_g||² + tr(Σ_r + Σ_g − 2(Σ_r Σ_g)^{1/2}) between
  Gaussians fitted to a small classifier's features (:mod:`ggcn.measure.proxy`) of held-out real and of
  generated images; lower is better. Comparable only between runs with the same classifier,
  reference and sample count.
* **proxy IS** -- exp E_x KL(p(y|x) || p(y)) with p(y|x) that classifier's softmax and p(y) its
  mean over the samples (:func:`proxy_inception_score`); higher is better, at most the number of
  classes.
* **label accuracy** -- the fraction of conditional samples the classifier assigns to the label
  they were drawn for.
* **digit ruler** (offline digits only) -- ``recognised`` and ``classes`` of
  :func:`ggcn.measure.rulers.digit_ruler`, a classifier with a reject class that checks its own ordering
  on reference rows (real > blurred > noise, flat, mean).
* **Inception FID / IS / KID** -- :func:`ggcn.measure.evaluation.inception_metrics` on the real Inception
  weights, when they are available (CIFAR-10 / Tiny ImageNet runs from a data root).
"""
from __future__ import annotations

import tempfile
import time
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ggcn.measure import data
from ggcn.book.claims import INCONCLUSIVE, NOT_REPRODUCED, REPRODUCED, compare_lower, record
from ggcn.config import Profile
from ggcn.models.cooperative import NAMES as GGCN_NAMES, example_index
from ggcn.measure.evaluation import InceptionUnavailable, extract_features, fid_with_features, inception_metrics, \
    inception_weights
from ggcn.experiments.rules import Comparison, compare_rules, from_uint8, seed_summary, to_uint8
from ggcn.experiments.runs import shown
from ggcn.models.registry import build_model
from ggcn.measure.proxy import ProxyClassifier, fit_proxy, label_accuracy
from ggcn.measure.rulers import DigitRuler, digit_ruler
from ggcn.core.train import DivergenceError, load_checkpoint, train

# ---------------------------------------------------------------------------
# What the chapter runs

TABLE_MODELS = ("gcn", "wgcn", "wframe", "mgcn", "ggcn", "ggcn+ams", "dcgan")  # the paper's Table II rows we build
CANDIDATES = ("ggcn", "ggcn+ams")  # the claim: these score better than ...
BASELINES = ("gcn", "wgcn", "dcgan")  # ... these
STABILITY_MODELS = ("gcn", "wgcn", "wgcn-data")
LABELS = {
    "gcn": "GCN", "wgcn": "wGCN", "wgcn-data": "wGCN (data)", "wframe": "wFRAME", "mgcn": "MGCN",
    "ggcn": "GGCN", "ggcn+ams": "GGCN+AMS", "dcgan": "DCGAN",
}
SETTINGS = ("unconditional", "conditional")
# The recipe family (ggcn.config.FAMILIES) of each data set. Sets without a recipe of their own
# (CIFAR-10, Tiny ImageNet and its stand-in) take the one of natural photographs, "faces".
DATA_FAMILY = {"brick": "texture", "lfw": "faces", "digits": "digits", "cifar10": "faces",
               "tiny-imagenet": "faces", "stand-in": "faces"}

# The paper's Table II: CIFAR-10 Inception Score (mean, sd) *as reported by the paper*, for the rows
# we rebuild. None: the row is not in the paper's table as our copy of the text has it.
REPORTED_IS: dict[str, dict[str, tuple[float, float] | None]] = {
    "unconditional": {"gcn": (4.18, 0.13), "wgcn": (4.31, 0.12), "wframe": (5.52, 0.13), "mgcn": None,
                      "ggcn": None, "ggcn+ams": (6.79, 0.08), "dcgan": None},
    "conditional": {"gcn": (5.50, 0.05), "wgcn": (5.70, 0.06), "wframe": (6.05, 0.13), "mgcn": (6.57, 0.05),
                    "ggcn": (7.10, 0.07), "ggcn+ams": (7.01, 0.05), "dcgan": (6.58, 0.05)},
}
REPORTED_REAL_IS = (11.24, 0.11)  # the paper's IS of the real CIFAR-10 images


@dataclass(frozen=True)
class Plan:
    """How much of each experiment the chapter runs at a profile (below the profile's own scale
    on CPUs, so the teach build stays within minutes).

    ``stability_*``: part 1 (side, learning iterations, Langevin steps per iteration);
    ``table_*``: parts 2–3 (side of offline images, learning iterations, Langevin steps, number of seeds);
    ``step_size``/``lr``: the Langevin step δ and learning rate γ of every model in all parts. Every
    setting that may be None (Langevin steps, δ, γ) is the recipe's when None (:data:`DATA_FAMILY`);
    DCGAN keeps its recipe's learning rate;
    ``n_train``/``n_real``/``n_samples``: training images, held-out real reference images and
    generated images scored per run (None: all there are); ``conditional_classes``: classes in the
    conditional runs (the first K labels); ``n_keep``: samples kept per run for the figures;
    ``proxy_iterations``: training of the proxy classifier; ``tiny_size``: side of the images of
    part 3 (Tiny ImageNet or its stand-in); ``standin_per_class``: images per class of the offline
    stand-in; ``is_splits``: splits of the (proxy) IS; ``ruler_steps``: training batches of the digit
    ruler's classifier.
    """

    stability_size: int
    stability_iterations: int
    stability_steps: int | None
    table_size: int
    table_iterations: int
    table_steps: int | None
    table_seeds: int
    step_size: float | None
    lr: float | None
    n_train: int | None
    n_real: int
    n_samples: int
    conditional_classes: int
    n_keep: int
    proxy_iterations: int
    tiny_size: int
    standin_per_class: int
    is_splits: int
    ruler_steps: int

    def to_dict(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in fields(self)}


PLANS: dict[str, Plan] = {
    "smoke": Plan(
        stability_size=8, stability_iterations=5, stability_steps=None,
        table_size=8, table_iterations=5, table_steps=None, table_seeds=2, step_size=None, lr=None,
        n_train=512, n_real=256, n_samples=20, conditional_classes=2, n_keep=20, proxy_iterations=80,
        tiny_size=8, standin_per_class=24, is_splits=1, ruler_steps=150,
    ),
    "teach": Plan(
        stability_size=16, stability_iterations=30, stability_steps=None,
        table_size=8, table_iterations=200, table_steps=None, table_seeds=3, step_size=None, lr=None,
        n_train=None, n_real=500, n_samples=90, conditional_classes=3, n_keep=45, proxy_iterations=400,
        tiny_size=16, standin_per_class=64, is_splits=1, ruler_steps=1500,
    ),
    "paper": Plan(  # the recipes' sampler settings; hours on one GPU
        stability_size=32, stability_iterations=100, stability_steps=None,
        table_size=16, table_iterations=1000, table_steps=None, table_seeds=3, step_size=None, lr=None,
        n_train=20000, n_real=10000, n_samples=2000, conditional_classes=10, n_keep=50, proxy_iterations=2000,
        tiny_size=64, standin_per_class=500, is_splits=10, ruler_steps=1500,
    ),
}


def plan_for(profile: Profile | str) -> Plan:
    """The chapter's :class:`Plan` for a profile (or profile name)."""
    name = profile if isinstance(profile, str) else profile.name
    if name not in PLANS:
        raise ValueError(f"no quality plan for profile {name!r}; choose one of {sorted(PLANS)}")
    return PLANS[name]


# ---------------------------------------------------------------------------
# Data


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
    held, kept = perm[:n_real], perm[n_real:]
    return x[kept], y[kept], x[held], y[held]


def digits_set(plan: Plan, seed: int = 0) -> Labelled:
    """sklearn's digits at ``plan.table_size``, ``plan.n_real`` of them held out."""
    x, y = data.digits(plan.table_size)
    x_train, y_train, real, real_y = split(x, y, plan.n_real, seed)
    if plan.n_train is not None:
        x_train, y_train = x_train[: plan.n_train], y_train[: plan.n_train]
    return Labelled("digits", x_train, y_train, real, real_y, tuple(str(d) for d in range(10)))


HELD_OUT = {"cifar10": "test", "tiny-imagenet": "val"}  # the split that serves as the real reference


def real_set(name: str, root: str | Path, size: int, plan: Plan, seed: int = 0) -> Labelled:
    """A labelled real set from a data root: CIFAR-10 (reference: its test split) or Tiny ImageNet
    (reference: its validation split); ``plan.n_train`` / ``plan.n_real`` seeded random images of each."""
    if name not in HELD_OUT:
        raise ValueError(f"the quality chapter reads {sorted(HELD_OUT)} from a data root, not {name!r}")
    train_set = data.image_dataset(name, root, size, labels=True)
    reference = data.image_dataset(name, root, size, split=HELD_OUT[name], labels=True)
    x, y = data.load_images(name, root, size, n=_count(plan.n_train, len(train_set)), labels=True, seed=seed)
    real, real_y = data.load_images(name, root, size, n=_count(plan.n_real, len(reference)),
                                    split=HELD_OUT[name], labels=True, seed=seed)
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
        folder = root / name
        folder.mkdir(parents=True, exist_ok=True)
        corners = torch.randint(0, 3 * size + 1, (per_class, 2), generator=g)
        for i, (r, c) in enumerate(corners.tolist()):
            crop = to_uint8(big[:, r:r + size, c:c + size]).transpose(1, 2, 0)
            Image.fromarray(crop).save(folder / f"{i:04d}.png")
    return root


def standin_set(plan: Plan, seed: int = 0) -> Labelled:
    """The Tiny ImageNet stand-in (:func:`standin_folder`) at ``plan.tiny_size``, a quarter held out."""
    size = plan.tiny_size
    with tempfile.TemporaryDirectory(prefix="ggcn-standin-") as tmp:
        folder = standin_folder(tmp, size, plan.standin_per_class, seed)
        x, y = data.load_images("folder", root=folder, size=size, labels=True)
        classes = data.image_dataset("folder", root=folder, size=size, labels=True).classes
    x_train, y_train, real, real_y = split(x, y, len(x) // 4, seed)
    return Labelled("stand-in", x_train, y_train, real, real_y, classes)


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


# ---------------------------------------------------------------------------
# Part 1: stability across data sets


STABILITY_SETS = {"texture (brick)": "brick", "faces (LFW)": "lfw", "digits": "digits"}


def family_of(name: str) -> str | None:
    """The recipe family of a data set, by its name (:data:`DATA_FAMILY`) or its title in
    :data:`STABILITY_SETS`; None for other sets, which then take the profile's values."""
    return DATA_FAMILY.get(STABILITY_SETS.get(name, name))


def stability_data(plan: Plan, n: int, seed: int = 0) -> dict[str, Tensor]:
    """The three offline sets of part 1 at ``plan.stability_size``: ``n`` texture crops, and ``n``
    faces and digits (all of them when a set has fewer)."""
    size = plan.stability_size
    out = {}
    for title, name in STABILITY_SETS.items():
        available = n if name in data.TEXTURES else len(data.image_dataset(name, size=size))
        out[title] = data.load_images(name, size=size, n=min(n, available), seed=seed)
    return out


def stability(datasets: dict[str, Tensor], profile: Profile, plan: Plan, seeds: Sequence[int], *,
              device: str = "cpu") -> dict[str, Comparison]:
    """GCN and both wGCN readings on each data set of :data:`STABILITY_SETS` (keyed by its title), every
    seed, with the plan's budget and the set's recipe (response distance on the fixed Gabor/DoG bank,
    see :func:`ggcn.experiments.rules.compare_rules`)."""
    options = {k: v for k, v in (("step_size", plan.step_size), ("langevin_steps", plan.stability_steps))
               if v is not None}
    lrs = [plan.lr] if plan.lr is not None else None
    return {name: compare_rules(STABILITY_MODELS, x, profile, seeds, lrs=lrs, iterations=plan.stability_iterations,
                                family=family_of(name), device=device, **options)
            for name, x in datasets.items()}


# ---------------------------------------------------------------------------
# Parts 2–3: train, sample, score


def model_options(name: str, plan: Plan, family: str | None = None) -> dict[str, Any]:
    """Build options for ``name``: the recipe of ``family`` (when given), and the plan's Langevin steps,
    δ and γ where the plan sets them and the model has them."""
    by_family = {"family": family} if family is not None else {}
    if name == "dcgan":
        return by_family
    options = {"langevin_steps": plan.table_steps, "step_size": plan.step_size, "lr": plan.lr}
    return {**by_family, **{k: v for k, v in options.items() if v is not None}}


@dataclass
class Fitted:
    """A trained model, whether its run diverged (then it holds the last good state), and its time."""

    model: Any
    diverged: bool
    seconds: float


def fit(name: str, x: Tensor, profile: Profile, seed: int, *, iterations: int, n_chains: int,
        labels: Tensor | None = None, device: str = "cpu", **overrides: Any) -> Fitted:
    """Build ``name`` for the images ``x`` and train it with the one training loop.

    ``n_chains``: persistent chains of GCN/wGCN/wFRAME (their samples); ``labels``: class labels
    for a conditional GGCN (other models learn one model per class, see :func:`generate`).
    A run that diverges is restored to its last good state and flagged, not raised.
    """
    if labels is not None and name not in GGCN_NAMES:
        raise ValueError(f"{name!r} has no label input; conditional {name} is one model per class (generate)")
    channels, size = x.shape[1], x.shape[-1]
    options: dict[str, Any] = dict(overrides)
    if name in GGCN_NAMES:
        options.update(labels=labels, n_examples=len(x))
    elif name not in ("mgcn", "wmgcn", "dcgan"):
        options["n_particles"] = n_chains
    model = build_model(name, profile, channels, size, device=device, seed=seed, **options)
    index = example_index(x) if name in GGCN_NAMES else None
    start, diverged = time.perf_counter(), False
    with tempfile.TemporaryDirectory(prefix="ggcn-quality-") as tmp:
        try:
            train(model, x, iterations, batch_size=profile.batch_size, labels=index, seed=seed,
                  checkpoint_dir=tmp, device=device)
        except DivergenceError as err:
            model.load_state_dict(load_checkpoint(err.checkpoint)["model"])
            diverged = True
    return Fitted(model, diverged, time.perf_counter() - start)


def balanced_labels(n_classes: int, n: int) -> Tensor:
    """``n`` labels, ``n / n_classes`` of each class in order (n must be a multiple)."""
    if n % n_classes:
        raise ValueError(f"{n} samples do not split evenly over {n_classes} classes; use a multiple of {n_classes}")
    return torch.arange(n_classes).repeat_interleave(n // n_classes)


@dataclass
class Generated:
    """Samples of one run (with their labels, −1 when unconditional), divergence flag and time."""

    x: Tensor
    y: Tensor
    diverged: bool
    seconds: float


def generate(name: str, x: Tensor, profile: Profile, seed: int, *, n_samples: int, iterations: int,
             y: Tensor | None = None, device: str = "cpu", **overrides: Any) -> Generated:
    """Train ``name`` on ``x`` and draw ``n_samples``; conditional when the labels ``y`` are given.

    Conditional: the GGCN family learns one labelled model; every other model learns one model per
    class (classes 0..K−1, K = max label + 1) and contributes ``n_samples / K`` samples of its class.
    """
    if y is None:
        run = fit(name, x, profile, seed, iterations=iterations, n_chains=n_samples, device=device, **overrides)
        return Generated(shown(run.model, n_samples), torch.full((n_samples,), -1), run.diverged, run.seconds)
    labels = balanced_labels(int(y.max()) + 1, n_samples)
    if name in GGCN_NAMES:
        run = fit(name, x, profile, seed, iterations=iterations, n_chains=n_samples, labels=y, device=device,
                  **overrides)
        return Generated(shown(run.model, n_samples, labels.to(device)), labels, run.diverged, run.seconds)
    parts, diverged, seconds = [], False, 0.0
    for c in range(int(y.max()) + 1):
        members = x[y == c]
        if len(members) == 0:
            raise ValueError(f"class {c} has no training images; conditional runs need every class 0..{int(y.max())}")
        n_c = int((labels == c).sum())
        run = fit(name, members, profile, seed, iterations=iterations, n_chains=n_c, device=device, **overrides)
        parts.append(shown(run.model, n_c))
        diverged, seconds = diverged or run.diverged, seconds + run.seconds
    return Generated(torch.cat(parts), labels, diverged, seconds)


# -- scores ------------------------------------------------------------------------------


def proxy_inception_score(classifier: nn.Module, x: Tensor, splits: int = 1) -> tuple[float, float]:
    """The proxy IS: exp E_x KL(p(y|x) || p(y)), p(y|x) the classifier's softmax, p(y) its mean over
    the images of a split; mean and sd over ``splits`` equal splits. 1 when every image gets the same
    prediction, the number of classes when each image is certain and the classes are balanced."""
    if splits < 1 or len(x) < splits:
        raise ValueError(f"need 1 ≤ splits ≤ number of images, got splits={splits} for {len(x)} images")
    log_p = F.log_softmax(extract_features(classifier, x)[0], dim=1)
    scores = []
    for part in log_p.chunk(splits):
        log_marginal = torch.logsumexp(part, 0) - np.log(len(part))
        kl = (part.exp() * (part - log_marginal)).sum(1).mean()
        scores.append(float(kl.exp()))
    return float(np.mean(scores)), float(np.std(scores))


Scorer = Callable[[Tensor, Tensor], dict[str, float]]


class ProxyScorer:
    """Proxy FID, proxy IS and (for labelled samples) label accuracy, all on one proxy classifier."""

    def __init__(self, classifier: ProxyClassifier, real: Tensor, splits: int = 1):
        self.classifier, self.real, self.splits = classifier.eval(), real, splits

    def __call__(self, fake: Tensor, y: Tensor) -> dict[str, float]:
        fake = fake.clamp(-1, 1)
        is_mean, is_sd = proxy_inception_score(self.classifier, fake, self.splits)
        scores = {"proxy_fid": fid_with_features(self.real, fake, self.classifier.features),
                  "proxy_is": is_mean, "proxy_is_sd": is_sd}
        if (y >= 0).all():
            scores["label_accuracy"] = label_accuracy(self.classifier, fake, y)
        return scores


class DigitRulerScorer:
    """``ruler_recognised`` and ``ruler_classes`` of a :class:`ggcn.measure.rulers.DigitRuler` (see :mod:`ggcn.measure.rulers`)."""

    def __init__(self, ruler: DigitRuler):
        self.ruler = ruler

    def __call__(self, fake: Tensor, y: Tensor) -> dict[str, float]:
        scores = self.ruler.score(fake.clamp(-1, 1))
        return {"ruler_recognised": scores["recognised"], "ruler_classes": scores["classes"]}


class InceptionScorer:
    """FID, IS and KID on the real Inception-v3 weights (:func:`ggcn.measure.evaluation.inception_metrics`)."""

    def __init__(self, real: Tensor, reference: str, *, device: str = "cpu", splits: int = 10,
                 weights_path: str | Path | None = None):
        self.real, self.reference, self.device, self.splits = real, reference, device, splits
        self.weights = inception_weights(weights_path)  # InceptionUnavailable when there are none

    def __call__(self, fake: Tensor, y: Tensor) -> dict[str, float]:
        out = inception_metrics(self.real, fake, reference=self.reference, weights_path=self.weights,
                                device=self.device, is_splits=self.splits)
        return {"inception_fid": out["fid"], "inception_is": out["is"], "inception_is_sd": out["is_std"],
                "inception_kid": out["kid"], "standard_weights": float(out["standard_weights"])}


def inception_scorer(real: Tensor, reference: str, *, device: str = "cpu", splits: int = 10,
                     weights_path: str | Path | None = None) -> tuple[InceptionScorer | None, str]:
    """An :class:`InceptionScorer`, or None and the reason why the Inception weights are unavailable."""
    try:
        return InceptionScorer(real, reference, device=device, splits=splits, weights_path=weights_path), ""
    except InceptionUnavailable as err:
        return None, str(err)


def combine(*scorers: Scorer | None) -> Scorer:
    """One scorer returning the union of the given scorers' numbers (None entries are skipped)."""
    active = [s for s in scorers if s is not None]

    def score(fake: Tensor, y: Tensor) -> dict[str, float]:
        return {k: v for s in active for k, v in s(fake, y).items()}

    return score


def fit_classifier(dataset: Labelled, plan: Plan, seed: int = 0) -> ProxyClassifier:
    """The proxy classifier of a labelled set, trained on its training images (:func:`ggcn.measure.proxy.fit_proxy`)."""
    return fit_proxy(dataset.x, dataset.y, iterations=plan.proxy_iterations, seed=seed)


# -- the table ---------------------------------------------------------------------------


@dataclass
class Table:
    """Scores of models × seeds, and a few samples of each model's first seed.

    ``scores[metric]``: (models, seeds); ``samples``: uint8 (models, n_keep, C, H, W);
    ``sample_labels``: (models, n_keep), −1 when unconditional; ``diverged``: (models, seeds);
    ``seconds``: training time (models, seeds).
    """

    models: tuple[str, ...]
    seeds: tuple[int, ...]
    scores: dict[str, np.ndarray]
    samples: np.ndarray
    sample_labels: np.ndarray
    diverged: np.ndarray
    seconds: np.ndarray

    def values(self, metric: str) -> dict[str, list[float]]:
        """``{model: per-seed values}`` of one metric."""
        if metric not in self.scores:
            raise KeyError(f"no metric {metric!r}; this table has {sorted(self.scores)}")
        return {m: [float(v) for v in self.scores[metric][i]] for i, m in enumerate(self.models)}

    def samples_of(self, model: str) -> tuple[Tensor, Tensor]:
        """The kept samples of ``model`` in [−1, 1], with their labels."""
        i = self.models.index(model)
        return from_uint8(self.samples[i]), torch.as_tensor(self.sample_labels[i])

    def to_arrays(self, prefix: str = "") -> dict[str, np.ndarray]:
        arrays = {"models": np.array(self.models), "seeds": np.array(self.seeds), "samples": self.samples,
                  "sample_labels": self.sample_labels, "diverged": self.diverged, "seconds": self.seconds,
                  **{f"score_{k}": v for k, v in self.scores.items()}}
        return {prefix + k: v for k, v in arrays.items()}

    @classmethod
    def from_arrays(cls, arrays: dict[str, np.ndarray], prefix: str = "") -> "Table":
        get = lambda key: np.asarray(arrays[prefix + key])  # noqa: E731
        scores = {k[len(prefix) + 6:]: np.asarray(v) for k, v in arrays.items() if k.startswith(prefix + "score_")}
        return cls(tuple(str(m) for m in get("models")), tuple(int(s) for s in get("seeds")), scores,
                   get("samples"), get("sample_labels"), get("diverged"), get("seconds"))


def _keep(x: Tensor, y: Tensor, n_keep: int) -> tuple[Tensor, Tensor]:
    """The first ``n_keep`` samples, spread evenly over the classes when labelled (ordered by class)."""
    if (y < 0).all():
        return x[:n_keep], y[:n_keep]
    classes = torch.unique(y)
    per = max(1, n_keep // len(classes))
    idx = torch.cat([torch.nonzero(y == c).flatten()[:per] for c in classes])
    return x[idx], y[idx]


def quality_table(models: Sequence[str], dataset: Labelled, profile: Profile, plan: Plan, seeds: Sequence[int],
                  scorer: Scorer, *, conditional: bool, device: str = "cpu") -> Table:
    """Train every model for every seed on ``dataset``, draw ``plan.n_samples`` and score them.

    Conditional runs use the labels (see :func:`generate`); every run has the same number of
    learning iterations (the plan's ``table_iterations``) and the recipe of the set's family
    (:func:`family_of`).
    """
    unknown = [m for m in models if m not in LABELS]
    if unknown:
        raise ValueError(f"unknown model(s) {unknown}; choose from {sorted(LABELS)}")
    if not seeds:
        raise ValueError("give at least one seed (two or more to compare models beyond the seed spread)")
    scores: dict[str, np.ndarray] = {}
    diverged = np.zeros((len(models), len(seeds)), bool)
    seconds = np.zeros((len(models), len(seeds)))
    kept: list[tuple[Tensor, Tensor]] = []
    for i, name in enumerate(models):
        for j, seed in enumerate(seeds):
            run = generate(name, dataset.x, profile, seed, n_samples=plan.n_samples, iterations=plan.table_iterations,
                           y=dataset.y if conditional else None, device=device,
                           **model_options(name, plan, family_of(dataset.name)))
            if not torch.isfinite(run.x).all():
                raise FloatingPointError(f"{name} (seed {seed}) produced non-finite samples after restoring its "
                                         "last good state; lower its learning rate or Langevin step")
            for key, value in scorer(run.x, run.y).items():
                scores.setdefault(key, np.full((len(models), len(seeds)), np.nan))[i, j] = value
            diverged[i, j], seconds[i, j] = run.diverged, run.seconds
            if j == 0:
                kept.append(_keep(run.x, run.y, plan.n_keep))
    samples = np.stack([to_uint8(x) for x, _ in kept])
    labels = np.stack([y.numpy() for _, y in kept])
    return Table(tuple(models), tuple(seeds), scores, samples, labels, diverged, seconds)


def real_scores(dataset: Labelled, plan: Plan, scorer: Scorer, *, conditional: bool, seed: int = 0) -> dict[str, float]:
    """The scores of real training images in place of samples (the floor of FID, the ceiling of IS):
    ``plan.n_samples`` of them, class-balanced and labelled when ``conditional``."""
    g = torch.Generator().manual_seed(seed)
    if not conditional:
        idx = torch.randperm(len(dataset.x), generator=g)[: plan.n_samples]
        return scorer(dataset.x[idx], torch.full((len(idx),), -1))
    labels = balanced_labels(int(dataset.y.max()) + 1, plan.n_samples)
    idx = []
    for c in torch.unique(labels):
        members = torch.nonzero(dataset.y == c).flatten()
        n_c = int((labels == c).sum())
        idx.append(members[torch.randint(len(members), (n_c,), generator=g)])
    idx = torch.cat(idx)
    return scorer(dataset.x[idx], dataset.y[idx])


# -- the verdict on the paper's claim ----------------------------------------------------------

HIGHER_IS_BETTER = {"proxy_fid": False, "proxy_is": True, "label_accuracy": True, "inception_fid": False,
                    "inception_is": True, "inception_kid": False}


def compare(candidate: Sequence[float], baseline: Sequence[float], metric: str) -> str:
    """:func:`ggcn.book.claims.compare_lower` read as "candidate is better than baseline" on ``metric``."""
    if HIGHER_IS_BETTER[metric]:
        return compare_lower([-v for v in candidate], [-v for v in baseline])
    return compare_lower(candidate, baseline)


def table_verdict(tables: dict[str, Table], metric: str) -> tuple[str, dict[str, dict[str, str]]]:
    """Verdict on "every GGCN variant scores better than GCN, wGCN and DCGAN" in every setting.

    Each (setting, candidate, baseline) pair is compared over seeds with :func:`compare`:
    reproduced if every pair is, not reproduced if any pair goes the other way beyond the seed
    spread, inconclusive otherwise. Returns the verdict and the pairwise verdicts.
    """
    pairs: dict[str, dict[str, str]] = {}
    for setting, table in tables.items():
        values = table.values(metric)
        for cand in CANDIDATES:
            for base in BASELINES:
                pairs.setdefault(setting, {})[f"{cand} vs {base}"] = compare(values[cand], values[base], metric)
    outcomes = [v for by_pair in pairs.values() for v in by_pair.values()]
    if outcomes and all(v == REPRODUCED for v in outcomes):
        return REPRODUCED, pairs
    if NOT_REPRODUCED in outcomes:
        return NOT_REPRODUCED, pairs
    return INCONCLUSIVE, pairs


def metric_label(metric: str, dataset: str) -> str:
    """The name a number is shown under: proxies name their classifier, Inception numbers their network."""
    names = {"proxy_fid": "proxy FID", "proxy_is": "proxy IS", "label_accuracy": "label accuracy",
             "inception_fid": "FID (Inception-v3)", "inception_is": "IS (Inception-v3)",
             "inception_kid": "KID (Inception-v3)"}
    if metric not in names:
        raise KeyError(f"unknown metric {metric!r}; known: {sorted(names)}")
    return f"{names[metric]} ({dataset} classifier)" if metric in ("proxy_fid", "proxy_is", "label_accuracy") \
        else names[metric]


def _number(v: float, digits: int) -> str:
    """``digits`` significant digits, whole numbers from 10^(digits−1) up and at most three decimals
    (no exponents: 1033, not 1.03e+03; 0, not 1.3e-06)."""
    return f"{v:.0f}" if abs(v) >= 10 ** (digits - 1) else f"{round(v, 3):.{digits}g}"


def describe(values: Sequence[float]) -> str:
    """Per-seed values as ``"mean ± sd"`` (three significant digits for the mean, two for the sd)."""
    v = np.asarray(values, float)
    return f"{_number(v.mean(), 3)} ± {_number(v.std(), 2)}"


def measured_text(tables: dict[str, Table], metric: str, label: str) -> str:
    """One line per setting: the claim's models as mean ± sd over seeds on ``metric``."""
    better = "higher" if HIGHER_IS_BETTER[metric] else "lower"
    parts = []
    for setting, table in tables.items():
        values = table.values(metric)
        models = ", ".join(f"{LABELS[m]} {describe(values[m])}" for m in (*CANDIDATES, *BASELINES))
        parts.append(f"{setting}: {models}")
    n = len(next(iter(tables.values())).seeds)
    return f"{label}, {better} is better, mean ± sd over {n} seeds; " + "; ".join(parts)


# ---------------------------------------------------------------------------
# The whole chapter: every run, as (metrics, arrays) for ggcn.book.artifacts.load_or_run

SETTING_PREFIX = {"unconditional": "uncond_", "conditional": "cond_"}


def _score_table(dataset: Labelled, profile: Profile, plan: Plan, seeds: Sequence[int], models: Sequence[str],
                 *, conditional_classes: int, device: str, data_root: str | Path | None,
                 weights_path: str | Path | None, seed: int,
                 ) -> tuple[dict[str, Any], dict[str, Table], dict[str, np.ndarray]]:
    """Proxy classifier (+ Inception when reading real data, + the digit ruler on offline digits), then
    the unconditional table on every class and the conditional table on the first ``conditional_classes``."""
    classifier = fit_classifier(dataset, plan, seed)
    ruler = digit_ruler(seed, plan.table_size, steps=plan.ruler_steps) if dataset.name == "digits" else None
    conditional_set = dataset.first_classes(min(conditional_classes, len(dataset.classes)))
    info: dict[str, Any] = {
        "dataset": dataset.name, "classes": list(dataset.classes),
        "conditional_classes": list(conditional_set.classes),
        "proxy_accuracy": label_accuracy(classifier, dataset.real, dataset.real_y),
        "n_train": len(dataset.x), "n_real": len(dataset.real), "n_samples": plan.n_samples,
        "inception": {"available": False, "reason": "offline data: Inception features are not used on it"},
        "real": {}, "scores": {}, "seconds": {}, "diverged": {},
    }
    if ruler is not None:
        info["ruler"] = {"check": ruler.check().message, "references": {
            row: {k: scores[k] for k in ("recognised", "classes")} for row, scores in ruler.references().items()}}
    tables, arrays = {}, {}
    for setting, subset in (("unconditional", dataset), ("conditional", conditional_set)):
        conditional = setting == "conditional"
        scorers: list[Scorer | None] = [ProxyScorer(classifier, subset.real, plan.is_splits),
                                        None if ruler is None else DigitRulerScorer(ruler)]
        if data_root is not None:
            incep, reason = inception_scorer(subset.real, f"{dataset.name}-{HELD_OUT.get(dataset.name, 'held-out')}",
                                             device=device, splits=plan.is_splits, weights_path=weights_path)
            info["inception"] = {"available": incep is not None, "reason": reason}
            scorers.append(incep)
        scorer = combine(*scorers)
        table = quality_table(models, subset, profile, plan, seeds, scorer, conditional=conditional, device=device)
        tables[setting] = table
        info["real"][setting] = real_scores(subset, plan, scorer, conditional=conditional, seed=seed)
        info["scores"][setting] = {k: table.values(k) for k in table.scores}
        info["seconds"][setting] = {m: [float(s) for s in table.seconds[i]] for i, m in enumerate(table.models)}
        info["diverged"][setting] = {m: [bool(d) for d in table.diverged[i]] for i, m in enumerate(table.models)}
        arrays.update(table.to_arrays(SETTING_PREFIX[setting]))
        real_x, real_y = _keep(subset.x, subset.y if conditional else torch.full((len(subset.x),), -1), plan.n_keep)
        arrays[SETTING_PREFIX[setting] + "real"], arrays[SETTING_PREFIX[setting] + "real_labels"] = \
            to_uint8(real_x), real_y.numpy()
    return info, tables, arrays


def run_chapter(profile: Profile, seed: int = 0, *, device: str = "cpu", data_root: str | Path | None = None,
                plan: Plan | None = None, weights_path: str | Path | None = None,
                ) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """Every run of the quality chapter, as ``(metrics, arrays)`` for :func:`ggcn.book.artifacts.load_or_run`.

    1. stability: GCN and both wGCNs on texture, faces and digits, ``profile.n_seeds`` seeds;
    2. Table II: every model of :data:`TABLE_MODELS`, unconditional and conditional, on CIFAR-10
       (``data_root``) or digits, ``plan.table_seeds`` seeds, with the verdict on the claim
       ``quality-table`` recorded in ``metrics["claims"]``;
    3. Fig. 8: GGCN unconditional and conditional (every class) on Tiny ImageNet (``data_root``) or
       the offline stand-in.
    """
    plan = plan or plan_for(profile)
    seeds = [seed + k for k in range(profile.n_seeds)]
    table_seeds = [seed + k for k in range(plan.table_seeds)]
    metrics: dict[str, Any] = {"plan": plan.to_dict(), "seeds": seeds, "table_seeds": table_seeds}
    arrays: dict[str, np.ndarray] = {}

    sets = stability_data(plan, profile.n_images, seed)
    runs = stability(sets, profile, plan, seeds, device=device)
    metrics["stability"] = {"sets": list(sets), "summary": {
        name: {m: seed_summary(c) for m, c in comparison.curves_at().items()} for name, comparison in runs.items()}}
    for i, (name, comparison) in enumerate(runs.items()):
        arrays.update(comparison.to_arrays(prefix=f"stab{i}_"))
        arrays[f"stab{i}_data"] = to_uint8(sets[name][: plan.n_keep])

    dataset = table_set(plan, data_root, seed)
    info, tables, table_arrays = _score_table(dataset, profile, plan, table_seeds, TABLE_MODELS,
                                              conditional_classes=plan.conditional_classes, device=device,
                                              data_root=data_root, weights_path=weights_path, seed=seed)
    metrics["table"] = info
    arrays.update(table_arrays)
    metric = "inception_is" if info["inception"]["available"] else "proxy_fid"
    label = metric_label(metric, dataset.name)
    verdict, pairs = table_verdict(tables, metric)
    record(metrics, "quality-table", verdict, measured_text(tables, metric, label), metric=label, pairs=pairs,
           dataset=dataset.name, seeds=table_seeds)

    tiny, note = tiny_set(plan, data_root, seed)
    info, _, tiny_arrays = _score_table(tiny, profile, plan, table_seeds, ("ggcn",),
                                        conditional_classes=len(tiny.classes), device=device,
                                        data_root=data_root if tiny.name == "tiny-imagenet" else None,
                                        weights_path=weights_path, seed=seed)
    metrics["tiny"] = {**info, "note": note}
    arrays.update({f"tiny_{k}": v for k, v in tiny_arrays.items()})
    return metrics, arrays


@dataclass
class ChapterRuns:
    """The chapter's runs read back from an artifact's arrays (see :func:`run_chapter`)."""

    stability: dict[str, Comparison]
    stability_data: dict[str, Tensor]
    tables: dict[str, Table]
    tiny: dict[str, Table]
    real: dict[str, tuple[Tensor, Tensor]]  # "<setting>" / "tiny_<setting>" -> (images, labels)

    @classmethod
    def from_artifact(cls, metrics: dict[str, Any], arrays: dict[str, np.ndarray]) -> "ChapterRuns":
        sets = metrics["stability"]["sets"]
        real = {}
        for setting, prefix in SETTING_PREFIX.items():
            for where, p in ((setting, prefix), (f"tiny_{setting}", f"tiny_{prefix}")):
                real[where] = (from_uint8(arrays[p + "real"]), torch.as_tensor(arrays[p + "real_labels"]))
        return cls(
            stability={name: Comparison.from_arrays(arrays, f"stab{i}_") for i, name in enumerate(sets)},
            stability_data={name: from_uint8(arrays[f"stab{i}_data"]) for i, name in enumerate(sets)},
            tables={s: Table.from_arrays(arrays, p) for s, p in SETTING_PREFIX.items()},
            tiny={s: Table.from_arrays(arrays, f"tiny_{p}") for s, p in SETTING_PREFIX.items()},
            real=real,
        )
