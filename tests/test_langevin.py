"""The Langevin sampler (ggcn.core.langevin) and the particle initialisers (ggcn.core.chains).

The update under test is  x ← x − (δ²/2)(x/σ² − ∇f(x)) + δ ε  on p ∝ exp(f) N(0, σ²I).
"""
import math

import pytest
import torch
from scipy import stats
from torch import nn

from ggcn.core.chains import NoiseInit, PersistentChains, ReplayBuffer, uniform_noise
from ggcn.core.langevin import LangevinConfig, frozen, langevin
from ggcn.models.nets import ConvEnergy


def linear_energy(w: torch.Tensor):
    """f(x) = Σ_j w_j x_j per particle: ∇f = w everywhere (w may differ per particle)."""
    return lambda x: (x * w).flatten(1).sum(1)


# --- the stationary law ---------------------------------------------------------------


def test_quadratic_energy_reaches_the_product_gaussian():
    """f(x) = −||x−μ||²/(2s²) tilts N(0, σ²I) into N(m, v I) with
    1/v = 1/s² + 1/σ² and m = v μ / s² (a product of two Gaussians).

    δ is small: the Euler–Maruyama chain's own stationary variance is v / (1 − δ²/(4v)), 0.5 %
    above v, and 1000 steps shrink the start's offset by (1 − δ²/(2v))¹⁰⁰⁰ < 1e-4. A factor 2 or
    a sign error in any term of the update moves the mean or the variance by ≥ 10 % (checked by
    breaking each term on purpose).
    """
    torch.manual_seed(0)
    mu, s, sigma = torch.tensor([1.0, -2.0]), 0.5, 0.7
    var = 1 / (1 / s**2 + 1 / sigma**2)
    mean = var * mu / s**2
    cfg = LangevinConfig(n_steps=1000, step_size=0.06, sigma=sigma)
    x = langevin(lambda x: -(x - mu).pow(2).sum(1) / (2 * s**2), torch.zeros(20_000, 2), cfg).x

    assert torch.allclose(x.mean(0), mean, atol=0.015), (x.mean(0), mean)
    assert x.var(0) == pytest.approx(torch.full((2,), var), rel=0.04), (x.var(0), var)


def test_reference_term_alone_gives_the_gaussian_reference():
    """f ≡ 0: the chain samples q = N(0, σ²I) itself (bias δ²/(4σ²) < 0.5 %, from a start at 2)."""
    torch.manual_seed(1)
    sigma = 1.5
    cfg = LangevinConfig(n_steps=1000, step_size=0.2, sigma=sigma)
    x = langevin(lambda x: 0.0 * x.flatten(1).sum(1), torch.full((10_000, 2), 2.0), cfg).x.flatten()

    assert abs(float(x.mean())) < 0.03
    assert float(x.var()) == pytest.approx(sigma**2, rel=0.04)
    assert stats.kstest(x.numpy(), stats.norm(0, sigma).cdf).pvalue > 0.01


# --- frozen parameters ----------------------------------------------------------------


def test_frozen_turns_gradients_off_and_restores_every_flag():
    net = nn.Sequential(nn.Linear(2, 3), nn.Linear(3, 1))
    net[0].bias.requires_grad_(False)  # already frozen before the block
    before = [p.requires_grad for p in net.parameters()]
    with frozen(net):
        assert not any(p.requires_grad for p in net.parameters())
    assert [p.requires_grad for p in net.parameters()] == before


def test_frozen_restores_the_flags_when_the_block_raises():
    net = nn.Sequential(nn.Linear(2, 3), nn.Linear(3, 1))
    net[1].weight.requires_grad_(False)
    before = [p.requires_grad for p in net.parameters()]
    with pytest.raises(RuntimeError, match="inside"):
        with frozen(net):
            raise RuntimeError("inside the block")
    assert [p.requires_grad for p in net.parameters()] == before


def test_sampling_leaves_parameter_gradients_untouched():
    """Only ∇_x f is taken: no .grad appears, an existing one is not accumulated into."""
    torch.manual_seed(0)
    net = ConvEnergy(1, 8, width=4)
    langevin(net, torch.randn(3, 1, 8, 8), LangevinConfig(n_steps=3))
    assert all(p.grad is None for p in net.parameters())
    assert all(p.requires_grad for p in net.parameters())

    net.head.bias.grad = torch.full_like(net.head.bias, 0.5)
    langevin(net, torch.randn(3, 1, 8, 8), LangevinConfig(n_steps=3))
    assert torch.equal(net.head.bias.grad, torch.full_like(net.head.bias, 0.5))


# --- options --------------------------------------------------------------------------


def test_without_noise_it_is_gradient_descent_on_U():
    """U(x) = ||x||²/(2σ²) − w·x: each step is x ← x − (δ²/2)(x/σ² − w), so after n steps
    x_n = x* + (1 − δ²/(2σ²))ⁿ (x_0 − x*) with the minimiser x* = σ² w."""
    torch.manual_seed(0)
    w, x0 = torch.randn(5, 3), torch.randn(5, 3)
    cfg = LangevinConfig(n_steps=7, step_size=0.3, sigma=0.8, noise=False)
    x_star = cfg.sigma**2 * w
    expected = x_star + (1 - cfg.step_size**2 / (2 * cfg.sigma**2)) ** cfg.n_steps * (x0 - x_star)
    assert torch.allclose(langevin(linear_energy(w), x0, cfg).x, expected, atol=1e-6)


def test_grad_clip_caps_each_particles_gradient_norm():
    """From x = 0 without noise one step moves by (δ²/2)·∇f, with ∇f clipped per particle."""
    w = torch.tensor([[3.0, 4.0], [0.3, 0.4]])  # norms 5 (clipped to 1) and 0.5 (kept)
    cfg = LangevinConfig(n_steps=1, step_size=0.5, noise=False, grad_clip=1.0)
    step = langevin(linear_energy(w), torch.zeros(2, 2), cfg).x / (cfg.step_size**2 / 2)
    assert torch.allclose(step, torch.tensor([[0.6, 0.8], [0.3, 0.4]]))


def test_clamp_keeps_particles_in_the_box():
    torch.manual_seed(0)
    cfg = LangevinConfig(n_steps=5, step_size=1.0, clamp=(-1.0, 1.0))
    x = langevin(lambda x: 0.0 * x.sum(1), torch.zeros(500, 4), cfg).x
    assert x.min() == -1.0 and x.max() == 1.0  # the noise reached the walls, and stopped there


@pytest.mark.parametrize(("every", "recorded_steps"), [(3, [0, 3, 6, 9, 10]), (5, [0, 5, 10]), (20, [0, 10])])
def test_record_every_keeps_every_kth_state_plus_first_and_last(every, recorded_steps):
    w = torch.ones(4, 2, 3)
    cfg = LangevinConfig(n_steps=10, step_size=0.2, noise=False)
    x0 = torch.zeros(4, 2, 3)
    chain = langevin(linear_energy(w), x0, cfg, record_every=every)
    assert chain.trajectory.shape == (len(recorded_steps), 4, 2, 3)
    for frame, n in zip(chain.trajectory, recorded_steps):
        expected = langevin(linear_energy(w), x0, LangevinConfig(n_steps=n, step_size=0.2, noise=False)).x
        assert torch.allclose(frame, expected)
    assert torch.equal(chain.trajectory[-1], chain.x)


def test_nothing_is_recorded_unless_asked():
    chain = langevin(linear_energy(torch.ones(2)), torch.zeros(3, 2), LangevinConfig(n_steps=4))
    assert chain.trajectory is None and chain.grad_norm is None


def test_diagnostics_record_the_mean_gradient_norm_of_each_step():
    w = torch.tensor([[3.0, 4.0], [0.0, 1.0]])  # norms 5 and 1, before any clipping
    chain = langevin(linear_energy(w), torch.zeros(2, 2), LangevinConfig(n_steps=6, grad_clip=0.5), diagnostics=True)
    assert chain.grad_norm.shape == (6,)
    assert torch.allclose(chain.grad_norm, torch.full((6,), 3.0))


@pytest.mark.parametrize("bad", [dict(n_steps=-1), dict(step_size=0.0), dict(sigma=-1.0)])
def test_config_rejects_impossible_values(bad):
    with pytest.raises(ValueError, match="Langevin (n_steps|step_size|sigma) must be"):
        LangevinConfig(**bad)


# --- particle initialisers ------------------------------------------------------------


def test_noise_init_draws_fresh_uniform_particles_every_time():
    torch.manual_seed(0)
    init = NoiseInit(uniform_noise((2, 3)))
    (a, slots), (b, _) = init.draw(50), init.draw(50)
    assert a.shape == (50, 2, 3) and slots is None
    assert a.min() >= -1 and a.max() <= 1 and not torch.equal(a, b)


def test_persistent_chains_hand_out_and_keep_the_same_chains():
    init = PersistentChains(uniform_noise((2,)), n_chains=6)
    x, slots = init.draw(4)
    assert torch.equal(x, init.x[:4])
    x += 1  # the draw is a copy
    assert not torch.equal(x, init.x[:4])
    init.keep(slots, torch.full((4, 2), 7.0))
    assert torch.equal(init.draw(6)[0][:4], torch.full((4, 2), 7.0))


def test_persistent_chains_refuse_to_draw_more_than_exist():
    with pytest.raises(ValueError, match="only 6 persistent chains"):
        PersistentChains(uniform_noise((2,)), n_chains=6).draw(7)


def marked_buffer(reinit_prob: float, capacity: int = 100) -> ReplayBuffer:
    """A buffer whose stored particles are all 5 (fresh ones come from [−1, 1])."""
    buffer = ReplayBuffer(uniform_noise((3,)), capacity, reinit_prob)
    buffer.x.fill_(5.0)
    return buffer


@pytest.mark.parametrize("p", [0.0, 0.05, 0.3, 1.0])
def test_replay_buffer_reinitialises_the_right_fraction(p):
    torch.manual_seed(0)
    n = 10_000
    x, slots = marked_buffer(p).draw(n)
    fresh = (x != 5.0).all(1).float().mean().item()
    stderr = math.sqrt(p * (1 - p) / n)
    assert abs(fresh - p) <= 4 * stderr + 1e-12
    assert ((x == 5.0).all(1) | (x.abs() <= 1).all(1)).all()  # every row is stored or fresh, never mixed
    assert slots.shape == (n,) and slots.min() >= 0 and slots.max() < 100


def test_replay_buffer_keep_writes_the_drawn_slots():
    buffer = marked_buffer(0.0, capacity=10)
    slots = torch.tensor([2, 7, 4])
    new = torch.arange(9.0).view(3, 3)
    buffer.keep(slots, new)
    assert torch.equal(buffer.x[slots], new)
    others = torch.ones(10, dtype=torch.bool)
    others[slots] = False
    assert (buffer.x[others] == 5.0).all()


def test_replay_buffer_state_dict_round_trip():
    torch.manual_seed(0)
    a = ReplayBuffer(uniform_noise((3,)), 20)
    b = ReplayBuffer(uniform_noise((3,)), 20)
    assert not torch.equal(a.x, b.x)
    b.load_state_dict(a.state_dict())
    assert torch.equal(a.x, b.x)
    a.keep(torch.tensor([0]), torch.zeros(1, 3))  # the state is a copy, not a view
    assert not torch.equal(a.x, b.x)


@pytest.mark.parametrize("p", [-0.1, 1.5])
def test_replay_buffer_rejects_a_probability_outside_0_1(p):
    with pytest.raises(ValueError, match=r"reinit_prob must lie in \[0, 1\]"):
        ReplayBuffer(uniform_noise((3,)), 10, p)


@pytest.mark.parametrize("kwargs, message", [
    (dict(n_steps=2.5), "n_steps must be an integer ≥ 0, got 2.5"),
    (dict(n_steps=-1), "n_steps must be an integer ≥ 0"),
    (dict(step_size=float("nan")), "step_size must be a finite number > 0, got nan"),
    (dict(sigma=float("inf")), "sigma must be a finite number > 0"),
    (dict(grad_clip=0.0), "grad_clip must be a finite number > 0"),
    (dict(clamp=(1.0, -1.0)), "clamp must be a box"),
])
def test_bad_sampler_settings_are_refused(kwargs, message):
    with pytest.raises(ValueError, match=message):
        LangevinConfig(**kwargs)


def test_the_sampler_runs_inside_no_grad():
    """Code that evaluates a model under ``torch.no_grad()`` can still draw from it."""
    energy = ConvEnergy(1, 8, 4)
    x0 = torch.zeros(2, 1, 8, 8)
    with torch.no_grad():
        x = langevin(energy, x0, LangevinConfig(n_steps=2, step_size=0.1, noise=False)).x
    assert not torch.equal(x, x0)
