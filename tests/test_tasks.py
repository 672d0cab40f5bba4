"""Inpainting tasks: the three mask kinds hide what they promise, completions keep every known pixel,
the two baselines fill holes the way they say, and held-out faces stay apart from training faces.
(Latent interpolation is tested with the GGCN models, in test_cooperative.py.)"""
import math

import pytest
import torch

from ggcn.models import masks as tasks
from ggcn.measure.proxy import fit_proxy
from ggcn.measure.scores import completion_scores


def seeded(seed=0):
    return torch.Generator().manual_seed(seed)


def is_binary(mask):
    return bool(torch.all((mask == 0) | (mask == 1)))


@pytest.mark.parametrize("size,fraction", [(16, 0.25), (32, 0.25), (16, 0.1), (64, 0.4)])
def test_square_mask_hides_a_centred_square_of_the_asked_area(size, fraction):
    mask = tasks.square_mask(3, size, fraction)
    assert mask.shape == (3, 1, size, size) and is_binary(mask)
    side = round(size * math.sqrt(fraction))
    assert torch.allclose(tasks.coverage(mask), torch.full((3,), side**2 / size**2))
    assert abs(float(tasks.coverage(mask)[0]) - fraction) <= (2 * side + 1) / size**2  # whole pixels only
    hole = (mask[0, 0] == 0).nonzero()
    assert hole.min(0).values.tolist() == [(size - side) // 2] * 2  # centred: the same margin on both axes
    assert hole.max(0).values.tolist() == [(size - side) // 2 + side - 1] * 2
    assert len(hole) == side**2  # one solid square


@pytest.mark.parametrize("size,coverage", [(16, 0.25), (32, 0.1), (32, 0.5)])
def test_spot_masks_reach_their_coverage_within_one_spot(size, coverage):
    masks = tasks.spot_mask(50, size, coverage, generator=seeded())
    assert masks.shape == (50, 1, size, size) and is_binary(masks)
    spot = tasks.default_spot(size)
    hidden = tasks.coverage(masks)
    assert torch.all(hidden >= coverage)
    assert torch.all(hidden < coverage + spot**2 / size**2 + 1e-6)
    assert len({tuple(m.flatten().tolist()) for m in masks}) == 50  # random places: every mask differs


def test_spot_masks_are_fixed_by_the_seed():
    a = tasks.spot_mask(4, 16, generator=seeded(3))
    assert torch.equal(a, tasks.spot_mask(4, 16, generator=seeded(3)))
    assert not torch.equal(a, tasks.spot_mask(4, 16, generator=seeded(4)))


def test_spot_square_mask_is_the_square_plus_more_spots():
    size, fraction, extra = 32, 0.25, 0.1
    masks = tasks.spot_square_mask(20, size, fraction, extra, generator=seeded())
    square = tasks.square_mask(20, size, fraction)
    assert is_binary(masks) and torch.all(masks <= square)  # every pixel of the square stays hidden
    spot = tasks.default_spot(size)
    target = float(tasks.coverage(square)[0]) + extra
    assert torch.all(tasks.coverage(masks) >= target)
    assert torch.all(tasks.coverage(masks) < target + spot**2 / size**2 + 1e-6)


def test_make_masks_builds_each_kind_of_the_paper():
    assert tasks.MASKS == ("square", "spot", "spot+square")
    hidden = {kind: float(tasks.coverage(tasks.make_masks(kind, 8, 16, seeded())).mean()) for kind in tasks.MASKS}
    assert hidden["square"] == pytest.approx(tasks.SQUARE_FRACTION)
    assert hidden["spot"] == pytest.approx(tasks.SPOT_COVERAGE, abs=4 / 256)
    assert hidden["spot+square"] == pytest.approx(tasks.SQUARE_FRACTION + tasks.EXTRA_SPOT_COVERAGE, abs=4 / 256)


def test_mixed_masks_draw_every_kind():
    masks = tasks.mixed_masks(60, 16, generator=seeded())
    square = tasks.square_mask(1, 16)[0]
    is_square = torch.tensor([torch.equal(m, square) for m in masks])
    contains_square = torch.tensor([bool(torch.all(m <= square)) for m in masks])
    assert is_square.any()  # square
    assert (contains_square & ~is_square).any()  # spot+square
    assert (~contains_square).any()  # spot
    only_spots = tasks.mixed_masks(10, 16, kinds=("spot",), generator=seeded())
    assert not any(torch.equal(m, square) for m in only_spots)


@pytest.mark.parametrize("call", [
    lambda: tasks.make_masks("circle", 2, 16),
    lambda: tasks.square_mask(2, 16, fraction=1.0),
    lambda: tasks.spot_mask(2, 16, coverage=0.0),
    lambda: tasks.spot_mask(2, 16, spot=17),
    lambda: tasks.spot_square_mask(2, 16, fraction=0.6, coverage=0.5),
    lambda: tasks.mixed_masks(2, 16, kinds=("square", "blob")),
    lambda: tasks.square_mask(0, 16),
])
def test_bad_mask_requests_say_what_is_wrong(call):
    with pytest.raises(ValueError):
        call()


def test_a_completion_keeps_known_pixels_and_fills_only_the_hole():
    x, fill = torch.rand(4, 3, 16, 16) * 2 - 1, torch.full((4, 3, 16, 16), 0.5)
    mask = tasks.make_masks("spot+square", 4, 16, seeded())
    x_hat = tasks.complete(x, mask, fill)
    known = mask.expand_as(x).bool()
    assert torch.equal(x_hat[known], x[known]) and torch.all(x_hat[~known] == 0.5)
    with pytest.raises(ValueError, match="masks"):
        tasks.complete(x, mask[:, :, :8], fill)
    with pytest.raises(ValueError, match="only 0"):
        tasks.complete(x, mask * 0.5, fill)


def test_mean_fill_puts_the_mean_image_into_the_hole():
    x, mean = torch.zeros(2, 1, 16, 16), torch.linspace(-1, 1, 256).view(1, 16, 16)
    mask = tasks.square_mask(2, 16)
    filled = tasks.mean_fill(x, mask, mean)
    hole = mask[0, 0] == 0
    assert torch.equal(filled[0, 0][hole], mean[0][hole]) and torch.all(filled[0, 0][~hole] == 0)
    with pytest.raises(ValueError, match="mean_image"):
        tasks.mean_fill(x, mask, mean[:, :8])


@pytest.mark.parametrize("size", [16, 32])
def test_diffusion_fill_reproduces_a_linear_ramp_exactly(size):
    """A linear image is harmonic: its values inside a hole are the interpolation of its border."""
    r = torch.linspace(-1, 1, size)
    ramp = (0.6 * r[None, :] - 0.3 * r[:, None]).expand(2, 1, size, size)
    mask = tasks.square_mask(2, size, 0.3)
    assert torch.allclose(tasks.diffusion_fill(ramp, mask), ramp, atol=1e-4)


def test_diffusion_fill_stays_within_the_known_values_and_keeps_them():
    x = torch.rand(3, 3, 16, 16) * 2 - 1
    mask = tasks.make_masks("spot+square", 3, 16, seeded())
    y = tasks.diffusion_fill(x, mask)
    known = mask.expand_as(x).bool()
    assert torch.equal(y[known], x[known])
    lo = torch.where(known, x, torch.inf).amin((2, 3), keepdim=True)
    hi = torch.where(known, x, -torch.inf).amax((2, 3), keepdim=True)
    assert torch.all((y >= lo - 1e-6) & (y <= hi + 1e-6))  # the maximum principle of harmonic functions


def test_held_out_images_are_disjoint_from_training_images_and_fixed_by_the_seed():
    x = torch.arange(30.0).view(30, 1, 1, 1)
    train, test = tasks.split_holdout(x, 6, seed=1)
    assert len(train) == 24 and len(test) == 6
    assert sorted(train.flatten().tolist() + test.flatten().tolist()) == list(range(30))
    assert torch.equal(tasks.split_holdout(x, 6, seed=1)[1], test)
    assert not torch.equal(tasks.split_holdout(x, 6, seed=2)[1], test)
    with pytest.raises(ValueError, match="n_test"):
        tasks.split_holdout(x, 30)


def test_completion_scores_are_perfect_for_the_original_and_worse_for_a_bad_fill():
    torch.manual_seed(0)
    x = torch.rand(12, 1, 16, 16) * 2 - 1
    proxy = fit_proxy(x, iterations=5, batch_size=12)
    perfect = completion_scores(x, x.clone(), proxy)
    assert perfect["mse"] == 0 and perfect["ssim"] == pytest.approx(1.0) and perfect["proxy_fid"] < 1e-3
    mask = tasks.square_mask(12, 16)
    bad = completion_scores(x, tasks.complete(x, mask, torch.ones_like(x)))
    assert set(bad) == {"ssim", "psnr", "mse"}  # no proxy, no proxy FID
    assert bad["mse"] > 0 and bad["ssim"] < 1 and math.isfinite(bad["psnr"])
