"""The training loop (ggcn.core.train): resume, checkpoints, the divergence guard, and learning itself."""
import tempfile

import pytest
import torch
from torch.utils.data import DataLoader, TensorDataset

from ggcn.config import get_profile
from ggcn.core.chains import PersistentChains, uniform_noise
from ggcn.core.langevin import LangevinConfig
from ggcn.core.learner import EnergyModel
from ggcn.core.rules import KLRule
from ggcn.core.train import DivergenceError, History, load_checkpoint, save_checkpoint, train
from ggcn.measure.data import texture
from ggcn.measure.metrics import fixed_responses, response_distance, response_distance_callback
from ggcn.models.nets import ConvEnergy
from ggcn.models.registry import build_model

SIZE = 8


def small_model(seed: int, name: str = "wgcn", **kw) -> EnergyModel:
    return build_model(name, get_profile("smoke", langevin_steps=3, width=4), channels=1, image_size=SIZE,
                       n_particles=8, seed=seed, **kw)


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


def test_divergence_guard_saves_the_state_before_the_bad_step(tmp_path):
    """Iteration 3's values blow up; they show the update made in iteration 2, so the last good
    state is the start of iteration 2 (after iteration 1)."""
    model = poisonable_model()
    good = {}

    def poison_after_iteration_2(it, model, x_obs):
        if it == 1:
            good["energy"] = {k: v.clone() for k, v in model.energy.state_dict().items()}
            good["chains"] = model.init.x.clone()
        if it == 2:
            model.energy.poisoned = True

    expected = "diverged at iteration 3.*last good state \\(iteration 2, before the bad step"
    with pytest.raises(DivergenceError, match=expected) as err:
        train(model, data(), 10, batch_size=8, callbacks=[poison_after_iteration_2], checkpoint_dir=tmp_path)

    assert err.value.checkpoint == tmp_path / "last_good.pt" and err.value.checkpoint.is_file()
    state = load_checkpoint(err.value.checkpoint)
    assert state["iteration"] == 2 and len(state["history"]) == 2
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


def test_a_finite_blow_up_trips_the_guard_too(tmp_path):
    """A learning rate of 10³ drives energies to ~10¹² in one step: finite, but garbage."""
    with pytest.raises(DivergenceError, match="exploding values"):
        run(small_model(0, name="gcn", lr=1e3), 20, checkpoint_dir=tmp_path)


def test_a_diverged_run_resumes_with_a_smaller_learning_rate(tmp_path):
    """The advised path end to end: the checkpoint holds the state before the bad step, and the
    model as rebuilt (same model, smaller lr) sets the learning rate, not the checkpoint."""
    with pytest.raises(DivergenceError) as err:
        run(small_model(0, name="gcn", lr=1e3), 20, checkpoint_dir=tmp_path)
    gentle = small_model(0, name="gcn", lr=1e-3)
    history = run(gentle, 20, resume=err.value.checkpoint)
    assert len(history) == 20 and torch.isfinite(gentle.particles).all()
    assert gentle.optimizer.param_groups[0]["lr"] == 1e-3


def learning_rates(state) -> list[float]:
    """The learning rate of every optimizer's parameter group in a model's (nested) state dict."""
    if isinstance(state, dict) and set(state) == {"state", "param_groups"}:
        return [group["lr"] for group in state["param_groups"]]
    children = state.values() if isinstance(state, dict) else state if isinstance(state, (list, tuple)) else []
    return [lr for child in children for lr in learning_rates(child)]


@pytest.mark.parametrize("name", ["wmgcn", "dcgan"])
def test_every_optimizer_of_a_resumed_model_keeps_the_settings_it_was_built_with(tmp_path, name):
    profile, x = get_profile("smoke", langevin_steps=2, width=4), torch.rand(16, 1, 16, 16) * 2 - 1
    train(build_model(name, profile, 1, 16), x, 2, batch_size=8, checkpoint_dir=tmp_path, checkpoint_every=2)
    gentle = build_model(name, profile, 1, 16, lr=1e-5)
    built = learning_rates(gentle.state_dict())
    assert built != learning_rates(load_checkpoint(tmp_path / "iter_000002.pt")["model"])
    train(gentle, x, 3, batch_size=8, resume=tmp_path / "iter_000002.pt")
    assert learning_rates(gentle.state_dict()) == built


# --- atomic checkpoints and model identity -----------------------------------------------


def test_a_crash_while_saving_leaves_the_previous_checkpoint_intact(tmp_path, monkeypatch):
    model = small_model(0)
    path = save_checkpoint(tmp_path / "c.pt", model, 1, History())
    good = path.read_bytes()

    def dies_half_way(obj, f, *a, **kw):
        f.write(b"half a checkpoint")
        raise KeyboardInterrupt  # the process is killed in the middle of the write

    monkeypatch.setattr(torch, "save", dies_half_way)
    with pytest.raises(KeyboardInterrupt):
        save_checkpoint(path, model, 2, History())
    assert path.read_bytes() == good and load_checkpoint(path)["iteration"] == 1
    assert [p.name for p in tmp_path.iterdir()] == ["c.pt"]  # no temporary file left behind


@pytest.mark.parametrize("saved, resumed, differs", [
    (dict(name="wgcn"), dict(name="gcn"), "model: checkpoint 'wgcn', this model 'gcn'"),
    (dict(init="persistent"), dict(init="buffer"), "option init: checkpoint 'persistent', this model 'buffer'"),
    (dict(width=4), dict(width=8), "option width"),
])
def test_resume_refuses_a_checkpoint_of_another_model_before_touching_it(tmp_path, saved, resumed, differs):
    run(small_model(0, **saved), 2, checkpoint_dir=tmp_path, checkpoint_every=2)
    other = small_model(1, **resumed)
    before = [p.clone() for p in other.energy.parameters()]
    with pytest.raises(ValueError, match=f"written by a different model: .*{differs}"):
        run(other, 4, resume=tmp_path / "iter_000002.pt")
    assert all(torch.equal(a, b) for a, b in zip(before, other.energy.parameters()))


def test_resume_refuses_another_member_of_the_ggcn_family(tmp_path):
    profile = get_profile("smoke", langevin_steps=2, width=4, z_dim=4)
    x = data()
    ggcn = build_model("ggcn", profile, 1, SIZE, n_examples=len(x))
    train(ggcn, x, 2, batch_size=8, labels=torch.arange(len(x)), checkpoint_dir=tmp_path, checkpoint_every=2)
    lhs = build_model("ggcn-lhs", profile, 1, SIZE, n_examples=len(x))
    with pytest.raises(ValueError, match="model: checkpoint 'ggcn', this model 'ggcn-lhs'"):
        train(lhs, x, 4, batch_size=8, labels=torch.arange(len(x)), resume=tmp_path / "iter_000002.pt")


def test_resume_accepts_a_changed_learning_rate_and_langevin_step(tmp_path):
    run(small_model(0), 2, checkpoint_dir=tmp_path, checkpoint_every=2)
    history = run(small_model(0, lr=5e-4, step_size=0.01, langevin_steps=2), 4, resume=tmp_path / "iter_000002.pt")
    assert len(history) == 4


def test_resume_from_a_folder_says_which_files_it_holds(tmp_path):
    run(small_model(0), 2, checkpoint_dir=tmp_path, checkpoint_every=2)
    with pytest.raises(IsADirectoryError, match="is a folder.*iter_000002.pt"):
        run(small_model(0), 4, resume=tmp_path)


# --- resume with a DataLoader, and one seed for the whole run -------------------------------


def test_resume_with_a_data_loader_is_bit_identical_mid_epoch(tmp_path):
    loader = DataLoader(TensorDataset(data()), batch_size=8, shuffle=True)  # 5 batches an epoch
    straight = small_model(0)
    history = train(straight, loader, 12, seed=0)
    train(small_model(0), loader, 7, seed=0, checkpoint_dir=tmp_path, checkpoint_every=7)  # stops mid-epoch 2
    resumed = small_model(1)
    resumed_history = train(resumed, loader, 12, resume=tmp_path / "iter_000007.pt")
    assert resumed_history.records == history.records
    assert all(torch.equal(a, b) for a, b in zip(straight.energy.parameters(), resumed.energy.parameters()))


def test_one_seed_fixes_the_whole_run_build_included():
    torch.manual_seed(123)  # whatever the global stream holds before
    first = run(small_model(0), 3).records
    torch.manual_seed(456)
    again = run(small_model(0), 3).records
    assert first == again
    assert run(small_model(1), 3).records != first


# --- bad arguments are refused before any work is done ------------------------------------


@pytest.mark.parametrize("kwargs, message", [
    (dict(batch_size=0), "batch_size must be an integer ≥ 1, got 0"),
    (dict(batch_size=-1), "batch_size must be an integer ≥ 1, got -1"),
    (dict(batch_size=2.5), "batch_size must be an integer"),
    (dict(seed="abc"), "seed must be an integer in \\[0, 2\\*\\*32\\), got 'abc'"),
    (dict(seed=-1), "seed must be an integer"),
    (dict(iterations=-3), "iterations must be an integer ≥ 0, got -3"),
    (dict(checkpoint_every=-1), "checkpoint_every must be an integer ≥ 0"),
])
def test_train_refuses_bad_arguments(kwargs, message):
    args = dict(iterations=2, batch_size=8, seed=0) | kwargs
    model = small_model(0)
    before = [p.clone() for p in model.energy.parameters()]
    with pytest.raises(ValueError, match=message):
        train(model, data(), args.pop("iterations"), **args)
    assert all(torch.equal(a, b) for a, b in zip(before, model.energy.parameters()))


@pytest.mark.parametrize("as_loader", [False, True])
def test_images_of_another_size_than_the_model_are_refused(as_loader):
    x = torch.rand(16, 1, 16, 16)
    data_ = DataLoader(TensorDataset(x), batch_size=8) if as_loader else x
    with pytest.raises(ValueError, match="images are \\(1, 16, 16\\).*built for \\(1, 8, 8\\)"):
        train(small_model(0), data_, 2, batch_size=8)


def test_nan_in_the_data_is_called_bad_data_not_divergence():
    x = data()
    x[3, 0, 0, 0] = float("nan")
    with pytest.raises(ValueError, match="1 of 40 training examples contain NaN or inf; clean the data"):
        train(small_model(0), x, 2, batch_size=8)


def test_an_unwritable_checkpoint_folder_is_found_before_training(tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    model = small_model(0)
    with pytest.raises(PermissionError, match=f"cannot write checkpoints to {blocker / 'ckpt'}"):
        train(model, data(), 2, batch_size=8, checkpoint_dir=blocker / "ckpt", checkpoint_every=1)
    assert model.particles is None  # not one iteration ran


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
