"""The training loop (ggcn.train): resume, checkpoints, the divergence guard, and learning itself."""
import tempfile

import pytest
import torch

from ggcn.config import get_profile
from ggcn.data import texture
from ggcn.flows import KLRule
from ggcn.langevin import LangevinConfig, PersistentChains, uniform_noise
from ggcn.metrics import fixed_responses, response_distance, response_distance_callback
from ggcn.models import EnergyModel, build_model
from ggcn.nets import ConvEnergy
from ggcn.train import DivergenceError, History, load_checkpoint, save_checkpoint, train

SIZE = 8


def small_model(seed: int, name: str = "wgcn", **kw) -> EnergyModel:
    torch.manual_seed(seed)
    return build_model(name, get_profile("smoke", langevin_steps=3, width=4), channels=1, image_size=SIZE,
                       n_particles=8, **kw)


def data() -> torch.Tensor:
    return torch.rand(40, 1, SIZE, SIZE, generator=torch.Generator().manual_seed(0)) * 2 - 1


def run(model: EnergyModel, iterations: int, **kw) -> History:
    callbacks = [response_distance_callback(fixed_responses(1))]
    return train(model, data(), iterations, batch_size=8, seed=0, callbacks=callbacks, **kw)


# --- checkpoints and resume -------------------------------------------------------------


@pytest.mark.parametrize("init", ["persistent", "buffer"])
def test_resumed_run_is_bit_identical_to_an_uninterrupted_one(tmp_path, init):
    k = 4
    straight = small_model(0, init=init)
    history = run(straight, 2 * k)

    first_half = small_model(0, init=init)
    run(first_half, k, checkpoint_dir=tmp_path, checkpoint_every=k)
    resumed = small_model(1, init=init)  # different weights and particles until the checkpoint loads
    resumed_history = run(resumed, 2 * k, resume=tmp_path / f"iter_{k:06d}.pt")

    assert resumed_history.records == history.records
    for a, b in zip(straight.energy.parameters(), resumed.energy.parameters()):
        assert torch.equal(a, b)
    assert torch.equal(straight.init.x, resumed.init.x)
    assert torch.equal(straight.particles, resumed.particles)
    adam_a, adam_b = straight.optimizer.state_dict()["state"], resumed.optimizer.state_dict()["state"]
    assert all(torch.equal(adam_a[i]["exp_avg_sq"], adam_b[i]["exp_avg_sq"]) for i in adam_a)


def test_checkpoint_every_writes_one_file_per_period(tmp_path):
    run(small_model(0), 6, checkpoint_dir=tmp_path, checkpoint_every=2)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["iter_000002.pt", "iter_000004.pt", "iter_000006.pt"]
    for n in (2, 4, 6):
        state = load_checkpoint(tmp_path / f"iter_{n:06d}.pt")
        assert state["iteration"] == n and len(state["history"]) == n


def test_no_checkpoint_dir_writes_nothing(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    run(small_model(0), 2, checkpoint_every=1)
    assert list(tmp_path.iterdir()) == []


def test_load_checkpoint_explains_a_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        load_checkpoint(tmp_path / "missing.pt")


def test_load_checkpoint_explains_a_file_that_is_not_torch(tmp_path):
    path = tmp_path / "notes.pt"
    path.write_text("not a checkpoint")
    with pytest.raises(ValueError, match="could not be read.*not a torch file"):
        load_checkpoint(path)


@pytest.mark.parametrize("content", [{"model": {}}, torch.zeros(3)])
def test_load_checkpoint_explains_a_torch_file_that_is_not_ours(tmp_path, content):
    path = tmp_path / "other.pt"
    torch.save(content, path)
    with pytest.raises(ValueError, match="is not a ggcn checkpoint"):
        load_checkpoint(path)


def test_save_and_load_checkpoint_round_trip(tmp_path):
    model = small_model(0)
    history = History([{"loss": 1.5, "iteration": 0}])
    path = save_checkpoint(tmp_path / "deep" / "c.pt", model, 1, history)
    state = load_checkpoint(path)
    assert state["iteration"] == 1 and state["history"] == history.records
    other = small_model(1)
    other.load_state_dict(state["model"])
    assert all(torch.equal(a, b) for a, b in zip(model.energy.parameters(), other.energy.parameters()))


# --- the divergence guard --------------------------------------------------------------


class Poisonable(ConvEnergy):
    """A ConvNet energy that returns NaN once ``poisoned`` is set."""

    poisoned = False

    def forward(self, x):
        out = super().forward(x)
        return out * float("nan") if self.poisoned else out


def poisonable_model() -> EnergyModel:
    torch.manual_seed(0)
    return EnergyModel(Poisonable(1, SIZE, 4), KLRule(), LangevinConfig(n_steps=3),
                       PersistentChains(uniform_noise((1, SIZE, SIZE)), 8), lr=1e-3, n_particles=8)


def test_divergence_guard_saves_the_last_good_iteration(tmp_path):
    model = poisonable_model()
    good = {}

    def poison_after_iteration_2(it, model, x_obs):
        if it == 2:
            good["energy"] = {k: v.clone() for k, v in model.energy.state_dict().items()}
            good["chains"] = model.init.x.clone()
            model.energy.poisoned = True

    with pytest.raises(DivergenceError, match="diverged at iteration 3.*last good state \\(iteration 3\\)") as err:
        train(model, data(), 10, batch_size=8, callbacks=[poison_after_iteration_2], checkpoint_dir=tmp_path)

    assert err.value.checkpoint == tmp_path / "last_good.pt" and err.value.checkpoint.is_file()
    state = load_checkpoint(err.value.checkpoint)
    assert state["iteration"] == 3 and len(state["history"]) == 3
    assert all(torch.equal(state["model"]["energy"][k], v) for k, v in good["energy"].items())
    assert torch.equal(state["model"]["init"]["x"], good["chains"])  # not the NaN chains of iteration 3
    assert not torch.isfinite(model.init.x).all()

    model.energy.poisoned = False  # the cause is fixed: carry on from the saved state
    history = train(model, data(), 5, batch_size=8, resume=err.value.checkpoint)
    assert len(history) == 5 and torch.isfinite(model.particles).all()


def test_a_huge_langevin_step_trips_the_guard(tmp_path, monkeypatch):
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))  # where the guard puts its file without a dir
    model = small_model(0, name="gcn", step_size=30.0)
    with pytest.raises(DivergenceError, match="smaller learning rate or Langevin step") as err:
        run(model, 50)
    assert err.value.checkpoint.parent.parent == tmp_path
    state = load_checkpoint(err.value.checkpoint)
    assert len(state["history"]) == state["iteration"] < 50


# --- learning --------------------------------------------------------------------------


def test_gcn_learns_a_texture():
    """Persistent chains start as uniform noise; the Gaussian reference alone would spread them
    into N(0, σ²I) and away from the texture. Learning the ConvNet brings their filter
    statistics to the texture's: the response distance ends far below where it started."""
    x = texture("brick", 16, n_crops=16)
    responses = fixed_responses(1)
    torch.manual_seed(0)
    model = build_model("gcn", get_profile("smoke"), channels=1, lr=5e-3, langevin_steps=10, step_size=0.1)
    start = response_distance(x, model.init.x, responses)
    history = train(model, x, 50, batch_size=16, seed=0, callbacks=[response_distance_callback(responses)])
    end = history.column("response_distance")[-1]
    assert end < 0.5 * start, (start, end)
    assert end == pytest.approx(response_distance(x, model.particles, responses))
