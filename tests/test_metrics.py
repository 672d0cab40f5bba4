"""Response distance (ggcn.measure.metrics): D = Σ_k |mean F_k(obs) − mean F_k(syn)|."""
import pytest
import torch

from ggcn.measure.metrics import fixed_responses, response_distance, response_distance_callback


def images(seed: int, n: int = 6, channels: int = 3, shift: float = 0.0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.rand(n, channels, 16, 16, generator=g) * 2 - 1 + shift


@pytest.mark.parametrize("channels", [1, 3])
def test_fixed_responses_give_one_number_per_filter_and_channel(channels):
    out = fixed_responses(channels)(images(0, channels=channels))
    assert out.shape == (6, 18 * channels) and (out >= 0).all()


def test_identical_sets_are_at_distance_zero():
    x, responses = images(0), fixed_responses(3)
    assert response_distance(x, x.clone(), responses) == 0.0
    assert response_distance(x, x.flip(0), responses) == pytest.approx(0.0, abs=1e-5)  # order does not matter


def test_different_sets_are_at_a_positive_symmetric_distance():
    responses = fixed_responses(3)
    a, b = images(0), images(1, n=9)
    d = response_distance(a, b, responses)
    assert d > 0 and d == pytest.approx(response_distance(b, a, responses))


def test_distance_is_the_summed_absolute_gap_of_mean_responses():
    responses = lambda x: x.flatten(1)[:, :3]  # noqa: E731 -- three "filters": the first three pixels
    a, b = images(0), images(1)
    expected = (a.flatten(1)[:, :3].mean(0) - b.flatten(1)[:, :3].mean(0)).abs().sum()
    assert response_distance(a, b, responses) == pytest.approx(float(expected))


def test_callback_logs_the_distance_of_the_current_particles_every_k_iterations():
    class Model:
        particles = images(1)

    x, responses = images(0), fixed_responses(3)
    callback = response_distance_callback(responses, every=2)
    assert callback(0, Model(), x) == {"response_distance": response_distance(x, Model.particles, responses)}
    assert callback(1, Model(), x) is None
    Model.particles = None
    assert callback(2, Model(), x) is None
