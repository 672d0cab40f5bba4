"""GGCN and its variants: generator-started (or generator-replaced) chains, the symmetric k = 4
schedule, LHS codes learned only by SGD, AMS sampling in one pass, conditional generation."""
import copy
import io

import pytest
import torch

import ggcn.models.cooperative as coop
import ggcn.core.learner
from ggcn.config import get_profile
from ggcn.measure.data import digits
from ggcn.core.rules import JKORule, KLRule
from ggcn.models.generators import DeconvGenerator, build_generator
from ggcn.models.registry import FAMILY, build_model
from ggcn.models.multigrid import MULTIGRID_NAMES
from ggcn.models.dcgan import DCGAN_NAME
from ggcn.measure.proxy import fit_proxy, label_accuracy
from ggcn.core.train import train

PROFILE = get_profile("smoke", langevin_steps=3, width=8, z_dim=8)
VARIANT_CASES = [(name, cond) for name in coop.GGCN_NAMES for cond in (False, True)]


@pytest.fixture(scope="module")
def data():
    return digits(8, n=48)


def make(name, data, conditional=False, seed=0, **options):
    x, y = data
    torch.manual_seed(seed)
    return coop.build_ggcn(name, PROFILE, 1, 8, labels=y if conditional else None, n_examples=len(x), **options)


def through_file(state):
    """A state as a checkpoint file gives it back (no tensors shared with the running model)."""
    buffer = io.BytesIO()
    torch.save(state, buffer)
    buffer.seek(0)
    return torch.load(buffer, weights_only=False)


def params(module):
    return [p.detach().clone() for p in module.parameters()]


def same(a, b):
    return all(torch.equal(p, q) for p, q in zip(a, b))


def test_the_variant_table():
    assert coop.VARIANTS == {
        "ggcn": (True, False), "ggcn-lhs": (False, False), "ggcn+ams": (True, True), "ggcn-lhs+ams": (False, True),
    }
    assert set(FAMILY) == set(coop.GGCN_NAMES) | set(MULTIGRID_NAMES) | {DCGAN_NAME}


@pytest.mark.parametrize("name,conditional", VARIANT_CASES)
def test_every_variant_trains_and_samples(name, conditional, data):
    x, y = data
    model = build_model(name, PROFILE, 1, 8, labels=y if conditional else None, n_examples=len(x))
    lhs, ams = coop.VARIANTS[name]
    assert model.lhs == lhs and model.ams == ams and model.conditional == conditional
    assert isinstance(model.rule, JKORule) and model.rule.weight == PROFILE.jko_weight
    history = train(model, x, 4, batch_size=16, labels=coop.example_index(x))
    last = history.records[-1]
    assert last["generator_step"] == 1.0 and "gen_loss" in last and ("code_loss" in last) == lhs
    assert ("grad_norm" in last) == (not ams)
    assert model.particles.shape == (16, 1, 8, 8)
    labels = torch.arange(5) if conditional else None
    samples = model.sample(5, labels)
    assert samples.shape == (5, 1, 8, 8) and torch.isfinite(samples).all()
    if ams:
        assert samples.abs().max() <= 1.0  # one generator pass: inside the data range


def test_ams_sampling_is_one_pass_without_langevin(monkeypatch, data):
    ams, revised = make("ggcn-lhs+ams", data), make("ggcn-lhs", data)

    def forbidden(*args, **kwargs):
        raise AssertionError("Langevin was called")

    monkeypatch.setattr(ggcn.core.learner, "langevin", forbidden)
    assert ams.sample(6).shape == (6, 1, 8, 8)
    with pytest.raises(AssertionError, match="Langevin was called"):
        revised.sample(6)


def test_ams_model_can_still_revise_its_samples_by_langevin(data):
    model = make("ggcn+ams", data)
    torch.manual_seed(0)
    one_pass = model.sample(4)
    torch.manual_seed(0)
    assert torch.equal(model.sample(4, n_steps=0), one_pass)
    torch.manual_seed(0)
    assert not torch.equal(model.sample(4, n_steps=5), one_pass)


def test_generator_and_codes_update_once_every_k_synthesizer_updates(data):
    x, _ = data
    model = make("ggcn", data)
    history = train(model, x, 12, batch_size=16, labels=coop.example_index(x))
    assert history.column("generator_step").tolist() == [0, 0, 0, 1] * 3
    assert model.iteration == 12
    model = make("ggcn", data, gen_every=2)
    history = train(model, x, 4, batch_size=16, labels=coop.example_index(x))
    assert history.column("generator_step").tolist() == [0, 1, 0, 1]


@pytest.mark.parametrize("name", ["ggcn", "ggcn+ams"])
def test_lhs_codes_move_only_through_their_sgd_optimizer(name, data):
    x, _ = data
    model = make(name, data)
    opt_codes = model.hidden.optimizer
    assert type(opt_codes) is torch.optim.SGD and opt_codes.param_groups[0]["params"] == [model.codes]
    assert isinstance(model.opt_generator, torch.optim.Adam) and isinstance(model.optimizer, torch.optim.Adam)
    idx = torch.arange(16)
    codes, gen = model.codes.detach().clone(), params(model.generator)
    for _ in range(3):  # synthesizer-only steps
        energy = params(model.energy)
        model.step(x[idx], idx)
        assert not same(params(model.energy), energy)
    assert torch.equal(model.codes, codes) and same(params(model.generator), gen)
    model.step(x[idx], idx)  # the k-th step
    assert not torch.equal(model.codes[idx], codes[idx]) and not same(params(model.generator), gen)
    assert torch.equal(model.codes[16:], codes[16:])  # codes of examples outside the batch stay


@pytest.mark.parametrize("target", ["data", "revised"])
def test_lhs_codes_descend_their_reconstruction_loss(target, data):
    x, _ = data
    model = make("ggcn", data, lr_codes=0.01, lhs_target=target)
    idx = torch.arange(16)
    for _ in range(3):
        model.step(x[idx], idx)
    generator, z_old = copy.deepcopy(model.generator), model.codes.detach()[idx].clone()
    model.step(x[idx], idx)
    z_new = model.codes.detach()[idx]
    goal = x[idx] if target == "data" else model.particles  # the example, or its revised sample X~

    def code_loss(z):
        with torch.no_grad():
            return 0.5 * (goal - generator(z)).pow(2).sum() + 0.5 * model.hidden.prior * z.pow(2).sum()

    assert code_loss(z_new) < code_loss(z_old)


def test_generator_regresses_onto_the_revised_samples(data):
    x, _ = data
    model = make("ggcn", data)
    idx = torch.arange(16)
    for _ in range(3):
        model.step(x[idx], idx)
    z = model.codes.detach()[idx].clone()
    before = copy.deepcopy(model.generator)
    model.step(x[idx], idx)
    target = model.particles  # X~ of this step, revised from g(z)
    with torch.no_grad():
        assert (target - model.generator(z)).pow(2).sum() < (target - before(z)).pow(2).sum()


def test_amortized_step_climbs_the_model_log_density_with_theta_fixed(data):
    x, _ = data
    model = make("ggcn+ams", data)
    idx = torch.arange(16)
    for _ in range(3):
        model.step(x[idx], idx)
    z, before = model.codes.detach()[idx].clone(), copy.deepcopy(model.generator)
    energy_before_generator_step = None

    def keep_energy(*args):  # the synthesizer update of step 4 runs first; remember θ after it
        nonlocal energy_before_generator_step
        result = real(*args)
        energy_before_generator_step = params(model.energy)
        return result

    real = model.update
    model.update = keep_energy
    model.step(x[idx], idx)
    assert same(params(model.energy), energy_before_generator_step)  # θ frozen during the AMS step
    assert all(p.requires_grad for p in model.energy.parameters())

    # the generator moved up the gradient of log p_θ(g_α(z)) = f_θ(g) − ||g||²/2 (σ = 1) at the θ it saw
    g = before(z)
    log_p = (model.energy(g) - g.flatten(1).pow(2).sum(1) / 2).mean()
    uphill = torch.autograd.grad(log_p, list(before.parameters()))
    moved = [new.detach() - old.detach() for new, old in zip(model.generator.parameters(), before.parameters())]
    assert sum((m * u).sum() for m, u in zip(moved, uphill)) > 0


def test_replay_buffer_adds_chains_from_past_revised_samples(data):
    x, _ = data
    model = make("ggcn-lhs", data, replay=0.5)
    bank = model.revision.bank.x.clone()
    model.step(x[:16])
    assert model.particles.shape == (16, 1, 8, 8)
    assert (model.revision.bank.x != bank).flatten(1).any(1).sum() >= 8
    with pytest.raises(ValueError, match="replay"):
        make("ggcn-lhs+ams", data, replay=0.5)


def test_rule_is_configurable_for_the_ablation(data):
    assert isinstance(make("ggcn", data, rule="kl").rule, KLRule)
    assert not isinstance(make("ggcn", data, rule="kl").rule, JKORule)
    assert make("ggcn", data, jko_weight=0.5).rule.weight == 0.5


@pytest.mark.parametrize("name,conditional", VARIANT_CASES)
def test_state_dict_round_trip_continues_identically(name, conditional, data):
    x, _ = data
    model = make(name, data, conditional)
    idx = torch.arange(16)
    for _ in range(3):
        model.step(x[idx], idx)
    twin = make(name, data, conditional)
    twin.load_state_dict(through_file(model.state_dict()))
    assert twin.iteration == 3
    results = []
    for m in (model, twin):
        torch.manual_seed(7)
        results.append(m.step(x[idx], idx))  # the generator (and code) step
    a, b = results
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    assert same(params(model.generator), params(twin.generator)) and same(params(model.energy), params(twin.energy))
    if model.lhs:
        assert torch.equal(model.codes, twin.codes)


def test_bad_inputs_say_what_to_do(data):
    x, y = data
    with pytest.raises(ValueError, match="n_examples"):
        coop.build_ggcn("ggcn", PROFILE, 1, 8)
    with pytest.raises(ValueError, match="example_index"):
        make("ggcn", data).step(x[:4])
    with pytest.raises(ValueError, match="pass the class labels"):
        make("ggcn-lhs+ams", data, conditional=True).sample(3)
    with pytest.raises(ValueError, match="unconditional"):
        make("ggcn-lhs+ams", data).sample(3, 1)
    with pytest.raises(ValueError, match="unknown GGCN variant"):
        coop.build_ggcn("ggcn+lhs", PROFILE, 1, 8)
    with pytest.raises(ValueError, match="lhs_target"):
        make("ggcn+ams", data, lhs_target="revised")


def test_generators_map_codes_to_images_in_the_data_range():
    for kind in ("v0", "resnet", "dcgan"):
        for size in (8, 32):
            g = build_generator(kind, 8, 3, size, width=8, n_classes=10)
            out = g(torch.randn(4, 8), torch.arange(4))
            assert out.shape == (4, 3, size, size) and out.abs().max() <= 1.0
    v0 = DeconvGenerator(100, 3, 64, width=8)
    deconvs = [m for m in v0.modules() if isinstance(m, torch.nn.ConvTranspose2d)]
    slopes = {m.negative_slope for m in v0.modules() if isinstance(m, torch.nn.LeakyReLU)}
    assert len(deconvs) == 5 and slopes == {0.02}  # Table IV: five deconvolutions, leaky ReLU 0.02
    with pytest.raises(ValueError, match="power-of-two"):
        build_generator("v0", 8, 3, 12)
    with pytest.raises(ValueError, match="pass labels"):
        build_generator("v0", 8, 3, 8, n_classes=10)(torch.randn(2, 8))


def test_latent_interpolation_walks_a_straight_line_between_clipped_codes(data):
    za, zb = torch.tensor([3.0, -0.5, 0.2]), torch.tensor([-2.0, 0.5, 0.2])
    path = coop.latent_path(za, zb)
    assert path.shape == (10, 3)
    assert torch.equal(path[0], za.clamp(-1, 1)) and torch.equal(path[-1], zb.clamp(-1, 1))
    steps = path.diff(dim=0)
    assert torch.allclose(steps, steps[0].expand_as(steps), atol=1e-6)
    model = make("ggcn+ams", data, conditional=True)
    images = coop.interpolate(model, torch.randn(8), torch.randn(8), y=3)
    assert images.shape == (10, 1, 8, 8)


def test_a_conditional_sample_shows_its_label():
    """A short seeded run of conditional GGCN+AMS on 8×8 digits; a proxy classifier reads the samples."""
    x, y = digits(8)
    classifier = fit_proxy(x, y, iterations=150)
    torch.manual_seed(0)
    model = coop.build_ggcn("ggcn+ams", get_profile("smoke"), 1, 8, labels=y, width=32, z_dim=16)
    train(model, x, 200, batch_size=64, labels=coop.example_index(x), seed=0)
    wanted = torch.arange(10).repeat_interleave(20)
    torch.manual_seed(0)
    accuracy = label_accuracy(classifier, model.sample(len(wanted), wanted), wanted)
    assert accuracy >= 0.5  # chance is 0.1


def test_a_fresh_generator_starts_in_the_linear_range_of_its_output():
    """No saturated start: the initial outputs are far from ±1, where tanh / 2σ − 1 have no gradient."""
    for output in ("sigmoid", "tanh"):
        g = build_generator("v0", 32, 1, 16, width=32, output=output)
        assert g(torch.randn(64, 32)).abs().max() < 0.1


@pytest.mark.parametrize("sampling", ["prior", "fitted"])
def test_fresh_codes_come_from_the_prior_or_from_the_gaussian_of_the_learned_codes(sampling, data):
    model = make("ggcn", data, code_sampling=sampling)
    with torch.no_grad():  # learned codes far from N(0, I): shifted and squeezed
        model.codes.copy_(3.0 + 0.2 * torch.randn_like(model.codes))
    z = model.fresh_codes(4000)
    if sampling == "prior":
        assert z.mean().abs() < 0.05 and (z.std() - 1).abs() < 0.05
    else:
        assert torch.allclose(z.mean(0), model.codes.mean(0), atol=0.05)
        assert torch.allclose(z.std(0), model.codes.std(0), rtol=0.25)


def test_without_lhs_fresh_codes_are_the_prior(data):
    z = make("ggcn-lhs", data, code_sampling="fitted").fresh_codes(4000)
    assert z.mean().abs() < 0.05 and (z.std() - 1).abs() < 0.05


def test_unknown_code_sampling_raises(data):
    with pytest.raises(ValueError, match="unknown code sampling 'posterior'"):
        make("ggcn", data, code_sampling="posterior")
