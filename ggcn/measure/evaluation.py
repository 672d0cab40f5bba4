"""Sample-quality numbers computed by the standard libraries, each saying what produced it.

FID (Heusel et al. 2017) = ||μ_r − μ_g||² + tr(Σ_r + Σ_g − 2 (Σ_r Σ_g)^{1/2}) of Gaussians fitted to
features; IS (Salimans et al. 2016) = exp E_x KL(p(y|x) || p(y)); KID (Bińkowski et al. 2018) = unbiased MMD² under
k(a, b) = (aᵀb/d + 1)³; all torchmetrics' on torch-fidelity's Inception-v3 (without its weights
:class:`InceptionUnavailable` says how to get them; no other network stands in). SSIM, PSNR and MSE for
reconstructions. Images are ``(N, C, H, W)`` in [−1, 1]; values outside are clipped.
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
FeatureNet = Callable[[Tensor], "Tensor | tuple[Tensor, ...]"]


class InceptionUnavailable(RuntimeError):
    """The Inception-v3 weights that FID, IS and KID need are neither on disk nor downloadable."""


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


@torch.no_grad()
def extract_features(net: FeatureNet, images: Tensor, *, batch_size: int = 256,
                     device: str = "cpu") -> tuple[Tensor, ...]:
    """Each output of ``net`` over ``images`` in batches, as ``(N, D)`` float64 on the CPU.

    ``net`` is a module or a method of one (e.g. ``proxy.features``), run in eval mode and then put back.
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be ≥ 1, got {batch_size}")
    module = net if isinstance(net, nn.Module) else getattr(net, "__self__", None)
    module = module if isinstance(module, nn.Module) else nn.Module()  # a stand-in when there is no mode to switch
    was_training = module.training
    module.eval()
    try:
        outs = (net(images[i:i + batch_size].to(device)) for i in range(0, len(images), batch_size))
        parts = [[o.flatten(1).double().cpu() for o in (out if isinstance(out, tuple) else (out,))] for out in outs]
    finally:
        module.train(was_training)
    return tuple(torch.cat(column) for column in zip(*parts))


def _computed(metric: Callable[..., Any], features: tuple[Tensor, ...], **options: Any) -> Any:
    """torchmetrics' ``metric(**options)`` given the real then the fake features (or one set); its random
    subsets are drawn with seed 0, the caller's RNG untouched, its memory warning silenced."""
    with warnings.catch_warnings(), torch.random.fork_rng(devices=[]):
        torch.default_generator.manual_seed(0)
        warnings.filterwarnings("ignore", message=".*will save all extracted features.*")
        m = metric(**options)
        for x, kw in zip(features, ({"real": True}, {"real": False}) if len(features) == 2 else ({},)):
            m.update(x, **kw)
        return m.compute()


def frechet_distance(real: Tensor, fake: Tensor) -> float:
    """||μ_r − μ_g||² + tr(Σ_r + Σ_g − 2(Σ_r Σ_g)^{1/2}) of features ``(N, D)`` (torchmetrics' FID)."""
    from torchmetrics.image.fid import FrechetInceptionDistance

    given = nn.Identity()  # the features are already computed; torchmetrics reads their width here
    given.num_features = real.shape[1]
    return float(_computed(FrechetInceptionDistance, (real, fake), feature=given))


def kernel_distance(real: Tensor, fake: Tensor, subset_size: int = 1000) -> tuple[float, float]:
    """Unbiased KID of features ``(N, D)``, mean and sd over 100 fixed subsets of min(subset_size, N) rows."""
    from torchmetrics.image.kid import KernelInceptionDistance

    mean, std = _computed(KernelInceptionDistance, (real, fake), feature=nn.Identity(),
                          subset_size=min(subset_size, len(real), len(fake)))
    return float(mean), float(std)


def fid_with_features(real: Tensor, fake: Tensor, feature_net: FeatureNet, *, batch_size: int = 256,
                      device: str = "cpu") -> float:
    """FID in the feature space of any network (a module, or a method such as ``proxy.features``).

    The images reach ``feature_net`` as given; its first output is the ``(B, D)`` features. Needs ≥ 2 per set.
    """
    for x, what in ((real, "real"), (fake, "fake")):
        if not isinstance(x, Tensor) or len(x) < 2:
            raise ValueError(f"FID needs at least 2 {what} images to estimate a covariance")
    return frechet_distance(*(extract_features(feature_net, x, batch_size=batch_size, device=device)[0]
                              for x in (real, fake)))


def _inception_file() -> tuple[str, Path, str]:
    """torch-fidelity's weights URL, where it (through ``torch.hub``) caches them, and the sha256 prefix in
    the file name (torch.hub naming: name-<prefix>.pth)."""
    from torch_fidelity.feature_extractor_inceptionv3 import URL_INCEPTION_V3 as url

    name = url.rsplit("/", 1)[-1]
    return url, Path(torch.hub.get_dir()) / "checkpoints" / name, name.rsplit("-", 1)[-1].split(".")[0]


def _how_to_get_weights() -> str:
    url, cache, _ = _inception_file()
    return (f"FID, IS and KID need torch-fidelity's Inception-v3 weights ({url.rsplit('/', 1)[-1]}). "
            f"On a machine with internet access, download {url} (or run any torch-fidelity/torchmetrics FID once, "
            f"which caches it) and either put the file at {cache} (the torch.hub cache under $TORCH_HOME), "
            f"pass weights_path=..., or set the environment variable {WEIGHTS_ENV} to its path.")


def inception_weights(weights_path: str | Path | None = None) -> Path:
    """``weights_path``, else ``$GGCN_INCEPTION_WEIGHTS``, else torch-fidelity's cache, else a download into it."""
    if given := weights_path or os.environ.get(WEIGHTS_ENV):
        path = Path(given).expanduser()
        if not path.is_file():
            source = "weights_path" if weights_path else f"${WEIGHTS_ENV}"
            raise InceptionUnavailable(f"{source} points to {path}, which is not a file. " + _how_to_get_weights())
        return path
    url, cache, sha256_prefix = _inception_file()
    if cache.is_file():
        return cache
    cache.parent.mkdir(parents=True, exist_ok=True)
    try:
        torch.hub.download_url_to_file(url, str(cache), hash_prefix=sha256_prefix, progress=False)
    except Exception as e:  # offline, proxy, disk, or hash mismatch: all mean "no weights"
        raise InceptionUnavailable(f"downloading the Inception weights failed ({e}). {_how_to_get_weights()}") from e
    return cache


def _inception(weights: Path, device: str) -> nn.Module:
    """torch-fidelity's Inception-v3 giving (2048-d pool features, 1008 unbiased logits) in one pass."""
    from torch_fidelity.feature_extractor_inceptionv3 import FeatureExtractorInceptionV3

    try:
        net = FeatureExtractorInceptionV3("inception-v3-compat", ["2048", "logits_unbiased"],
                                          feature_extractor_weights_path=str(weights))
    except Exception as err:
        raise InceptionUnavailable(f"{weights} could not be loaded as Inception-v3 weights ({err}). "
                                   + _how_to_get_weights()) from err
    return net.to(device)


def inception_metrics(real: Tensor, fake: Tensor, *, reference: str, weights_path: str | Path | None = None,
                      metrics: Sequence[str] = INCEPTION_METRICS, batch_size: int = 50, device: str = "cpu",
                      is_splits: int = 10, kid_subset_size: int = 1000) -> dict[str, Any]:
    """FID(real, fake), IS(fake) and KID(real, fake) on Inception-v3, with a record of what produced them.

    Grey is repeated to RGB, images are quantised to uint8 and resized to 299×299 in the network.
    ``reference`` names the real set (e.g. ``"cifar10-train"``). FID is biased upwards at small N: compare
    only at equal N. Besides the numbers asked for, the result holds ``weights``, ``weights_sha256``,
    ``standard_weights`` (the sha256 matches torch-fidelity's file name), the counts, ``reference``,
    ``clipped_fraction`` and the library versions.
    """
    if (unknown := set(metrics) - set(INCEPTION_METRICS)) or not metrics:
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
    pool = {k: extract_features(net, to_uint8_rgb(images[k]), batch_size=batch_size, device=device)  # pool, logits
            for k in (("fake", "real") if {"fid", "kid"} & set(metrics) else ("fake",))}
    result: dict[str, Any] = {}
    if "fid" in metrics:
        result["fid"] = frechet_distance(pool["real"][0], pool["fake"][0])
    if "kid" in metrics:
        result["kid_subset_size"] = min(kid_subset_size, n_real, n_fake)
        result["kid"], result["kid_std"] = kernel_distance(pool["real"][0], pool["fake"][0], kid_subset_size)
    if "is" in metrics:
        from torchmetrics.image.inception import InceptionScore

        is_mean, is_std = _computed(InceptionScore, (pool["fake"][1],), feature=nn.Identity(), splits=is_splits)
        result |= {"is": float(is_mean), "is_std": float(is_std), "is_splits": is_splits}

    import torch_fidelity
    import torchmetrics

    sha = hashlib.sha256(weights.read_bytes()).hexdigest()
    return result | dict(
        feature_network="inception-v3-compat (torch-fidelity): pool3 2048-d and unbiased logits, TF resize to 299",
        weights=str(weights), weights_sha256=sha, standard_weights=sha.startswith(_inception_file()[2]),
        n_real=n_real, n_fake=n_fake, reference=reference,
        clipped_fraction={k: float((v.abs() > 1).float().mean()) for k, v in raw.items()},
        libraries={"torchmetrics": torchmetrics.__version__, "torch_fidelity": torch_fidelity.__version__})


def image_quality(reference: Tensor, estimate: Tensor) -> dict[str, float]:
    """SSIM, PSNR and MSE on the [−1, 1] scale (data range 2), both images clipped to it.

    MSE = mean (x − y)² over the batch, PSNR = 10 log10(2² / MSE) dB (+inf for identical images), SSIM the
    mean of torchmetrics' SSIM (11×11 Gaussian window, σ = 1.5: images of at least 6×6).
    """
    from torchmetrics.functional import mean_squared_error
    from torchmetrics.functional.image import peak_signal_noise_ratio, structural_similarity_index_measure

    x, y = check_images(reference, "reference"), check_images(estimate, "estimate")
    if x.shape != y.shape:
        raise ValueError(f"reference {tuple(x.shape)} and estimate {tuple(y.shape)} must have the same shape")
    if min(x.shape[-2:]) < 6:
        raise ValueError(f"SSIM's 11×11 window needs images of at least 6×6 pixels; got {tuple(x.shape[-2:])}")
    return {"ssim": float(structural_similarity_index_measure(y, x, data_range=2.0)),
            "psnr": float(peak_signal_noise_ratio(y, x, data_range=2.0)),
            "mse": float(mean_squared_error(y, x))}
