"""ggcn.measure.evaluation: FID on any feature network, the Inception path offline, SSIM/PSNR/MSE."""
from __future__ import annotations

import hashlib
import math
import urllib.error

import pytest
import torch
from torch import nn

from ggcn.measure.data import digits
from ggcn.measure.evaluation import (
    WEIGHTS_ENV,
    InceptionUnavailable,
    fid_with_features,
    frechet_distance,
    image_quality,
    inception_metrics,
    kernel_distance,
)

INCEPTION_FILE = "weights-inception-2015-12-05-6726825d.pth"


@pytest.fixture(scope="module")
def halves():
    """Two disjoint sets of 200 handwritten digits (16×16, [−1, 1])."""
    x, _ = digits(16)
    perm = torch.randperm(len(x), generator=torch.Generator().manual_seed(0))
    return x[perm[:200]], x[perm[200:400]]


@pytest.fixture(scope="module")
def conv_features():
    """A small random conv net whose features vary across images (not a dead, all-zero extractor)."""
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Conv2d(1, 16, 3, padding=1), nn.ReLU(),
        nn.Conv2d(16, 16, 3, stride=2, padding=1), nn.ReLU(),
        nn.AdaptiveAvgPool2d(1), nn.Flatten(),
    )


def test_the_conv_features_are_not_degenerate(halves, conv_features):
    with torch.no_grad():
        features = conv_features(halves[0])
    assert (features.std(dim=0) > 1e-4).all()


def test_fid_of_a_set_with_itself_is_zero(halves, conv_features):
    assert fid_with_features(halves[0], halves[0], conv_features) == pytest.approx(0.0, abs=1e-10)


def test_fid_of_noised_or_shifted_images_is_far_above_the_sampling_level(halves, conv_features):
    real, other = halves
    sampling = fid_with_features(real, other, conv_features)  # two draws of the same distribution
    noise = 0.3 * torch.randn(other.shape, generator=torch.Generator().manual_seed(1))
    assert fid_with_features(real, other + noise, conv_features) > 20 * sampling
    assert fid_with_features(real, other + 0.2, conv_features) > 20 * sampling


def test_fid_of_a_shift_under_linear_features_is_the_squared_mean_shift(halves):
    """f(x) = Wx: shifting every image by c moves the mean by W c and leaves Σ alone, so FID = ||W c||²."""
    torch.manual_seed(0)
    linear = nn.Sequential(nn.Flatten(), nn.Linear(16 * 16, 8))
    real, c = halves[0], 0.1
    expected = float((linear[1].weight.detach().sum(dim=1) * c).pow(2).sum())
    assert fid_with_features(real, real + c, linear) == pytest.approx(expected, rel=1e-4)


def test_fid_needs_two_images_per_set(halves, conv_features):
    with pytest.raises(ValueError, match="at least 2 fake"):
        fid_with_features(halves[0], halves[1][:1], conv_features)


def test_frechet_distance_of_shifted_features_is_the_squared_shift():
    f = torch.randn(300, 8, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    assert frechet_distance(f, f + 1) == pytest.approx(8.0, rel=1e-6)  # ||μ_r − μ_g||² = 8 · 1², Σ unchanged


def test_kernel_distance_separates_a_shift_from_sampling_noise_and_fits_its_subsets_to_small_sets():
    g = torch.Generator().manual_seed(0)
    a, b = (torch.randn(300, 8, generator=g, dtype=torch.float64) for _ in range(2))
    same, _ = kernel_distance(a, b, subset_size=100)
    shifted, _ = kernel_distance(a, b + 1, subset_size=100)
    assert abs(same) < 0.05 and shifted > 100 * abs(same)
    assert kernel_distance(a, b, 100) == kernel_distance(a, b, 100)  # fixed subsets
    assert all(map(math.isfinite, kernel_distance(a[:50], b)))  # 1000 > 50 rows: subsets of 50


class _Classifier(nn.Module):
    """A net whose ``forward`` gives logits and whose ``features`` method gives the features (like a proxy)."""

    def __init__(self):
        super().__init__()
        self.trunk = nn.Sequential(nn.Conv2d(1, 8, 3, stride=2), nn.ReLU(), nn.Flatten())
        self.modes: list[bool] = []

    def features(self, x):
        self.modes.append(self.training)
        return self.trunk(x)

    def forward(self, x):
        return self.features(x).sum(dim=1)


def test_a_method_can_be_the_feature_net_and_runs_in_eval_mode(halves):
    net = _Classifier().train()
    fid = fid_with_features(halves[0][:6], halves[1][:6], net.features, batch_size=4)
    assert fid > 0
    assert net.modes == [False, False, False, False]  # 2 batches per set, all in eval mode
    assert net.training  # and its mode is restored


# ---------------------------------------------------------------------------
# Inception: offline behaviour and the provenance record


@pytest.fixture
def offline(monkeypatch, tmp_path):
    """An empty torch.hub cache, no weights variable, and a downloader that fails like an offline machine."""
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    monkeypatch.delenv(WEIGHTS_ENV, raising=False)
    calls = []

    def no_network(url, dst, *args, **kwargs):
        calls.append(url)
        raise urllib.error.URLError("network is unreachable")

    monkeypatch.setattr(torch.hub, "download_url_to_file", no_network)
    return tmp_path, calls


def test_missing_inception_weights_raise_our_error_with_directions(offline, halves):
    cache, calls = offline
    with pytest.raises(InceptionUnavailable) as info:
        inception_metrics(halves[0][:10], halves[1][:10], reference="digits-test")
    message = str(info.value)
    assert calls == [f"https://github.com/toshas/torch-fidelity/releases/download/v0.2.0/{INCEPTION_FILE}"]
    assert "network is unreachable" in message
    assert INCEPTION_FILE in message and WEIGHTS_ENV in message and "weights_path" in message
    assert str(cache / "hub" / "checkpoints" / INCEPTION_FILE) in message
    assert not list(cache.rglob("*.pth"))


@pytest.mark.parametrize("source", ["argument", "environment"])
def test_a_weights_path_that_is_not_a_file_is_named_in_the_error(offline, monkeypatch, halves, source):
    missing = offline[0] / "nowhere.pth"
    kwargs = {"weights_path": missing} if source == "argument" else {}
    if source == "environment":
        monkeypatch.setenv(WEIGHTS_ENV, str(missing))
    with pytest.raises(InceptionUnavailable, match="nowhere.pth"):
        inception_metrics(halves[0][:10], halves[1][:10], reference="digits-test", **kwargs)
    assert offline[1] == []  # a given path is never replaced by a download


@pytest.fixture(scope="module")
def untrained_inception_file(tmp_path_factory):
    """A weights file of the right layout but untrained (its metric values mean nothing: FID 0, IS 1)."""
    import torch_fidelity.feature_extractor_inceptionv3 as tf_inception

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(tf_inception, "load_state_dict_from_url", lambda *a, **k: {})
        patch.setattr(tf_inception.FeatureExtractorInceptionV3, "load_state_dict", lambda self, state: None)
        net = tf_inception.FeatureExtractorInceptionV3("inception-v3-compat", ["2048"])
    path = tmp_path_factory.mktemp("inception") / "untrained.pth"
    torch.save(net.state_dict(), path)
    return path


def test_inception_metrics_record_what_produced_them(untrained_inception_file, halves):
    """Plumbing and provenance only: grey images, 2 vs 3 samples, a non-standard weights file."""
    real, fake = halves[0][:2], halves[1][:3] * 1.5  # part of `fake` lies outside [−1, 1]
    result = inception_metrics(real, fake, reference="digits-test", weights_path=untrained_inception_file,
                               is_splits=3, kid_subset_size=1000)
    assert {"fid", "is", "is_std", "kid", "kid_std"} <= set(result)
    assert all(math.isfinite(result[k]) for k in ("fid", "is", "kid"))
    assert (result["n_real"], result["n_fake"], result["reference"]) == (2, 3, "digits-test")
    assert result["kid_subset_size"] == 2 and result["is_splits"] == 3
    assert result["weights"] == str(untrained_inception_file)
    assert result["weights_sha256"] == hashlib.sha256(untrained_inception_file.read_bytes()).hexdigest()
    assert result["standard_weights"] is False
    assert "inception" in result["feature_network"]
    assert result["clipped_fraction"]["real"] == 0 and result["clipped_fraction"]["fake"] > 0


def test_inception_metrics_compute_only_what_is_asked(untrained_inception_file, halves):
    result = inception_metrics(halves[0][:2], halves[1][:2], reference="digits-test",
                               weights_path=untrained_inception_file, metrics=("is",), is_splits=2)
    assert "is" in result and "fid" not in result and "kid" not in result


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"metrics": ("fid", "precision")}, "unknown"),
        ({"reference": ""}, "name the real reference set"),
        ({"is_splits": 20}, "at least 20 fake images"),
    ],
)
def test_inception_metrics_reject_bad_requests_before_loading_anything(offline, halves, kwargs, message):
    args = {"reference": "digits-test", **kwargs}
    with pytest.raises(ValueError, match=message):
        inception_metrics(halves[0][:10], halves[1][:10], **args)
    assert offline[1] == []


def test_images_must_be_float_batches(offline, halves):
    with pytest.raises(ValueError, match="floats in"):
        inception_metrics(halves[0], (halves[1] * 127.5 + 127.5).to(torch.uint8), reference="digits-test")
    with pytest.raises(ValueError, match=r"\(N, C, H, W\)"):
        inception_metrics(halves[0], halves[1][:, 0], reference="digits-test")


# ---------------------------------------------------------------------------
# SSIM, PSNR, MSE on the [−1, 1] scale (data range 2)


def test_identical_images_have_ssim_one_psnr_inf_mse_zero(halves):
    quality = image_quality(halves[0][:8], halves[0][:8].clone())
    assert quality["ssim"] == pytest.approx(1.0, abs=1e-6)
    assert quality["psnr"] == math.inf
    assert quality["mse"] == 0.0


def test_psnr_is_ten_log10_of_range_squared_over_mse():
    reference = torch.rand(4, 1, 16, 16) - 0.5  # in [−0.5, 0.5]: a shift of 0.1 is never clipped
    quality = image_quality(reference, reference + 0.1)
    assert quality["mse"] == pytest.approx(0.01, rel=1e-5)
    assert quality["psnr"] == pytest.approx(10 * math.log10(2.0**2 / 0.01), rel=1e-5)
    assert quality["ssim"] < 1.0


def test_noise_lowers_ssim_and_psnr(halves):
    clean = halves[0][:8]
    noise = torch.randn(clean.shape, generator=torch.Generator().manual_seed(0))
    mild, strong = image_quality(clean, clean + 0.05 * noise), image_quality(clean, clean + 0.3 * noise)
    assert 1.0 > mild["ssim"] > strong["ssim"]
    assert mild["psnr"] > strong["psnr"]


def test_values_outside_the_box_are_clipped_before_measuring():
    ones = torch.ones(2, 1, 8, 8)
    assert image_quality(ones, 3 * ones)["mse"] == 0.0


def test_image_quality_rejects_mismatched_or_tiny_images():
    with pytest.raises(ValueError, match="same shape"):
        image_quality(torch.zeros(2, 1, 8, 8), torch.zeros(2, 1, 16, 16))
    with pytest.raises(ValueError, match="6×6"):
        image_quality(torch.zeros(2, 1, 5, 5), torch.zeros(2, 1, 5, 5))
