"""Verdicts on the paper's claims: one declared test, one combiner, one "mean ± sd" formatter.

The test (:func:`outcome`) compares per-seed values of a score, conservatively: the candidate is
``lower`` when every one of its seeds is below every seed of the baseline, ``higher`` when every one
is above, and indistinguishable when the seed ranges overlap or a side has fewer than two seeds.
Diverged runs (∞) rank last. :func:`judge` reads it as a verdict on "candidate is better";
:func:`combine` joins the parts of a claim; :func:`record` stores a verdict in a chapter's metrics.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np

REPRODUCED, NOT_REPRODUCED, INCONCLUSIVE = "reproduced", "not reproduced", "inconclusive at this scale"
VERDICTS = (REPRODUCED, NOT_REPRODUCED, INCONCLUSIVE)
LOWER, HIGHER, TIE = "lower", "higher", "indistinguishable within the seed spread"
MIN_SEEDS = 2  # per side: one seed cannot tell a model from its seed
HIGHER_IS_BETTER = {"proxy_fid": False, "proxy_is": True, "label_accuracy": True, "inception_fid": False,
                    "inception_is": True, "inception_kid": False, "ssim": True, "psnr": True}


@dataclass(frozen=True)
class Claim:
    """One claim of the paper, in our words, with where the paper shows it and which chapter tests it."""

    id: str
    statement: str
    reported: str
    source: str
    chapter: str


CLAIMS: tuple[Claim, ...] = (
    Claim("kl-vanishing", "Learning with the KL rule lets the particle system dissipate energy in a disorderly way; "
          "the JKO rule keeps the particles closer to the data.", "qualitative (2-D particle picture)",
          "Fig. 1, Sec. 3", "02_kl_vs_jko"),
    Claim("stability", "wGCN gives good samples across learning rates and image sizes where GCN degrades.",
          "qualitative sample grids", "Fig. 4", "03_wgcn"),
    Claim("faster-convergence", "wGCN's response distance falls faster and closer to 0 than GCN's.",
          "averaged curves on CelebA, LSUN-bedroom, CIFAR-10", "Fig. 5", "03_wgcn"),
    Claim("no-grey-spots", "The JKO rule removes the grey-spot collapse of multi-grid learning (wMGCN vs MGCN).",
          "qualitative CelebA grids", "Fig. 6 (a, b)", "04_ggcn"),
    Claim("ggcn-cleaner", "GGCN (non-linear up-sampling + hidden space) gives cleaner samples than wMGCN.",
          "qualitative CelebA grids", "Fig. 6 (b, c)", "04_ggcn"),
    Claim("lhs-sharper", "Learning the hidden space (LHS) makes GGCN samples sharper.",
          "qualitative CelebA grids", "Fig. 6 (c, d)", "04_ggcn"),
    Claim("ams-faster", "Amortized sampling is much faster than Langevin sampling but slightly worse.",
          "CIFAR-10 samples, 1 step vs ~100 steps", "Fig. 9", "04_ggcn"),
    Claim("quality-table", "GGCN variants reach a higher Inception Score than GCN, wGCN and DCGAN.",
          "CIFAR-10 IS: GCN 4.18, wGCN 4.31, GGCN+AMS 6.79, DCGAN 6.16-6.58 (unconditional)", "Table II",
          "05_quality"),
    Claim("few-sample", "wFRAME, wGCN and GGCN learn from a handful of images where DCGAN fails.",
          "qualitative SUN grids", "Fig. 10", "06_few_shot_inpainting"),
    Claim("inpainting", "GGCN+AMS completes masked faces well.",
          "CelebA: SSIM 0.934-0.954, PSNR 30.0-30.4 dB", "Fig. 11, Table III", "06_few_shot_inpainting"),
)
BY_ID = {c.id: c for c in CLAIMS}


def record(metrics: dict[str, Any], claim_id: str, verdict: str, measured: str, **evidence: Any) -> dict[str, Any]:
    """Store a verdict on ``claim_id`` in a chapter's ``metrics`` (before it is saved as an artifact)."""
    if claim_id not in BY_ID:
        raise ValueError(f"unknown claim {claim_id!r}; known claims: {sorted(BY_ID)}")
    if verdict not in VERDICTS:
        raise ValueError(f"verdict must be one of {VERDICTS}, got {verdict!r}")
    metrics.setdefault("claims", {})[claim_id] = {"verdict": verdict, "measured": measured, **evidence}
    return metrics


def outcome(candidate: Sequence[float], baseline: Sequence[float]) -> str:
    """The declared test: :data:`LOWER`, :data:`HIGHER` or :data:`TIE` (see the module docstring)."""
    a, b = np.asarray(candidate, dtype=float), np.asarray(baseline, dtype=float)
    if a.size == 0 or b.size == 0 or np.isnan(a).any() or np.isnan(b).any():
        raise ValueError("the seed test needs non-NaN values on each side (use final_distance on each run)")
    if min(a.size, b.size) < MIN_SEEDS:
        return TIE
    return LOWER if a.max() < b.min() else HIGHER if a.min() > b.max() else TIE


def judge(candidate: Sequence[float], baseline: Sequence[float], higher_is_better: bool = False) -> str:
    """The verdict on "candidate is better than baseline" by :func:`outcome`."""
    result = outcome(candidate, baseline)
    better, worse = (HIGHER, LOWER) if higher_is_better else (LOWER, HIGHER)
    return REPRODUCED if result == better else NOT_REPRODUCED if result == worse else INCONCLUSIVE


def combine(verdicts: Sequence[str]) -> str:
    """A claim of several parts: reproduced if every part is, not reproduced if any part is not."""
    verdicts = list(verdicts)
    if verdicts and all(v == REPRODUCED for v in verdicts):
        return REPRODUCED
    return NOT_REPRODUCED if NOT_REPRODUCED in verdicts else INCONCLUSIVE


def versus(result: str, baseline: str) -> str:
    """An :func:`outcome` as a phrase, e.g. ``versus("lower", "KL's")`` → ``"lower than KL's"``."""
    if result in (LOWER, HIGHER):
        return f"{result} than {baseline}"
    return f"indistinguishable from {baseline} within the seed spread"


def _number(v: float, digits: int) -> str:
    """``digits`` significant digits, whole numbers from 10^(digits−1) up, at most four decimals (no exponents)."""
    return f"{v:.0f}" if abs(v) >= 10 ** (digits - 1) else f"{round(v, 4):.{digits}g}"


def describe(values: Sequence[float]) -> str:
    """Per-seed values as ``"mean ± sd"``, noting diverged (infinite) runs."""
    v = np.asarray(values, dtype=float)
    finite = v[np.isfinite(v)]
    text = f"{_number(finite.mean(), 3)} ± {_number(finite.std(), 2)}" if len(finite) else "—"
    return text + (f" ({len(v) - len(finite)} of {len(v)} diverged)" if len(finite) < len(v) else "")


def final_distance(curve: np.ndarray, last: float = 0.25) -> float:
    """Mean of a per-iteration distance over the last ``last`` fraction of the run (so one lucky
    iteration does not decide); ∞ if the run diverged there."""
    curve = np.asarray(curve, dtype=float)
    window = curve[-max(1, int(round(last * len(curve)))):]
    return float(window.mean()) if np.isfinite(window).all() else float("inf")


def area_under_curve(curve: np.ndarray) -> float:
    """The mean distance over the run (area under the curve ÷ its length; ∞ if it diverged)."""
    curve = np.asarray(curve, dtype=float)
    return float(curve.mean()) if np.isfinite(curve).all() else float("inf")


def failed(curve: np.ndarray) -> bool:
    """A run failed if it became non-finite or ended farther from the data than after its first iteration."""
    curve = np.asarray(curve, dtype=float)
    return bool(not np.isfinite(curve).all() or curve[-1] > curve[0])


def seed_summary(curves: np.ndarray, last: float = 0.25) -> dict[str, list[float]]:
    """Per-seed ``final`` (:func:`final_distance`) and ``auc`` (:func:`area_under_curve`) of (seeds, iterations)."""
    curves = np.atleast_2d(np.asarray(curves, dtype=float))
    return {"final": [final_distance(c, last) for c in curves], "auc": [area_under_curve(c) for c in curves]}


@dataclass(frozen=True)
class Convergence:
    """The test of "the candidate ends lower and converges faster than the baseline"."""

    final: str  # an outcome of the final distances
    auc: str  # an outcome of the areas under the curve
    reproduced: bool  # both lower
    text: str  # one sentence for the book

    @property
    def verdict(self) -> str:
        return REPRODUCED if self.reproduced else NOT_REPRODUCED if HIGHER in (self.final, self.auc) else INCONCLUSIVE


def convergence(candidate: dict[str, list[float]], baseline: dict[str, list[float]],
                names: tuple[str, str] = ("wGCN", "GCN")) -> Convergence:
    """Whether ``candidate`` ends lower *and* converges faster than ``baseline`` (inputs of :func:`seed_summary`)."""
    cand, base = names
    final, auc = outcome(candidate["final"], baseline["final"]), outcome(candidate["auc"], baseline["auc"])
    reproduced, owner = final == LOWER and auc == LOWER, f"{base}'s"
    text = (f"{cand}: the final response distance is {versus(final, owner)}, and the area under the "
            f"curve is {versus(auc, owner)}; the claim that {cand} ends lower and converges faster "
            f"{'reproduces' if reproduced else 'does not reproduce'} here.")
    return Convergence(final, auc, reproduced, text)
