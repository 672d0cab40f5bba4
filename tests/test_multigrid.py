"""MGCN / wMGCN: block-average and pixel-replication grids, one synthesizer (energy, rule, optimizer) per
grid, chains carried from the coarsest version of the training images up to the finest grid."""
import io

import pytest
import torch
import torch.nn.functional as F

import ggcn.core.learner
import ggcn.models.multigrid as mg
from ggcn.config import get_profile
from ggcn.measure.data import digits
from ggcn.core.rules import JKORule, KLRule
from ggcn.models.registry import build_model
from ggcn.models.nets import ConvEnergy, MLPEnergy
from ggcn.core.train import train

PROFILE = get_profile("smoke", langevin_steps=3, width=8)


def through_file(state):
    """A state as a checkpoint file gives it back (no tensors shared with the running model)."""
    buffer = io.BytesIO()
    torch.save(state, buffer)
    buffer.seek(0)
    return torch.load(buffer, weights_only=False)


@pytest.fixture(scope="module")
def images():
    return digits(16, n=32)[0]


@pytest.mark.parametrize("coarse,fine", [(1, 4), (4, 16), (8, 32), (1, 32), (2, 2)])
def test_down_of_up_is_the_identity_exactly(coarse, fine):
    x = torch.randn(7, 3, coarse, coarse, generator=torch.Generator().manual_seed(0))
    assert torch.equal(mg.down(mg.up(x, fine), coarse), x)


def test_up_replicates_pixels_and_down_averages_blocks():
    x = torch.arange(16.0).view(1, 1, 4, 4)
    assert torch.equal(mg.up(x, 8), x.repeat_interleave(2, -1).repeat_interleave(2, -2))
    assert torch.equal(mg.down(x, 2), torch.tensor([[[[2.5, 4.5], [10.5, 12.5]]]]))
    assert torch.equal(mg.down(x, 1), x.mean().view(1, 1, 1, 1))
    y = torch.randn(5, 2, 16, 16, generator=torch.Generator().manual_seed(1))
    assert torch.allclose(mg.down(y, 4), F.avg_pool2d(y, 4), atol=1e-6)


def test_grids_must_divide_the_image_by_powers_of_two():
    with pytest.raises(ValueError, match="power-of-two"):
        mg.down(torch.zeros(1, 1, 12, 12), 4)
    with pytest.raises(ValueError, match="larger grid|multiple"):
        mg.up(torch.zeros(1, 1, 8, 8), 4)
    with pytest.raises(ValueError, match="increase and end"):
        mg.check_grids((4, 16, 8), 16)
    with pytest.raises(ValueError, match="power of two"):
        mg.check_grids((4, 8, 24), 24)


def test_default_ladder_follows_gao_et_al():
    assert mg.default_grids(16) == (1, 4, 16)
    assert mg.default_grids(32) == (1, 4, 16, 32)
    assert mg.default_grids(64) == (1, 4, 16, 64)
    assert mg.default_grids(8) == (1, 4, 8)


def test_small_grids_get_a_dense_energy_and_larger_ones_the_convnet():
    assert isinstance(mg.grid_energy(3, 1, 8), MLPEnergy)
    assert isinstance(mg.grid_energy(3, 4, 8), MLPEnergy)
    assert isinstance(mg.grid_energy(3, 8, 8), ConvEnergy)
    for size in (1, 2, 4):
        assert mg.grid_energy(3, size, 8)(torch.randn(5, 3, size, size)).shape == (5,)


@pytest.mark.parametrize("name,rule", [("mgcn", KLRule), ("wmgcn", JKORule)])
def test_one_iteration_learns_every_grid_with_its_own_optimizer(name, rule, images):
    """The 1×1 grid only starts the chains (no energy there, as in Gao et al.)."""
    model = build_model(name, PROFILE, 1, 16)
    assert isinstance(model, mg.MultiGridModel) and all(type(g.rule) is rule for g in model.grids)
    assert model.sizes == (1, 4, 16) and len(model.grids) == 2
    assert len({id(g.optimizer) for g in model.grids}) == 2 and len({id(g.rule) for g in model.grids}) == 2
    before = [[p.clone() for p in g.energy.parameters()] for g in model.grids]
    history = train(model, images, 1, batch_size=8)
    for grid, old in zip(model.grids, before):
        assert any(not torch.equal(p, q) for p, q in zip(grid.energy.parameters(), old))
    record = history.records[0]
    assert "energy_gap_1" not in record
    for size in model.sizes[1:]:
        assert f"energy_gap_{size}" in record and f"grad_norm_{size}" in record
        assert (f"jko_penalty_{size}" in record) == (name == "wmgcn")
    assert model.particles.shape == (8, 1, 16, 16)


def test_chains_start_at_the_coarsest_training_images_and_are_carried_up(monkeypatch, images):
    model = mg.build_multigrid("mgcn", PROFILE, 1, 16, sizes=(4, 8, 16))
    starts, ends = [], []
    real = ggcn.core.learner.langevin

    def recording(energy, x0, cfg, **kw):
        chain = real(energy, x0, cfg, **kw)
        starts.append(x0.clone())
        ends.append(chain.x.clone())
        return chain

    monkeypatch.setattr(ggcn.core.learner, "langevin", recording)
    x = images[:8]
    model.step(x)
    assert [s.shape[-1] for s in starts] == [8, 16]
    assert torch.equal(starts[0], mg.up(mg.down(x, 4), 8))
    assert torch.equal(starts[1], mg.up(ends[0], 16))
    assert torch.equal(model.particles, ends[1])


def test_sampling_starts_from_remembered_or_given_coarse_images(images):
    model = mg.build_multigrid("wmgcn", PROFILE, 1, 16)
    with pytest.raises(ValueError, match="train first"):
        model.sample(4)
    train(model, images, 1, batch_size=8)
    assert model.sample(5).shape == (5, 1, 16, 16)
    start = mg.down(images[:3], 1)
    assert torch.equal(model.sample(3, start=start, n_steps=0), mg.up(start, 16))
    with pytest.raises(ValueError, match="1×1"):
        model.sample(3, start=images[:3])


def test_state_dict_round_trip_continues_identically(images):
    model = mg.build_multigrid("wmgcn", PROFILE, 1, 16)
    train(model, images, 2, batch_size=8)
    copy = mg.build_multigrid("wmgcn", PROFILE, 1, 16)
    copy.load_state_dict(through_file(model.state_dict()))
    torch.manual_seed(5)
    a = model.step(images[:8])
    torch.manual_seed(5)
    b = copy.step(images[:8])
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    assert torch.equal(model.coarse_bank, copy.coarse_bank)
    for g, h in zip(model.grids, copy.grids):
        assert all(torch.equal(p, q) for p, q in zip(g.energy.parameters(), h.energy.parameters()))


def test_bad_options_are_refused():
    with pytest.raises(ValueError, match="unknown option"):
        mg.build_multigrid("mgcn", PROFILE, 1, 16, n_grids=3)
    with pytest.raises(ValueError, match="unknown multi-grid"):
        mg.build_multigrid("ggcn", PROFILE, 1, 16)
