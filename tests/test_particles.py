"""The particle world: fixed energies, the 1-D Gaussian JKO step, distances and the seed test."""
import math

import numpy as np
import pytest
import torch

from ggcn import config
from ggcn.experiments import particle_world as particles
from ggcn.experiments import verdicts
from ggcn.measure import data, scores
from ggcn.core.langevin import LangevinConfig, langevin
from ggcn.experiments.particle_world import Gaussian1D


def test_mixture_energy_is_minus_log_mixture_density():
    wells = particles.three_wells(sigma=1.5)
    x, y = torch.randn(50, 2), torch.randn(50, 2)
    du = particles.potential(wells, wells.sigma, x) - particles.potential(wells, wells.sigma, y)
    assert torch.allclose(du, -(wells.log_density(x) - wells.log_density(y)), atol=1e-4)


def test_langevin_on_a_single_well_samples_that_gaussian():
    well = particles.MixtureEnergy(torch.tensor([[1.0, -0.5]]), std=0.4, sigma=2.0)
    torch.manual_seed(0)
    # time 1500 · δ²/2 ≈ 1.9, twelve relaxation times s² = 0.16 of the well
    x = langevin(well, torch.zeros(4000, 2), LangevinConfig(n_steps=1500, step_size=0.05, sigma=2.0)).x
    assert torch.allclose(x.mean(0), torch.tensor([1.0, -0.5]), atol=0.03)
    assert torch.allclose(x.std(0), torch.tensor([0.4, 0.4]), atol=0.02)
    assert scores.mode_spread(x, well.centres) == pytest.approx(0.4, abs=0.02)


def test_mixture_energy_rejects_bad_weights():
    with pytest.raises(ValueError, match="weights"):
        particles.MixtureEnergy(torch.zeros(2, 2), std=0.3, sigma=1.0, weights=torch.tensor([1.0, -1.0]))


def test_well_shares_count_nearest_centres():
    centres = torch.tensor([[0.0, 0.0], [10.0, 0.0]])
    x = torch.tensor([[0.1, 0.0], [9.0, 1.0], [10.5, 0.0], [11.0, 0.0]])
    assert scores.well_shares(x, centres).tolist() == [0.25, 0.75]


def _jko_objective(m, s, start, h, sigma):
    free = -math.log(s) + (m * m + s * s) / (2 * sigma**2)
    return free + ((m - start.mean) ** 2 + (s - start.std) ** 2) / (2 * h)


def test_jko_step_minimises_the_jko_functional_among_gaussians():
    start, h, sigma = Gaussian1D(2.0, 0.3), 0.2, 1.3
    step = particles.jko_step(start, h, sigma)
    best = _jko_objective(step.mean, step.std, start, h, sigma)
    for dm in (-1e-2, 0.0, 1e-2):
        for ds in (-1e-2, 0.0, 1e-2):
            assert _jko_objective(step.mean + dm, step.std + ds, start, h, sigma) >= best - 1e-12


def test_jko_steps_converge_to_fokker_planck_at_first_order():
    start, sigma, t = Gaussian1D(2.5, 0.25), 1.0, 1.0
    exact = particles.fokker_planck_ou(start, t, sigma)
    errors = []
    for n in (10, 20, 40):
        g = start
        for _ in range(n):
            g = particles.jko_step(g, t / n, sigma)
        errors.append(math.hypot(g.mean - exact.mean, g.std - exact.std))
    assert errors[0] / errors[1] == pytest.approx(2.0, rel=0.1)
    assert errors[1] / errors[2] == pytest.approx(2.0, rel=0.1)


def test_repeated_jko_steps_reach_the_reference_for_any_step():
    for h in (0.1, 1.0, 5.0):
        g = Gaussian1D(3.0, 0.1)
        for _ in range(1000):
            g = particles.jko_step(g, h, 1.5)
        assert g.mean == pytest.approx(0.0, abs=1e-6)
        assert g.std == pytest.approx(1.5, abs=1e-6)


def test_fokker_planck_and_free_energy_of_the_reference():
    ref = particles.fokker_planck_ou(Gaussian1D(1.0, 2.0), 1e3, sigma=0.7)
    assert (ref.mean, ref.std) == pytest.approx((0.0, 0.7))
    assert particles.free_energy(ref, 0.7) == pytest.approx(0.0, abs=1e-12)
    assert particles.free_energy(Gaussian1D(1.0, 0.7), 0.7) == pytest.approx(0.5 / 0.49)


def test_w2_to_gaussian_by_sorting():
    g = Gaussian1D(0.5, 2.0)
    n = 1000
    quantiles = g.mean + g.std * torch.special.ndtri((torch.arange(n, dtype=torch.float64) + 0.5) / n)
    assert particles.w2_to_gaussian(quantiles[torch.randperm(n)], g) == pytest.approx(0.0, abs=1e-9)
    assert particles.w2_to_gaussian(quantiles + 0.3, g) == pytest.approx(0.3, abs=1e-9)


def test_langevin_with_zero_energy_samples_the_reference():
    torch.manual_seed(0)
    # time 2000 · δ²/2 = 10, about sixteen relaxation times σ² = 0.64
    x = langevin(particles.zero_energy, torch.full((4000, 1), 3.0), LangevinConfig(2000, 0.1, sigma=0.8)).x
    assert particles.w2_to_gaussian(x, Gaussian1D(0.0, 0.8)) < 0.05


def test_sliced_wasserstein_of_a_translated_cloud():
    x = data.toy2d("moons", 500)
    shift = torch.tensor([0.3, -0.4])
    assert scores.sliced_wasserstein(x, x) == pytest.approx(0.0, abs=1e-6)
    # each direction sees the shift <v, θ>; averaging <v, θ>² over the half circle gives |v|²/2
    assert scores.sliced_wasserstein(x + shift, x) == pytest.approx(0.5 / math.sqrt(2), rel=1e-3)
    assert math.isnan(scores.sliced_wasserstein(torch.full((5, 2), float("inf")), x))


def test_final_distance_failed_and_describe():
    good = np.array([0.5, 0.4, 0.3, 0.2])
    assert verdicts.final_distance(good, last=0.5) == pytest.approx(0.25)
    assert not verdicts.failed(good)
    assert verdicts.failed(np.array([0.5, 0.4, 0.6]))
    assert verdicts.failed(np.array([0.5, np.nan]))
    assert verdicts.final_distance(np.array([0.5, np.nan])) == math.inf
    assert verdicts.describe([0.1, math.inf]) == "0.1 ± 0 (1 of 2 diverged)"


def test_jko_with_zero_weight_is_the_kl_rule_on_the_plane():
    toy = data.toy2d("gaussians8", 300)
    kl = particles.evolve(toy, "kl", 5, n_particles=64, snapshot_every=5)
    jko0 = particles.evolve(toy, "jko", 5, n_particles=64, snapshot_every=5, jko_weight=0.0)
    np.testing.assert_array_equal(kl.sliced_w2, jko0.sliced_w2)
    np.testing.assert_array_equal(kl.particles[-1], jko0.particles[-1])
    assert kl.iterations.tolist() == [1, 5]


def test_presets_and_rules_reject_unknown_names():
    with pytest.raises(ValueError, match="preset"):
        config.get_preset("wobbly")
    with pytest.raises(ValueError, match="field"):
        config.get_preset("stable", speed=1.0)
    with pytest.raises(ValueError, match="rule"):
        particles.particle_model("wasserstein")
    assert config.get_preset("unstable").step_size > config.get_preset("stable").step_size


@pytest.mark.parametrize("rule", sorted(particles.RULES) + sorted(particles.CONTROLS))
def test_evolve_records_snapshots_of_particles_and_potential(rule):
    toy = data.toy2d("gaussians8", 64)
    run = particles.evolve(toy, rule, 7, n_particles=32, snapshot_every=3, grid=12, langevin_steps=3, hidden=8)
    assert run.rule == rule and run.diverged_at == -1
    assert run.iterations.tolist() == [1, 4, 7]  # every 3rd iteration and the last
    assert [p.shape for p in run.particles] == [(32, 2)] * 3
    assert [u.shape for u in run.potentials] == [(12, 12)] * 3 and all(np.isfinite(u).all() for u in run.potentials)
    assert run.sliced_w2.shape == (7,) and np.isfinite(run.sliced_w2).all()
    assert run.sliced_w2[-1] == pytest.approx(scores.sliced_wasserstein(torch.as_tensor(run.particles[-1]), toy))
