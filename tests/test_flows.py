"""Learning rules (ggcn.core.rules): the KL rule and the JKO (Wasserstein) rule of wGCN.

KL:  loss = −[mean f(X_obs) − mean f(X~)].
JKO: loss = KL loss + (λ/2) mean ||∇_x f(x^)||²,  x^ = ε X~ + (1 − ε) X_ref,  ε ~ U[0, 1],
     X_ref = X~_{t−1} ("consecutive") or X_obs ("data");
     "proximal": X_ref = X~_{t−1} and the penalty is λ/2 mean ||∇_x f_θ(x^) − ∇_x f_{θ_{t−1}}(x^)||².
λ's unit: 1 ("paper") or the Langevin time h = L·δ²/2 ("langevin-time").
"""
import pytest
import torch
from torch import nn

from ggcn.config import get_profile
from ggcn.core.chains import NoiseInit
from ggcn.core.learner import EnergyModel
from ggcn.core.langevin import LangevinConfig
from ggcn.core.rules import CONTROLS, READINGS, EnergyPenaltyRule, JKORule, KLRule, R1Rule, make_rule, weight_unit
from ggcn.models.registry import build_model
from ggcn.models.nets import ConvEnergy


def batches(seed: int = 0, n: int = 6, size: int = 8):
    g = torch.Generator().manual_seed(seed)
    return [torch.rand(n, 1, size, size, generator=g) * 2 - 1 for _ in range(3)]  # x_obs, x_syn, x_prev


def param_grads(energy: nn.Module, rule: KLRule, x_obs, x_syn, x_prev) -> tuple[torch.Tensor, list[torch.Tensor]]:
    energy.zero_grad(set_to_none=True)
    loss, _ = rule.loss(energy, x_obs, x_syn, x_prev)
    loss.backward()
    return loss.detach(), [p.grad.clone() for p in energy.parameters()]


class Recorder(nn.Module):
    """f(x) = w·x (so ∇_x f = w), remembering every batch it is evaluated on."""

    def __init__(self, dim: int):
        super().__init__()
        self.w = nn.Parameter(torch.linspace(-1, 1, dim))
        self.seen: list[torch.Tensor] = []

    def forward(self, x):
        self.seen.append(x.detach().clone())
        return x.flatten(1) @ self.w


def test_kl_loss_is_minus_the_energy_gap():
    f = Recorder(3)
    x_obs, x_syn = torch.randn(4, 3), torch.randn(5, 3)
    loss, stats = KLRule().loss(f, x_obs, x_syn, torch.randn(5, 3))
    gap = (x_obs @ f.w).mean() - (x_syn @ f.w).mean()
    assert torch.allclose(loss, -gap) and torch.allclose(stats["energy_gap"], gap)


def test_jko_with_zero_weight_is_exactly_the_kl_rule():
    torch.manual_seed(0)
    energy = ConvEnergy(1, 8, width=4)
    x_obs, x_syn, x_prev = batches()
    loss_kl, grads_kl = param_grads(energy, KLRule(), x_obs, x_syn, x_prev)
    for reading in READINGS:
        loss_jko, grads_jko = param_grads(energy, JKORule(0.0, reading), x_obs, x_syn, x_prev)
        assert torch.equal(loss_jko, loss_kl)
        assert all(torch.equal(a, b) for a, b in zip(grads_jko, grads_kl))


def test_zero_weight_wgcn_learns_exactly_like_gcn():
    """Whole learning iterations (sampling, keeping particles, Adam) agree bit for bit."""
    models = []
    for name in ("gcn", "wgcn"):
        torch.manual_seed(0)
        model = build_model(name, get_profile("smoke", langevin_steps=3), channels=1, image_size=8, jko_weight=0.0)
        x_obs = torch.rand(16, 1, 8, 8) * 2 - 1
        for _ in range(3):
            model.step(x_obs)
        models.append(model)
    gcn, wgcn = models
    assert all(torch.equal(a, b) for a, b in zip(gcn.energy.parameters(), wgcn.energy.parameters()))
    assert torch.equal(gcn.particles, wgcn.particles)


def test_positive_weight_changes_the_parameter_gradient():
    torch.manual_seed(0)
    energy = ConvEnergy(1, 8, width=4)
    x_obs, x_syn, x_prev = batches()
    _, grads_kl = param_grads(energy, KLRule(), x_obs, x_syn, x_prev)
    loss, grads_jko = param_grads(energy, JKORule(0.2), x_obs, x_syn, x_prev)
    assert torch.isfinite(loss)
    assert not all(torch.allclose(a, b) for a, b in zip(grads_jko, grads_kl))


def test_the_sampler_never_sees_the_rule():
    """Remark 2: the rule changes how θ moves, not how particles move under a given θ."""
    chains, grads = [], []
    for name in ("gcn", "wgcn", "wgcn-data"):
        torch.manual_seed(0)
        model = build_model(name, get_profile("smoke", langevin_steps=5), channels=1, image_size=8)
        model.step(torch.rand(16, 1, 8, 8) * 2 - 1)
        chains.append(model.particles)
        grads.append([p.grad.clone() for p in model.energy.parameters()])
    assert torch.equal(chains[0], chains[1]) and torch.equal(chains[0], chains[2])
    assert not all(torch.allclose(a, b) for a, b in zip(grads[0], grads[1]))
    assert not all(torch.allclose(a, b) for a, b in zip(grads[0], grads[2]))


@pytest.mark.parametrize("reading", ["consecutive", "data"])
def test_penalty_points_lie_between_the_particles_and_the_chosen_endpoint(reading):
    torch.manual_seed(0)
    f = Recorder(3)
    x_obs, x_syn, x_prev = torch.randn(4, 3), torch.randn(4, 3) + 5, torch.randn(4, 3) - 5
    weight = 0.4
    loss, stats = JKORule(weight, reading).loss(f, x_obs, x_syn, x_prev)
    x_hat = f.seen[-1]  # evaluated after f(X_obs) and f(X~)
    x_ref = x_prev if reading == "consecutive" else x_obs
    eps = (x_hat - x_ref) / (x_syn - x_ref)  # one ε per particle, the same in every coordinate
    assert torch.allclose(eps, eps[:, :1].expand_as(eps), atol=1e-5)
    assert ((eps >= 0) & (eps <= 1)).all()
    penalty = f.w.pow(2).sum()  # ||∇_x f||² = ||w||² at every point
    assert torch.allclose(stats["jko_penalty"], penalty)
    kl_loss, _ = KLRule().loss(f, x_obs, x_syn, x_prev)
    assert torch.allclose(loss, kl_loss + weight / 2 * penalty)


def test_data_endpoints_repeat_a_small_data_batch_to_match_the_particles():
    """Textures: one observed image, many particles -- each particle pairs with it."""
    f = Recorder(2)
    x_obs, x_syn = torch.tensor([[1.0, 1.0]]), torch.full((5, 2), 3.0)
    JKORule(0.2, "data").loss(f, x_obs, x_syn, torch.zeros(5, 2))
    x_hat = f.seen[-1]
    assert x_hat.shape == (5, 2)
    assert ((x_hat >= 1.0) & (x_hat <= 3.0)).all()


def test_unknown_reading_raises():
    with pytest.raises(ValueError, match="unknown JKO reading 'previous'.*consecutive.*data.*proximal"):
        JKORule(0.2, "previous")


def test_proximal_term_is_zero_at_a_stationary_theta():
    """θ_t = θ_{t−1}: the proximal penalty vanishes and the rule is the KL rule (MLE is kept)."""
    torch.manual_seed(0)
    energy = ConvEnergy(1, 8, width=4)
    x_obs, x_syn, x_prev = batches()
    rule = JKORule(5.0, "proximal")
    rule.loss(energy, x_obs, x_syn, x_prev)  # first call: remembers θ as θ_{t−1}
    torch.manual_seed(1)
    loss, grads = param_grads(energy, rule, x_obs, x_syn, x_prev)
    loss_kl, grads_kl = param_grads(energy, KLRule(), x_obs, x_syn, x_prev)
    assert torch.allclose(loss, loss_kl)
    assert all(torch.allclose(a, b, atol=1e-6) for a, b in zip(grads, grads_kl))


def test_proximal_term_penalises_the_change_of_the_gradient_field():
    f = Recorder(3)  # ∇_x f = w everywhere
    x_obs, x_syn, x_prev = torch.randn(4, 3), torch.randn(4, 3), torch.randn(4, 3)
    rule = JKORule(0.4, "proximal")
    _, first = rule.loss(f, x_obs, x_syn, x_prev)
    assert float(first["jko_penalty"]) == 0.0  # no θ_{t−1} yet
    w_old = f.w.detach().clone()
    with torch.no_grad():
        f.w.add_(torch.tensor([0.5, -1.0, 2.0]))
    loss, stats = rule.loss(f, x_obs, x_syn, x_prev)
    assert torch.allclose(stats["jko_penalty"], (f.w - w_old).pow(2).sum())
    kl_loss, _ = KLRule().loss(f, x_obs, x_syn, x_prev)
    assert torch.allclose(loss, kl_loss + 0.4 / 2 * stats["jko_penalty"])


def test_proximal_state_round_trips():
    f = Recorder(3)
    rule = JKORule(0.4, "proximal")
    rule.loss(f, torch.randn(4, 3), torch.randn(4, 3), torch.randn(4, 3))
    other = JKORule(0.4, "proximal")
    other.load_state_dict(rule.state_dict())
    assert torch.equal(other.previous["w"], rule.previous["w"])


def test_the_weight_unit_is_the_langevin_time_of_one_iteration():
    assert weight_unit("paper", 50, 0.01) == 1.0
    assert weight_unit("langevin-time", 50, 0.02) == pytest.approx(50 * 0.02**2 / 2)
    with pytest.raises(ValueError, match="unknown JKO weight scale 'pixel'"):
        weight_unit("pixel", 10, 0.1)
    f = Recorder(3)
    x = torch.randn(4, 3), torch.randn(4, 3), torch.randn(4, 3)
    torch.manual_seed(0)
    plain, _ = JKORule(0.3, unit=1.0).loss(f, *x)
    torch.manual_seed(0)
    scaled, stats = JKORule(0.3, unit=0.01).loss(f, *x)
    kl_loss, _ = KLRule().loss(f, *x)
    assert torch.allclose(scaled - kl_loss, 0.01 * (plain - kl_loss))


def test_negative_weight_raises():
    with pytest.raises(ValueError, match="must be ≥ 0"):
        JKORule(-0.1)


def test_unknown_rule_raises():
    with pytest.raises(ValueError, match="unknown learning rule 'w2'.*'kl'.*'jko'"):
        make_rule("w2")


def test_make_rule_builds_what_it_is_asked_for():
    assert type(make_rule("kl")) is KLRule
    assert {name: type(make_rule(name, 0.3)) for name in CONTROLS} == {"r1": R1Rule, "energy-penalty": EnergyPenaltyRule}
    assert make_rule("r1", 0.3).weight == 0.3
    rule = make_rule("jko", 0.112, "data")
    assert isinstance(rule, JKORule) and (rule.weight, rule.reading) == (0.112, "data")


# Controls: regularised KL rules without a Wasserstein term, to tell JKO's geometry from plain regularisation.
# R1:             loss = KL loss + (λ/2) mean ||∇_x f(X_obs)||²  (at the data only)
# energy penalty: loss = KL loss + λ (mean f(X_obs)² + mean f(X~)²)

def test_r1_penalty_is_half_lambda_times_the_squared_data_gradient():
    f = Recorder(3)  # ∇_x f = w everywhere
    x_obs, x_syn = torch.randn(4, 3), torch.randn(5, 3)
    kl, _ = KLRule().loss(f, x_obs, x_syn, x_syn)
    loss, stats = R1Rule(0.4).loss(f, x_obs, x_syn, x_syn)
    assert torch.allclose(stats["r1_penalty"], f.w.pow(2).sum())
    assert torch.allclose(loss, kl + 0.2 * f.w.pow(2).sum())


def test_r1_looks_only_at_the_data_not_at_the_particles_path():
    f = Recorder(3)
    x_obs, x_syn = torch.randn(4, 3), torch.randn(5, 3)
    R1Rule(0.4).loss(f, x_obs, x_syn, torch.randn(5, 3))
    assert all(len(x) in (4, 5) for x in f.seen)
    assert [x.shape[0] for x in f.seen].count(4) == 2  # the gap and the penalty, both at X_obs


def test_energy_penalty_adds_lambda_times_the_mean_squared_energies():
    f = Recorder(3)
    x_obs, x_syn = torch.randn(4, 3), torch.randn(5, 3)
    kl, _ = KLRule().loss(f, x_obs, x_syn, x_syn)
    loss, stats = EnergyPenaltyRule(0.5).loss(f, x_obs, x_syn, x_syn)
    penalty = (x_obs @ f.w).pow(2).mean() + (x_syn @ f.w).pow(2).mean()
    assert torch.allclose(stats["energy_penalty"], penalty)
    assert torch.allclose(loss, kl + 0.5 * penalty)


def test_zero_weight_controls_are_the_kl_rule():
    torch.manual_seed(0)
    energy = ConvEnergy(1, 8, width=4)
    x_obs, x_syn, x_prev = batches()
    loss_kl, grads_kl = param_grads(energy, KLRule(), x_obs, x_syn, x_prev)
    for name in CONTROLS:
        loss, grads = param_grads(energy, make_rule(name, 0.0), x_obs, x_syn, x_prev)
        assert torch.allclose(loss, loss_kl)
        assert all(torch.allclose(a, b) for a, b in zip(grads, grads_kl))


def test_gradient_clipping_bounds_the_step_the_optimizer_sees():
    def model(clip):
        torch.manual_seed(0)
        return EnergyModel(ConvEnergy(1, 8, width=4), KLRule(), LangevinConfig(n_steps=2, step_size=0.01),
                           NoiseInit(lambda n: torch.rand(n, 1, 8, 8) * 2 - 1), lr=1e-3, n_particles=6, max_grad_norm=clip)
    x_obs = batches()[0]
    clipped, free = model(1e-3), model(None)
    clipped.step(x_obs), free.step(x_obs)
    norm = torch.sqrt(sum(p.grad.pow(2).sum() for p in clipped.energy.parameters()))
    assert norm == pytest.approx(1e-3, rel=1e-3)
    assert torch.sqrt(sum(p.grad.pow(2).sum() for p in free.energy.parameters())) > 10 * norm
