"""Sample-quality numbers computed by the standard libraries, each saying what produced it.

* FID (Heusel et al. 2017): fit Gaussians N(μ_r, Σ_r), N(μ_g, Σ_g) to the features of real
  and generated images and report
      FID = ||μ_r − μ_g||² + tr(Σ_r + Σ_g − 2 (Σ_r Σ_g)^{1/2}).
* IS (Salimans et al. 2016): IS = exp E_x KL(p(y|x) || p(y)), from the Inception class
  probabilities of the generated images (mean ± sd over splits).
* KID (Bińkowski et al. 2018): the unbiased MMD² between real and generated features under
  the cubic kernel k(a, b) = (aᵀb/d + 1)³ (mean ± sd over subsets).
* SSIM, PSNR = 10 log10(range² / MSE) and MSE for reconstructions.

FID, IS and KID are torchmetrics' implementations on torch-fidelity's Inception-v3 (the
TensorFlow FID network, resized to 299×299 the way the original code does). Real numbers
need the real weights, which are downloaded once on a connected machine (or given as a
file); without them :class:`InceptionUnavailable` says how to get them — we never fall back
to another network. Any other feature network goes through :func:`fid_with_features`.

Images are tensors ``(N, C, H, W)`` in [−1, 1], as everywhere in ggcn; values outside are
clipped (Langevin particles can leave the box).
"""
from __future__ import annotations

import hashlib
import os
import warnings
from pathlib import Path
from typing import Any, Callable, Sequence

import torch
from torch import Tensor, nn

WEIGHTS_ENV = "GGCN_INCEPTION_WEIGHTS"
INCEPTION_METRICS = ("fid", "is", "kid")


class InceptionUnavailable(RuntimeError):
    """The Inception-v3 weights that FID, IS and KID need are neither on disk nor downloadable."""


# ---------------------------------------------------------------------------
# Images


def check_images(x: Tensor, what: str) -> Tensor:
    """A float ``(N, C, H, W)`` batch with C ∈ {1, 3} and finite values, clipped to [−1, 1]."""
    if not isinstance(x, Tensor) or x.dim() != 4 or x.shape[1] not in (1, 3):
        shape = tuple(x.shape) if isinstance(x, Tensor) else type(x).__name__
        raise ValueError(f"{what} must be a tensor (N, C, H, W) with C = 1 or 3 in [-1, 1]; got {shape}")
    if not x.is_floating_point():
        raise ValueError(f"{what} must be floats in [-1, 1] (got dtype {x.dtype}); convert with x / 127.5 - 1")
    if not torch.isfinite(x).all():
        raise ValueError(f"{what} contains NaN or inf values; evaluate only finite samples")
    return x.clamp(-1.0, 1.0)


def to_uint8_rgb(x: Tensor) -> Tensor:
    """[−1, 1] floats → uint8 in [0, 255] with 3 channels (grey is repeated), as Inception expects."""
    x = ((x.clamp(-1.0, 1.0) + 1.0) * 127.5).round().to(torch.uint8)
    return x.repeat(1, 3, 1, 1) if x.shape[1] == 1 else x


# ---------------------------------------------------------------------------
# Features, and the library metrics computed from them


class _GivenFeatures(nn.Module):
    """The "feature extractor" handed to torchmetrics when the features are already computed."""

    def __init__(self, num_features: int):
        super().__init__()
        self.num_features = num_features

    def forward(self, features: Tensor) -> Tensor:
        return features


FeatureNet = Callable[[Tensor], "Tensor | tuple[Tensor, ...]"]


@torch.no_grad()
def extract_features(
    net: FeatureNet, images: Tensor, *, batch_size: int = 256, device: str = "cpu"
) -> tuple[Tensor, ...]:
    """Run ``net`` over ``images`` in batches; each output as ``(N, D)`` float64 on the CPU.

    ``net`` is a module or a method of one (e.g. ``proxy.features``); that module is put in eval
    mode for the pass and back afterwards. It may return one tensor or a tuple of tensors (e.g.
    Inception's pool features and logits).
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be ≥ 1, got {batch_size}")
    module = net if isinstance(net, nn.Module) else getattr(net, "__self__", None)
    was_training = module.training if isinstance(module, nn.Module) else None
    if was_training is not None:
        module.eval()
    try:
        parts: list[tuple[Tensor, ...]] = []
        for start in range(0, len(images), batch_size):
            out = net(images[start:start + batch_size].to(device))
            out = out if isinstance(out, tuple) else (out,)
            parts.append(tuple(o.flatten(1).double().cpu() for o in out))
    finally:
        if was_training is not None:
            module.train(was_training)
    return tuple(torch.cat(column) for column in zip(*parts))


def _frechet(real: Tensor, fake: Tensor) -> float:
    from torchmetrics.image.fid import FrechetInceptionDistance

    fid = FrechetInceptionDistance(feature=_GivenFeatures(real.shape[1]))
    fid.update(real, real=True)
    fid.update(fake, real=False)
    return float(fid.compute())


def _kernel(real: Tensor, fake: Tensor, subset_size: int) -> tuple[float, float]:
    from torchmetrics.image.kid import KernelInceptionDistance

    with warnings.catch_warnings(), torch.random.fork_rng(devices=[]):
        torch.default_generator.manual_seed(0)  # fixed random subsets; the caller's RNG is untouched
        warnings.filterwarnings("ignore", message=".*will save all extracted features.*")
        kid = KernelInceptionDistance(feature=nn.Identity(), subset_size=subset_size)
        kid.update(real, real=True)
        kid.update(fake, real=False)
        mean, std = kid.compute()
    return float(mean), float(std)


def _inception_score(logits: Tensor, splits: int) -> tuple[float, float]:
    from torchmetrics.image.inception import InceptionScore

    with warnings.catch_warnings(), torch.random.fork_rng(devices=[]):
        torch.default_generator.manual_seed(0)  # a fixed random split; the caller's RNG is untouched
        warnings.filterwarnings("ignore", message=".*will save all extracted features.*")
        score = InceptionScore(feature=nn.Identity(), splits=splits)
        score.update(logits)
        mean, std = score.compute()
    return float(mean), float(std)


def fid_with_features(
    real: Tensor, fake: Tensor, feature_net: FeatureNet, *, batch_size: int = 256, device: str = "cpu"
) -> float:
    """FID between ``real`` and ``fake`` in the feature space of any network.

    ``feature_net`` (a module, or a method such as ``proxy.features``) receives the images exactly
    as given (float, [−1, 1], its own channel count) and returns ``(B, D)`` features (a tuple: the
    first entry); torchmetrics' :class:`FrechetInceptionDistance` fits the two Gaussians and returns
    ||μ_r − μ_g||² + tr(Σ_r + Σ_g − 2(Σ_r Σ_g)^{1/2}). Needs ≥ 2 images per set.
    """
    for x, what in ((real, "real"), (fake, "fake")):
        if not isinstance(x, Tensor) or len(x) < 2:
            raise ValueError(f"FID needs at least 2 {what} images to estimate a covariance")
    f_real = extract_features(feature_net, real, batch_size=batch_size, device=device)[0]
    f_fake = extract_features(feature_net, fake, batch_size=batch_size, device=device)[0]
    return _frechet(f_real, f_fake)


# ---------------------------------------------------------------------------
# Inception-v3 (torch-fidelity's port of the TensorFlow FID network)


def _inception_url() -> str:
    from torch_fidelity.feature_extractor_inceptionv3 import URL_INCEPTION_V3

    return URL_INCEPTION_V3


def _standard_sha256_prefix() -> str:
    """The sha256 prefix in the weights' file name (torch.hub naming: name-<prefix>.pth)."""
    return _inception_url().rsplit("-", 1)[-1].split(".")[0]


def _cache_file() -> Path:
    """Where torch-fidelity (through ``torch.hub``) keeps the downloaded weights."""
    return Path(torch.hub.get_dir()) / "checkpoints" / _inception_url().rsplit("/", 1)[-1]


def _how_to_get_weights(cache: Path) -> str:
    url = _inception_url()
    return (
        f"FID, IS and KID need torch-fidelity's Inception-v3 weights ({url.rsplit('/', 1)[-1]}). "
        f"On a machine with internet access, download {url} "
        f"(or run any torch-fidelity/torchmetrics FID once, which caches it) and either put the file at {cache} "
        f"(the torch.hub cache under $TORCH_HOME), pass weights_path=..., or set the environment variable "
        f"{WEIGHTS_ENV} to its path."
    )


def inception_weights(weights_path: str | Path | None = None) -> Path:
    """The weights file: ``weights_path``, else ``$GGCN_INCEPTION_WEIGHTS``, else torch-fidelity's cache,
    else a download into that cache; :class:`InceptionUnavailable` if none works."""
    given = weights_path or os.environ.get(WEIGHTS_ENV)
    cache = _cache_file()
    if given:
        path = Path(given).expanduser()
        if not path.is_file():
            source = "weights_path" if weights_path else f"${WEIGHTS_ENV}"
            raise InceptionUnavailable(f"{source} points to {path}, which is not a file. " + _how_to_get_weights(cache))
        return path
    if cache.is_file():
        return cache
    url = _inception_url()
    cache.parent.mkdir(parents=True, exist_ok=True)
    try:
        torch.hub.download_url_to_file(url, str(cache), hash_prefix=_standard_sha256_prefix(), progress=False)
    except Exception as err:  # offline, proxy, disk, or hash mismatch: all mean "no weights"
        message = f"downloading the Inception weights failed ({err}). " + _how_to_get_weights(cache)
        raise InceptionUnavailable(message) from err
    return cache


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _inception(weights: Path, device: str) -> nn.Module:
    """torch-fidelity's Inception-v3 giving (2048-d pool features, 1008 unbiased logits) in one pass."""
    from torch_fidelity.feature_extractor_inceptionv3 import FeatureExtractorInceptionV3

    try:
        net = FeatureExtractorInceptionV3(
            "inception-v3-compat", ["2048", "logits_unbiased"], feature_extractor_weights_path=str(weights)
        )
    except Exception as err:
        raise InceptionUnavailable(
            f"{weights} could not be loaded as Inception-v3 weights ({err}). " + _how_to_get_weights(_cache_file())
        ) from err
    return net.to(device)


def inception_metrics(
    real: Tensor,
    fake: Tensor,
    *,
    reference: str,
    weights_path: str | Path | None = None,
    metrics: Sequence[str] = INCEPTION_METRICS,
    batch_size: int = 50,
    device: str = "cpu",
    is_splits: int = 10,
    kid_subset_size: int = 1000,
) -> dict[str, Any]:
    """FID(real, fake), IS(fake) and KID(real, fake) on Inception-v3, with a record of what produced them.

    ``real`` and ``fake`` are ``(N, C, H, W)`` in [−1, 1] (grey is repeated to RGB, then the
    images are quantised to uint8 and resized to 299×299 inside the network). ``reference`` names
    the real set (e.g. ``"cifar10-train"``) and is stored with the numbers. FID is biased upwards
    at small N: compare numbers only at equal N (the common convention is 50 000 generated images).

    Returns ``fid``, ``is``/``is_std``, ``kid``/``kid_std`` (those asked for), and the provenance:
    ``feature_network``, ``weights``, ``weights_sha256``, ``standard_weights`` (the sha256 matches
    the prefix in torch-fidelity's file name: the weights the standard FID uses), ``n_real``, ``n_fake``,
    ``reference``, ``clipped_fraction`` and the library versions.
    """
    unknown = set(metrics) - set(INCEPTION_METRICS)
    if unknown or not metrics:
        raise ValueError(f"unknown or no metrics {sorted(unknown)}; choose from {INCEPTION_METRICS}")
    if not reference or not isinstance(reference, str):
        raise ValueError("name the real reference set, e.g. reference='cifar10-train', so the result says what it was")
    raw = {"real": real, "fake": fake}
    images = {k: check_images(v, f"{k} images") for k, v in raw.items()}
    n_real, n_fake = len(images["real"]), len(images["fake"])
    if ("fid" in metrics or "kid" in metrics) and min(n_real, n_fake) < 2:
        raise ValueError(f"FID/KID need at least 2 real and 2 fake images; got {n_real} and {n_fake}")
    if "is" in metrics and n_fake < is_splits:
        raise ValueError(f"IS with {is_splits} splits needs at least {is_splits} fake images; got {n_fake}")

    weights = inception_weights(weights_path)
    net = _inception(weights, device)

    def run(x: Tensor) -> tuple[Tensor, ...]:
        return extract_features(net, to_uint8_rgb(x), batch_size=batch_size, device=device)

    pool_fake, logits_fake = run(images["fake"])
    result: dict[str, Any] = {}
    if "fid" in metrics or "kid" in metrics:
        pool_real, _ = run(images["real"])
        if "fid" in metrics:
            result["fid"] = _frechet(pool_real, pool_fake)
        if "kid" in metrics:
            subset = min(kid_subset_size, n_real, n_fake)
            result["kid"], result["kid_std"] = _kernel(pool_real, pool_fake, subset)
            result["kid_subset_size"] = subset
    if "is" in metrics:
        result["is"], result["is_std"] = _inception_score(logits_fake, is_splits)
        result["is_splits"] = is_splits

    import torch_fidelity
    import torchmetrics

    sha = _sha256(weights)
    result.update(
        feature_network="inception-v3-compat (torch-fidelity): pool3 2048-d and unbiased logits, TF resize to 299",
        weights=str(weights),
        weights_sha256=sha,
        standard_weights=sha.startswith(_standard_sha256_prefix()),
        n_real=n_real,
        n_fake=n_fake,
        reference=reference,
        clipped_fraction={k: float((v.abs() > 1).float().mean()) for k, v in raw.items()},
        libraries={"torchmetrics": torchmetrics.__version__, "torch_fidelity": torch_fidelity.__version__},
    )
    return result


# ---------------------------------------------------------------------------
# Reconstructions


def image_quality(reference: Tensor, estimate: Tensor) -> dict[str, float]:
    """SSIM, PSNR and MSE of ``estimate`` against ``reference`` (both ``(N, C, H, W)`` in [−1, 1]).

    Both are clipped to [−1, 1] and measured on that scale, so the data range is 2:
    MSE = mean (x − y)² over all pixels of the batch, PSNR = 10 log10(2² / MSE) in dB (+inf for
    identical images), SSIM the mean over images of torchmetrics' SSIM (11×11 Gaussian window,
    σ = 1.5, so images must be at least 6×6).
    """
    from torchmetrics.functional import mean_squared_error
    from torchmetrics.functional.image import peak_signal_noise_ratio, structural_similarity_index_measure

    x, y = check_images(reference, "reference"), check_images(estimate, "estimate")
    if x.shape != y.shape:
        raise ValueError(f"reference {tuple(x.shape)} and estimate {tuple(y.shape)} must have the same shape")
    if min(x.shape[-2:]) < 6:
        raise ValueError(f"SSIM's 11×11 window needs images of at least 6×6 pixels; got {tuple(x.shape[-2:])}")
    return {
        "ssim": float(structural_similarity_index_measure(y, x, data_range=2.0)),
        "psnr": float(peak_signal_noise_ratio(y, x, data_range=2.0)),
        "mse": float(mean_squared_error(y, x)),
    }
