"""GGCN: a generator g_α(z) that starts -- or, with AMS, replaces -- the synthesizer's Langevin chains.

The pieces of the paper's Sec. 4.2 (READING.md, "GGCN"), each a few lines of :class:`GGCN.step`:

* **NLU** -- the learnable up-sampler g_α (:mod:`ggcn.models.generators`) replaces MGCN's lower grids.
* **HS** -- its input is a hidden code z ~ N(0, I) (with a label embedding when conditional).
* **Synthesizer** -- the finest-grid energy f_θ (a ConvEnergy) learns with the JKO rule of
  :mod:`ggcn.core.rules` on (X_obs, X~); the rule and its weight λ are options for ablations.
* **Revision** -- X~ = L Langevin steps of f_θ from x0 = g_α(z). The JKO rule's "previous
  population" is x0, so the displacement interpolation runs along each chain [reading]. Optionally a
  fraction ``replay`` of extra chains starts from a bank of past X~ (the paper's replay buffer).
* **Generator learning** [reading] -- as in cooperative learning (Xie et al.), α regresses g_α(z)
  onto the revised samples: minimise mean ||X~ − g_α(z)||² with X~ fixed.
* **LHS** [reading] -- each training example i owns a code z_i (init N(0, I)), learned by plain SGD
  (everything else uses Adam) on the reconstruction loss of alternating back-propagation / GLO,
  ½||x_i − g_α(z_i)||² + ½ρ||z_i||²; the prior term ρ keeps codes where fresh N(0, I) draws
  sample. Codes only move through their SGD optimizer; α is not moved by this loss.
  ``lhs_target="revised"`` reconstructs X~_i instead of x_i (the literal "same loss" reading).
* **AMS** [reading] -- amortized sampling: no Langevin revision; X~ = g_α(z) and α ascends the
  model log-density, maximise mean [f_θ(g_α(z)) − ||g_α(z)||²/(2σ²)] with θ frozen (the
  amortized-MLE step of Wang & Liu). Sampling is one forward pass. The JKO "previous
  population" is then the previous iteration's samples [reading].
* **Symmetric schedule** -- f_θ learns every iteration; g_α (and the codes) once every
  ``gen_every = k`` iterations (k = 4 in the paper).

==============  =======================  ======================  ==========================
name            hidden codes             synthesizer negatives   generator learns by
==============  =======================  ======================  ==========================
ggcn            learned per example      Langevin from g_α(z_i)  regression onto X~
ggcn-lhs        fresh z ~ N(0, I)        Langevin from g_α(z)    regression onto X~
ggcn+ams        learned per example      g_α(z_i), one pass      amortized ascent of log p_θ
ggcn-lhs+ams    fresh z ~ N(0, I)        g_α(z), one pass        amortized ascent of log p_θ
==============  =======================  ======================  ==========================

Fresh samples need fresh codes. Without LHS they are z ~ N(0, I), the codes the generator learned
on. With LHS the generator only ever saw the learned codes z_i, which need not look like N(0, I);
``code_sampling="fitted"`` draws z ~ N(μ, Σ), the Gaussian fitted to the learned codes [reading],
``"prior"`` draws N(0, I) as the paper's text suggests.

Every variant is conditional when built with training ``labels``: the generator reads
[z, e(y)] (the paper's label embedding) and the synthesizer f_θ(x, y) has one output per
class (:class:`LabelEnergy`; the paper does not say how f_θ sees labels) [reading].
Samples always draw fresh codes (see above); the LHS codes themselves only serve learning.

Data: GGCN learns from (images, example indices) -- the indices pick the codes and labels
of the batch. Pass ``labels=example_index(x)`` to :func:`ggcn.core.train.train`.
"""
from __future__ import annotations

from dataclasses import replace
from typing import Any

import torch
from torch import Tensor, nn

from ggcn.config import Profile, image_side
from ggcn.core.rules import KLRule, make_rule, weight_unit
from ggcn.models.generators import build_generator
from ggcn.core.langevin import LangevinConfig, ReplayBuffer, frozen, langevin, uniform_noise
from ggcn.models.nets import ConvEnergy

GGCN_FULL, GGCN_NO_LHS, GGCN_AMS, GGCN_NO_LHS_AMS = "ggcn", "ggcn-lhs", "ggcn+ams", "ggcn-lhs+ams"
VARIANTS = {  # name -> (LHS, AMS)
    GGCN_FULL: (True, False),
    GGCN_NO_LHS: (False, False),
    GGCN_AMS: (True, True),
    GGCN_NO_LHS_AMS: (False, True),
}
NAMES = tuple(VARIANTS)
LHS_TARGETS = ("data", "revised")
CODE_SAMPLING = ("prior", "fitted")


def example_index(data: Tensor) -> Tensor:
    """The example indices 0..N−1 that GGCN steps on (pass as ``labels=`` to ``train``)."""
    return torch.arange(len(data))


class LabelEnergy(nn.Module):
    """Conditional synthesizer f_θ(x, y): the ConvEnergy body, one 4×4 head output per class, read at y."""

    def __init__(self, channels: int, image_size: int, width: int, n_classes: int, scale: float = 1.0):
        super().__init__()
        base = ConvEnergy(channels, image_size, width, scale=scale)
        self.body, self.scale = base.body, base.scale
        self.head = nn.Conv2d(base.head.in_channels, n_classes, 4, 1, 0)
        self.n_classes = n_classes

    def forward(self, x: Tensor, y: Tensor) -> Tensor:
        return self.scale * self.head(self.body(x)).flatten(1).gather(1, y[:, None]).squeeze(1)


class Conditioned(nn.Module):
    """f_θ(·, y) for fixed labels y: a one-argument energy for the sampler and the learning rules."""

    def __init__(self, energy: LabelEnergy, y: Tensor):
        super().__init__()
        self.energy, self.y = energy, y

    def forward(self, x: Tensor) -> Tensor:
        return self.energy(x, self.y)


class GGCN:
    """Generator g_α + synthesizer f_θ (+ per-example codes), one symmetric learning iteration per ``step``."""

    def __init__(
        self,
        generator: nn.Module,
        energy: nn.Module,
        rule: KLRule,
        sampler: LangevinConfig,
        *,
        lhs: bool,
        ams: bool,
        n_examples: int | None = None,
        labels: Tensor | None = None,
        gen_every: int = 4,
        lr: float = 1e-3,
        lr_generator: float = 1e-3,
        lr_codes: float = 0.05,
        code_prior: float = 1.0,
        lhs_target: str = "data",
        code_sampling: str = "prior",
        replay: float = 0.0,
        replay_capacity: int = 1000,
        betas: tuple[float, float] = (0.5, 0.999),
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
            raise ValueError(
                "the replay buffer serves unconditional Langevin revision; use replay=0 with AMS or labels"
            )
        n_classes = getattr(generator, "n_classes", 0)
        if (labels is not None) != bool(n_classes) or (labels is not None) != isinstance(energy, LabelEnergy):
            raise ValueError("a conditional GGCN needs training labels, a generator and a LabelEnergy with n_classes")
        if labels is not None and (labels.min() < 0 or labels.max() >= n_classes):
            raise ValueError(f"labels must lie in 0..{n_classes - 1}, got {int(labels.min())}..{int(labels.max())}")
        if lhs and not n_examples:
            raise ValueError("LHS keeps one code per training example: pass n_examples=len(data)")
        self.generator, self.energy, self.rule, self.sampler = generator, energy, rule, sampler
        self.lhs, self.ams, self.gen_every = lhs, ams, gen_every
        self.code_prior, self.lhs_target, self.replay = code_prior, lhs_target, replay
        self.code_sampling = code_sampling
        self.z_dim: int = generator.z_dim
        self.labels = labels
        self.n_examples = n_examples or (len(labels) if labels is not None else None)
        device = next(generator.parameters()).device
        self.opt_energy = torch.optim.Adam(energy.parameters(), lr=lr, betas=betas)
        self.opt_generator = torch.optim.Adam(generator.parameters(), lr=lr_generator, betas=betas)
        self.codes: nn.Parameter | None = None
        self.opt_codes: torch.optim.SGD | None = None
        if lhs:
            self.codes = nn.Parameter(torch.randn(n_examples, self.z_dim, device=device))
            self.opt_codes = torch.optim.SGD([self.codes], lr=lr_codes)
        self.buffer = (
            ReplayBuffer(uniform_noise((generator.channels, generator.image_size, generator.image_size)),
                         replay_capacity, reinit_prob=0.0, device=str(device))
            if replay else None
        )
        self.iteration = 0
        self.particles: Tensor | None = None
        self.previous: Tensor | None = None  # last iteration's samples: the JKO "previous population" of AMS
        self._replay_slots: Tensor | None = None

    # -- one learning iteration --------------------------------------------------------------

    def step(self, x_obs: Tensor, idx: Tensor | None = None) -> dict[str, Tensor]:
        """Synthesizer update; every k-th call also the generator (and code) update."""
        z, y = self._codes(len(x_obs), idx), self._labels(idx)
        energy = self._energy(y)
        with torch.no_grad():
            x0 = self.generator(z, y)
        stats: dict[str, Tensor] = {}
        if self.ams:
            x_syn = x0
            x_prev = self.previous if self.previous is not None and self.previous.shape == x0.shape else x0
        else:
            x_prev = self._with_replay(x0)
            chain = langevin(energy, x_prev, self.sampler, diagnostics=True)
            x_syn = chain.x
            stats["grad_norm"] = chain.grad_norm.mean() if chain.grad_norm is not None else torch.zeros(())
            if self.buffer is not None:
                self._keep_replay(x_syn, len(x0))
        loss, rule_stats = self.rule.loss(energy, x_obs, x_syn, x_prev)
        self.opt_energy.zero_grad(set_to_none=True)
        loss.backward()
        self.opt_energy.step()
        stats.update(rule_stats, loss=loss.detach())
        self.iteration += 1
        self.particles = x_syn[: len(x0)]
        if self.ams:
            self.previous = x_syn
        update = self.iteration % self.gen_every == 0
        if update:
            stats.update(self._generator_step(x_obs, self.particles, z, idx, y, energy))
        stats["generator_step"] = torch.tensor(float(update))
        return stats

    def _generator_step(
        self, x_obs: Tensor, x_syn: Tensor, z: Tensor, idx: Tensor | None, y: Tensor | None, energy: nn.Module
    ) -> dict[str, Tensor]:
        """Generator by regression onto X~ (or AMS ascent) at the codes z that made the batch;
        LHS codes by SGD on their reconstruction loss."""
        if self.lhs:
            z = self.codes[idx]  # the same values, now differentiable with respect to the codes
        out = self.generator(z, y)
        if self.ams:
            with frozen(self.energy):
                log_p = energy(out) - out.flatten(1).pow(2).sum(1) / (2 * self.sampler.sigma**2)
            gen_loss = -log_p.mean()
        else:
            gen_loss = (x_syn - out).flatten(1).pow(2).sum(1).mean()
        self.opt_generator.zero_grad(set_to_none=True)
        gen_loss.backward(inputs=list(self.generator.parameters()), retain_graph=self.lhs)
        stats = {"gen_loss": gen_loss.detach()}
        if self.lhs:
            target = x_obs if self.lhs_target == "data" else x_syn
            code_loss = 0.5 * (target - out).flatten(1).pow(2).sum() + 0.5 * self.code_prior * z.pow(2).sum()
            self.opt_codes.zero_grad(set_to_none=True)
            code_loss.backward(inputs=[self.codes])
            self.opt_codes.step()
            stats["code_loss"] = code_loss.detach() / len(z)
        self.opt_generator.step()
        return stats

    # -- sampling ----------------------------------------------------------------------------

    def synthesize(self, z: Tensor, y: Tensor | int | None = None, n_steps: int | None = None) -> Tensor:
        """g_α(z[, y]), then ``n_steps`` Langevin steps of f_θ (default: L, or none with AMS)."""
        y = self._sample_labels(y, len(z), z.device)
        with torch.no_grad():
            x = self.generator(z, y)
        steps = (0 if self.ams else self.sampler.n_steps) if n_steps is None else n_steps
        if steps == 0:
            return x
        return langevin(self._energy(y), x, replace(self.sampler, n_steps=steps)).x

    def sample(self, n: int, y: Tensor | int | None = None, n_steps: int | None = None) -> Tensor:
        """n samples from fresh codes: one generator pass with AMS, plus L Langevin steps without."""
        return self.synthesize(self.fresh_codes(n), y, n_steps)

    def fresh_codes(self, n: int) -> Tensor:
        """z ~ N(0, I), or with LHS and ``code_sampling="fitted"`` z ~ N(μ, Σ) of the learned codes [reading]."""
        device = next(self.generator.parameters()).device
        eps = torch.randn(n, self.z_dim, device=device)
        if not (self.lhs and self.code_sampling == "fitted"):
            return eps
        codes = self.codes.detach()
        mean = codes.mean(0)
        cov = torch.cov(codes.T) + 1e-4 * torch.eye(self.z_dim, device=device)
        return mean + eps @ torch.linalg.cholesky(cov).T

    # -- helpers -----------------------------------------------------------------------------

    @property
    def conditional(self) -> bool:
        return self.labels is not None

    def _check_index(self, idx: Tensor | None, what: str) -> Tensor:
        if idx is None:
            raise ValueError(f"{what} needs the batch's example indices: train with labels=example_index(data)")
        if idx.dim() != 1 or idx.dtype != torch.long or idx.min() < 0 or idx.max() >= self.n_examples:
            raise ValueError(f"example indices must be a 1-D long tensor in 0..{self.n_examples - 1}")
        return idx

    def _codes(self, n: int, idx: Tensor | None) -> Tensor:
        if not self.lhs:
            return torch.randn(n, self.z_dim, device=next(self.generator.parameters()).device)
        return self.codes.detach()[self._check_index(idx, "LHS")]

    def _labels(self, idx: Tensor | None) -> Tensor | None:
        if not self.conditional:
            return None
        return self.labels[self._check_index(idx, "a conditional GGCN")]

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

    def _with_replay(self, x0: Tensor) -> Tensor:
        """x0, plus ``replay·B`` extra chains drawn from the bank of past revised samples."""
        self._replay_slots = None
        if self.buffer is None:
            return x0
        n_old = round(self.replay * len(x0))
        if n_old == 0:
            return x0
        x_old, self._replay_slots = self.buffer.draw(n_old)
        return torch.cat([x0, x_old])

    def _keep_replay(self, x_syn: Tensor, n_new: int) -> None:
        """Revised replay chains go back to their slots; the new samples overwrite random slots."""
        if self._replay_slots is not None:
            self.buffer.keep(self._replay_slots, x_syn[n_new:])
        self.buffer.keep(torch.randint(len(self.buffer.x), (n_new,), device=x_syn.device), x_syn[:n_new])

    # -- checkpoints -------------------------------------------------------------------------

    def state_dict(self) -> dict[str, Any]:
        return {
            "generator": self.generator.state_dict(),
            "energy": self.energy.state_dict(),
            "opt_generator": self.opt_generator.state_dict(),
            "opt_energy": self.opt_energy.state_dict(),
            "codes": None if self.codes is None else self.codes.detach().clone(),
            "opt_codes": None if self.opt_codes is None else self.opt_codes.state_dict(),
            "buffer": None if self.buffer is None else self.buffer.state_dict(),
            "iteration": self.iteration,
            "previous": self.previous,
            "rule": self.rule.state_dict(),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.generator.load_state_dict(state["generator"])
        self.energy.load_state_dict(state["energy"])
        self.opt_generator.load_state_dict(state["opt_generator"])
        self.opt_energy.load_state_dict(state["opt_energy"])
        if self.codes is not None:
            with torch.no_grad():
                self.codes.copy_(state["codes"])
            self.opt_codes.load_state_dict(state["opt_codes"])
        if self.buffer is not None:
            self.buffer.load_state_dict(state["buffer"])
        self.iteration, self.previous = int(state["iteration"]), state["previous"]
        self.rule.load_state_dict(state.get("rule", {}))


OPTIONS = {
    "lr", "lr_generator", "lr_codes", "code_prior", "lhs_target", "code_sampling", "jko_weight", "jko_scale",
    "rule", "reading", "langevin_steps", "step_size", "sigma", "width", "energy_scale", "generator_width", "z_dim",
    "gen_every", "replay", "grad_clip", "generator", "output",
}


def build(
    name: str,
    profile: Profile,
    channels: int,
    image_size: int | None = None,
    *,
    labels: Tensor | None = None,
    n_examples: int | None = None,
    device: str = "cpu",
    **overrides: Any,
) -> GGCN:
    """Build a GGCN variant (:data:`NAMES`) at the profile's scale; conditional when ``labels`` are given.

    ``n_examples`` (the training-set size) is needed by the LHS variants unless ``labels`` are given.
    ``overrides``: ``lr`` (f_θ), ``lr_generator``, ``lr_codes`` (SGD), ``code_prior``, ``lhs_target``,
    ``code_sampling``, ``rule`` ("jko" default, "kl" for the ablation), ``jko_weight``, ``jko_scale``,
    ``reading``, ``langevin_steps``, ``step_size``, ``sigma``, ``width`` (f_θ), ``energy_scale``,
    ``generator_width``, ``z_dim``, ``gen_every`` (k), ``replay``, ``grad_clip``, ``generator``
    ("v0", "resnet", "dcgan") and ``output`` ("sigmoid", "tanh").
    """
    if name not in VARIANTS:
        raise ValueError(f"unknown GGCN variant {name!r}; choose one of {NAMES}")
    if set(overrides) - OPTIONS:
        raise ValueError(f"unknown option(s) {sorted(set(overrides) - OPTIONS)}; allowed: {sorted(OPTIONS)}")
    get = lambda key, default=None: overrides.get(key, getattr(profile, key, default))  # noqa: E731
    lhs, ams = VARIANTS[name]
    size = image_side(image_size, profile)
    n_classes = int(labels.max()) + 1 if labels is not None else 0
    gen_kwargs = {"output": overrides["output"]} if "output" in overrides else {}
    generator = build_generator(
        get("generator", "v0"), get("z_dim"), channels, size, get("generator_width", get("width")), n_classes,
        **gen_kwargs,
    ).to(device)
    scale = get("energy_scale", 1.0)
    if n_classes:
        energy: nn.Module = LabelEnergy(channels, size, get("width"), n_classes, scale).to(device)
    else:
        energy = ConvEnergy(channels, size, get("width"), scale=scale).to(device)
    sampler = LangevinConfig(
        n_steps=get("langevin_steps"), step_size=get("step_size"), sigma=get("sigma"), grad_clip=get("grad_clip")
    )
    unit = weight_unit(get("jko_scale", "paper"), sampler.n_steps, sampler.step_size)
    rule = make_rule(get("rule", "jko"), get("jko_weight"), get("reading", "consecutive"), unit)
    passed_on = ("lr_codes", "code_prior", "lhs_target", "code_sampling", "gen_every", "replay")
    options = {k: overrides[k] for k in passed_on if k in overrides}
    return GGCN(
        generator, energy, rule, sampler, lhs=lhs, ams=ams,
        n_examples=n_examples or (len(labels) if labels is not None else None),
        labels=None if labels is None else labels.to(device),
        lr=get("lr"), lr_generator=get("lr_generator", get("lr")), **options,
    )
