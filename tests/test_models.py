"""Energy models (ggcn.core.learner.EnergyModel) built by name (ggcn.models.registry) from the energies of
ggcn.models.nets."""
import pytest
import torch

from ggcn.config import get_profile
from ggcn.core.rules import JKORule, KLRule
from ggcn.core.chains import NoiseInit, PersistentChains, ReplayBuffer
from ggcn.core.learner import Learner
from ggcn.models.cooperative import GGCN_NAMES
from ggcn.models.registry import FAMILY, MODELS, build_model
from ggcn.models.nets import VGG16_FILE, ConvEnergy, FrameEnergy, vgg16_filters

SMOKE = get_profile("smoke", langevin_steps=2)


@pytest.mark.parametrize("size", [16, 32])
@pytest.mark.parametrize("channels", [1, 3])
@pytest.mark.parametrize("name", sorted(MODELS))
def test_every_model_builds_and_learns_one_iteration(name, channels, size):
    torch.manual_seed(0)
    model = build_model(name, SMOKE, channels=channels, image_size=size, n_particles=4)
    x_obs = torch.rand(4, channels, size, size) * 2 - 1
    before = [p.detach().clone() for p in model.energy.parameters()]

    stats = model.step(x_obs)

    assert model.energy(x_obs).shape == (4,)
    assert model.particles.shape == (4, channels, size, size)
    assert all(torch.isfinite(v) for v in stats.values())
    assert {"loss", "energy_gap", "grad_norm"} <= set(stats)
    assert any(not torch.equal(a, b) for a, b in zip(before, model.energy.parameters()))
    assert model.sample(3).shape == (3, channels, size, size)


@pytest.mark.parametrize("name", [*MODELS, *FAMILY])
def test_every_model_keeps_the_one_learner_contract(name):
    """step(x, idx) -> detached stats, sample(n) fresh samples, and a state that loads back."""
    model = build_model(name, SMOKE, 1, 8, **({"n_examples": 8} if name in GGCN_NAMES else {}))
    assert isinstance(model, Learner)
    stats = model.step(torch.rand(8, 1, 8, 8) * 2 - 1, torch.arange(8))
    assert stats and all(not v.requires_grad for v in stats.values())
    assert model.sample(3).shape == (3, 1, 8, 8)
    model.load_state_dict(model.state_dict())


@pytest.mark.parametrize(
    ("name", "energy", "rule", "reading"),
    [("frame", FrameEnergy, KLRule, None), ("wframe", FrameEnergy, JKORule, "consecutive"),
     ("gcn", ConvEnergy, KLRule, None), ("wgcn", ConvEnergy, JKORule, "consecutive"),
     ("wgcn-data", ConvEnergy, JKORule, "data")],
)
def test_model_names_choose_the_energy_and_the_rule(name, energy, rule, reading):
    model = build_model(name, SMOKE, channels=1)
    assert type(model.energy) is energy and type(model.rule) is rule
    if reading:
        assert model.rule.reading == reading and model.rule.weight == SMOKE.jko_weight


def test_options_reach_the_pieces():
    model = build_model("wgcn", SMOKE, channels=1, init="buffer", n_particles=8, lr=0.01, jko_weight=0.5,
                        langevin_steps=7, step_size=0.2, sigma=0.5, width=8, grad_clip=3.0, reinit_prob=0.25)
    assert (model.sampler.n_steps, model.sampler.step_size, model.sampler.sigma, model.sampler.grad_clip) == (
        7, 0.2, 0.5, 3.0)
    assert model.rule.weight == 0.5 and model.optimizer.param_groups[0]["lr"] == 0.01
    assert isinstance(model.init, ReplayBuffer) and model.init.reinit_prob == 0.25
    assert model.energy.body[0].out_channels == 8
    assert model.sample(5, n_steps=1).shape == (5, 1, SMOKE.image_size, SMOKE.image_size)


@pytest.mark.parametrize(("init", "kind"), [("persistent", PersistentChains), ("buffer", ReplayBuffer),
                                            ("noise", NoiseInit)])
def test_init_names_choose_the_initialiser(init, kind):
    assert type(build_model("gcn", SMOKE, channels=1, init=init).init) is kind


def test_unknown_model_raises():
    with pytest.raises(ValueError, match="unknown model 'wgan'; choose one of"):
        build_model("wgan", SMOKE, channels=1)


def test_unknown_initialiser_raises():
    with pytest.raises(ValueError, match="unknown particle initialiser 'generator'"):
        build_model("gcn", SMOKE, channels=1, init="generator")


def test_unknown_option_raises():
    with pytest.raises(ValueError, match=r"unknown option\(s\) \['momentum'\]; allowed"):
        build_model("gcn", SMOKE, channels=1, momentum=0.9)


def test_unknown_filters_raise():
    with pytest.raises(ValueError, match="unknown FRAME filters 'sobel'"):
        build_model("frame", SMOKE, channels=1, filters="sobel")


def test_vgg_filters_need_colour_images():
    with pytest.raises(ValueError, match="3-channel"):
        build_model("frame", SMOKE, channels=1, filters="vgg")


@pytest.mark.parametrize("size", [12, 48, 256])
def test_convnet_rejects_unsupported_sizes_and_names_the_supported_ones(size):
    with pytest.raises(ValueError, match=rf"image size {size} is not supported.*8, 16, 32, 64 or 128"):
        ConvEnergy(1, size)


def test_frame_recipes_weigh_objects_by_pixel_and_textures_by_filter():
    for family, shape in (("digits", 3), ("faces", 3), ("texture", 1)):
        model = build_model("wframe", SMOKE, channels=1, image_size=8, family=family)
        assert model.energy.theta.dim() == shape


def test_frame_learns_only_theta_and_keeps_its_filters():
    model = build_model("frame", SMOKE, channels=3)
    assert [name for name, _ in model.energy.named_parameters()] == ["theta"]
    filters = dict(model.energy.named_buffers())["filters.weight"].clone()
    assert torch.equal(model.energy.theta, torch.zeros_like(model.energy.theta))  # starts at the reference
    model.step(torch.rand(16, 3, 16, 16) * 2 - 1)
    assert not torch.equal(model.energy.theta, torch.zeros_like(model.energy.theta))
    assert torch.equal(dict(model.energy.named_buffers())["filters.weight"], filters)


def test_vgg_filters_without_weights_name_the_expected_file(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))  # (torch.hub.set_dir would pin the cache for later tests)
    with pytest.raises(FileNotFoundError) as err:
        vgg16_filters(download=False)
    assert str(tmp_path / "hub" / "checkpoints" / VGG16_FILE) in str(err.value)
    assert "weights_path" in str(err.value)


def test_vgg_filters_with_a_missing_weights_path_name_that_path(tmp_path):
    path = tmp_path / "nowhere" / "vgg.pth"
    with pytest.raises(FileNotFoundError, match=str(path)):
        vgg16_filters(weights_path=path)


@pytest.mark.parametrize("size", [0, -8, 2, 8.0])
def test_a_bad_image_size_is_refused_not_replaced_by_the_profiles(size):
    with pytest.raises(ValueError, match=f"image_size must be an integer side of at least 4 pixels, got {size!r}"):
        build_model("gcn", get_profile("smoke"), channels=1, image_size=size)


@pytest.mark.parametrize("lr", [0.0, -1e-3, float("nan"), float("inf")])
def test_a_bad_learning_rate_is_refused(lr):
    with pytest.raises(ValueError, match="lr must be a finite number > 0"):
        build_model("gcn", get_profile("smoke"), channels=1, lr=lr)


def test_the_build_seed_fixes_weights_and_leaves_the_global_stream_alone():
    profile = get_profile("smoke")
    torch.manual_seed(5)
    before = torch.get_rng_state()
    a = build_model("gcn", profile, channels=1, seed=3)
    assert torch.equal(torch.get_rng_state(), before)
    b = build_model("gcn", profile, channels=1, seed=3)
    c = build_model("gcn", profile, channels=1, seed=4)
    assert all(torch.equal(p, q) for p, q in zip(a.energy.parameters(), b.energy.parameters()))
    assert not all(torch.equal(p, q) for p, q in zip(a.energy.parameters(), c.energy.parameters()))


def test_a_model_knows_its_identity():
    model = build_model("wgcn", get_profile("smoke"), channels=1, image_size=8, family="digits", lr=5e-4)
    assert model.identity["model"] == "wgcn" and model.identity["image_size"] == 8
    assert model.identity["options"]["lr"] == 5e-4 and model.identity["options"]["init"] == "buffer"
