"""Training by recipe (ggcn.experiments.runs): CPU seconds, time-to-quality, fresh samples -- and every recipe learns.

Each recipe of :mod:`ggcn.config` must *learn something* on a tiny problem: after a few dozen
iterations its fresh samples are closer to the data, on the family's validated ruler, than the
samples of the untrained model.
"""
import pytest
import torch

from ggcn.measure import data
from ggcn.config import get_profile, recipe
from ggcn.experiments.runs import draw, fit_recipe, shown
from ggcn.models.registry import build_model
from ggcn.models.multigrid import MultiGridModel, down
from ggcn.measure.rulers import digit_ruler, face_ruler, texture_ruler

TEACH = get_profile("teach")


@pytest.fixture(scope="module")
def digits8():
    return digit_ruler(seed=0, size=8, steps=300, n_held_out=300)


def tiny(name: str, family: str, x: torch.Tensor, iterations: int, seed: int = 0, **extra):
    """The recipe's model on ``x`` with the recipe's settings, ``iterations`` iterations of ``train``."""
    from ggcn.models.cooperative import example_index
    from ggcn.core.train import train

    torch.manual_seed(seed)
    options = {"n_examples": len(x)} if name.startswith("ggcn") else {}
    model = build_model(name, TEACH, x.shape[1], x.shape[-1], family=family, **options, **extra)
    if isinstance(model, MultiGridModel):  # its chains start from coarse training images, none seen yet
        before = model.sample(100, start=down(x[:100], model.sizes[0])).clamp(-1, 1)
    else:
        before = shown(model, 100)
    train(model, x, iterations, batch_size=recipe(name, family).batch_size, seed=seed,
          labels=example_index(x) if name.startswith("ggcn") else None)
    return before, shown(model, 100)


DIGIT_MODELS = ("frame", "wframe", "gcn", "wgcn", "wgcn-data", "wgcn-proximal", "mgcn", "wmgcn",
                "ggcn", "ggcn-lhs", "ggcn+ams", "ggcn-lhs+ams", "dcgan")


@pytest.mark.parametrize("name", DIGIT_MODELS)
def test_every_digit_recipe_moves_its_samples_towards_the_digits(name, digits8):
    before, after = tiny(name, "digits", digits8.train_images, 40)
    kid_before, kid_after = digits8.score(before)["kid"], digits8.score(after)["kid"]
    assert kid_after < kid_before, f"{name}: KID {kid_before:.3g} -> {kid_after:.3g}"


@pytest.mark.parametrize("name", ["gcn", "wgcn", "ggcn+ams", "dcgan"])
def test_face_recipes_move_their_samples_towards_the_faces(name):
    ruler = face_ruler(seed=0, size=16)
    before, after = tiny(name, "faces", ruler.train_images, 40)
    assert ruler.score(after)["kid"] < ruler.score(before)["kid"]


@pytest.mark.parametrize("name", ["gcn", "wgcn"])
def test_texture_recipes_move_their_samples_towards_the_texture(name):
    ruler = texture_ruler("brick", size=16, n_train=32)
    before, after = tiny(name, "texture", ruler.train_images, 25)
    assert ruler.score(after)["gram"] < ruler.score(before)["gram"]


def test_fit_recipe_counts_training_time_and_finds_the_first_passing_check():
    x = data.digits(8)[0][:64]
    calls = []

    def judge(samples):
        calls.append(len(samples))
        return len(calls) >= 2  # passes from the second check on

    run = fit_recipe("gcn", "digits", x, get_profile("smoke"), judge=judge, eval_every=4, n_eval=20)
    assert calls == [20, 20, 20]  # 12 smoke iterations, a check every 4
    assert [it for it, _, _ in run.checks] == [4, 8, 12] and [ok for *_, ok in run.checks] == [False, True, True]
    assert run.seconds_to_quality == run.checks[1][1] and 0 < run.seconds_to_quality < run.seconds
    assert len(run.history) == 12 and not run.diverged


def test_fit_recipe_without_a_passing_check_reports_none():
    x = data.digits(8)[0][:32]
    run = fit_recipe("dcgan", "digits", x, get_profile("smoke"), judge=lambda s: False, eval_every=6, n_eval=8)
    assert run.seconds_to_quality is None and len(run.checks) == 2


def test_only_the_ggcn_family_learns_from_labels():
    x, y = data.digits(8, n=40)
    with pytest.raises(ValueError, match="only the GGCN family learns conditionally"):
        fit_recipe("gcn", "digits", x, get_profile("smoke"), labels=y)
    run = fit_recipe("ggcn+ams", "digits", x, get_profile("smoke"), labels=y)
    samples = draw(run.model, 7, torch.arange(7) % 10)
    assert samples.shape == (7, 1, 8, 8)


@pytest.mark.parametrize("name", ["gcn", "mgcn", "ggcn", "dcgan"])
def test_draw_gives_fresh_samples_in_batches(name):
    x = data.digits(8)[0][:32]
    run = fit_recipe(name, "digits", x, get_profile("smoke"))
    torch.manual_seed(0)
    a = draw(run.model, 7, batch=3)
    assert a.shape == (7, 1, 8, 8) and a.device.type == "cpu"
    assert not torch.equal(a, draw(run.model, 7, batch=3))  # fresh each time
