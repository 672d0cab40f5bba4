"""The quality chapter's runners: samples come from the right place, conditional models see the right
data, the scores are the formulas they claim to be, the verdict follows the seeds, and the data-root
branch (CIFAR-10 + Inception) runs end to end on a fake CIFAR folder with a small stand-in network."""
from __future__ import annotations

import math
import pickle
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from torch import nn

from ggcn.measure import data
from ggcn.measure import evaluation
from ggcn import config
from ggcn.experiments import quality
from ggcn.experiments.runs import fit
from ggcn.experiments.verdicts import INCONCLUSIVE, NOT_LEARNED, NOT_REPRODUCED, REPRODUCED, VERDICTS, describe
from ggcn.config import get_profile, recipe
from ggcn.measure import datasets, scores
from ggcn.measure.proxy import fit_proxy
from ggcn.models.cooperative import GGCN
from ggcn.experiments.runs import shown
from ggcn.core.learner import EnergyModel
from ggcn.measure.rulers import digit_ruler

TINY = get_profile("smoke", batch_size=8, width=4, n_seeds=2, n_images=8, z_dim=4)
PLAN = replace(
    config.PLANS["smoke"], stability_iterations=2, stability_steps=1, table_iterations=2, table_steps=1,
    table_seeds=2, n_train=None, n_real=20, n_samples=10, conditional_classes=2, n_keep=10, proxy_iterations=5,
    standin_per_class=8, is_splits=2,
)


def blobs(n_per_class: int = 6, classes: int = 3, size: int = 8) -> tuple[torch.Tensor, torch.Tensor]:
    """Images whose brightness says their class (−0.8, 0, 0.8, ...), with a little noise."""
    g = torch.Generator().manual_seed(0)
    y = torch.arange(classes).repeat_interleave(n_per_class)
    level = -0.8 + 1.6 * y.float() / max(classes - 1, 1)
    x = level.view(-1, 1, 1, 1) + 0.05 * torch.randn(len(y), 1, size, size, generator=g)
    return x.clamp(-1, 1), y


class OneHot(nn.Module):
    """A 'classifier' that reads the class from pixel (0, 0) and is certain of it."""

    def __init__(self, classes: int):
        super().__init__()
        self.classes = classes

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return 100.0 * nn.functional.one_hot(x[:, 0, 0, 0].round().long(), self.classes).float()


# ----------------------------------------------------------------------------- plans and data


@pytest.mark.parametrize("name", sorted(config.PLANS))
def test_every_plan_splits_its_samples_evenly_over_the_classes_it_conditions_on(name):
    plan = config.plan_for(name)
    assert plan.n_samples % plan.conditional_classes == 0
    assert plan.table_seeds >= 2, "the claim compares models over seeds"
    standin_classes = 200 if name == "paper" else len(data.PHOTOS)  # Tiny ImageNet at paper, the stand-in below
    assert plan.n_samples % standin_classes == 0


def test_unknown_profiles_have_no_plan():
    with pytest.raises(ValueError, match="unknown quality plan"):
        config.plan_for("huge")


def test_split_holds_out_a_seeded_disjoint_part():
    x = torch.arange(30.0).view(30, 1, 1, 1)
    y = torch.arange(30) % 3
    x_train, y_train, real, real_y = datasets.split(x, y, 10, seed=1)
    assert len(real) == 10 and len(x_train) == 20
    assert not set(real.flatten().tolist()) & set(x_train.flatten().tolist())
    assert torch.equal(real_y, real.flatten().long() % 3)
    assert torch.equal(real, datasets.split(x, y, 10, seed=1)[2])
    with pytest.raises(ValueError, match="cannot hold out"):
        datasets.split(x, y, 30)


def test_first_classes_keeps_only_those_labels_in_training_and_reference():
    x, y = blobs(classes=4)
    ds = datasets.Labelled("blobs", x, y, x, y, ("a", "b", "c", "d")).first_classes(2)
    assert set(ds.y.tolist()) == set(ds.real_y.tolist()) == {0, 1} and ds.classes == ("a", "b")
    with pytest.raises(ValueError, match="cannot keep"):
        ds.first_classes(3)


def test_the_standin_is_an_image_folder_with_one_class_per_photo(tmp_path):
    folder = datasets.standin_folder(tmp_path, size=8, per_class=3, seed=0)
    x, y = data.load_images("folder", root=folder, size=8, labels=True)
    assert x.shape == (3 * len(data.PHOTOS), 3, 8, 8) and torch.bincount(y).tolist() == [3] * len(data.PHOTOS)
    means = torch.stack([x[y == c].mean(0) for c in range(len(data.PHOTOS))])
    assert torch.cdist(means.flatten(1), means.flatten(1)).triu(1).max() > 0.5  # the classes look different


def test_stability_sets_take_all_images_of_a_set_smaller_than_asked():
    sets = quality.stability_data(replace(PLAN, stability_size=8), n=2000)
    assert list(sets) == list(quality.STABILITY_SETS)
    assert [len(x) for x in sets.values()] == [2000, 100, 1797]  # crops are unlimited; 100 faces; 1,797 digits
    assert all(x.shape[1:] == (1, 8, 8) for x in sets.values())


def test_every_set_of_the_chapter_has_a_recipe_family_and_others_take_the_profile():
    assert [quality.family_of(title) for title in quality.STABILITY_SETS] == ["texture", "faces", "digits"]
    assert quality.family_of("cifar10") == "faces" and quality.family_of("blobs") is None


def test_model_options_name_the_family_and_only_what_the_plan_sets():
    assert quality.model_options("gcn", PLAN, "digits") == {"family": "digits", "langevin_steps": 1}
    assert quality.model_options("dcgan", PLAN, "digits") == {"family": "digits"}
    assert quality.model_options("gcn", replace(PLAN, table_steps=None)) == {}


def test_the_plans_langevin_steps_go_to_the_single_grid_energy_models_only():
    assert quality.model_options("wgcn", PLAN)["langevin_steps"] == 1
    assert "langevin_steps" not in quality.model_options("ggcn", PLAN)
    assert "langevin_steps" not in quality.model_options("mgcn", PLAN)


def test_a_plan_gives_named_models_their_own_iterations():
    plan = replace(PLAN, table_iterations=7, model_iterations=(("dcgan", 30),))
    assert plan.iterations_of("dcgan") == 30 and plan.iterations_of("gcn") == 7


def test_stability_runs_each_set_with_its_recipe(monkeypatch):
    seen = {}
    monkeypatch.setattr(quality, "compare_rules", lambda models, x, *a, **kw: seen.setdefault(kw["family"], kw))
    quality.stability({title: None for title in quality.STABILITY_SETS}, TINY, replace(PLAN, stability_steps=None),
                      [0])
    assert set(seen) == {"texture", "faces", "digits"}
    assert all("langevin_steps" not in kw and "step_size" not in kw for kw in seen.values())


def test_balanced_labels_give_each_class_its_share():
    assert quality.balanced_labels(3, 6).tolist() == [0, 0, 1, 1, 2, 2]
    with pytest.raises(ValueError, match="evenly"):
        quality.balanced_labels(3, 7)


# ----------------------------------------------------------------------------- training and sampling


@pytest.mark.parametrize("name", quality.TABLE_MODELS)
def test_every_table_model_trains_and_gives_the_samples_asked_for(name):
    x, _ = blobs()
    run = quality.generate(name, x, TINY, seed=0, n_samples=6, iterations=2, **quality.model_options(name, PLAN))
    assert run.x.shape == (6, 1, 8, 8) and torch.isfinite(run.x).all()
    assert (run.y == -1).all() and not run.diverged and run.seconds > 0


def test_persistent_chain_models_are_sampled_by_their_chains():
    x, _ = blobs()
    fitted = fit("gcn", x, TINY, seed=0, iterations=2, n_particles=5, langevin_steps=1)
    assert isinstance(fitted.model, EnergyModel)
    assert torch.equal(shown(fitted.model, 5), fitted.model.init.x.cpu().clamp(-1, 1))
    with pytest.raises(ValueError, match="the model keeps 5 chains; cannot show 6"):
        shown(fitted.model, 6)


def test_models_without_a_label_input_learn_one_model_per_class_on_that_class_only(monkeypatch):
    x, y = blobs()
    seen = []
    real_fit = quality.fit

    def spy(name, images, *args, **kwargs):
        seen.append((images.mean().item(), kwargs.get("labels")))
        return real_fit(name, images, *args, **kwargs)

    monkeypatch.setattr(quality, "fit", spy)
    run = quality.generate("mgcn", x, TINY, seed=0, n_samples=6, iterations=1, y=y, langevin_steps=1)
    assert [round(m, 1) for m, _ in seen] == [-0.8, 0.0, 0.8]  # one fit per class, on that class's images
    assert all(labels is None for _, labels in seen)
    assert run.y.tolist() == [0, 0, 1, 1, 2, 2]


def test_ggcn_is_one_labelled_model_and_samples_each_class():
    x, y = blobs()
    run = quality.generate("ggcn", x, TINY, seed=0, n_samples=6, iterations=2, y=y, langevin_steps=1)
    assert run.y.tolist() == [0, 0, 1, 1, 2, 2] and run.x.shape == (6, 1, 8, 8)
    fitted = fit("ggcn", x, TINY, seed=0, iterations=1, labels=y, langevin_steps=1)
    assert isinstance(fitted.model, GGCN) and fitted.model.conditional
    with pytest.raises(ValueError, match="no label input"):
        fit("gcn", x, TINY, seed=0, iterations=1, n_particles=6, labels=y)


def test_a_diverging_run_is_restored_and_flagged_not_raised():
    x, _ = blobs()
    fitted = fit("gcn", x, replace(TINY, batch_size=4), seed=0, iterations=8, n_particles=4,
                 langevin_steps=5, step_size=1e3, lr=10.0)
    assert fitted.diverged
    assert torch.isfinite(shown(fitted.model, 4)).all()


# ----------------------------------------------------------------------------- scores


def test_proxy_is_is_one_for_a_single_class_and_k_for_k_certain_balanced_classes():
    k = 4
    balanced = torch.arange(k).repeat(6).float().view(-1, 1, 1, 1).expand(-1, 1, 2, 2)
    one_class = torch.zeros(20, 1, 2, 2)
    assert scores.proxy_inception_score(OneHot(k), balanced)[0] == pytest.approx(k, rel=1e-6)
    assert scores.proxy_inception_score(OneHot(k), one_class)[0] == pytest.approx(1.0, abs=1e-6)
    mean, sd = scores.proxy_inception_score(OneHot(k), balanced, splits=2)
    assert mean == pytest.approx(k, rel=1e-6) and sd == pytest.approx(0.0, abs=1e-6)
    with pytest.raises(ValueError, match="splits"):
        scores.proxy_inception_score(OneHot(k), balanced, splits=0)


def test_proxy_scorer_gives_fid_kid_is_and_label_accuracy_only_for_labelled_samples():
    x, y = blobs(n_per_class=20)
    ds = datasets.Labelled("blobs", x, y, x, y, ("a", "b", "c"))
    scorer = scores.ProxyScorer(fit_proxy(ds.x, ds.y, iterations=60), x)
    same = scorer(x, y)
    assert same["proxy_fid"] == pytest.approx(0.0, abs=1e-3) and same["label_accuracy"] == 1.0
    assert same["proxy_is"] > 2.5  # three confidently separated classes
    flat = scorer(torch.zeros_like(x), torch.full((len(x),), -1))
    assert "label_accuracy" not in flat and flat["proxy_fid"] > 1.0 and flat["proxy_is"] < 1.5
    halves = scores.ProxyScorer(scorer.classifier, x[::2])  # KID: the other half of the data is near 0 (the
    other, flat = halves(x[1::2], y[1::2])["proxy_kid"], halves(torch.zeros_like(x), y)["proxy_kid"]  # unbiased
    assert flat > 1.0 and abs(other) < 0.2 * flat  # estimate may go below 0), a flat set is far


def test_the_proxy_scores_are_checked_on_the_digit_rulers_reference_rows():
    ruler = digit_ruler(0, 8, n_held_out=40, steps=20)
    x, y = ruler.train_images, torch.arange(len(ruler.train_images)) % 10
    scorer = scores.ProxyScorer(fit_proxy(x, y, iterations=60), ruler.held_out)
    proxy = quality.proxy_references(scorer, ruler.rows())
    assert set(proxy["references"]) == set(ruler.rows())
    assert set(proxy["check"]) == set(quality.PROXY_SCORES) == set(proxy["passed"])
    refs = proxy["references"]
    for key in ("proxy_fid", "proxy_kid"):  # held-out digits are closest to the held-out reference
        assert refs["real"][key] < min(refs[row][key] for row in ("noise", "flat", "mean"))
        assert ("ordering holds" in proxy["check"][key]) == proxy["passed"][key]


def test_the_digit_rulers_bar_for_conditional_samples_asks_for_the_classes_drawn():
    ruler = digit_ruler(0, 8, n_held_out=40, steps=20)
    three = {"recognised": 0.9, "classes": 3.0}
    assert ruler.learned(three, n_classes=3) and not ruler.learned(three)
    assert not ruler.learned({"recognised": 0.5, "classes": 10.0})


def test_the_digit_ruler_scorer_reports_the_rulers_numbers():
    ruler = digit_ruler(0, 8, n_held_out=40, steps=20)
    numbers = scores.DigitRulerScorer(ruler)(ruler.held_out * 2, torch.full((40,), -1))  # clamped first
    expected = ruler.score(ruler.held_out)
    assert numbers == {"ruler_recognised": expected["recognised"], "ruler_classes": expected["classes"],
                       "ruler_learned": float(ruler.learned(expected))}


def test_with_a_family_a_table_model_takes_its_recipe():
    x, _ = blobs()
    fitted = fit("wgcn", x, TINY, seed=0, iterations=1, n_particles=4, family="digits", langevin_steps=1)
    options = recipe("wgcn", "digits").options
    assert fitted.model.sampler.sigma == options["sigma"] and fitted.model.energy.scale == options["energy_scale"]


def test_per_seed_values_are_described_as_mean_and_sd_without_exponents():
    assert describe([1000.0, 1060.0]) == "1030 ± 30"
    assert describe([0.5, 0.7]) == "0.6 ± 0.1"
    assert describe([12.34, 12.34]) == "12.3 ± 0"
    assert describe([1.0, 1.0000026]) == "1 ± 0"
    assert describe([0.25]) == "0.25 (one seed)"  # no spread is claimed from a single run


def test_metric_labels_never_call_a_proxy_fid_or_is():
    for metric in ("proxy_fid", "proxy_is", "label_accuracy"):
        assert quality.metric_label(metric, "digits").endswith("(digits classifier)")
    assert quality.metric_label("proxy_fid", "digits").startswith("proxy FID")
    assert quality.metric_label("inception_is", "cifar10") == "IS (Inception-v3)"


# ----------------------------------------------------------------------------- the table and the verdict


def table_with(values: dict[str, list[float]], metric: str = "proxy_fid") -> quality.Table:
    models = tuple(values)
    n = len(next(iter(values.values())))
    return quality.Table(models, tuple(range(n)), {metric: np.array([values[m] for m in models])},
                         np.zeros((len(models), 1, 1, 8, 8), np.uint8), -np.ones((len(models), 1), int),
                         np.zeros((len(models), n), bool), np.ones((len(models), n)))


GOOD, BAD = [10.0, 11.0, 10.5], [50.0, 52.0, 51.0]


@pytest.mark.parametrize("cand, base, expected", [
    (GOOD, BAD, REPRODUCED), (BAD, GOOD, NOT_REPRODUCED), ([10.0, 60.0, 30.0], BAD, INCONCLUSIVE),
])
def test_the_verdict_needs_every_ggcn_variant_to_beat_every_baseline_beyond_the_seeds(cand, base, expected):
    values = {m: list(cand) for m in quality.CANDIDATES} | {m: list(base) for m in quality.BASELINES}
    verdict, pairs = quality.table_verdict({"unconditional": table_with(values)}, "proxy_fid")
    assert verdict == expected
    assert len(pairs["unconditional"]) == len(quality.CANDIDATES) * len(quality.BASELINES)


def test_one_baseline_beating_one_variant_is_enough_to_refute():
    values = {m: GOOD for m in quality.CANDIDATES} | {m: BAD for m in quality.BASELINES}
    values["dcgan"] = [1.0, 1.2, 1.1]
    assert quality.table_verdict({"conditional": table_with(values)}, "proxy_fid")[0] == NOT_REPRODUCED


def test_a_baseline_below_the_digit_rulers_bar_gives_no_verdict():
    values = {m: GOOD for m in quality.CANDIDATES} | {m: BAD for m in quality.BASELINES}
    table = table_with(values)
    table.scores["ruler_learned"] = np.array([[1.0, 1.0, 1.0] if m != "dcgan" else [0.0, 0.0, 1.0]
                                              for m in table.models])
    verdict, pairs = quality.table_verdict({"unconditional": table}, "proxy_fid")
    assert verdict == NOT_LEARNED
    assert pairs["unconditional"]["ggcn vs gcn"] == REPRODUCED
    assert pairs["unconditional"]["ggcn vs dcgan"] == NOT_LEARNED


def test_for_a_score_where_higher_is_better_the_comparison_is_mirrored():
    values = {m: BAD for m in quality.CANDIDATES} | {m: GOOD for m in quality.BASELINES}  # higher IS for GGCN
    assert quality.table_verdict({"unconditional": table_with(values, "proxy_is")}, "proxy_is")[0] == REPRODUCED


def test_quality_table_scores_every_model_and_seed_and_survives_a_round_trip():
    x, y = blobs(n_per_class=10)
    ds = datasets.Labelled("blobs", x, y, x, y, ("a", "b", "c"))
    calls = []

    def scorer(fake, labels):
        calls.append(labels.tolist())
        return {"proxy_fid": float(fake.mean())}

    table = quality.quality_table(("gcn", "dcgan"), ds, TINY, replace(PLAN, n_samples=6, n_keep=3), [0, 1], scorer,
                                  conditional=True)
    assert table.scores["proxy_fid"].shape == (2, 2) and len(calls) == 4
    assert all(c == [0, 0, 1, 1, 2, 2] for c in calls)
    assert table.samples.shape == (2, 3, 1, 8, 8) and table.sample_labels[0].tolist() == [0, 1, 2]
    back = quality.Table.from_arrays(table.to_arrays("p_"), "p_")
    assert back.values("proxy_fid") == table.values("proxy_fid") and back.models == table.models
    with pytest.raises(ValueError, match="unknown model"):
        quality.quality_table(("gan",), ds, TINY, PLAN, [0], scorer, conditional=False)


# ----------------------------------------------------------------------------- the whole chapter, data-root branch


def write_cifar(root: Path, per_batch: int = 12, n_test: int = 30) -> None:
    """The CIFAR-10 python layout with random 32×32 images whose colour depends on the label."""
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for name, n in [*((f"data_batch_{i}", per_batch) for i in range(1, 6)), ("test_batch", n_test)]:
        labels = [i % 10 for i in range(n)]
        planes = np.stack([np.full(3072, 25 * y, np.uint8) for y in labels])
        noise = rng.integers(0, 20, planes.shape, dtype=np.uint8)
        batch = {b"labels": labels, b"data": planes + noise}
        (folder / name).write_bytes(pickle.dumps(batch))
    meta = {b"label_names": [f"class{i}".encode() for i in range(10)]}
    (folder / "batches.meta").write_bytes(pickle.dumps(meta))


def write_tiny_imagenet(root: Path, classes: int = 2, per_class: int = 10) -> None:
    folder = root / "tiny-imagenet-200"
    wnids = [f"n{i:08d}" for i in range(classes)]
    (folder / "val" / "images").mkdir(parents=True)
    (folder / "wnids.txt").write_text("\n".join(wnids))
    notes = []
    for c, w in enumerate(wnids):
        (folder / "train" / w / "images").mkdir(parents=True)
        for i in range(per_class):
            colour = (200 * c, 50, 255 - 200 * c)
            Image.new("RGB", (64, 64), colour).save(folder / "train" / w / "images" / f"{w}_{i}.JPEG")
            Image.new("RGB", (64, 64), colour).save(folder / "val" / "images" / f"val_{w}_{i}.JPEG")
            notes.append(f"val_{w}_{i}.JPEG\t{w}\t0\t0\t64\t64")
    (folder / "val" / "val_annotations.txt").write_text("\n".join(notes))


class SmallInception(nn.Module):
    """Stands in for Inception-v3 in plumbing tests: uint8 RGB in, (16 features, 10 logits) out."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.features = nn.Sequential(nn.Conv2d(3, 16, 3, stride=2), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten())
        self.logits = nn.Linear(16, 10)

    def forward(self, x):
        f = self.features(x.float() / 255)
        return f, self.logits(f)


@pytest.fixture
def small_inception(monkeypatch, tmp_path):
    weights = tmp_path / "small-inception.pth"
    weights.write_bytes(b"not the standard weights")
    monkeypatch.setattr(scores, "inception_weights", lambda path=None: weights)
    monkeypatch.setattr(evaluation, "_inception", lambda path, device: SmallInception())
    return weights


def test_the_data_root_branch_reads_cifar10_and_scores_with_inception(tmp_path, small_inception):
    write_cifar(tmp_path / "data")
    metrics, arrays = quality.quality_chapter(TINY, seed=0, data_root=tmp_path / "data", plan=PLAN)
    table = metrics["table"]
    assert table["dataset"] == "cifar10" and table["inception"]["available"]
    assert table["n_train"] == 60 and table["n_real"] == PLAN.n_real
    numbers = table["scores"]["unconditional"]
    assert {"proxy_fid", "proxy_is", "inception_fid", "inception_is", "inception_kid"} <= set(numbers)
    assert all(math.isfinite(v) for v in numbers["inception_is"]["ggcn"])
    assert table["real"]["unconditional"]["standard_weights"] == 0.0  # the stand-in network is not the real one
    claim = metrics["claims"]["quality-table"]
    assert claim["verdict"] in VERDICTS and claim["metric"] == "IS (Inception-v3)" and claim["dataset"] == "cifar10"
    runs = quality.ChapterRuns.from_artifact(metrics, arrays)
    assert runs.tables["unconditional"].samples.shape[1:] == (PLAN.n_keep, 3, 32, 32)
    assert set(runs.stability) == set(metrics["stability"]["sets"])
    assert set(runs.tables) == {"unconditional"} and not runs.tiny  # the conditional chapter runs the rest


def test_the_conditional_chapter_runs_the_labelled_table_and_fig_8_without_the_stability_part(tmp_path):
    write_cifar(tmp_path / "data")
    metrics, arrays = quality.quality_chapter(TINY, seed=0, setting="conditional", data_root=tmp_path / "data",
                                              plan=PLAN)
    assert set(metrics["table"]["scores"]) == {"conditional"} and "stability" not in metrics
    assert metrics["claims"]["quality-table-conditional"]["verdict"] in VERDICTS
    assert metrics["tiny"]["dataset"] == "stand-in" and "not found" in metrics["tiny"]["note"]
    runs = quality.ChapterRuns.from_artifact(metrics, arrays)
    assert set(runs.tables) == {"conditional"} and set(runs.tiny) == set(quality.SETTINGS) and not runs.stability


def test_a_quality_chapter_names_its_setting():
    with pytest.raises(ValueError, match="setting must be one of"):
        quality.quality_chapter(TINY, setting="labelled", plan=PLAN)


def test_without_inception_weights_the_chapter_says_why_and_scores_with_proxies_only(tmp_path, monkeypatch):
    write_cifar(tmp_path / "data")
    write_tiny_imagenet(tmp_path / "data")

    def unavailable(path=None):
        raise evaluation.InceptionUnavailable("no weights on this machine")

    monkeypatch.setattr(scores, "inception_weights", unavailable)
    metrics, _ = quality.quality_chapter(TINY, seed=0, setting="conditional", data_root=tmp_path / "data", plan=PLAN)
    assert metrics["table"]["inception"] == {"available": False, "reason": "no weights on this machine"}
    assert not any(k.startswith("inception") for k in metrics["table"]["scores"]["conditional"])
    assert metrics["claims"]["quality-table-conditional"]["metric"] == "proxy FID (cifar10 classifier)"
    assert metrics["tiny"]["dataset"] == "tiny-imagenet" and metrics["tiny"]["classes"] == ["n00000000", "n00000001"]
