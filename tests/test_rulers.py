"""Rulers: each ranks real > blurred > {noise, flat, mean} on its own data before it may judge a model."""
import random

import numpy as np
import pytest
import torch

from ggcn.measure import rulers
from ggcn.measure.rulers import REQUIRED_ROWS, digit_ruler, face_ruler, ruler_for, texture_ruler


@pytest.fixture(scope="module")
def digits8():
    return digit_ruler(seed=0, size=8, steps=300)  # the fast setting; the default is 16 px, 1,500 steps


@pytest.fixture(scope="module")
def faces():
    return face_ruler(seed=0)


@pytest.fixture(scope="module")
def brick():
    return texture_ruler("brick")


@pytest.fixture(params=["digits8", "faces", "brick"])
def ruler(request):
    return request.getfixturevalue(request.param)


def test_every_ruler_ranks_real_above_blurred_above_noise_flat_and_mean(ruler):
    check = ruler.check()
    assert check.passed, check.message
    assert ruler.name in check.message and ruler.primary in check.message


@pytest.mark.parametrize("name", ["grass", "gravel"])
def test_the_texture_ordering_holds_for_the_other_textures(name):
    check = texture_ruler(name).check()
    assert check.passed, check.message


def test_the_texture_ruler_of_chapter_2_passes_real_16_pixel_crops_and_fails_blurred_ones():
    ruler = texture_ruler("brick", size=16, n_train=64)
    refs = ruler.references()
    assert ruler.check().passed, ruler.check().message
    assert ruler.learned(refs["real"]) and not ruler.learned(refs["blurred"])
    assert not any(ruler.learned(refs[row]) for row in ("noise", "flat", "mean"))


def test_the_face_ordering_holds_at_32_pixels():
    check = face_ruler(seed=1, size=32).check()
    assert check.passed, check.message


def test_a_blur_too_faint_to_see_fails_the_check():
    check = face_ruler(blur_sigma=1e-3).check()
    assert not check.passed
    assert "real is not better than blurred" in check.message


def test_learned_accepts_held_out_real_images_and_rejects_noise_flat_and_mean(ruler):
    refs = ruler.references()
    assert ruler.learned(refs["real"])
    assert not any(ruler.learned(refs[k]) for k in ("noise", "flat", "mean"))


def test_the_learned_bars_are_the_stated_ones(digits8, brick, faces):
    assert digits8.learned({"recognised": 0.6, "classes": 9})
    assert not digits8.learned({"recognised": 0.59, "classes": 10})
    assert not digits8.learned({"recognised": 1.0, "classes": 8})  # a model that draws 8 digits only
    assert brick.learned({"gram": 0.2, "spread": 0.1}) and not brick.learned({"gram": 0.21, "spread": 0.1})
    blurred = faces.references()["blurred"]["kid"]
    assert faces.learned({"kid": blurred}) and not faces.learned({"kid": blurred + 1e-3})
    assert "0.6" in digits8.bar and "twice" in brick.bar and "blurred" in faces.bar  # the bars, in words


def test_references_hold_every_row_with_every_number(ruler):
    refs = ruler.references()
    assert set(REQUIRED_ROWS) <= set(refs)
    assert all(set(row) == set(refs["real"]) and ruler.primary in row for row in refs.values())
    assert ruler.references() is refs  # computed once


def test_the_digit_ruler_reads_digits_and_shows_its_blind_spots(digits8):
    refs = digits8.references()
    assert refs["real"]["recognised"] >= 0.9 and refs["real"]["classes"] == 10
    assert refs["real"]["kid"] < refs["blurred"]["kid"] < min(refs[k]["kid"] for k in ("noise", "flat", "mean"))
    assert {"stripes", "train"} <= set(refs)
    assert not digits8.learned(refs["stripes"])  # read as one digit at most, so the class count fails it


def test_the_digit_ruler_reads_the_labels_of_conditional_samples(digits8):
    x, y = digits8.held_out, digits8.held_out_labels
    assert digits8.label_agreement(x, y) >= 0.9
    assert digits8.label_agreement(x, (y + 1) % 10) <= 0.1
    with pytest.raises(ValueError, match="one label per sample"):
        digits8.label_agreement(x, y[:-1])


def test_the_texture_spread_is_what_fresh_real_crops_get(brick):
    real = brick.references()["real"]
    assert 0.3 < real["gram_over_spread"] < 2
    assert brick.references()["flat"]["gram"] == pytest.approx(1.0)  # no filter energy at all


def test_the_splits_are_disjoint_and_cover_the_data(digits8, faces):
    assert len(digits8.train_images) + len(digits8.held_out) == 1797 and len(digits8.held_out) == 500
    assert len(digits8.train_labels) == len(digits8.train_images)
    assert (len(faces.train_images), len(faces.held_out)) == (60, 40)
    for r in (digits8, faces):
        train, held = r.train_images.flatten(1), r.held_out.flatten(1)
        assert not (torch.cdist(held, train).min(1).values == 0).any()


def test_rows_have_as_many_images_as_model_sample_sets(digits8, faces, brick):
    assert {len(x) for x in digits8.rows().values()} == {500}
    assert len(faces.rows()["noise"]) == 100 and len(faces.rows()["real"]) == 40
    assert {len(x) for x in brick.rows().values()} == {16}


def test_scores_are_deterministic_for_a_seed():
    a, b = digit_ruler(seed=3, size=8, steps=20), digit_ruler(seed=3, size=8, steps=20)
    assert a.score(a.held_out[:100]) == b.score(b.held_out[:100])
    f, g = face_ruler(seed=2), face_ruler(seed=2)
    assert f.score(f.held_out) == g.score(g.held_out)
    t, u = texture_ruler(seed=2), texture_ruler(seed=2)
    assert t.score(t.held_out) == u.score(u.held_out)
    assert not torch.equal(f.held_out, face_ruler(seed=3).held_out)


def test_building_and_scoring_leave_the_callers_random_state_alone():
    def draws():
        return torch.rand(3), np.random.rand(3), random.random()

    torch.manual_seed(11), np.random.seed(11), random.seed(11)
    expected = draws()
    torch.manual_seed(11), np.random.seed(11), random.seed(11)
    digits = digit_ruler(size=8, steps=5)
    digits.score(digits.held_out[:50])
    face_ruler().references(), texture_ruler(n_spread=2).references()
    got = draws()
    assert torch.equal(got[0], expected[0]) and np.array_equal(got[1], expected[1]) and got[2] == expected[2]


def test_ruler_for_builds_each_family_and_names_the_choices_otherwise():
    assert ruler_for("texture", name="grass").texture == "grass"
    assert isinstance(ruler_for("faces"), rulers.FaceRuler)
    with pytest.raises(ValueError, match="unknown data family 'cifar10'.*digits.*faces.*texture"):
        ruler_for("cifar10")


@pytest.mark.parametrize("bad, message", [
    (torch.zeros(4, 3, 32, 32), r"grey images of shape \(N, 1, 32, 32\).*convert colour to grey"),
    (torch.zeros(4, 1, 16, 16), r"resize to 32×32, or build the ruler with size=16"),
    (torch.zeros(1, 32, 32), r"must be a tensor \(N, C, H, W\)"),
    (torch.zeros(4, 1, 32, 32, dtype=torch.uint8), r"floats in \[-1, 1\].*x / 127.5 - 1"),
    (torch.full((4, 1, 32, 32), 2.0), r"must lie in \[-1, 1\]; got \[2, 2\].*clamp"),
    (torch.zeros(1, 1, 32, 32), r"at least 2 images"),
])
def test_bad_sample_sets_are_refused_with_what_to_do(brick, bad, message):
    with pytest.raises(ValueError, match=message):
        brick.score(bad)


@pytest.mark.parametrize("build, message", [
    (lambda: digit_ruler(size=10), "multiple of 4"),
    (lambda: face_ruler(size=4), "at least 8×8"),
    (lambda: texture_ruler(size=8), "at least 16×16"),
    (lambda: texture_ruler("marble"), "unknown texture 'marble'"),
    (lambda: face_ruler(blur_sigma=0), "blur_sigma must be a positive"),
])
def test_bad_settings_are_refused_with_what_to_do(build, message):
    with pytest.raises(ValueError, match=message):
        build()
