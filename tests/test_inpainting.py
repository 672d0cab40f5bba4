"""GGCN+AMS for inpainting: the generator sees only the masked image (and a code), keeps every known
pixel, and the model learns by GGCN+AMS's own step inside the one training loop."""
import io

import pytest
import torch

import ggcn.models.cooperative as coop
import ggcn.core.learner
from ggcn.models import inpainting
from ggcn.models import masks as tasks
from ggcn.config import get_profile, recipe
from ggcn.core.rules import weight_unit
from ggcn.measure.data import lfw_faces
from ggcn.core.rules import JKORule
from ggcn.core.train import train
from ggcn.experiments.runs import fit

PROFILE = get_profile("smoke", width=8, z_dim=8, batch_size=8)
SIZE = 16


@pytest.fixture(scope="module")
def faces():
    return lfw_faces(SIZE, n=24)


def make(name="ggcn+ams", n_examples=24, seed=0, **options):
    torch.manual_seed(seed)
    return inpainting.build_inpainter(name, PROFILE, 1, SIZE, n_examples=n_examples, **options)


def generator(seed=0):
    torch.manual_seed(seed)
    return inpainting.MaskedImageGenerator(1, SIZE, z_dim=4, width=8, code_dim=6)


def trained(faces, seed):
    """The inpainter trained by the one runner, as chapter 7 trains it."""
    build = lambda: inpainting.build_inpainter("ggcn+ams", PROFILE, faces.shape[1], SIZE, n_examples=len(faces))  # noqa: E731
    return fit(build, faces, PROFILE, seed, iterations=4, on_examples=True).model


def params(module):
    return [p.detach().clone() for p in module.parameters()]


def test_the_generator_keeps_known_pixels_and_fills_the_hole(faces):
    g, x = generator(), faces[:6]
    mask = tasks.make_masks("spot+square", 6, SIZE, torch.Generator().manual_seed(0))
    g.condition(x, mask)
    out = g(torch.randn(6, 4))
    known = mask.expand_as(x).bool()
    assert out.shape == x.shape and torch.equal(out[known], x[known])
    assert not torch.equal(out[~known], torch.zeros_like(out[~known]))  # the hole is generated
    assert out.abs().max() <= 1.0


def test_the_generator_never_sees_the_hidden_pixels(faces):
    g, x = generator(), faces[:4]
    mask = tasks.square_mask(4, SIZE)
    z = torch.randn(4, 4)
    g.condition(x, mask)
    before = g(z)
    g.condition(tasks.complete(x, mask, torch.rand_like(x)), mask)  # other content in the hole only
    assert torch.equal(g(z), before)
    g.condition(x, mask)
    assert not torch.equal(g(torch.randn(4, 4)), before)  # the code z still matters


def test_the_generator_refuses_to_run_without_a_matching_masked_batch(faces):
    g = generator()
    with pytest.raises(RuntimeError, match="condition"):
        g(torch.randn(2, 4))
    g.condition(faces[:3], tasks.square_mask(3, SIZE))
    with pytest.raises(ValueError, match=r"\(3, 4\)"):
        g(torch.randn(2, 4))
    with pytest.raises(ValueError, match="labels"):
        g(torch.randn(3, 4), torch.zeros(3, dtype=torch.long))
    with pytest.raises(ValueError, match="shape"):
        g.condition(torch.zeros(3, 3, SIZE, SIZE), tasks.square_mask(3, SIZE))


@pytest.mark.parametrize("name,lhs", [("ggcn+ams", True), ("ggcn-lhs+ams", False)])
def test_it_is_ggcn_ams_with_a_masked_image_generator(name, lhs):
    model = make(name)
    assert isinstance(model, coop.GGCN) and model.ams and model.lhs == lhs
    assert isinstance(model.generator, inpainting.MaskedImageGenerator)
    assert isinstance(model.rule, JKORule) and model.rule.weight == PROFILE.jko_weight
    assert (model.codes is not None) == lhs and model.gen_every == 4


def test_a_family_applies_the_recipe_of_ggcn_ams_and_overrides_win():
    options = recipe("ggcn+ams", "faces").options
    model = make(family="faces")
    assert model.energy.scale == options["energy_scale"] and model.sampler.sigma == options["sigma"]
    assert model.sampler.n_steps == 0 and model.gen_every == options["gen_every"]
    assert model.code_sampling == options["code_sampling"] and model.z_dim == options["z_dim"]
    unit = weight_unit(options["jko_scale"], options["langevin_steps"], options["step_size"])
    assert model.rule.weight == options["jko_weight"] and model.rule.unit == pytest.approx(unit)
    assert make(family="faces", gen_every=3).gen_every == 3


def test_completions_draw_the_models_fresh_codes(faces, monkeypatch):
    model = make(family="faces")
    x, mask = faces[:4], tasks.square_mask(4, SIZE)
    z = torch.zeros(4, model.z_dim)
    monkeypatch.setattr(model, "fresh_codes", lambda n: z[:n])
    assert torch.equal(model.complete(x, mask), model.complete(x, mask, z))


def test_it_learns_in_the_one_training_loop_with_fresh_masks_and_no_langevin(faces, monkeypatch):
    def forbidden(*args, **kwargs):
        raise AssertionError("Langevin was called")

    monkeypatch.setattr(ggcn.core.learner, "langevin", forbidden)
    model = make()
    energy, gen, codes = params(model.energy), params(model.generator), model.codes.detach().clone()
    history = train(model, faces, 8, batch_size=8, labels=coop.example_index(faces), seed=0)
    assert history.column("generator_step").tolist() == [0, 0, 0, 1] * 2
    assert all(0.2 < c < 0.5 for c in history.column("coverage"))  # masks of the three kinds each time
    assert not all(torch.equal(a, b) for a, b in zip(params(model.energy), energy))
    assert not all(torch.equal(a, b) for a, b in zip(params(model.generator), gen))
    assert not torch.equal(model.codes.detach(), codes)


def test_training_masks_come_from_the_chosen_kinds(faces):
    model = make(mask_kinds=("square",))
    history = train(model, faces, 3, batch_size=8, labels=coop.example_index(faces), seed=0)
    assert history.column("coverage").tolist() == [pytest.approx(tasks.SQUARE_FRACTION)] * 3


def test_completing_new_faces_keeps_their_known_pixels(faces):
    model = trained(faces[:16], seed=0)
    x = faces[16:]
    mask = tasks.make_masks("spot", len(x), SIZE, torch.Generator().manual_seed(1))
    x_hat = model.complete(x, mask)
    known = mask.expand_as(x).bool()
    assert x_hat.shape == x.shape and torch.equal(x_hat[known], x[known]) and torch.isfinite(x_hat).all()
    z = torch.zeros(len(x), model.z_dim)
    assert torch.equal(model.complete(x, mask, z), model.complete(x, mask, z))  # deterministic given z


def test_training_is_seeded(faces):
    a = trained(faces, seed=3)
    b = trained(faces, seed=3)
    assert all(torch.equal(p, q) for p, q in zip(params(a.generator), params(b.generator)))


def test_state_dict_round_trip_continues_identically(faces):
    idx = coop.example_index(faces)
    model = make()
    train(model, faces, 5, batch_size=8, labels=idx, seed=0)
    buffer = io.BytesIO()
    torch.save(model.state_dict(), buffer)
    buffer.seek(0)
    copy = make(seed=9)
    copy.load_state_dict(torch.load(buffer, weights_only=False))
    for m in (model, copy):
        torch.manual_seed(1)
        m.step(faces[:8], idx[:8])
        m.step(faces[8:16], idx[8:16])
        m.step(faces[16:], idx[16:])  # the 8th step updates the generator and the codes
    assert all(torch.equal(p, q) for p, q in zip(params(model.generator), params(copy.generator)))
    assert all(torch.equal(p, q) for p, q in zip(params(model.energy), params(copy.energy)))
    assert torch.equal(model.codes, copy.codes)


def test_bad_requests_say_what_to_do():
    with pytest.raises(ValueError, match="amortized"):
        inpainting.build_inpainter("ggcn", PROFILE, 1, SIZE, n_examples=4)
    with pytest.raises(ValueError, match="unknown option"):
        inpainting.build_inpainter("ggcn+ams", PROFILE, 1, SIZE, n_examples=4, langevin_steps=5)
    with pytest.raises(ValueError, match="n_examples"):
        inpainting.build_inpainter("ggcn+ams", PROFILE, 1, SIZE)
    with pytest.raises(ValueError, match="mask_kinds"):
        inpainting.build_inpainter("ggcn+ams", PROFILE, 1, SIZE, n_examples=4, mask_kinds=("blob",))
    with pytest.raises(TypeError, match="MaskedImageGenerator"):
        inpainting.InpaintingGGCN(coop.build_ggcn("ggcn+ams", PROFILE, 1, SIZE, n_examples=4).generator,
                                  make().energy, make().rule, make().sampler, lhs=False)
