"""The one training loop: seeds, batches, callbacks, checkpoints, resume and the divergence guard.

A model's ``identity`` (name, shapes, options; set by :func:`ggcn.models.registry.build_model`) goes into its
checkpoints, and resume checks it.
"""
from __future__ import annotations

import copy
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
BLOWUP = 1e10  # |value| or |particle| above this counts as divergence, though finite
# Settings a resumed run may change (to carry on more gently after a divergence); the rest must match.
RESUMABLE_CHANGES = frozenset({
    "lr", "lr_generator", "lr_codes", "step_size", "grad_clip", "langevin_steps", "sample_steps", "reinit_prob",
})


class Model(Protocol):
    """What the loop needs: ``step(x)`` or ``step(x, idx)`` (``idx``: ``train``'s ``labels``) and a state."""

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


def _check_count(name: str, value: Any, minimum: int) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise ValueError(f"{name} must be an integer ≥ {minimum}, got {value!r}")


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


def ensure_writable(folder: Path) -> None:
    """Create ``folder`` and a scratch file in it; the ``OSError`` of a folder that cannot be written
    propagates, so callers fail before any work rather than at their first save."""
    folder.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryFile(dir=folder):
        pass


def sync_to_disk(path: str | Path) -> None:
    """Flush the file or folder ``path`` to disk (a folder: the names in it)."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _atomic_save(obj: Any, path: Path) -> None:
    """``torch.save`` into a temporary file beside ``path``, then renamed over it: a crash leaves the old
    file or the new one, never part of one."""
    handle, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(handle, "wb") as f:
            torch.save(obj, f)
        sync_to_disk(tmp)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _is_optimizer(state: Any) -> bool:
    return isinstance(state, dict) and set(state) == {"state", "param_groups"}


def _shapes(state: Any, prefix: str = "") -> dict[str, tuple[int, ...]]:
    """``path → shape`` of every tensor in a nested state dict; optimizer states (empty until the first
    step) are left out."""
    if isinstance(state, Tensor):
        return {prefix: tuple(state.shape)}
    if _is_optimizer(state):
        return {}
    items = state.items() if isinstance(state, dict) else enumerate(state) if isinstance(state, (list, tuple)) else ()
    out: dict[str, tuple[int, ...]] = {}
    for key, value in items:
        out.update(_shapes(value, f"{prefix}/{key}".lstrip("/")))
    return out


def _with_settings(saved: Any, current: Any) -> Any:
    """``saved`` with the optimizer settings (learning rates, betas) of ``current``: a checkpoint supplies
    weights, moments and particles, the model as built its settings."""
    if _is_optimizer(saved) and _is_optimizer(current) and len(saved["param_groups"]) == len(current["param_groups"]):
        groups = [{**now, "params": old["params"]} for old, now in zip(saved["param_groups"], current["param_groups"])]
        return {**saved, "param_groups": groups}
    if isinstance(saved, dict) and isinstance(current, dict):
        return {k: _with_settings(v, current[k]) if k in current else v for k, v in saved.items()}
    if isinstance(saved, (list, tuple)) and isinstance(current, (list, tuple)) and len(saved) == len(current):
        return type(saved)(map(_with_settings, saved, current))
    return saved


def save_checkpoint(path: str | Path, model: Model, iteration: int, history: History, rng: dict | None = None,
                    batches: dict | None = None, state: dict | None = None) -> Path:
    """The model's state (or ``state``), identity and shapes, iteration, history, RNG and batch-stream
    state in one file, written atomically."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    state = model.state_dict() if state is None else state
    _atomic_save({"format": FORMAT, "model": state, "identity": getattr(model, "identity", None),
                  "shapes": _shapes(state), "iteration": iteration, "history": history.records,
                  "rng": rng or _rng_state(), "batches": batches or {}}, path)
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
        raise ValueError(f"{path} is not a ggcn checkpoint (expected format {FORMAT!r}); was it written by "
                         "ggcn.core.train?")
    return state


def check_resumable(state: dict[str, Any], model: Model, path: str | Path) -> None:
    """Refuse, before touching ``model``, a checkpoint written by another model, saying what differs
    (the settings in :data:`RESUMABLE_CHANGES` may differ)."""
    saved, now, diffs = state.get("identity"), getattr(model, "identity", None), []
    if saved and now:
        diffs = [f"{key}: checkpoint {saved.get(key)!r}, this model {now.get(key)!r}"
                 for key in ("model", "channels", "image_size") if saved.get(key) != now.get(key)]
        old, new = saved["options"], now["options"]
        diffs += [f"option {key}: checkpoint {old.get(key, '(default)')!r}, this model {new.get(key, '(default)')!r}"
                  for key in sorted((set(old) | set(new)) - RESUMABLE_CHANGES) if old.get(key) != new.get(key)]
    shapes, current = state.get("shapes") or _shapes(state["model"]), _shapes(model.state_dict())
    diffs += [f"{key} is not in the checkpoint" for key in sorted(set(current) - set(shapes))]
    diffs += [f"{key}: checkpoint {shapes[key]}, this model {shape}"
              for key, shape in sorted(current.items()) if key in shapes and shapes[key] != shape]
    if diffs:
        raise ValueError(f"checkpoint {path} was written by a different model: " + "; ".join(diffs[:8])
                         + ". Build the model the checkpoint names (same name, options and image size), "
                           "or train without resume.")


class Batches:
    """Endless batches of checked data: random subsets of an in-memory tensor, or cycling through a DataLoader.

    A loader's state is the RNG state its epoch's iterator was made at and how many batches it gave; a
    resumed run remakes that iterator and skips as many (exact if its dataset draws no random numbers).
    """

    def __init__(self, data: Tensor | Iterable, batch_size: int, labels: Tensor | None):
        if isinstance(data, Tensor):
            if data.dim() < 2 or len(data) == 0:
                raise ValueError(f"data must be a batch of examples (N, ...), N ≥ 1, got shape {tuple(data.shape)}")
            if data.is_floating_point() and not torch.isfinite(data).all():
                bad = int((~torch.isfinite(data)).flatten(1).any(1).sum())
                raise ValueError(f"{bad} of {len(data)} training examples contain NaN or inf; clean the data "
                                 "(this is not a divergence of training)")
            if labels is not None and len(labels) != len(data):
                raise ValueError(f"labels has {len(labels)} entries for {len(data)} examples; pass one per example")
        elif not hasattr(data, "__iter__"):
            raise TypeError(f"data must be a tensor of examples or an iterable of batches, got {type(data).__name__}")
        self.data, self.batch_size, self.labels = data, batch_size, labels
        self._epoch: Iterator | None = None
        self._state: dict[str, Any] = {}

    def __next__(self) -> tuple[Tensor, ...]:
        if isinstance(self.data, Tensor):
            n = len(self.data)
            idx = torch.arange(n) if self.batch_size >= n else torch.randperm(n)[: self.batch_size]
            return (self.data[idx],) if self.labels is None else (self.data[idx], self.labels[idx])
        item = next(self._epoch, None) if self._epoch is not None else None
        if item is None:
            self.load_state_dict({"epoch_rng": torch.get_rng_state(), "offset": 0})  # a new epoch
            item = next(self._epoch, None)
            if item is None:
                raise ValueError("the data loader yields no batches; check its dataset and batch size")
        self._state["offset"] += 1
        return tuple(item) if isinstance(item, (list, tuple)) else (item,)

    def state_dict(self) -> dict[str, Any]:
        return dict(self._state)

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if isinstance(self.data, Tensor) or not state:
            return
        torch.set_rng_state(state["epoch_rng"])
        self._epoch, self._state = iter(self.data), dict(state)
        for _ in range(state["offset"]):
            next(self._epoch)


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


def _snapshot(state: Any) -> Any:
    """A copy of a (nested) state that later steps cannot change: tensors cloned, containers rebuilt,
    other values deep-copied (several times faster than ``copy.deepcopy`` on tensor-heavy states)."""
    if isinstance(state, Tensor):
        return state.detach().clone()
    if isinstance(state, dict):
        out = type(state)((k, _snapshot(v)) for k, v in state.items())
        if hasattr(state, "_metadata"):  # an nn.Module state_dict's per-module versions
            out._metadata = copy.deepcopy(state._metadata)
        return out
    if type(state) in (list, tuple):
        return type(state)(_snapshot(v) for v in state)
    return copy.deepcopy(state)


def train(model: Model, data: Tensor | Iterable, iterations: int, *, batch_size: int = 64,
          labels: Tensor | None = None, seed: int | None = 0, callbacks: Iterable[Callback] = (),
          checkpoint_dir: str | Path | None = None, checkpoint_every: int = 0, resume: str | Path | None = None,
          progress: bool = False, device: str = "cpu") -> History:
    """Run ``model``'s learning iterations up to ``iterations`` on ``data``, every argument checked first.

    ``resume`` continues a checkpoint of the same model (on the CPU bit-identical to an uninterrupted run),
    with the learning rates, Langevin steps and clip of the model as built. A diverging iteration writes the
    state before it to ``checkpoint_dir`` (a temporary folder if none) and raises :class:`DivergenceError`.
    """
    _check_count("iterations", iterations, 0)
    _check_count("batch_size", batch_size, 1)
    _check_count("checkpoint_every", checkpoint_every, 0)
    if seed is not None:
        check_seed(seed)
    batches = Batches(data, batch_size, labels)
    if isinstance(data, Tensor):
        _check_fits(model, tuple(data.shape))
    if checkpoint_dir is not None:
        try:
            ensure_writable(Path(checkpoint_dir))
        except OSError as err:
            raise PermissionError(f"cannot write checkpoints to {checkpoint_dir} ({err.strerror or err}); "
                                  "pass a checkpoint_dir you can write to") from err
    history, start = History(), 0
    if resume is not None:
        state = load_checkpoint(resume)
        check_resumable(state, model, resume)
        model.load_state_dict(_with_settings(state["model"], model.state_dict()))
        history, start = History(list(state["history"])), int(state["iteration"])
        batches.load_state_dict(state.get("batches", {}))
        _set_rng_state(state["rng"])
    elif seed is not None:
        random.seed(seed)
        np.random.seed(seed)
        torch.manual_seed(seed)
    callbacks = list(callbacks)
    # An iteration's values show the update made before it, so when they blow up the last good state is
    # the start of the iteration before: keep the states at the start of the last two.
    starts: deque[tuple[int, dict, dict, dict]] = deque(maxlen=2)
    for it in tqdm(range(start, iterations), disable=not progress, desc="training", initial=start, total=iterations):
        starts.append((it, _snapshot(model.state_dict()), _rng_state(), batches.state_dict()))
        batch = [b.to(device) for b in next(batches)]
        if it == start:
            _check_fits(model, tuple(batch[0].shape))
        if not isinstance(data, Tensor) and batch[0].is_floating_point() and not torch.isfinite(batch[0]).all():
            raise ValueError(f"the batch of iteration {it} contains NaN or inf pixels; clean the data "
                             "(this is not a divergence of training)")
        record = {k: float(v) for k, v in model.step(*batch).items()}
        why = _trouble(record, model)
        if why is not None:
            good, state, rng, batch_state = starts[0]
            folder = Path(checkpoint_dir) if checkpoint_dir else Path(tempfile.mkdtemp(prefix="ggcn-diverged-"))
            ckpt = save_checkpoint(folder / "last_good.pt", model, good, History(history.records[:good]), rng,
                                   batch_state, state=state)
            raise DivergenceError(
                f"training diverged at iteration {it}: {why}. The last good state (iteration {good}, before the bad "
                f"step: an iteration's values show the update made before it) is saved in {ckpt}. To carry on more "
                "gently, build the same model with a smaller learning rate or Langevin step, or a gradient clip "
                "(build_model(..., lr=..., step_size=..., grad_clip=...)), and call train(model, data, iterations, "
                f"resume='{ckpt}'): the model as built sets those settings, the checkpoint the rest.", ckpt)
        record["iteration"] = it
        for cb in callbacks:
            record.update(cb(it, model, batch[0]) or {})
        history.records.append(record)
        if checkpoint_dir and checkpoint_every and (it + 1) % checkpoint_every == 0:
            save_checkpoint(Path(checkpoint_dir) / f"iter_{it + 1:06d}.pt", model, it + 1, history,
                            batches=batches.state_dict())
    return history
