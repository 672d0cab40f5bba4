"""The DCGAN baseline: same data pipeline ([−1, 1], tanh), one D and one G update per step."""
import io

import pytest
import torch

from ggcn.config import get_profile
from ggcn.measure.data import digits
from ggcn.models.dcgan import DCGAN, build_dcgan
from ggcn.models.generators import DCGANDiscriminator, DCGANGenerator
from ggcn.models.registry import build_model
from ggcn.core.train import train

PROFILE = get_profile("smoke", width=16, z_dim=16)


@pytest.fixture(scope="module")
def images():
    return digits(16, n=256)[0]


def params(module):
    return [p.detach().clone() for p in module.parameters()]


def test_networks_follow_radford_et_al():
    g, d = DCGANGenerator(16, 3, 32, width=8), DCGANDiscriminator(3, 32, width=8)
    out = g(torch.randn(5, 16))
    assert out.shape == (5, 3, 32, 32) and out.abs().max() <= 1.0
    assert d(out).shape == (5,)
    assert any(isinstance(m, torch.nn.BatchNorm2d) for m in g.modules())
    assert isinstance(list(g.modules())[-1], torch.nn.ConvTranspose2d)  # the image comes from a deconvolution
    assert {m.negative_slope for m in d.modules() if isinstance(m, torch.nn.LeakyReLU)} == {0.2}


def test_one_step_updates_both_players(images):
    model = build_model("dcgan", PROFILE, 1, 16)
    assert isinstance(model, DCGAN)
    g, d = params(model.generator), params(model.discriminator)
    history = train(model, images, 1, batch_size=32)
    assert set(history.records[0]) >= {"d_loss", "g_loss", "d_real", "d_fake"}
    assert all(not torch.equal(p, q) for p, q in zip(params(model.generator), g))
    assert any(not torch.equal(p, q) for p, q in zip(params(model.discriminator), d))
    assert model.particles.shape == (32, 1, 16, 16)
    samples = model.sample(7)
    assert samples.shape == (7, 1, 16, 16) and samples.abs().max() <= 1.0


def test_the_discriminator_learns_to_tell_data_from_samples(images):
    model = build_dcgan("dcgan", PROFILE, 1, 16)
    history = train(model, images, 30, batch_size=32, seed=0)
    assert history.column("d_real")[-5:].mean() > history.column("d_fake")[-5:].mean() + 0.2


def test_state_dict_round_trip_continues_identically(images):
    model = build_dcgan("dcgan", PROFILE, 1, 16)
    train(model, images, 2, batch_size=32)
    buffer = io.BytesIO()
    torch.save(model.state_dict(), buffer)
    buffer.seek(0)
    twin = build_dcgan("dcgan", PROFILE, 1, 16)
    twin.load_state_dict(torch.load(buffer, weights_only=False))
    results = []
    for m in (model, twin):
        torch.manual_seed(3)
        results.append(m.step(images[:32]))
    assert all(torch.equal(results[0][k], results[1][k]) for k in results[0])
    assert all(torch.equal(p, q) for p, q in zip(model.generator.parameters(), twin.generator.parameters()))


def test_bad_options_are_refused():
    with pytest.raises(ValueError, match="unknown option"):
        build_dcgan("dcgan", PROFILE, 1, 16, jko_weight=0.2)
    with pytest.raises(ValueError, match="n_particles"):
        build_model("dcgan", PROFILE, 1, 16, n_particles=8)
