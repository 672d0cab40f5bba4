"""The one training loop: seeds, batches, callbacks, checkpoints, resume, divergence guard.

Any model with ``step(x[, y]) -> dict``, ``state_dict()``, ``load_state_dict()`` and a
``particles`` attribute trains here.
"""
from __future__ import annotations

import math
import random
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Protocol

import numpy as np
import torch
from torch import Tensor
from tqdm import tqdm

CHECKPOINT_KEYS = {"model", "iteration", "history", "rng", "format"}
FORMAT = "ggcn-checkpoint-v1"


class Model(Protocol):
    particles: Tensor | None

    def step(self, x_obs: Tensor, *args: Tensor) -> dict[str, Tensor]: ...
    def state_dict(self) -> dict[str, Any]: ...
    def load_state_dict(self, state: dict[str, Any]) -> None: ...


Callback = Callable[[int, Model, Tensor], "dict[str, float] | None"]


class DivergenceError(RuntimeError):
    """A run produced non-finite energies or particles; ``checkpoint`` holds the last good state."""

    def __init__(self, message: str, checkpoint: Path):
        super().__init__(message)
        self.checkpoint = checkpoint


@dataclass
class History:
    """One dict of floats per learning iteration."""

    records: list[dict[str, float]] = field(default_factory=list)

    def column(self, key: str) -> np.ndarray:
        return np.array([r.get(key, np.nan) for r in self.records], dtype=float)

    def __len__(self) -> int:
        return len(self.records)


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def _rng_state() -> dict[str, Any]:
    state = {"python": random.getstate(), "numpy": np.random.get_state(), "torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def _set_rng_state(state: dict[str, Any]) -> None:
    random.setstate(state["python"])
    np.random.set_state(state["numpy"])
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def _clone(obj: Any) -> Any:
    if isinstance(obj, Tensor):
        return obj.detach().clone()
    if isinstance(obj, dict):
        return {k: _clone(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return type(obj)(_clone(v) for v in obj)
    return obj


def save_checkpoint(path: Path, model: Model, iteration: int, history: History, rng: dict | None = None) -> Path:
    """Model (+ optimizer + particle bank), iteration, history and RNG state in one file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(
        {"format": FORMAT, "model": model.state_dict(), "iteration": iteration,
         "history": history.records, "rng": rng or _rng_state()},
        path,
    )
    return path


def load_checkpoint(path: str | Path) -> dict[str, Any]:
    """Read a checkpoint written by :func:`save_checkpoint`, with a clear error if it is not one."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint {path} does not exist; pass the path of a file written by ggcn.train")
    try:
        state = torch.load(path, map_location="cpu", weights_only=False)
    except Exception as err:
        raise ValueError(f"checkpoint {path} could not be read ({err}); it is corrupt or not a torch file") from err
    if not isinstance(state, dict) or state.get("format") != FORMAT:
        raise ValueError(f"{path} is not a ggcn checkpoint (expected format {FORMAT!r}); was it written by ggcn.train?")
    return state


def _batches(data: Tensor | Iterable, batch_size: int, labels: Tensor | None):
    """Endless batches: random subsets of an in-memory tensor, or cycling through a DataLoader."""
    if isinstance(data, Tensor):
        n = len(data)
        while True:
            idx = torch.arange(n) if batch_size >= n else torch.randperm(n)[:batch_size]
            yield (data[idx],) if labels is None else (data[idx], labels[idx])
    else:
        while True:
            for item in data:
                yield tuple(item) if isinstance(item, (list, tuple)) else (item,)


def _finite(stats: dict[str, Tensor], model: Model) -> bool:
    values = [float(v) for v in stats.values()]
    ok = all(math.isfinite(v) for v in values)
    return ok and (model.particles is None or bool(torch.isfinite(model.particles).all()))


def train(
    model: Model,
    data: Tensor | Iterable,
    iterations: int,
    *,
    batch_size: int = 64,
    labels: Tensor | None = None,
    seed: int | None = 0,
    callbacks: Iterable[Callback] = (),
    checkpoint_dir: str | Path | None = None,
    checkpoint_every: int = 0,
    resume: str | Path | None = None,
    progress: bool = False,
    device: str = "cpu",
) -> History:
    """Run ``iterations`` learning iterations of ``model`` on ``data``.

    ``resume`` continues from a checkpoint (model, optimizer, particles, RNG, history), so a
    resumed CPU run is bit-identical to an uninterrupted one. If an iteration yields a
    non-finite value, the last good state is written to ``checkpoint_dir`` (a temporary
    folder if none) and :class:`DivergenceError` says where.
    """
    history, start = History(), 0
    if resume is not None:
        state = load_checkpoint(resume)
        model.load_state_dict(state["model"])
        history, start = History(list(state["history"])), int(state["iteration"])
        _set_rng_state(state["rng"])
    elif seed is not None:
        seed_everything(seed)
    callbacks = list(callbacks)
    batches = _batches(data, batch_size, labels)
    good = (_clone(model.state_dict()), _rng_state(), start)
    for it in tqdm(range(start, iterations), disable=not progress, desc="training", initial=start, total=iterations):
        batch = [b.to(device) for b in next(batches)]
        stats = model.step(*batch)
        if not _finite(stats, model):
            path = Path(checkpoint_dir) if checkpoint_dir else Path(_tempdir())
            ckpt = save_checkpoint(path / "last_good.pt", _Frozen(good[0]), good[2], history, good[1])
            raise DivergenceError(
                f"training diverged at iteration {it}: non-finite energy, loss or particles "
                f"({ {k: float(v) for k, v in stats.items()} }). The last good state (iteration {good[2]}) "
                f"is saved in {ckpt}; resume from it with a smaller learning rate or Langevin step, "
                "or a gradient clip.",
                ckpt,
            )
        record = {k: float(v) for k, v in stats.items()}
        record["iteration"] = it
        for cb in callbacks:
            record.update(cb(it, model, batch[0]) or {})
        history.records.append(record)
        good = (_clone(model.state_dict()), _rng_state(), it + 1)
        if checkpoint_dir and checkpoint_every and (it + 1) % checkpoint_every == 0:
            save_checkpoint(Path(checkpoint_dir) / f"iter_{it + 1:06d}.pt", model, it + 1, history)
    return history


class _Frozen:
    """A stand-in model that only knows its saved state (for writing the last good checkpoint)."""

    def __init__(self, state: dict[str, Any]):
        self._state = state

    def state_dict(self) -> dict[str, Any]:
        return self._state


def _tempdir() -> str:
    import tempfile

    return tempfile.mkdtemp(prefix="ggcn-diverged-")
