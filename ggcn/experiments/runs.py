"""Train a model by its recipe and watch its samples: CPU seconds and time-to-quality.

:func:`fit_recipe` builds ``name`` with the recipe of a data family (:func:`ggcn.config.recipe`),
trains it with the one training loop and, every ``eval_every`` iterations, draws fresh samples and
asks a ruler (:mod:`ggcn.measure.rulers`) whether they pass its "learned" bar. The CPU seconds of those
checks are not counted as training time, so ``seconds_to_quality`` is the training CPU time spent
until the samples first passed.

What a model shows (:func:`shown`): FRAME, wFRAME, GCN and wGCN learn from persistent chains or a
replay buffer, and can show only those chains (their fresh draws, ``sample_steps`` Langevin steps
from uniform noise, are a different and worse distribution: the learned energy shapes the chains
it was trained with, not every chain). Every other model draws *fresh* samples (:func:`draw`):
MGCN starts from the 1×1 average of a remembered training image, GGCN from fresh codes, DCGAN
from z ~ N(0, I). Langevin samples include the last noise step and are clamped to the pixel range
[−1, 1]: they are what the chain holds, as a reader sees them.
"""
from __future__ import annotations

import tempfile
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Callable, Iterator

import torch
from torch import Tensor

from ggcn.config import Profile, recipe
from ggcn.models.cooperative import GGCN, example_index
from ggcn.core.langevin import PersistentChains
from ggcn.models.registry import EnergyModel, build_model
from ggcn.core.train import DivergenceError, History, load_checkpoint, train

Judge = Callable[[Tensor], bool]


@dataclass
class Learned:
    """A model trained by its recipe, with what its run cost."""

    model: Any
    history: History
    train_seconds: float  # CPU seconds of training, checks excluded
    seconds_to_quality: float | None  # training CPU seconds until ``judge`` first passed; None if never
    diverged: bool
    checks: list[tuple[int, float, bool]] = field(default_factory=list)  # (iteration, CPU s, passed)


def shows_chains(model: Any) -> bool:
    """True for models that can show only the chains they learned from (persistent or replay buffer)."""
    return isinstance(model, EnergyModel) and isinstance(model.init, PersistentChains)


def shown(model: Any, n: int, y: Tensor | None = None) -> Tensor:
    """What the model shows, on the CPU: ``n`` of its chains where :func:`shows_chains`, else fresh draws."""
    return model.chains(n).detach().cpu().clamp(-1, 1) if shows_chains(model) else draw(model, n, y)


def draw(model: Any, n: int, y: Tensor | None = None, batch: int = 500) -> Tensor:
    """``n`` fresh samples on the CPU in [−1, 1], drawn in batches of at most ``batch`` (``y``: labels of
    a conditional GGCN)."""
    parts = []
    for start in range(0, n, batch):
        k = min(batch, n - start)
        if isinstance(model, GGCN):
            parts.append(model.sample(k, None if y is None else y[start:start + k]))
        else:
            parts.append(model.sample(k))
    return torch.cat(parts).detach().cpu().clamp(-1, 1)


def fit_recipe(
    name: str,
    family: str,
    x: Tensor,
    profile: Profile,
    seed: int = 0,
    *,
    labels: Tensor | None = None,
    judge: Judge | None = None,
    eval_every: int = 0,
    n_eval: int = 300,
    device: str = "cpu",
    **overrides: Any,
) -> Learned:
    """Build ``name`` with its ``family`` recipe for the images ``x`` and train it for the recipe's
    iterations at ``profile``. ``labels`` make a GGCN conditional. With ``judge`` and ``eval_every``,
    ``n_eval`` samples (:func:`shown`) are judged every ``eval_every`` iterations. A run that diverges keeps
    its last good state and is flagged, not raised.
    """
    plan = recipe(name, family)
    ggcn = name.startswith("ggcn")
    if labels is not None and not ggcn:
        raise ValueError(f"{name!r} has no label input; only the GGCN family learns conditionally")
    options: dict[str, Any] = dict(overrides)
    if ggcn:
        options.update(labels=labels, n_examples=len(x))
    model = build_model(name, profile, x.shape[1], x.shape[-1], family=family, device=device, seed=seed,
                        **options)
    clock = _Clock()
    checks: list[tuple[int, float, bool]] = []

    def check(it: int, m: Any, _: Tensor) -> None:
        if judge is None or not eval_every or (it + 1) % eval_every:
            return None
        with clock.paused():
            y = None if labels is None else labels[torch.arange(n_eval) % len(labels)].to(device)
            checks.append((it + 1, clock.seconds(), bool(judge(shown(m, n_eval, y)))))
        return None

    diverged = False
    with tempfile.TemporaryDirectory(prefix="ggcn-recipe-") as tmp:
        try:
            history = train(model, x, plan.iterations_at(profile), batch_size=plan.batch_size, seed=seed,
                            labels=example_index(x) if ggcn else None, callbacks=[check],
                            checkpoint_dir=tmp, device=device)
        except DivergenceError as err:
            state = load_checkpoint(err.checkpoint)
            model.load_state_dict(state["model"])
            history, diverged = History(list(state["history"])), True
    passed = [s for _, s, ok in checks if ok]
    return Learned(model, history, clock.seconds(), passed[0] if passed else None, diverged, checks)


class _Clock:
    """Process CPU time with pauses (the checks are not training)."""

    def __init__(self) -> None:
        self.start, self.paused_for = time.process_time(), 0.0

    def seconds(self) -> float:
        return time.process_time() - self.start - self.paused_for

    @contextmanager
    def paused(self) -> Iterator[None]:
        began = time.process_time()
        try:
            yield
        finally:
            self.paused_for += time.process_time() - began
