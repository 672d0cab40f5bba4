"""Experiment runners: grids of runs give curves and samples of the right shape, same seeds give
the same runs, divergence is recorded instead of raised, and the summaries decide honestly."""
import math

import numpy as np
import pytest
import torch

from dataclasses import replace

from ggcn import config
from ggcn.config import get_profile, recipe
from ggcn.config import REGIMES
from ggcn.experiments.rules import (
    CURVES, Comparison, base_settings, compare_regimes, compare_rules, grid_settings, record_wgcn_claims, regime,
    run_one,
)
from ggcn.experiments.verdicts import INCONCLUSIVE, NOT_LEARNED, NOT_REPRODUCED, REPRODUCED, TIE, convergence, seed_summary
from ggcn.measure.datasets import from_uint8, to_uint8

TINY = get_profile("smoke", iterations=3, langevin_steps=2, batch_size=4, width=4)


def faces(size: int) -> torch.Tensor:
    """Four smooth 'images' in [−1, 1] (no file access needed)."""
    g = torch.Generator().manual_seed(size)
    return torch.tanh(torch.randn(4, 1, size, size, generator=g))


def test_uint8_round_trip_is_within_half_a_grey_level():
    x = torch.linspace(-1, 1, 2 * 8 * 8).view(2, 1, 8, 8)
    u = to_uint8(x)
    assert u.dtype == np.uint8 and u.min() == 0 and u.max() == 255
    assert (from_uint8(u) - x).abs().max() <= 1 / 255 + 1e-6


def test_grid_covers_base_and_three_times_base_lr_at_half_and_full_size():
    lrs, sizes = grid_settings(get_profile("teach"))
    assert lrs == (1e-3, 3e-3) and sizes == (16, 32)


def test_regimes_scale_the_profile_and_unknown_names_are_refused():
    assert regime("stable", TINY)["lr"] == TINY.lr
    assert regime("unstable", TINY)["lr"] > TINY.lr
    with pytest.raises(ValueError, match="unknown regime"):
        regime("wild", TINY)


def test_with_a_family_regimes_and_the_grid_scale_the_recipe():
    options = recipe("wgcn", "faces").options
    unstable = regime("unstable", TINY, "faces", ("gcn", "wgcn"))
    assert unstable == {k: f * options[k] for k, f in REGIMES["unstable"].items()}
    assert grid_settings(TINY, "faces")[0] == (options["lr"], 3 * options["lr"])


def test_compared_models_run_at_the_baselines_recipe(monkeypatch):
    """Only the learning rule may differ: wGCN's own (faster) recipe does not move the comparison."""
    faster = replace(recipe("wgcn", "faces"), options={**recipe("wgcn", "faces").options, "lr": 1.0})
    monkeypatch.setitem(config.RECIPES, ("wgcn", "faces"), faster)
    assert base_settings(TINY, "faces", ("gcn", "wgcn"))["lr"] == recipe("gcn", "faces").options["lr"]


def test_a_family_sets_the_default_learning_rate_and_runs_every_reading():
    cmp = compare_rules(["gcn"], faces(8), TINY, seeds=[0], iterations=1, family="faces")
    assert cmp.lrs == (recipe("gcn", "faces").options["lr"],)
    run = run_one("wgcn-proximal", faces(8), TINY, seed=0, iterations=2, family="faces")
    assert np.isfinite(run.curves["response_distance"]).all()


def test_run_one_records_every_curve_for_every_iteration():
    run = run_one("wgcn", faces(8), TINY, seed=0, n_keep=3)
    assert set(run.curves) == set(CURVES)
    for curve in run.curves.values():
        assert curve.shape == (3,) and np.isfinite(curve).all()
    assert run.particles.shape == (3, 1, 8, 8) and run.particles.dtype == np.uint8
    assert run.diverged_at == -1


def test_the_own_ruler_measures_on_the_models_filters_and_differs_from_the_fixed_bank():
    fixed = run_one("gcn", faces(8), TINY, seed=0, ruler="fixed")
    own = run_one("gcn", faces(8), TINY, seed=0, ruler="own")
    np.testing.assert_array_equal(fixed.particles, own.particles)  # measuring does not change the run
    assert not np.allclose(fixed.curves["response_distance"], own.curves["response_distance"])
    with pytest.raises(ValueError, match="unknown ruler"):
        run_one("gcn", faces(8), TINY, seed=0, ruler="vgg")


def test_same_seed_same_run_different_seed_different_run():
    a, b, c = (run_one("gcn", faces(8), TINY, seed=s) for s in (0, 0, 1))
    np.testing.assert_array_equal(a.curves["response_distance"], b.curves["response_distance"])
    np.testing.assert_array_equal(a.particles, b.particles)
    assert not np.array_equal(a.curves["response_distance"], c.curves["response_distance"])


def test_a_diverging_run_is_recorded_not_raised():
    # a Langevin step of 1e3 with an lr of 10 blows the particles up within a few iterations
    run = run_one("gcn", faces(8), get_profile("smoke", iterations=8, langevin_steps=5, batch_size=4, width=4),
                  seed=0, step_size=1e3, lr=10.0)
    assert 0 <= run.diverged_at < 8
    curve = run.curves["response_distance"]
    assert np.isnan(curve[run.diverged_at:]).all()
    assert np.isfinite(curve[: run.diverged_at]).all()


def test_compare_rules_fills_the_whole_grid_and_survives_a_round_trip():
    cmp = compare_rules(["gcn", "wgcn"], faces, TINY, seeds=[0, 1], lrs=[1e-3, 3e-3], sizes=[8, 16], n_keep=2)
    assert cmp.curves["response_distance"].shape == (2, 2, 2, 2, 3)
    assert cmp.samples[16].shape == (2, 2, 2, 2, 1, 16, 16)
    assert (cmp.diverged_at == -1).all()
    at = cmp.curves_at(lr=3e-3, size=16)
    assert set(at) == {"gcn", "wgcn"} and at["gcn"].shape == (2, 3)
    assert cmp.samples_at("wgcn", lr=3e-3, size=8).shape == (2, 1, 8, 8)
    back = Comparison.from_arrays(dict(np.load(_savez(cmp.to_arrays("x_")))), prefix="x_")
    assert back.models == cmp.models and back.lrs == cmp.lrs and back.sizes == cmp.sizes
    np.testing.assert_array_equal(back.curves["grad_norm"], cmp.curves["grad_norm"])
    np.testing.assert_array_equal(back.samples[8], cmp.samples[8])


def _savez(arrays):
    import io

    buf = io.BytesIO()
    np.savez_compressed(buf, **arrays)
    buf.seek(0)
    return buf


def test_compare_rules_refuses_bad_requests_with_advice():
    with pytest.raises(ValueError, match="unknown model"):
        compare_rules(["gan"], faces(8), TINY, seeds=[0])
    with pytest.raises(ValueError, match="pass a function size -> batch"):
        compare_rules(["gcn"], faces(8), TINY, seeds=[0], sizes=[8, 16])
    with pytest.raises(ValueError, match="at least one seed"):
        compare_rules(["gcn"], faces(8), TINY, seeds=[])
    cmp = compare_rules(["gcn"], faces(8), TINY, seeds=[0])
    with pytest.raises(KeyError, match="no runs at"):
        cmp.curves_at(lr=1.0)


def test_compare_regimes_runs_each_named_regime_at_its_own_lr():
    out = compare_regimes(["gcn"], faces(8), TINY, seeds=[0])
    assert set(out) == {"stable", "unstable"}
    assert out["stable"].lrs == (TINY.lr,) and out["unstable"].lrs == (regime("unstable", TINY)["lr"],)
    with pytest.raises(ValueError, match="regime sets lr"):
        compare_regimes(["gcn"], faces(8), TINY, seeds=[0], step_size=0.1)


def test_seed_summary_takes_the_tail_mean_and_the_area_per_seed():
    curves = np.array([[4.0, 2.0, 1.0, 1.0], [6.0, 4.0, 3.0, np.nan]])
    s = seed_summary(curves, last=0.5)
    assert s["final"][0] == 1.0 and s["auc"][0] == 2.0
    assert s["final"][1] == math.inf and s["auc"][1] == math.inf  # a diverged seed counts as worst


def test_verdict_reproduces_only_when_the_candidate_ends_lower_and_converges_faster():
    fast = seed_summary(np.array([[1.0, 0.5], [1.1, 0.6], [1.05, 0.55]]))
    slow = seed_summary(np.array([[3.0, 2.0], [3.2, 2.1], [3.1, 2.05]]))
    mixed = seed_summary(np.array([[0.9, 0.4], [3.3, 2.2], [0.3, 4.0]]))
    claim = convergence(fast, slow)
    assert claim.reproduced and claim.final == claim.auc == "lower"
    assert "lower than GCN's" in claim.text and "is shown here" in claim.text and claim.verdict == REPRODUCED
    claim = convergence(slow, fast)
    assert not claim.reproduced and claim.final == "higher" and "is contradicted here" in claim.text
    assert claim.verdict == NOT_REPRODUCED
    claim = convergence(mixed, slow)
    assert not claim.reproduced and claim.final == TIE
    assert "is not shown here, nor is its opposite" in claim.text and claim.verdict == INCONCLUSIVE
    assert convergence(fast, slow, learned=False).verdict == NOT_LEARNED


def test_ending_lower_without_converging_faster_is_not_the_claim():
    # lower at the end, but slower at first: the areas overlap
    late = seed_summary(np.array([[4.0, 1.0, 0.2, 0.2], [4.2, 1.2, 0.3, 0.3], [4.1, 1.1, 0.25, 0.25]]), last=0.25)
    base = seed_summary(np.array([[2.0, 1.0, 1.0, 1.0], [2.2, 1.2, 1.1, 1.1], [2.1, 1.1, 1.05, 1.05]]), last=0.25)
    claim = convergence(late, base)
    assert claim.final == "lower" and claim.auc != "lower" and not claim.reproduced


def _levels(gcn, wgcn, seeds=(1.0, 1.05, 0.95, 1.02, 0.98)):
    """A comparison whose GCN and wGCN curves are flat, one per seed a little off the given level."""
    from types import SimpleNamespace

    spread = np.array(seeds)[:, None]
    return SimpleNamespace(curves_at=lambda: {m: np.full((len(seeds), 8), level) * spread
                                              for m, level in (("gcn", gcn), ("wgcn", wgcn))})


def test_record_wgcn_claims_reads_verdicts_off_the_runs():
    """wGCN lower on every seed → Fig. 5 reproduced; GCN blows up in a harder regime while wGCN
    holds → Fig. 4 reproduced; if GCN blows up nowhere the sweep did not test the claim."""
    from ggcn.experiments import verdicts

    summaries = {"gcn": {"final": [2.0, 2.1, 1.9], "auc": [3.0, 3.1, 2.9]},
                 "wgcn": {"final": [1.0, 1.1, 0.9], "auc": [2.0, 2.1, 1.9]}}
    sweep = {"stable": _levels(1.0, 1.0), "lr5": _levels(1.0, 1.0), "unstable": _levels(50.0, 1.5)}
    metrics = record_wgcn_claims({}, summaries, _levels(1.0, 1.0), sweep)
    assert metrics["claims"]["faster-convergence"]["verdict"] == verdicts.REPRODUCED
    stability = metrics["claims"]["stability"]
    assert stability["verdict"] == verdicts.REPRODUCED and stability["broken"] == ["unstable"]
    assert stability["cells"]["lr5"]["verdict"] is None  # GCN did not break there: not judged
    calm = {"stable": _levels(1.0, 1.0), "unstable": _levels(1.5, 1.5)}
    metrics = record_wgcn_claims({}, {"gcn": summaries["wgcn"], "wgcn": summaries["gcn"]}, _levels(1.0, 1.0), calm)
    assert metrics["claims"]["faster-convergence"]["verdict"] == verdicts.NOT_REPRODUCED
    assert metrics["claims"]["stability"]["verdict"] == verdicts.INCONCLUSIVE


def test_stability_is_regime_dependent_when_wgcn_holds_in_one_broken_regime_and_fails_in_another():
    from ggcn.experiments import verdicts
    from ggcn.experiments.rules import record_stability

    sweep = {"stable": _levels(1.0, 1.0), "lr5": _levels(3.0, 1.2), "step3": _levels(3.0, 6.0)}
    stability = record_stability({}, sweep)["claims"]["stability"]
    assert stability["cells"]["lr5"]["verdict"] == verdicts.REPRODUCED
    assert stability["cells"]["step3"]["verdict"] == verdicts.NOT_REPRODUCED
    assert stability["verdict"] == verdicts.REGIME_DEPENDENT
    assert stability["wgcn_broken"] == ["lr5", "step3"] and "lr5 γ×5 δ×1" in stability["measured"]
    only_worse = record_stability({}, {"stable": _levels(1.0, 1.0), "step3": _levels(3.0, 6.0)})
    assert only_worse["claims"]["stability"]["verdict"] == verdicts.NOT_REPRODUCED


def test_other_weights_are_compared_with_gcn_in_their_regime_without_changing_the_verdict():
    from ggcn.experiments import verdicts
    from ggcn.experiments.rules import record_stability

    sweep = {"stable": _levels(1.0, 1.0), "unstable": _levels(3.0, 6.0)}
    variants = {"λ = 0.1": ("unstable", _levels(0.0, 1.5), "wgcn"), "λ = 10": ("unstable", _levels(0.0, 9.0), "wgcn")}
    stability = record_stability({}, sweep, variants=variants)["claims"]["stability"]
    assert stability["verdict"] == verdicts.NOT_REPRODUCED  # the recipe's wGCN decides
    assert stability["variants"]["λ = 0.1"]["vs_gcn"]["result"] == verdicts.LOWER
    assert stability["variants"]["λ = 10"]["vs_gcn"]["result"] == verdicts.HIGHER
    assert "λ = 0.1 − GCN in unstable" in stability["measured"]


def test_no_stability_verdict_when_gcn_did_not_learn_in_the_stable_regime():
    from types import SimpleNamespace

    from ggcn.experiments import verdicts
    from ggcn.experiments.rules import record_stability

    rising = np.linspace(1.0, 2.0, 8)[None].repeat(5, 0)  # every seed ends farther than it began
    stable = SimpleNamespace(curves_at=lambda: {"gcn": rising, "wgcn": rising})
    stability = record_stability({}, {"stable": stable, "unstable": _levels(50.0, 1.5)})["claims"]["stability"]
    assert stability["verdict"] == verdicts.NOT_LEARNED and stability["cells"]["stable"]["gcn"]["failed"] == 5


def test_the_graded_sweep_steps_one_factor_at_a_time_before_the_unstable_regime():
    from ggcn.config import STABILITY_SWEEP

    factors = [(REGIMES[r]["lr"], REGIMES[r]["step_size"]) for r in STABILITY_SWEEP]
    assert factors[0] == (1.0, 1.0) and factors[-1] == (30.0, 3.0)
    assert {lr for lr, step in factors if step == 1.0} == {1.0, 2.0, 3.0, 5.0}
    assert {step for lr, step in factors if lr == 1.0} == {1.0, 2.0, 3.0}


def test_chapter_3_study_caps_the_budget_and_gives_each_claim_its_seeds():
    from ggcn.experiments import verdicts, wgcn_study

    s = wgcn_study.study("teach", seed=2)
    assert s.profile.iterations == wgcn_study.ITERATIONS < get_profile("teach").iterations
    assert len(s.convergence_seeds) >= 8 and len(s.sweep_seeds) >= verdicts.CHEAP_SEEDS and s.seeds[0] == 2
    assert s.faces == "lfw" and wgcn_study.study("teach", data_root="/data").faces == "celeba"
    params = s.params()
    assert params["profile"] == "teach" and params["seed"] == 2 and params["iterations"] == wgcn_study.ITERATIONS
    assert set(wgcn_study.run_keys()) >= {"faces", "readings", "faces_paper", "grid"}
    ruler = s.ruler()  # the gates' face ruler, at the side of the chapter's faces; none on CelebA
    assert ruler.image_shape == (1, s.size, s.size) and ruler.check().passed
    assert wgcn_study.study("teach", data_root="/data").ruler() is None


class _MeanRuler:
    """A stand-in ruler: the primary score is the particles' mean pixel, the bar "below 0"."""

    name, primary = "mean-pixel", "kid"

    def score(self, x):
        return {"kid": float(x.mean())}

    def learned(self, scores):
        return scores["kid"] < 0


def _with_particles(comparison, pixel):
    """``comparison`` whose every final particle set is constant at ``pixel``."""
    import torch

    comparison.seeds = tuple(range(5))
    comparison.samples_at = lambda model, seed_index=0: torch.full((4, 1, 8, 8), pixel[model])
    return comparison


def test_with_a_ruler_the_gates_read_the_final_particles_not_the_distance():
    """Falling distances are not enough: GCN's stable particles fail the ruler's bar → no verdict on either
    claim; every cell keeps its scores and pass counts, and the measured text says how many seeds passed."""
    from ggcn.experiments import verdicts
    from ggcn.experiments.rules import record_stability

    bad_gcn = {"gcn": 0.5, "wgcn": -0.5}
    sweep = {"stable": _with_particles(_levels(1.0, 1.0), bad_gcn),
             "unstable": _with_particles(_levels(50.0, 1.5), bad_gcn)}
    summaries = {"gcn": {"final": [2.0, 2.1, 1.9], "auc": [3.0, 3.1, 2.9]},
                 "wgcn": {"final": [1.0, 1.1, 0.9], "auc": [2.0, 2.1, 1.9]}}
    metrics = record_wgcn_claims({}, summaries, sweep["stable"], sweep, ruler=_MeanRuler())
    assert metrics["claims"]["faster-convergence"]["verdict"] == verdicts.NOT_LEARNED
    stability = metrics["claims"]["stability"]
    assert stability["verdict"] == verdicts.NOT_LEARNED
    assert stability["cells"]["stable"]["gcn"]["passed"] == 0 and stability["cells"]["stable"]["wgcn"]["passed"] == 5
    assert stability["cells"]["unstable"]["gcn"]["quality"] == [0.5] * 5
    assert "the mean-pixel ruler's learned bar (GCN, wGCN): stable 0/5, 5/5" in stability["measured"]
    good = {"gcn": -0.5, "wgcn": -0.5}
    sweep = {name: _with_particles(c, good) for name, c in sweep.items()}
    assert record_stability({}, sweep, ruler=_MeanRuler())["claims"]["stability"]["verdict"] == verdicts.REPRODUCED
