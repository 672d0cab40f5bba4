"""Run profiles and devices (ggcn.config)."""
import dataclasses

import pytest
import torch

from ggcn import config
from ggcn.config import PROFILES, get_profile, resolve_device


@pytest.mark.parametrize("name", ["smoke", "teach", "paper"])
def test_each_profile_is_found_by_its_name(name):
    assert get_profile(name) == PROFILES[name] and get_profile(name).name == name


def test_the_paper_profile_holds_the_papers_stated_settings():
    paper = get_profile("paper")
    assert (paper.batch_size, paper.langevin_steps, paper.step_size, paper.iterations) == (100, 50, 0.01, 100)


def test_overrides_replace_single_fields_and_leave_the_rest():
    cfg = get_profile("smoke", iterations=3, step_size=0.5)
    base = get_profile("smoke")
    assert (cfg.iterations, cfg.step_size) == (3, 0.5)
    assert dataclasses.replace(cfg, iterations=base.iterations, step_size=base.step_size) == base
    assert PROFILES["smoke"].iterations == base.iterations  # the stored profile is untouched


def test_profiles_are_immutable():
    with pytest.raises(dataclasses.FrozenInstanceError):
        get_profile("smoke").iterations = 1


def test_to_dict_lists_every_field():
    assert set(get_profile("teach").to_dict()) == {f.name for f in dataclasses.fields(get_profile("teach"))}


def test_unknown_profile_raises_and_lists_the_known_ones():
    with pytest.raises(ValueError, match=r"unknown profile 'fast'; choose one of \['paper', 'smoke', 'teach'\]"):
        get_profile("fast")


def test_unknown_field_raises_and_lists_the_known_ones():
    with pytest.raises(ValueError, match=r"unknown profile field\(s\) \['iters'\]; known fields: .*'iterations'"):
        get_profile("smoke", iters=3)


def test_auto_device_follows_cuda_availability(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert resolve_device("auto") == "cpu"
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert resolve_device("auto") == "cuda"


@pytest.mark.parametrize("device", ["cuda", "cuda:1"])
def test_asking_for_cuda_without_cuda_raises(monkeypatch, device):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(ValueError, match="no CUDA device is visible; use device='cpu' or 'auto'"):
        resolve_device(device)


def test_explicit_devices_pass_through_when_the_machine_has_them(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: True)
    assert [resolve_device(d) for d in ("cpu", "cuda", "cuda:1", "mps")] == ["cpu", "cuda", "cuda:1", "mps"]


def test_a_device_this_machine_lacks_is_refused(monkeypatch):
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: False)
    with pytest.raises(ValueError, match="device 'mps' asked for, but this machine has no Apple GPU"):
        resolve_device("mps")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    with pytest.raises(ValueError, match="only 1 CUDA device\\(s\\) exist"):
        resolve_device("cuda:3")


@pytest.mark.parametrize("field, value", [("iterations", -1), ("batch_size", 0), ("langevin_steps", 2.5),
                                          ("step_size", float("nan")), ("sigma", 0.0), ("lr", float("inf"))])
def test_a_profile_field_out_of_range_is_refused(field, value):
    with pytest.raises(ValueError, match=f"profile field {field} must be"):
        get_profile("smoke", **{field: value})


def test_unknown_device_raises():
    with pytest.raises(ValueError, match="unknown device 'tpu'"):
        resolve_device("tpu")
    with pytest.raises(ValueError, match="unknown device 'cuda:x'"):
        resolve_device("cuda:x")


# ---------------------------------------------------------------------------- recipes

from ggcn.config import FAMILIES, RECIPES, SMOKE_ITERATIONS, recipe  # noqa: E402
from ggcn.models.registry import FAMILY, MODELS, build_model  # noqa: E402


@pytest.mark.parametrize("family", FAMILIES)
def test_every_model_has_a_recipe_on_every_data_family(family):
    assert {m for m, f in RECIPES if f == family} == set(MODELS) | set(FAMILY)


@pytest.mark.parametrize(("model", "family"), sorted(RECIPES))
def test_every_recipe_builds_its_model(model, family):
    r = recipe(model, family)
    assert r.source and r.iterations > 0 and r.batch_size > 0
    extra = {"n_examples": 8} if model.startswith("ggcn") else {}
    built = build_model(model, get_profile("smoke"), 1, r.image_size, family=family, **extra)
    assert built is not None


def test_a_recipe_sets_the_models_pieces_and_overrides_win():
    r = recipe("wgcn", "digits")
    model = build_model("wgcn", get_profile("teach"), 1, 16, family="digits")
    assert model.sampler.sigma == r.options["sigma"] and model.sampler.step_size == r.options["step_size"]
    assert model.energy.scale == r.options["energy_scale"] and model.rule.weight == r.options["jko_weight"]
    h = r.options["langevin_steps"] * r.options["step_size"] ** 2 / 2
    assert model.rule.unit == pytest.approx(h)  # λ in units of the Langevin time of one iteration
    assert build_model("wgcn", get_profile("teach"), 1, 16, family="digits", sigma=0.5).sampler.sigma == 0.5


def test_recipes_run_a_handful_of_iterations_at_smoke():
    r = recipe("gcn", "digits")
    assert r.iterations_at("smoke") == SMOKE_ITERATIONS < r.iterations == r.iterations_at("teach")


def test_unknown_family_or_model_raises():
    with pytest.raises(ValueError, match=r"unknown data family 'cifar'; choose one of \('digits', 'faces', 'texture'\)"):
        recipe("gcn", "cifar")
    with pytest.raises(ValueError, match="no recipe for model 'vae' on digits; recipes exist for"):
        recipe("vae", "digits")


def test_a_chapter_without_a_profile_takes_the_book_builds_or_smoke(monkeypatch):
    monkeypatch.delenv(config.PROFILE_ENV, raising=False)
    assert config.chosen_profile(None) == "smoke"
    monkeypatch.setenv(config.PROFILE_ENV, "teach")
    assert config.chosen_profile(None) == "teach" and config.chosen_profile("paper") == "paper"
    monkeypatch.setenv(config.PROFILE_ENV, "tech")
    with pytest.raises(ValueError, match="unknown profile 'tech'; choose one of"):
        config.chosen_profile(None)
