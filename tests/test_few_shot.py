"""Few-sample training: the duplicated training set, the distances that tell copying from collapse
and noise, and every model of the paper's Fig. 10 trained by the one loop."""
import pytest
import torch

from ggcn.experiments import few_shot
from ggcn.measure import scores
from ggcn.config import get_profile, recipe
from ggcn.measure.data import photo
from ggcn.measure.proxy import fit_proxy

PROFILE = get_profile("smoke", width=8, z_dim=8, batch_size=8, langevin_steps=3, iterations=3)
SIZE = 8


@pytest.fixture(scope="module")
def photos():
    return torch.cat([photo(name, SIZE) for name in ("astronaut", "coffee", "chelsea")])


def test_duplicate_repeats_the_images_in_order(photos):
    x = few_shot.duplicate(photos, 8)
    assert x.shape == (8, 3, SIZE, SIZE)
    assert all(torch.equal(x[i], photos[i % 3]) for i in range(8))
    with pytest.raises(ValueError, match="at least"):
        few_shot.duplicate(photos, 2)


def test_copies_of_the_training_images_are_at_distance_zero(photos):
    copies = few_shot.duplicate(photos, 9)
    assert torch.all(scores.nearest_distance(copies, photos) == 0)
    assert torch.all(scores.coverage_distance(copies, photos) == 0)
    assert scores.reference_scores(photos)["nearest"] == 0


def test_distances_are_root_mean_square_pixel_differences():
    flat = lambda v: torch.full((1, 3, 4, 4), v)  # noqa: E731
    references = torch.cat([flat(0.5), flat(-0.2)])
    samples = torch.cat([flat(0.0), flat(0.4)])
    assert scores.nearest_distance(samples, references).tolist() == pytest.approx([0.2, 0.1])
    assert scores.coverage_distance(samples, references).tolist() == pytest.approx([0.1, 0.2])
    assert scores.diversity(samples) == pytest.approx(0.4)
    assert scores.nearest_distance(flat(3.0), flat(1.0)).item() == 0  # samples are clipped to [-1, 1]


def test_collapse_onto_one_image_is_near_but_does_not_cover(photos):
    collapsed = photos[:1].repeat(6, 1, 1, 1)
    assert torch.all(scores.nearest_distance(collapsed, photos) == 0)
    assert scores.coverage_distance(collapsed, photos)[1:].min() > 0.1
    assert scores.diversity(collapsed) == 0


def test_scores_name_every_number_and_the_set_distance_is_the_mean(photos):
    proxy = fit_proxy(few_shot.duplicate(photos, 12), iterations=5, batch_size=12)
    torch.manual_seed(0)
    noisy = few_shot.duplicate(photos, 6) + 0.2 * torch.randn(6, 3, SIZE, SIZE)
    s = scores.copy_scores(noisy, photos, proxy)
    assert set(s) == {"nearest", "coverage", "set_distance", "diversity", "proxy_fid"}
    assert s["set_distance"] == pytest.approx((s["nearest"] + s["coverage"]) / 2)
    assert s["nearest"] > 0 and s["proxy_fid"] >= 0
    assert scores.copy_scores(few_shot.duplicate(photos, 6), photos, proxy)["set_distance"] == 0


@pytest.mark.parametrize("name", few_shot.FEW_SHOT_MODELS)
def test_every_model_of_the_figure_trains_and_samples(name, photos):
    train_set = few_shot.duplicate(photos, 12)
    _, samples = few_shot.train_few_shot(name, train_set, PROFILE, seed=0)
    assert samples.shape == (PROFILE.batch_size, 3, SIZE, SIZE) and torch.isfinite(samples).all()
    _, again = few_shot.train_few_shot(name, train_set, PROFILE, seed=0)
    if name != "ggcn":  # GGCN's samples draw fresh codes after training
        assert torch.equal(samples, again)
    assert (name in few_shot.ENERGY_MODELS) == (name != "dcgan")


def test_options_reach_the_model_and_bad_requests_are_refused(photos):
    train_set = few_shot.duplicate(photos, 8)
    model, _ = few_shot.train_few_shot("wgcn", train_set, PROFILE, seed=0, iterations=1, jko_weight=0.01)
    assert model.rule.weight == 0.01
    model, _ = few_shot.train_few_shot("wgcn", train_set, PROFILE, seed=0, iterations=1, family="faces")
    assert model.energy.scale == recipe("wgcn", "faces").options["energy_scale"]
    with pytest.raises(ValueError, match="unknown model"):
        few_shot.train_few_shot("vae", train_set, PROFILE, seed=0)
    with pytest.raises(ValueError, match="persistent chains"):
        few_shot.train_few_shot("wgcn", train_set, PROFILE, seed=0, n_samples=PROFILE.batch_size + 1)
