"""GGCN (Sec. 4.2, Algorithm 2): a generator g_α(z) starts -- or, with AMS, replaces -- the synthesizer's chains.

:meth:`GGCN.step` composes one small part per piece of the paper (READING.md, "GGCN"): the learnable
up-sampler g_α (NLU) reads hidden codes z (HS) from :class:`PriorCodes` (fresh N(0, I)) or, with LHS,
:class:`LearnedCodes` (one code per example, moved only by SGD on the alternating back-propagation / GLO
loss) [reading]; :class:`LangevinRevision` revises X0 = g_α(z) by L Langevin steps (plus replay-buffer
chains), or with AMS :class:`Amortized` keeps X~ = X0 [reading]; the synthesizer f_θ learns by Algorithm
1's energy update (:class:`ggcn.core.learner.Synthesizer`, the JKO rule by default); once every
``gen_every = k`` iterations (k = 4) g_α learns by :func:`regression` onto X~ (cooperative learning, Xie
et al.) or, with AMS, by :func:`ascent` of the model log-density (Wang & Liu) [reading].

==============  =======================  ======================  ==========================
name            hidden codes             synthesizer negatives   generator learns by
==============  =======================  ======================  ==========================
ggcn            learned per example      Langevin from g_α(z_i)  regression onto X~
ggcn-lhs        fresh z ~ N(0, I)        Langevin from g_α(z)    regression onto X~
ggcn+ams        learned per example      g_α(z_i), one pass      amortized ascent of log p_θ
ggcn-lhs+ams    fresh z ~ N(0, I)        g_α(z), one pass        amortized ascent of log p_θ
==============  =======================  ======================  ==========================

Samples draw fresh codes: N(0, I), or with LHS and ``code_sampling="fitted"`` the Gaussian N(μ, Σ) fitted
to the learned codes [reading]. With training ``labels`` g_α reads [z, e(y)] and f_θ(x, y) has one output
per class (:class:`LabelEnergy`) [reading]. GGCN steps on example indices: train with ``labels=example_index(x)``.
"""
from __future__ import annotations

from typing import Any, Callable

import torch
from torch import Tensor, nn

from ggcn.config import Profile, image_side
from ggcn.core.chains import ReplayBuffer, uniform_noise
from ggcn.core.langevin import LangevinConfig, frozen
from ggcn.core.learner import BETAS, Options, Synthesizer, load_states, states
from ggcn.core.rules import KLRule
from ggcn.models.generators import build_generator
from ggcn.models.nets import ConvEnergy

GGCN_FULL, GGCN_NO_LHS, GGCN_AMS, GGCN_NO_LHS_AMS = "ggcn", "ggcn-lhs", "ggcn+ams", "ggcn-lhs+ams"
VARIANTS = {GGCN_FULL: (True, False), GGCN_NO_LHS: (False, False), GGCN_AMS: (True, True),
            GGCN_NO_LHS_AMS: (False, True)}  # name -> (LHS, AMS)
GGCN_NAMES = tuple(VARIANTS)
LHS_TARGETS = ("data", "revised")
CODE_SAMPLING = ("prior", "fitted")


def example_index(data: Tensor) -> Tensor:
    """The example indices 0..N−1 that GGCN steps on (pass as ``labels=`` to ``train``)."""
    return torch.arange(len(data))


def _check_index(idx: Tensor | None, n_examples: int, what: str) -> Tensor:
    if idx is None:
        raise ValueError(f"{what} needs the batch's example indices: train with labels=example_index(data)")
    if idx.dim() != 1 or idx.dtype != torch.long or idx.min() < 0 or idx.max() >= n_examples:
        raise ValueError(f"example indices must be a 1-D long tensor in 0..{n_examples - 1}")
    return idx


class LabelEnergy(nn.Module):
    """Conditional synthesizer f_θ(x, y): the ConvEnergy body, one 4×4 head output per class, read at y.

    Its body keeps one convolution at 8 px (``min_convs=1``): with the 3×3 one that the unconditional
    :class:`~ggcn.models.nets.ConvEnergy` adds there, conditional GGCN+AMS on 8-px digits lost its labels
    (smoke, 200 iterations, seeds 0–2: 17–20 % of samples read as the class asked for, against 88–97 %).
    """

    def __init__(self, channels: int, image_size: int, width: int, n_classes: int, scale: float = 1.0):
        super().__init__()
        base = ConvEnergy(channels, image_size, width, scale=scale, min_convs=1)
        self.body, self.scale, self.n_classes = base.body, base.scale, n_classes
        self.head = nn.Conv2d(base.head.in_channels, n_classes, 4, 1, 0)

    def forward(self, x: Tensor, y: Tensor) -> Tensor:
        return self.scale * self.head(self.body(x)).flatten(1).gather(1, y[:, None]).squeeze(1)


class Conditioned(nn.Module):
    """f_θ(·, y) for fixed labels y: a one-argument energy for the sampler and the learning rules."""

    def __init__(self, energy: LabelEnergy, y: Tensor):
        super().__init__()
        self.energy, self.y = energy, y

    def forward(self, x: Tensor) -> Tensor:
        return self.energy(x, self.y)


class PriorCodes:
    """GGCN−LHS: fresh z ~ N(0, I) for every batch and every sample; nothing is learned."""

    def __init__(self, z_dim: int, device: torch.device):
        self.z_dim, self.device = z_dim, device

    def batch(self, n: int, idx: Tensor | None) -> Tensor:
        return self.fresh(n)

    def fresh(self, n: int) -> Tensor:
        return torch.randn(n, self.z_dim, device=self.device)

    def learn(self, z: Tensor, out: Tensor, x_obs: Tensor, x_syn: Tensor) -> dict[str, Tensor]:
        return {}

    def state_dict(self) -> dict[str, Any]:
        return {}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """No state."""


class LearnedCodes(PriorCodes):
    """LHS: a code z_i per example (init N(0, I)), learned by SGD on ½||t_i − g_α(z_i)||² + ½ρ||z_i||², with
    t_i = x_i (``target="data"``) or X~_i (``"revised"``); the prior term keeps codes where N(0, I) draws sample."""

    def __init__(self, n_examples: int, z_dim: int, device: torch.device, lr: float, prior: float,
                 target: str, sampling: str):
        super().__init__(z_dim, device)
        self.z = nn.Parameter(torch.randn(n_examples, z_dim, device=device))
        self.optimizer = torch.optim.SGD([self.z], lr=lr)
        self.prior, self.target, self.sampling = prior, target, sampling

    def batch(self, n: int, idx: Tensor | None) -> Tensor:
        """The batch's codes z_i, differentiable with respect to the codes only."""
        return self.z[_check_index(idx, len(self.z), "LHS")]

    def fresh(self, n: int) -> Tensor:
        """z ~ N(0, I), or with ``sampling="fitted"`` z ~ N(μ, Σ) of the learned codes [reading]."""
        eps = super().fresh(n)
        if self.sampling == "prior":
            return eps
        codes = self.z.detach()
        cov = torch.cov(codes.T) + 1e-4 * torch.eye(self.z_dim, device=codes.device)
        return codes.mean(0) + eps @ torch.linalg.cholesky(cov).T

    def learn(self, z: Tensor, out: Tensor, x_obs: Tensor, x_syn: Tensor) -> dict[str, Tensor]:
        target = x_obs if self.target == "data" else x_syn
        loss = 0.5 * (target - out).flatten(1).pow(2).sum() + 0.5 * self.prior * z.pow(2).sum()
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward(inputs=[self.z])
        self.optimizer.step()
        return {"code_loss": loss.detach() / len(z)}

    def state_dict(self) -> dict[str, Any]:
        return {"z": self.z.detach().clone(), "optimizer": self.optimizer.state_dict()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        with torch.no_grad():
            self.z.copy_(state["z"])
        self.optimizer.load_state_dict(state["optimizer"])


class LangevinRevision:
    """Revise X0 by L Langevin steps, X~_{t−1} = X0 for the JKO rule [reading]; a ``bank`` of past revised
    samples adds round(replay·B) chains (the paper's replay buffer)."""

    def __init__(self, replay: float = 0.0, bank: ReplayBuffer | None = None):
        self.replay, self.bank, self.slots = replay, bank, None

    def start(self, x0: Tensor) -> tuple[Tensor, Tensor | None]:
        """(X~_{t−1}, X~_t if no revision is to run): here X0 (+ bank chains), and None."""
        if self.bank is None:
            return x0, None
        x_prev, self.slots = self.bank.extend(x0, self.replay)
        return x_prev, None

    def keep(self, x_syn: Tensor, n_new: int) -> None:
        if self.bank is not None:
            self.bank.store(x_syn, n_new, self.slots)

    def state_dict(self) -> dict[str, Any]:
        return {"buffer": None if self.bank is None else self.bank.state_dict()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if self.bank is not None:
            self.bank.load_state_dict(state["buffer"])


class Amortized:
    """AMS: no revision, X~_t = X0; X~_{t−1} is the previous iteration's samples (X0 at the start)."""

    def __init__(self) -> None:
        self.previous: Tensor | None = None

    def start(self, x0: Tensor) -> tuple[Tensor, Tensor | None]:
        ok = self.previous is not None and self.previous.shape == x0.shape
        return (self.previous if ok else x0), x0

    def keep(self, x_syn: Tensor, n_new: int) -> None:
        self.previous = x_syn

    def state_dict(self) -> dict[str, Any]:
        return {"previous": self.previous}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.previous = state.get("previous")


def regression(out: Tensor, x_syn: Tensor, energy: nn.Module, sigma: float) -> Tensor:
    """mean ||X~ − g_α(z)||² with X~ fixed: the generator learns what the sampler made of its guess."""
    return (x_syn - out).flatten(1).pow(2).sum(1).mean()


def ascent(out: Tensor, x_syn: Tensor, energy: nn.Module, sigma: float) -> Tensor:
    """−mean [f_θ(g_α(z)) − ||g_α(z)||²/(2σ²)] with θ frozen: AMS climbs the model log-density."""
    with frozen(energy):
        log_p = energy(out) - out.flatten(1).pow(2).sum(1) / (2 * sigma**2)
    return -log_p.mean()


class GGCN(Synthesizer):
    """Generator g_α + synthesizer f_θ (+ codes), one symmetric learning iteration per ``step``."""

    def __init__(
        self, generator: nn.Module, energy: nn.Module, rule: KLRule, sampler: LangevinConfig, *, lhs: bool,
        ams: bool, n_examples: int | None = None, labels: Tensor | None = None, gen_every: int = 4,
        lr: float = 1e-3, lr_generator: float = 1e-3, lr_codes: float = 0.05, code_prior: float = 1.0,
        lhs_target: str = "data", code_sampling: str = "prior", replay: float = 0.0, replay_capacity: int = 1000,
        betas: tuple[float, float] = BETAS,
    ):
        if gen_every < 1:
            raise ValueError(f"gen_every (k) must be ≥ 1, got {gen_every}")
        if lhs_target not in LHS_TARGETS:
            raise ValueError(f"unknown LHS target {lhs_target!r}; choose one of {LHS_TARGETS}")
        if code_sampling not in CODE_SAMPLING:
            raise ValueError(f"unknown code sampling {code_sampling!r}; choose one of {CODE_SAMPLING}")
        if ams and lhs_target == "revised":
            raise ValueError("AMS has no revised samples X~; use lhs_target='data' with AMS")
        if not 0.0 <= replay < 1.0:
            raise ValueError(f"replay is the fraction of extra chains from the replay buffer, in [0, 1); got {replay}")
        if replay and (ams or labels is not None):
            raise ValueError("the replay buffer serves unconditional Langevin revision; use replay=0 with AMS or "
                             "labels")
        n_classes = getattr(generator, "n_classes", 0)
        if (labels is not None) != bool(n_classes) or (labels is not None) != isinstance(energy, LabelEnergy):
            raise ValueError("a conditional GGCN needs training labels, a generator and a LabelEnergy with n_classes")
        if labels is not None and (labels.min() < 0 or labels.max() >= n_classes):
            raise ValueError(f"labels must lie in 0..{n_classes - 1}, got {int(labels.min())}..{int(labels.max())}")
        if lhs and not n_examples:
            raise ValueError("LHS keeps one code per training example: pass n_examples=len(data)")
        super().__init__(energy, rule, sampler, lr, betas)
        self.generator, self.lhs, self.ams, self.gen_every, self.labels = generator, lhs, ams, gen_every, labels
        self.z_dim, self.code_sampling = generator.z_dim, code_sampling
        self.n_examples = n_examples or (len(labels) if labels is not None else None)
        self.opt_generator = torch.optim.Adam(generator.parameters(), lr=lr_generator, betas=betas)
        device = next(generator.parameters()).device
        self.hidden = (LearnedCodes(n_examples, self.z_dim, device, lr_codes, code_prior, lhs_target, code_sampling)
                       if lhs else PriorCodes(self.z_dim, device))
        shape = (generator.channels, generator.image_size, generator.image_size)
        bank = ReplayBuffer(uniform_noise(shape), replay_capacity, 0.0, str(device)) if replay else None
        self.revision = Amortized() if ams else LangevinRevision(replay, bank)
        self.objective: Callable[..., Tensor] = ascent if ams else regression
        self.iteration, self.particles = 0, None

    def step(self, x_obs: Tensor, idx: Tensor | None = None) -> dict[str, Tensor]:
        """Algorithm 2: the synthesizer's update and, every k-th iteration, the generator's (and codes') turn."""
        y = self._labels(idx)
        energy = self._energy(y)  # f_θ(·, y) when conditional
        z = self.hidden.batch(len(x_obs), idx)  # fresh N(0, I) codes, or the batch's learned codes z_i
        with torch.no_grad():
            x0 = self.generator(z, y)  # X0 = g_α(z[, y])
        x_prev, x_syn = self.revision.start(x0)  # Langevin from X0 (+ replay chains), or none with AMS
        chain, stats = self.update(x_obs, x_prev, x_syn, energy)  # the energy update of Algorithm 1
        self.revision.keep(chain.x, len(x0))
        self.particles = chain.x[: len(x0)]
        self.iteration += 1
        turn = self.iteration % self.gen_every == 0
        if turn:  # regression onto X~ (or AMS ascent) at the codes that made the batch; LHS codes by SGD
            out = self.generator(z, y)
            gen_loss = self.objective(out, self.particles, energy, self.sampler.sigma)
            self.opt_generator.zero_grad(set_to_none=True)
            gen_loss.backward(inputs=list(self.generator.parameters()), retain_graph=True)
            stats.update(gen_loss=gen_loss.detach(), **self.hidden.learn(z, out, x_obs, self.particles))
            self.opt_generator.step()
        stats["generator_step"] = torch.tensor(float(turn))
        return stats

    @property
    def codes(self) -> nn.Parameter | None:
        """The learned codes z_i of LHS (None without)."""
        return getattr(self.hidden, "z", None)

    @property
    def conditional(self) -> bool:
        return self.labels is not None

    def synthesize(self, z: Tensor, y: Tensor | int | None = None, n_steps: int | None = None) -> Tensor:
        """g_α(z[, y]), then ``n_steps`` Langevin steps of f_θ (default: L, or none with AMS)."""
        y = self._sample_labels(y, len(z), z.device)
        with torch.no_grad():
            x = self.generator(z, y)
        steps = (0 if self.ams else self.sampler.n_steps) if n_steps is None else n_steps
        return x if steps == 0 else self.revise(x, steps, self._energy(y))

    def sample(self, n: int, y: Tensor | int | None = None, n_steps: int | None = None) -> Tensor:
        """n samples from fresh codes: one generator pass with AMS, plus L Langevin steps without."""
        return self.synthesize(self.fresh_codes(n), y, n_steps)

    def fresh_codes(self, n: int) -> Tensor:
        return self.hidden.fresh(n)

    def _labels(self, idx: Tensor | None) -> Tensor | None:
        return None if self.labels is None else self.labels[_check_index(idx, self.n_examples, "a conditional GGCN")]

    def _sample_labels(self, y: Tensor | int | None, n: int, device: torch.device) -> Tensor | None:
        if not self.conditional:
            if y is not None:
                raise ValueError("this GGCN is unconditional; build it with labels to sample by class")
            return None
        if y is None:
            raise ValueError("this GGCN is conditional: pass the class labels y (an int or a tensor of n labels)")
        y = torch.full((n,), y, dtype=torch.long, device=device) if isinstance(y, int) else y.to(device)
        if y.shape != (n,) or y.min() < 0 or y.max() >= self.generator.n_classes:
            raise ValueError(f"y must be {n} labels in 0..{self.generator.n_classes - 1}")
        return y

    def _energy(self, y: Tensor | None) -> nn.Module:
        return self.energy if y is None else Conditioned(self.energy, y)

    def parts(self) -> dict[str, Any]:
        return {**super().parts(), "generator": self.generator, "opt_generator": self.opt_generator,
                "codes": self.hidden, "revision": self.revision}

    def state_dict(self) -> dict[str, Any]:
        return {**states(self.parts()), "iteration": self.iteration}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        load_states(self.parts(), state)
        self.iteration = int(state["iteration"])


def latent_path(z_a: Tensor, z_b: Tensor, midpoints: int = 8) -> Tensor:
    """``(midpoints + 2, d)``: z(t) = (1 − t) z_a + t z_b at evenly spaced t ∈ [0, 1], the ends clipped to
    [−1, 1], the high-density core of N(0, I) where the generator learned most (the paper's Fig. 12)."""
    if z_a.shape != z_b.shape or z_a.dim() != 1:
        raise ValueError(f"need two codes of the same shape (d,), got {tuple(z_a.shape)} and {tuple(z_b.shape)}")
    if midpoints < 0:
        raise ValueError(f"midpoints must be ≥ 0, got {midpoints}")
    a, b = z_a.clamp(-1, 1), z_b.clamp(-1, 1)
    t = torch.linspace(0, 1, midpoints + 2, device=a.device, dtype=a.dtype)[:, None]
    return (1 - t) * a + t * b


def interpolate(model: GGCN, z_a: Tensor, z_b: Tensor, y: int | None = None, midpoints: int = 8,
                n_steps: int | None = None) -> Tensor:
    """Images along :func:`latent_path` by ``model.synthesize`` (label ``y`` if conditional; ``n_steps``
    Langevin steps after the generator, default the model's own, none with AMS)."""
    if not hasattr(model, "synthesize"):
        raise TypeError(f"{type(model).__name__} has no synthesize(z, y, n_steps); interpolate a GGCN model")
    return model.synthesize(latent_path(z_a, z_b, midpoints), y, n_steps)


GGCN_OPTIONS = ("lr", "lr_generator", "lr_codes", "code_prior", "lhs_target", "code_sampling", "jko_weight",
                "jko_scale", "rule", "reading", "langevin_steps", "step_size", "sigma", "width", "energy_scale",
                "generator_width", "z_dim", "gen_every", "replay", "grad_clip", "generator", "output")
_PASSED_ON = ("lr_codes", "code_prior", "lhs_target", "code_sampling", "gen_every", "replay")


def build_ggcn(name: str, profile: Profile, channels: int, image_size: int | None = None, *,
               labels: Tensor | None = None, n_examples: int | None = None, device: str = "cpu",
               **overrides: Any) -> GGCN:
    """Build a GGCN variant (:data:`GGCN_NAMES`) at the profile's scale; conditional when ``labels`` are given.

    ``n_examples`` (the training-set size) is needed by the LHS variants unless ``labels`` are given.
    ``overrides`` (:data:`GGCN_OPTIONS`): ``lr`` (f_θ), ``lr_generator``, ``lr_codes`` (SGD), ``code_prior`` (ρ),
    ``rule`` ("jko" default, "kl" for the ablation), ``width`` (f_θ), ``generator_width``, ``gen_every`` (k),
    ``generator`` ("v0", "resnet", "dcgan"), ``output`` ("sigmoid", "tanh"), ….
    """
    if name not in VARIANTS:
        raise ValueError(f"unknown GGCN variant {name!r}; choose one of {GGCN_NAMES}")
    get = Options(profile, overrides, GGCN_OPTIONS)
    size = image_side(image_size, profile)
    n_classes = int(labels.max()) + 1 if labels is not None else 0
    output = {"output": overrides["output"]} if "output" in overrides else {}
    generator = build_generator(get("generator", "v0"), get("z_dim"), channels, size,
                                get("generator_width", get("width")), n_classes, **output).to(device)
    energy = (LabelEnergy(channels, size, get("width"), n_classes, get("energy_scale", 1.0)) if n_classes
              else ConvEnergy(channels, size, get("width"), scale=get("energy_scale", 1.0))).to(device)
    lhs, ams = VARIANTS[name]
    return GGCN(generator, energy, get.rule(get("rule", "jko")), get.sampler(), lhs=lhs, ams=ams,
                n_examples=n_examples or (len(labels) if labels is not None else None),
                labels=None if labels is None else labels.to(device), lr=get("lr"),
                lr_generator=get("lr_generator", get("lr")), **{k: overrides[k] for k in _PASSED_ON if k in overrides})
