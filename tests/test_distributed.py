"""ggcn.core.distributed: two gloo processes on the CPU train wGCN with the unchanged training loop."""
from __future__ import annotations

import os
import socket
import time
from pathlib import Path

import pytest
import torch
import torch.multiprocessing as mp

from ggcn.config import get_profile
from ggcn.core.distributed import distribute, init_from_env, main_only, mean_over_ranks, rank_seed, shutdown
from ggcn.models.registry import build_model
from ggcn.core.train import load_checkpoint, train

WORLD = 2
ITERATIONS = 3


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _rank(rank: int, port: int, folder: Path) -> None:
    """One torchrun-like process: the environment torchrun would set, then the documented recipe."""
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK=str(rank),
                      WORLD_SIZE=str(WORLD), LOCAL_RANK=str(rank))
    torch.set_num_threads(1)
    ctx = init_from_env(device="cpu")
    try:
        torch.manual_seed(0)  # the same on both ranks: identical networks and particle banks before `distribute`
        model = distribute(build_model("wgcn", get_profile("smoke"), channels=1), ctx, seed=0)
        start = {k: v.clone() for k, v in model.energy.state_dict().items()}
        data = torch.rand(32, 1, 16, 16, generator=torch.Generator().manual_seed(0)) * 2 - 1
        history = train(model, data, ITERATIONS, batch_size=8, seed=0,
                        checkpoint_dir=main_only(folder / "checkpoints", ctx), checkpoint_every=ITERATIONS)
        torch.save({"start": start, "energy": model.energy.state_dict(), "bank": model.init.x,
                    "loss": history.column("loss"), "mean_rank": float(mean_over_ranks({"r": rank})["r"])},
                   folder / f"rank{rank}.pt")
    finally:
        shutdown()


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    folder = tmp_path_factory.mktemp("ddp")
    context = mp.spawn(_rank, args=(_free_port(), folder), nprocs=WORLD, join=False)
    deadline = time.monotonic() + 120
    while not context.join(timeout=1):
        if time.monotonic() > deadline:
            for process in context.processes:
                process.kill()
            pytest.fail("the two DDP processes did not finish within 120 s (a collective waiting forever?)")
    ranks = [torch.load(folder / f"rank{r}.pt", weights_only=False) for r in range(WORLD)]
    return folder, ranks


def test_both_ranks_end_with_the_same_trained_energy(run):
    _, (r0, r1) = run
    assert any(not torch.equal(r0["start"][k], r0["energy"][k]) for k in r0["energy"])  # it did learn
    for key in r0["energy"]:
        assert torch.equal(r0["energy"][key], r1["energy"][key]), key


def test_each_rank_keeps_its_own_particles(run):
    _, (r0, r1) = run
    assert r0["bank"].shape == r1["bank"].shape
    assert (r0["bank"] - r1["bank"]).abs().mean() > 0.1


def test_the_history_holds_the_mean_over_ranks(run):
    _, (r0, r1) = run
    assert r0["mean_rank"] == r1["mean_rank"] == pytest.approx(0.5)
    assert len(r0["loss"]) == ITERATIONS
    assert (r0["loss"] == r1["loss"]).all()


def test_only_rank_zero_writes_a_checkpoint_that_loads_without_ddp(run):
    folder, (r0, _) = run
    written = sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*.pt"))
    assert written == [f"checkpoints/iter_{ITERATIONS:06d}.pt", "rank0.pt", "rank1.pt"]
    plain = build_model("wgcn", get_profile("smoke"), channels=1)
    plain.load_state_dict(load_checkpoint(folder / "checkpoints" / f"iter_{ITERATIONS:06d}.pt")["model"])
    for key, value in plain.energy.state_dict().items():
        assert torch.equal(value, r0["energy"][key]), key


def test_rank_seeds_differ_across_ranks_and_seeds():
    seeds = {rank_seed(seed, rank) for seed in range(3) for rank in range(3)}
    assert len(seeds) == 9
    assert rank_seed(0, 1) == rank_seed(0, 1)


def test_init_from_env_outside_torchrun_says_how_to_launch(monkeypatch):
    for name in ("RANK", "WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT"):
        monkeypatch.delenv(name, raising=False)
    with pytest.raises(RuntimeError, match="torchrun --nproc_per_node"):
        init_from_env()


def test_distribute_needs_a_process_group():
    from ggcn.core.distributed import DistContext

    with pytest.raises(RuntimeError, match="init_from_env"):
        distribute(build_model("wgcn", get_profile("smoke"), channels=1), DistContext(0, 1, 0, "cpu", "gloo"))
