"""Proxy features trained in seconds on the book's data, and the proxy FID computed on them."""
import pytest
import torch

from ggcn.measure.data import digits, lfw_faces
from ggcn.measure.proxy import ProxyAutoencoder, ProxyClassifier, fit_proxy, label_accuracy, proxy_fid


@pytest.fixture(scope="module")
def split():
    x, y = digits(16)
    perm = torch.randperm(len(x), generator=torch.Generator().manual_seed(0))
    return x[perm[:1400]], y[perm[:1400]], x[perm[1400:]], y[perm[1400:]]


@pytest.fixture(scope="module")
def classifier(split):
    x, y, _, _ = split
    return fit_proxy(x, y, iterations=150)


def test_the_classifier_reads_held_out_digits(classifier, split):
    _, _, x_test, y_test = split
    assert isinstance(classifier, ProxyClassifier) and not classifier.training
    assert label_accuracy(classifier, x_test, y_test) >= 0.85
    assert label_accuracy(classifier, x_test[y_test == 3], 3) >= 0.7


def test_proxy_fid_is_zero_for_identical_sets_and_grows_with_noise_and_shift(classifier, split):
    _, _, x_test, _ = split
    features = classifier.features(x_test)
    assert features.std(0).gt(1e-3).sum() >= features.shape[1] // 2  # non-degenerate features
    same = proxy_fid(x_test, x_test, classifier)
    g = torch.Generator().manual_seed(1)
    noised = proxy_fid(x_test, (x_test + 0.3 * torch.randn(x_test.shape, generator=g)).clamp(-1, 1), classifier)
    shifted = proxy_fid(x_test, (x_test + 0.3).clamp(-1, 1), classifier)
    assert abs(same) < 1e-4
    assert noised > 1.0 and shifted > 1.0
    assert proxy_fid(x_test, (x_test + 0.6).clamp(-1, 1), classifier) > shifted


def test_unlabelled_faces_get_an_autoencoder_proxy():
    faces = lfw_faces(16)
    net = fit_proxy(faces, iterations=60)
    assert isinstance(net, ProxyAutoencoder)
    assert abs(proxy_fid(faces, faces, net)) < 1e-4
    between_halves = proxy_fid(faces[::2], faces[1::2], net)  # the sampling-noise scale of 50 vs 50 faces
    assert proxy_fid(faces, (faces + 0.3).clamp(-1, 1), net) > 3 * between_halves


def test_fitting_leaves_the_callers_random_state_alone(split):
    x, y, _, _ = split
    torch.manual_seed(11)
    expected = torch.rand(3)
    torch.manual_seed(11)
    fit_proxy(x[:64], y[:64], iterations=2)
    assert torch.equal(torch.rand(3), expected)


def test_fitting_is_seeded(split):
    x, y, _, _ = split
    a, b = fit_proxy(x[:64], y[:64], iterations=3, seed=4), fit_proxy(x[:64], y[:64], iterations=3, seed=4)
    assert all(torch.equal(p, q) for p, q in zip(a.parameters(), b.parameters()))


def test_bad_inputs_are_refused(classifier, split):
    _, _, x_test, _ = split
    with pytest.raises(ValueError, match="at least 2 real images"):
        proxy_fid(x_test[:1], x_test, classifier)
    with pytest.raises(ValueError, match="image batches"):
        fit_proxy(x_test.flatten(1))
