"""The regularisation sweep of chapter 2 (ggcn.experiments.theory): is the JKO rule's stability its
Wasserstein geometry, or what any regulariser of the KL rule gives?

sweep:  every arm (KL, JKO at three λ, KL + clipping / R1 / energy penalty) at every Langevin step δ.
test:   at the largest δ, log10 final W2 of every arm vs KL, and of JKO vs every control (Welch / Fisher).
"""
import math

import numpy as np

from ggcn.experiments import particle_world as world
from ggcn.experiments.theory import control_tests, regularisation_sweep
from ggcn.measure import data


def test_the_sweep_runs_every_arm_at_every_step_size_and_seed():
    points = data.toy2d("gaussians8", 64)
    out = regularisation_sweep(points, (0.05, 0.3), seeds=[0, 1], iterations=4, n_particles=16, arms=("kl", "kl-r1"))
    final = np.asarray(out["final"])
    assert final.shape == (2, 2, 2) and (out["deltas"], out["arms"]) == ([0.05, 0.3], ["kl", "kl-r1"])
    assert np.asarray(out["failed"]).shape == (2, 2) and 0 <= np.min(out["failed"]) <= np.max(out["failed"]) <= 2
    assert not np.array_equal(final[0], final[1])  # δ reaches the sampler
    assert not np.array_equal(final[:, 0], final[:, 1])  # the arm reaches the rule


def test_every_arm_names_a_rule_the_plane_knows():
    assert {"kl", "jko-0.02", "jko-0.2", "jko-2"} | set(world.CONTROLS) == set(world.ARMS)
    for arm, (rule, _) in world.ARMS.items():
        assert rule in world.RULES or rule in world.CONTROLS, arm


def sweep_of(top: dict[str, list[float]], deltas=(0.07, 0.3)) -> dict:
    arms = list(top)
    small = [[0.2] * 5 for _ in arms]
    rows = [small, [top[a] for a in arms]] if deltas[1] > deltas[0] else [[top[a] for a in arms], small]
    return {"deltas": list(deltas), "arms": arms, "final": rows}


INF = [math.inf] * 5


def test_a_control_as_steady_as_jko_says_the_stability_is_not_the_geometry():
    side = control_tests(sweep_of({"kl": INF, "jko-0.2": [0.26, 0.27, 0.26, 0.25, 0.27], "kl-clip": INF,
                                   "kl-r1": [0.24, 0.25, 0.24, 0.23, 0.24], "kl-energy": [0.9, 0.8, 1.0, 0.7, 0.9]}))
    assert side["delta"] == 0.3 and side["matched"] == ["kl-r1"]
    assert side["vs_kl"]["kl-r1"]["result"] == "lower" and side["vs_kl"]["kl-clip"]["result"] != "lower"
    assert side["jko_vs"]["kl-energy"]["result"] == "lower"
    assert "an R1 penalty" in side["sentence"] and "plain regularisation" in side["sentence"]


def test_controls_that_steady_kl_less_than_jko_leave_the_geometry_standing():
    side = control_tests(sweep_of({"kl": INF, "jko-0.2": [0.26, 0.27, 0.26, 0.25, 0.27],
                                   "kl-r1": [0.9, 0.8, 1.0, 0.7, 0.9]}, deltas=(0.3, 0.07)))
    assert side["delta"] == 0.3 and side["matched"] == []  # the largest δ, wherever it stands in the list
    assert "closer to the data than each of them" in side["sentence"]


def test_without_a_jko_advantage_there_is_nothing_to_explain():
    side = control_tests(sweep_of({"kl": [0.2, 0.21, 0.2, 0.22, 0.2], "jko-0.2": [0.26, 0.27, 0.26, 0.25, 0.27],
                                   "kl-r1": [0.24, 0.25, 0.24, 0.23, 0.24]}))
    assert "nothing to explain" in side["sentence"]
