"""The one runner, the one sweep and the one results type of every experiment.

:func:`fit` is seed → build → train → divergence handling: a run whose values turn non-finite is
restored to its last checkpoint and flagged, not raised. With a ``judge`` it checks ``n_eval`` shown
samples every ``eval_every`` iterations under a paused clock, so ``seconds_to_quality`` is the
training CPU time until the samples first passed. :func:`sweep` runs a function over the product of
named axes and stacks what it returns; :class:`Results` saves and loads itself as flat arrays.

What a model shows (:func:`shown`): FRAME, wFRAME, GCN and wGCN only their persistent chains or replay
buffer (the learned energy shapes the chains it was trained with; fresh draws from noise are a
different, worse distribution); every other model draws fresh samples (:func:`draw`): MGCN from the 1×1
average of a training image, GGCN from fresh codes, DCGAN from z ~ N(0, I). Samples are clamped to [−1, 1].
"""
from __future__ import annotations

import dataclasses
import itertools
import tempfile
import time
import typing
from dataclasses import dataclass, field
from typing import Any, Callable, Collection, Mapping, Sequence

import numpy as np
import torch
from torch import Tensor

from ggcn.config import Profile, recipe
from ggcn.core.chains import PersistentChains
from ggcn.core.train import DivergenceError, History, load_checkpoint, train
from ggcn.models.cooperative import GGCN_NAMES, example_index
from ggcn.core.learner import EnergyModel
from ggcn.models.registry import build_model

Criterion = Callable[[Tensor], bool]  # do these samples pass?
# How the book names every model it trains.
LABELS = {"frame": "FRAME", "wframe": "wFRAME", "gcn": "GCN", "wgcn": "wGCN", "wgcn-data": "wGCN (data)",
          "wgcn-proximal": "wGCN (proximal)", "mgcn": "MGCN", "wmgcn": "wMGCN", "ggcn": "GGCN",
          "ggcn-lhs": "GGCN−LHS", "ggcn+ams": "GGCN+AMS", "ggcn-lhs+ams": "GGCN−LHS+AMS", "dcgan": "DCGAN"}


@dataclass
class Fitted:
    """A trained model (its last good state if the run diverged) and what its run cost."""

    model: Any
    history: History
    diverged: bool
    seconds: float  # CPU seconds of training, checks excluded
    wall: float  # wall-clock seconds of the whole run
    checks: list[tuple[int, float, bool]] = field(default_factory=list)  # (iteration, CPU s, passed)

    @property
    def seconds_to_quality(self) -> float | None:
        """Training CPU seconds until the judge first passed; None if it never did."""
        return next((s for _, s, ok in self.checks if ok), None)

    @property
    def diverged_at(self) -> int:
        """The iteration whose values were non-finite, −1 if none."""
        return len(self.history) if self.diverged else -1

    def curve(self, key: str, iterations: int) -> np.ndarray:
        """One logged value per iteration, NaN after a divergence."""
        out = np.full(iterations, np.nan, dtype=np.float32)
        out[: len(self.history)] = self.history.column(key)[:iterations]
        return out


def check_grid(models: Sequence[str], known: Collection[str], seeds: Sequence[int]) -> None:
    """Refuse model names not in ``known`` and an empty list of seeds, saying what to give instead."""
    unknown = [m for m in models if m not in known]
    if unknown:
        raise ValueError(f"unknown model(s) {unknown}; choose from {sorted(known)}")
    if not seeds:
        raise ValueError("give at least one seed (three or more to compare models by the declared test)")


def fit(name: str | Callable[[], Any], x: Tensor, profile: Profile | None, seed: int = 0, *,
        iterations: int | None = None, batch_size: int | None = None, labels: Tensor | None = None,
        on_examples: bool | None = None, callbacks: Sequence[Callable] = (), judge: Criterion | None = None,
        eval_every: int = 0, n_eval: int = 300, device: str = "cpu", **overrides: Any) -> Fitted:
    """Build ``name`` for the images ``x`` (``build_model`` with ``overrides``, e.g. ``family`` for its
    recipe; or call a builder, seeded by ``seed``) and train it for ``iterations`` × ``batch_size`` (the
    profile's by default). ``labels`` make a GGCN conditional; ``on_examples`` (default: the GGCN family)
    steps on example indices, the learned codes of LHS. Without a profile give ``iterations`` and
    ``batch_size``.
    """
    if x.dim() < 2:
        raise ValueError(f"x must be a batch (N, ...), got shape {tuple(x.shape)}")
    codes = name in GGCN_NAMES if on_examples is None else on_examples
    if labels is not None and not (isinstance(name, str) and name in GGCN_NAMES):
        raise ValueError(f"{name!r} has no label input; only the GGCN family learns conditionally")
    if callable(name):
        if overrides:
            raise ValueError(f"a builder takes no build options; got {sorted(overrides)} (pass them to the builder)")
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            model = name()
    else:
        options = {**overrides, **({"labels": labels, "n_examples": len(x)} if codes else {})}
        model = build_model(name, profile, x.shape[1], x.shape[-1], device=device, seed=seed, **options)
    cpu_start, paused, checks, start = time.process_time(), 0.0, [], time.perf_counter()

    def check(it: int, m: Any, _: Tensor) -> None:  # its CPU time is paused: the checks are not training
        nonlocal paused
        if judge is not None and eval_every and (it + 1) % eval_every == 0:
            began = time.process_time()
            y = None if labels is None else labels[torch.arange(n_eval) % len(labels)].to(device)
            checks.append((it + 1, began - cpu_start - paused, bool(judge(shown(m, n_eval, y)))))
            paused += time.process_time() - began

    diverged = False
    with tempfile.TemporaryDirectory(prefix="ggcn-fit-") as tmp:
        try:
            history = train(model, x, profile.iterations if iterations is None else iterations,
                            batch_size=batch_size or profile.batch_size, seed=seed,
                            labels=example_index(x) if codes else None, callbacks=[*callbacks, check],
                            checkpoint_dir=tmp, device=device)
        except DivergenceError as err:
            state = load_checkpoint(err.checkpoint)
            model.load_state_dict(state["model"])
            history, diverged = History(list(state["history"])), True
    return Fitted(model, history, diverged, time.process_time() - cpu_start - paused, time.perf_counter() - start,
                  checks)


def fit_recipe(name: str, family: str, x: Tensor, profile: Profile, seed: int = 0, **kwargs: Any) -> Fitted:
    """:func:`fit` with the ``family`` recipe of ``name`` and its budget (iterations, batch size) at ``profile``."""
    plan = recipe(name, family)
    return fit(name, x, profile, seed, family=family, iterations=plan.iterations_at(profile),
               batch_size=plan.batch_size, **kwargs)


def sweep(run: Callable[..., Mapping[str, Any]], axes: Mapping[str, Sequence[Any]]) -> dict[str, np.ndarray]:
    """``run(**point)`` at every point of the product of the named ``axes`` (the last varies fastest);
    each value it returns is stacked into an array of shape (*axis lengths, *value shape)."""
    names, values = list(axes), [list(v) for v in axes.values()]
    if any(not v for v in values):
        raise ValueError(f"every axis needs at least one value, got {dict(axes)}")
    shape = tuple(len(v) for v in values)
    out: dict[str, np.ndarray] = {}
    for index in itertools.product(*(range(n) for n in shape)):
        for key, value in run(**{n: v[i] for n, v, i in zip(names, values, index)}).items():
            value = np.asarray(value.detach().cpu() if isinstance(value, Tensor) else value)
            if key not in out:
                out[key] = np.zeros(shape + value.shape, value.dtype)
            out[key][index] = value
    return out


class Results:
    """A dataclass of named axes (tuples), arrays and dicts of arrays that saves and loads itself as
    flat arrays (``np.savez``, artifacts): ``dict`` fields become ``<field>_<key>`` entries."""

    def to_arrays(self, prefix: str = "") -> dict[str, np.ndarray]:
        out = {}
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if isinstance(value, dict):
                out.update({f"{prefix}{f.name}_{k}": np.asarray(v) for k, v in value.items()})
            else:
                out[prefix + f.name] = np.array(value)
        return out

    @classmethod
    def from_arrays(cls, arrays: Mapping[str, np.ndarray], prefix: str = "") -> "Results":
        hints, values = typing.get_type_hints(cls), {}
        for f in dataclasses.fields(cls):
            hint, name = hints[f.name], prefix + f.name
            kind, args = typing.get_origin(hint) or hint, typing.get_args(hint)
            if kind is dict:  # dict[key type, array]: the entries <name>_<key>
                values[f.name] = {args[0](k[len(name) + 1:]): np.asarray(v) for k, v in arrays.items()
                                  if k.startswith(name + "_")}
            elif kind is tuple:  # tuple[item type, ...]: a named axis
                values[f.name] = tuple(args[0](v) for v in np.asarray(arrays[name]))
            elif kind in (int, float, str):
                values[f.name] = kind(np.asarray(arrays[name]))
            else:
                values[f.name] = np.asarray(arrays[name])
        return cls(**values)


def shows_chains(model: Any) -> bool:
    """True for models that can show only the chains they learned from (persistent or replay buffer)."""
    return isinstance(model, EnergyModel) and isinstance(model.init, PersistentChains)


def shown(model: Any, n: int, y: Tensor | None = None) -> Tensor:
    """What the model shows, on the CPU: ``n`` of its chains where :func:`shows_chains`, else fresh draws."""
    return model.chains(n).detach().cpu().clamp(-1, 1) if shows_chains(model) else draw(model, n, y)


def draw(model: Any, n: int, y: Tensor | None = None, batch: int = 500) -> Tensor:
    """``n`` fresh samples on the CPU in [−1, 1], in batches of at most ``batch`` (``y``: labels of a
    conditional GGCN)."""
    parts = []
    for start in range(0, n, batch):
        k = min(batch, n - start)
        parts.append(model.sample(k) if y is None else model.sample(k, y[start:start + k]))
    return torch.cat(parts).detach().cpu().clamp(-1, 1)

