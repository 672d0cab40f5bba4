"""The one training loop: seeds, batches, callbacks, checkpoints, resume, divergence guard.

Any model with ``step(x[, y]) -> dict``, ``state_dict()``, ``load_state_dict()`` and a
``particles`` attribute trains here. A model built by :func:`ggcn.models.registry.build_model` also
carries an ``identity`` (name, shapes, options) that its checkpoints store and resume checks.
"""
from __future__ import annotations

import math
import os
import random
import tempfile
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator, Protocol

import numpy as np
import torch
from torch import Tensor
from tqdm import tqdm

FORMAT = "ggcn-checkpoint-v1"
BLOWUP = 1e10  # |energy|, |loss| or |particle| above this counts as divergence, though finite
# Settings a resumed run may change (to recover from divergence); anything else must match.
RESUMABLE_CHANGES = frozenset({
    "lr", "lr_generator", "lr_codes", "step_size", "grad_clip", "langevin_steps", "sample_steps", "reinit_prob",
})


class Model(Protocol):
    particles: Tensor | None

    def step(self, x_obs: Tensor, *args: Tensor) -> dict[str, Tensor]: ...
    def state_dict(self) -> dict[str, Any]: ...
    def load_state_dict(self, state: dict[str, Any]) -> None: ...


Callback = Callable[[int, Model, Tensor], "dict[str, float] | None"]


class DivergenceError(RuntimeError):
    """A run produced non-finite or exploding values; ``checkpoint`` holds the last good state."""

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


def check_seed(seed: Any) -> int:
    """A seed is an int in [0, 2³²); anything else is refused with what to pass."""
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or not 0 <= int(seed) < 2**32:
        raise ValueError(f"seed must be an integer in [0, 2**32), got {seed!r}")
    return int(seed)


def seed_everything(seed: int) -> None:
    seed = check_seed(seed)
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


def _shapes(state: Any, prefix: str = "") -> dict[str, tuple[int, ...]]:
    """``path → shape`` of every tensor in a (nested) state dict, optimizer moments left out."""
    if isinstance(state, Tensor):
        return {prefix: tuple(state.shape)}
    if isinstance(state, dict) and set(state) == {"state", "param_groups"}:
        return {}  # an optimizer's state: empty until its first step, so not part of a model's shape
    items = state.items() if isinstance(state, dict) else enumerate(state) if isinstance(state, (list, tuple)) else ()
    out: dict[str, tuple[int, ...]] = {}
    for key, value in items:
        out.update(_shapes(value, f"{prefix}/{key}" if prefix else str(key)))
    return out


def _atomic_save(obj: Any, path: Path) -> None:
    """``torch.save`` to a temporary file beside ``path``, flushed to disk, then renamed over it:
    a crash leaves either the old file or the new one, never a partial one."""
    handle, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(handle, "wb") as f:
            torch.save(obj, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def save_checkpoint(path: Path, model: Model, iteration: int, history: History, rng: dict | None = None,
                    batches: dict | None = None) -> Path:
    """Model (+ optimizer + particle bank), its identity and shapes, iteration, history, RNG and
    batch-stream state in one file, written atomically."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    state = model.state_dict()
    _atomic_save(
        {"format": FORMAT, "model": state, "identity": getattr(model, "identity", None), "shapes": _shapes(state),
         "iteration": iteration, "history": history.records, "rng": rng or _rng_state(), "batches": batches or {}},
        path,
    )
    return path


def load_checkpoint(path: str | Path) -> dict[str, Any]:
    """Read a checkpoint written by :func:`save_checkpoint`, with a clear error if it is not one."""
    path = Path(path)
    if path.is_dir():
        found = sorted(p.name for p in path.glob("*.pt"))
        hint = f"it holds {', '.join(found)}" if found else "it holds no .pt files"
        raise IsADirectoryError(f"checkpoint {path} is a folder, not a file ({hint}); pass one file, e.g. "
                                f"{path / (found[-1] if found else 'last_good.pt')}")
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint {path} does not exist; pass the path of a file written by ggcn.core.train")
    try:
        state = torch.load(path, map_location="cpu", weights_only=False)
    except Exception as err:
        raise ValueError(f"checkpoint {path} could not be read ({err}); it is corrupt or not a torch file") from err
    if not isinstance(state, dict) or state.get("format") != FORMAT:
        raise ValueError(f"{path} is not a ggcn checkpoint (expected format {FORMAT!r}); was it written by ggcn.core.train?")
    return state


def _identity_differences(saved: dict | None, model: Model) -> list[str]:
    """What differs between the model a checkpoint was written by and ``model`` (tunable settings aside)."""
    current = getattr(model, "identity", None)
    if saved is None or current is None:
        return []
    diffs = [f"{key}: checkpoint {saved.get(key)!r}, this model {current.get(key)!r}"
             for key in ("model", "channels", "image_size") if saved.get(key) != current.get(key)]
    options = sorted((set(saved["options"]) | set(current["options"])) - RESUMABLE_CHANGES)
    diffs += [f"option {key}: checkpoint {saved['options'].get(key, '(default)')!r}, "
              f"this model {current['options'].get(key, '(default)')!r}"
              for key in options if saved["options"].get(key) != current["options"].get(key)]
    return diffs


def _shape_differences(saved: dict[str, tuple[int, ...]], model: Model) -> list[str]:
    current = _shapes(model.state_dict())
    missing = [f"{key} is not in the checkpoint" for key in sorted(set(current) - set(saved))]
    return missing + [f"{key}: checkpoint {saved[key]}, this model {shape}"
                      for key, shape in sorted(current.items()) if key in saved and saved[key] != shape]


def check_resumable(state: dict[str, Any], model: Model, path: str | Path) -> None:
    """Refuse, before touching ``model``, a checkpoint written by another model, saying what differs.

    Learning rates, Langevin steps, step size, clip and re-initialisation may change
    (:data:`RESUMABLE_CHANGES`): that is how a diverged run is resumed more gently.
    """
    diffs = _identity_differences(state.get("identity"), model)
    diffs += _shape_differences(state.get("shapes") or _shapes(state["model"]), model)
    if diffs:
        raise ValueError(f"checkpoint {path} was written by a different model: " + "; ".join(diffs[:8])
                         + ". Build the model the checkpoint names (same name, options and image size), "
                           "or train without resume.")


def _optimizers(model: Any, depth: int = 2) -> list[torch.optim.Optimizer]:
    """Every optimizer the model holds (attributes, lists of them, and wrapped ggcn models)."""
    found = []
    for value in vars(model).values() if hasattr(model, "__dict__") else ():
        items = value if isinstance(value, (list, tuple)) else [value]
        for item in items:
            if isinstance(item, torch.optim.Optimizer):
                found.append(item)
            elif depth and type(item).__module__.startswith("ggcn") and hasattr(item, "state_dict"):
                found += _optimizers(item, depth - 1)
    return found


def load_into(model: Model, state: dict[str, Any]) -> None:
    """Load a checkpoint's model state, keeping the hyperparameters (learning rates, betas) the
    model was built with: the checkpoint supplies weights, moments and particles, not settings."""
    optimizers = _optimizers(model)
    settings = [[{k: v for k, v in g.items() if k != "params"} for g in opt.param_groups] for opt in optimizers]
    model.load_state_dict(state["model"])
    for opt, groups in zip(optimizers, settings):
        for group, kept in zip(opt.param_groups, groups):
            group.update(kept)


class Batches:
    """Endless batches: random subsets of an in-memory tensor, or cycling through a DataLoader.

    For a DataLoader the state is the RNG state at which the current epoch's iterator was made and
    how many batches it has given: a resumed run remakes that iterator and skips as many, so it
    sees the same batches (as long as the loader's dataset draws no random numbers of its own).
    """

    def __init__(self, data: Tensor | Iterable, batch_size: int, labels: Tensor | None):
        self.data, self.batch_size, self.labels = data, batch_size, labels
        self._epoch: Iterator | None = None
        self._epoch_rng: Tensor | None = None
        self._offset = 0

    def __next__(self) -> tuple[Tensor, ...]:
        if isinstance(self.data, Tensor):
            n = len(self.data)
            idx = torch.arange(n) if self.batch_size >= n else torch.randperm(n)[: self.batch_size]
            return (self.data[idx],) if self.labels is None else (self.data[idx], self.labels[idx])
        item = next(self._epoch, None) if self._epoch is not None else None
        if item is None:
            self._start_epoch()
            item = next(self._epoch, None)
            if item is None:
                raise ValueError("the data loader yields no batches; check its dataset and batch size")
        self._offset += 1
        return tuple(item) if isinstance(item, (list, tuple)) else (item,)

    def _start_epoch(self) -> None:
        self._epoch_rng, self._offset = torch.get_rng_state(), 0
        self._epoch = iter(self.data)

    def state_dict(self) -> dict[str, Any]:
        return {} if self._epoch_rng is None else {"epoch_rng": self._epoch_rng, "offset": self._offset}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Remake the epoch a checkpoint was in and skip the batches it had used (RNG is set after)."""
        if isinstance(self.data, Tensor) or not state:
            return
        torch.set_rng_state(state["epoch_rng"])
        self._start_epoch()
        for _ in range(state["offset"]):
            next(self._epoch)
        self._offset = state["offset"]


def _check_count(name: str, value: Any, minimum: int) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise ValueError(f"{name} must be an integer ≥ {minimum}, got {value!r}")


def _check_data(data: Tensor | Iterable, labels: Tensor | None) -> None:
    if isinstance(data, Tensor):
        if data.dim() < 2 or len(data) == 0:
            raise ValueError(f"data must be a batch of examples (N, ...) with N ≥ 1, got shape {tuple(data.shape)}")
        if data.is_floating_point() and not torch.isfinite(data).all():
            bad = int((~torch.isfinite(data)).flatten(1).any(1).sum())
            raise ValueError(f"{bad} of {len(data)} training examples contain NaN or inf; clean the data "
                             "(this is not a divergence of training)")
        if labels is not None and len(labels) != len(data):
            raise ValueError(f"labels has {len(labels)} entries for {len(data)} examples; pass one label per example")
    elif not hasattr(data, "__iter__"):
        raise TypeError(f"data must be a tensor of examples or an iterable of batches, got {type(data).__name__}")


def _check_fits(model: Model, shape: tuple[int, ...]) -> None:
    """Images of another size or channel count than the model was built for are refused."""
    identity = getattr(model, "identity", None)
    if identity is None or len(shape) != 4:
        return
    expected = (identity["channels"], identity["image_size"], identity["image_size"])
    if tuple(shape[1:]) != expected:
        raise ValueError(f"the data's images are {tuple(shape[1:])} (channels, height, width) but the model "
                         f"{identity['model']!r} was built for {expected}; load the data at that size "
                         "(the loaders' size= argument) or build the model for the data's size")


def ensure_writable(folder: Path) -> None:
    """Create ``folder`` and a scratch file in it; the ``OSError`` of a folder that cannot be written
    propagates, so callers fail before any work rather than at their first save."""
    folder.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryFile(dir=folder):
        pass


def _check_writable(folder: Path) -> None:
    try:
        ensure_writable(folder)
    except OSError as err:
        raise PermissionError(f"cannot write checkpoints to {folder} ({err.strerror or err}); "
                              "pass a checkpoint_dir you can write to") from err


def _trouble(values: dict[str, float], model: Model) -> str | None:
    """Why this iteration's values mean the run diverged, or ``None`` when they are healthy."""
    bad = {k: v for k, v in values.items() if not math.isfinite(v) or abs(v) > BLOWUP}
    if bad:
        return f"non-finite or exploding values {bad}"
    if model.particles is not None:
        if not torch.isfinite(model.particles).all():
            return "non-finite particles"
        if float(model.particles.abs().max()) > BLOWUP:
            return f"particles beyond ±{BLOWUP:g}"
    return None


def _diverged(it: int, why: str, ckpt: Path, good_iteration: int) -> DivergenceError:
    return DivergenceError(
        f"training diverged at iteration {it}: {why}. The last good state (iteration {good_iteration}, before the "
        f"bad step: an iteration's values show the update made before it) is saved in {ckpt}. To carry on more "
        "gently, build the same model with a smaller learning rate "
        "or Langevin step, or a gradient clip (e.g. build_model(..., lr=..., step_size=..., grad_clip=...)), and call "
        f"train(model, data, iterations, resume='{ckpt}'): the model as built sets those settings, the checkpoint "
        "its weights, moments, particles and random state.",
        ckpt,
    )


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
    """Run learning iterations up to ``iterations`` of ``model`` on ``data``.

    ``resume`` continues from a checkpoint of the same model (weights, optimizer moments,
    particles, RNG, batch stream, history); a resumed CPU run is bit-identical to an
    uninterrupted one for tensor data and for DataLoaders whose datasets draw no random
    numbers. Learning rates, Langevin steps and clip come from the model as built, so a
    diverged run can resume more gently. An iteration with non-finite or exploding values
    writes the state before it to ``checkpoint_dir`` (a temporary folder if none) and raises
    :class:`DivergenceError`, which says where and how to resume. Every argument is checked
    before any work is done.
    """
    _check_count("iterations", iterations, 0)
    _check_count("batch_size", batch_size, 1)
    _check_count("checkpoint_every", checkpoint_every, 0)
    if seed is not None:
        check_seed(seed)
    _check_data(data, labels)
    if isinstance(data, Tensor):
        _check_fits(model, tuple(data.shape))
    if checkpoint_dir is not None:
        _check_writable(Path(checkpoint_dir))
    batches = Batches(data, batch_size, labels)
    history, start = History(), 0
    if resume is not None:
        state = load_checkpoint(resume)
        check_resumable(state, model, resume)
        load_into(model, state)
        history, start = History(list(state["history"])), int(state["iteration"])
        batches.load_state_dict(state.get("batches", {}))
        _set_rng_state(state["rng"])
    elif seed is not None:
        seed_everything(seed)
    callbacks = list(callbacks)
    # The states at the start of the last two iterations: an iteration's values show the update
    # before it, so when they blow up the last good state is the start of the iteration before.
    starts = deque([_snapshot(model, start, batches)], maxlen=2)
    for it in tqdm(range(start, iterations), disable=not progress, desc="training", initial=start, total=iterations):
        batch = [b.to(device) for b in next(batches)]
        if it == start:
            _check_fits(model, tuple(batch[0].shape))
        if not isinstance(data, Tensor) and batch[0].is_floating_point() and not torch.isfinite(batch[0]).all():
            raise ValueError(f"the batch of iteration {it} contains NaN or inf pixels; clean the data "
                             "(this is not a divergence of training)")
        stats = model.step(*batch)
        record = {k: float(v) for k, v in stats.items()}
        why = _trouble(record, model)
        if why is not None:
            folder = Path(checkpoint_dir) if checkpoint_dir else Path(tempfile.mkdtemp(prefix="ggcn-diverged-"))
            good = starts[0]
            ckpt = save_checkpoint(folder / "last_good.pt", _Frozen(good["state"], model), good["iteration"],
                                   History(history.records[: good["iteration"]]),
                                   good["rng"], good["batches"])
            raise _diverged(it, why, ckpt, good["iteration"])
        record["iteration"] = it
        for cb in callbacks:
            record.update(cb(it, model, batch[0]) or {})
        history.records.append(record)
        starts.append(_snapshot(model, it + 1, batches))
        if checkpoint_dir and checkpoint_every and (it + 1) % checkpoint_every == 0:
            save_checkpoint(Path(checkpoint_dir) / f"iter_{it + 1:06d}.pt", model, it + 1, history,
                            batches=batches.state_dict())
    return history


def _snapshot(model: Model, iteration: int, batches: Batches) -> dict[str, Any]:
    return {"state": _clone(model.state_dict()), "rng": _rng_state(), "iteration": iteration,
            "batches": batches.state_dict()}


class _Frozen:
    """A stand-in for a model at a saved state (for writing the last good checkpoint)."""

    def __init__(self, state: dict[str, Any], model: Model):
        self._state, self.identity = state, getattr(model, "identity", None)

    def state_dict(self) -> dict[str, Any]:
        return self._state
