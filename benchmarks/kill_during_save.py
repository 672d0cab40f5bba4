"""Crash test: kill a training run (SIGKILL) again and again, many times while it writes a checkpoint.

    .venv/bin/python benchmarks/kill_during_save.py [--kills 20] [--out DIR]

A child process trains a wide GCN (large checkpoints, so a save takes a while) with a checkpoint
every iteration into one folder, each run resuming from the newest checkpoint there. The parent
kills it at random moments, half of them aimed inside ``torch.save`` (the child prints a line
before each save). After every kill it checks that every ``iter_*.pt`` in the folder loads and
that the number of good checkpoints never went down. It prints one line per kill and a summary.
"""
from __future__ import annotations

import argparse
import random
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

CHILD = r"""
import sys, torch
from pathlib import Path
import ggcn.core.train as T
from ggcn.config import get_profile
from ggcn.models.registry import build_model

folder = Path(sys.argv[1])
model = build_model("gcn", get_profile("smoke", width=256, langevin_steps=1), channels=1, image_size=16)
saved = T.save_checkpoint
def announced(*args, **kwargs):
    print("saving", flush=True)
    return saved(*args, **kwargs)
T.save_checkpoint = announced
done = sorted(folder.glob("iter_*.pt"))
x = torch.rand(32, 1, 16, 16) * 2 - 1
print("ready", flush=True)
T.train(model, x, 10**6, batch_size=16, checkpoint_dir=folder, checkpoint_every=1,
        resume=done[-1] if done else None)
"""


def good_checkpoints(folder: Path) -> tuple[int, list[str]]:
    """How many ``iter_*.pt`` load, and the names of those that do not."""
    from ggcn.core.train import load_checkpoint

    ok, broken = 0, []
    for path in sorted(folder.glob("iter_*.pt")):
        try:
            load_checkpoint(path)
            ok += 1
        except (ValueError, OSError):
            broken.append(path.name)
    return ok, broken


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kills", type=int, default=20)
    parser.add_argument("--out", default=None, help="checkpoint folder (default: a temporary one)")
    args = parser.parse_args()
    folder = Path(args.out or tempfile.mkdtemp(prefix="ggcn-kills-"))
    folder.mkdir(parents=True, exist_ok=True)
    rng, lost, broken_total, previous = random.Random(0), 0, 0, 0
    for k in range(args.kills):
        child = subprocess.Popen([sys.executable, "-c", CHILD, str(folder)], stdout=subprocess.PIPE, text=True)
        while child.stdout.readline().strip() != "ready":
            pass
        during_save = k % 2 == 0
        for _ in range(rng.randint(1, 4)):  # let a few saves happen
            while child.stdout.readline().strip() != "saving":
                pass
        time.sleep(rng.uniform(0.0, 0.05) if during_save else rng.uniform(0.1, 0.6))
        child.send_signal(signal.SIGKILL)
        child.wait()
        ok, broken = good_checkpoints(folder)
        lost += ok < previous
        broken_total += len(broken)
        print(f"kill {k + 1:2d} ({'in a save' if during_save else 'anywhere '}): {ok:3d} good checkpoints, "
              f"{len(broken)} broken {broken or ''}", flush=True)
        previous = ok
    leftovers = len(list(folder.glob(".*.tmp")))
    print(f"\n{args.kills} kills: {broken_total} broken checkpoints seen, good count went down {lost} times; "
          f"{leftovers} temporary files left by killed saves (hidden, never read) in {folder}")
    return 0 if broken_total == 0 and lost == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
