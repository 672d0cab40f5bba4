"""Verdicts on the paper's claims: one declared test, one baseline gate, one combiner, one formatter.

The test (:func:`difference`) is Welch's t on the difference of per-seed means, candidate − baseline,
with its 95 % interval: the candidate is ``lower`` when the whole interval lies below 0, ``higher`` when
it lies above, and indistinguishable otherwise or when a side has fewer than :data:`MIN_SEEDS` finite
values. Diverged runs (∞, the worst value) are left out of the means and counted: when one side diverged
significantly more often (Fisher's exact test on the counts, p < 0.05) it is the higher one; otherwise a
side that diverged more often cannot win. :func:`judge` reads the test as a verdict on "candidate is
better", but only when the baseline learned (the gate): otherwise the verdict is :data:`NOT_LEARNED`.
:func:`combine` joins the parts of a claim; :func:`record` stores a verdict, with its test, in a chapter's
metrics.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Sequence

import numpy as np
from scipy import stats

REPRODUCED, NOT_REPRODUCED, INCONCLUSIVE = "reproduced", "not reproduced", "inconclusive at this scale"
NOT_LEARNED = "inconclusive — the baseline did not learn at this scale"
REGIME_DEPENDENT = "regime-dependent"  # reproduced in one regime, not reproduced in another
VERDICTS = (REPRODUCED, NOT_REPRODUCED, INCONCLUSIVE, NOT_LEARNED, REGIME_DEPENDENT)
LOWER, HIGHER, TIE = "lower", "higher", "not distinguishable by the test"
LEVEL = 0.95  # of the two-sided interval on the difference
MIN_SEEDS = 3  # finite values per side before the test may decide
CHEAP_SEEDS = 5  # seeds per side wherever one run takes under a CPU-minute
HIGHER_IS_BETTER = {"proxy_fid": False, "proxy_kid": False, "proxy_is": True, "label_accuracy": True,
                    "inception_fid": False, "inception_is": True, "inception_kid": False, "ssim": True, "psnr": True}


@dataclass(frozen=True)
class Claim:
    """One claim of the paper, in our words, with where the paper shows it and which chapter tests it."""

    id: str
    statement: str
    reported: str
    source: str
    chapter: str
    test: str  # the declared test: what is compared, on which ruler, and what the gate is


CLAIMS: tuple[Claim, ...] = (
    Claim("kl-vanishing", "Learning with the KL rule lets the particle system dissipate energy in a disorderly way; "
          "the JKO rule keeps the particles closer to the data.", "qualitative (2-D particle picture)",
          "Fig. 1, Sec. 3", "02_kl_vs_jko",
          "log10 of the final sliced W2 to the data (last quarter of the run), each JKO reading vs KL on the "
          "plane in both presets, and the final response distance of each wGCN vs GCN on the brick texture; "
          "reproduced if every reading is lower in the unstable preset, regime-dependent if another part (stable "
          "preset, texture) finds KL lower. Gate: KL learned in the stable preset (W2 fell on most seeds) and GCN "
          "passed the texture ruler (Gram distance ≤ 2× the real crops' spread) on most seeds. Beside the verdict, the same test at the "
          "largest δ of a δ × rule sweep: KL + clipping, KL + R1 and KL + an energy penalty vs KL, and JKO vs "
          "each, to tell the Wasserstein geometry from plain regularisation."),
    Claim("stability", "wGCN gives good samples across learning rates and image sizes where GCN degrades.",
          "qualitative sample grids", "Fig. 4", "03_wgcn",
          "a graded sweep (γ ×2, ×3, ×5; δ ×2, ×3; then γ ×30 with δ ×3), ≥ 5 seeds per regime; GCN broke "
          "in a regime if its final response distance is above its stable one; there wGCN vs GCN. Reproduced if "
          "wGCN is lower wherever GCN broke, not reproduced if higher somewhere and lower nowhere, regime-dependent if "
          "both, inconclusive if GCN broke nowhere. Gate: GCN learned in the stable regime (its final particles' "
          "face-ruler KID no worse than blurred held-out faces' on most seeds; on CelebA, which the ruler cannot "
          "read, its distance fell). Each cell also counts the seeds that clear the face ruler. As evidence beside the verdict, in the unstable regime: wGCN with λ on a log grid (×10, ×100 the "
          "recipe's, the paper's) and the data and proximal readings, each vs GCN."),
    Claim("faster-convergence", "wGCN's response distance falls faster and closer to 0 than GCN's.",
          "averaged curves on CelebA, LSUN-bedroom, CIFAR-10", "Fig. 5", "03_wgcn",
          "final response distance and its mean over the run (area under the curve), wGCN vs GCN, ≥ 8 seeds a "
          "side over the full budget; reproduced if both are lower. Gate: GCN learned (face-ruler bar on most seeds; "
          "on CelebA: its distance fell)."),
    Claim("no-grey-spots", "The JKO rule removes the grey-spot collapse of multi-grid learning (wMGCN vs MGCN).",
          "qualitative CelebA grids", "Fig. 6 (a, b)", "04_ggcn",
          "flat-patch excess (share of flat 4×4 patches above the data's), wMGCN vs MGCN; reproduced if lower. "
          "Gate: MGCN learned (face-ruler KID no worse than blurred faces' on most seeds)."),
    Claim("ggcn-cleaner", "GGCN (non-linear up-sampling + hidden space) gives cleaner samples than wMGCN.",
          "qualitative CelebA grids", "Fig. 6 (b, c)", "04_ggcn",
          "face-ruler KID, GGCN−LHS+AMS vs wMGCN; reproduced if lower. Gate: wMGCN learned (KID no worse than "
          "blurred faces' on most seeds)."),
    Claim("lhs-sharper", "Learning the hidden space (LHS) makes GGCN samples sharper.",
          "qualitative CelebA grids", "Fig. 6 (c, d)", "04_ggcn",
          "sharpness gap |sharpness ÷ data's − 1|, GGCN+AMS vs GGCN−LHS+AMS; reproduced if lower. Gate: "
          "GGCN−LHS+AMS learned (face-ruler bar on most seeds)."),
    Claim("ams-faster", "Amortized sampling is much faster than Langevin sampling but slightly worse.",
          "CIFAR-10 samples, 1 step vs ~100 steps", "Fig. 9", "04_ggcn",
          "seconds per sample (AMS lower) and face-ruler KID (AMS higher), one-pass AMS vs 100 Langevin steps "
          "on the same trained GGCN+AMS (the caption's reading of Fig. 9); reproduced if both hold. Gate: "
          "GGCN+AMS learned (face-ruler bar on most seeds). The text's reading, against a GGCN trained with "
          "Langevin revision, is reported beside it."),
    Claim("quality-table", "Without labels, GGCN variants reach a higher Inception Score than GCN, wGCN and DCGAN.",
          "CIFAR-10 IS: GCN 4.18, wGCN 4.31, GGCN+AMS 6.79, DCGAN 6.16-6.58 (unconditional)", "Table II",
          "05_quality",
          "the table's metric (Inception IS with CIFAR-10, else the digit ruler's proxy FID), each GGCN variant vs "
          "each of GCN, wGCN and DCGAN, unconditional; reproduced if every pair favours GGCN. "
          "Gate: every baseline learned (the digit ruler's bar on most seeds)."),
    Claim("quality-table-conditional", "With labels, GGCN variants reach a higher Inception Score than GCN, wGCN "
          "and DCGAN.", "CIFAR-10 IS: GCN 5.50, wGCN 5.70, GGCN 7.10, GGCN+AMS 7.01, DCGAN 6.58 (conditional)",
          "Table II", "06_conditional",
          "as for the unconditional table, on the first classes (GGCN and GGCN+AMS learn one labelled model, "
          "every other model one model per class); "
          "reproduced if every pair favours GGCN. Gate: every baseline learned (the digit ruler's bar on most seeds)."),
    Claim("few-sample", "wFRAME, wGCN and GGCN learn from a handful of images where DCGAN fails.",
          "qualitative SUN grids", "Fig. 10", "07_few_shot_inpainting",
          "RMS set distance of the samples to the few training images, each of wFRAME, wGCN and GGCN vs DCGAN; "
          "reproduced if all are lower. Gate: none (the claim is that DCGAN fails; the rule says so)."),
    Claim("inpainting", "GGCN+AMS completes masked faces well.",
          "CelebA: SSIM 0.934-0.954, PSNR 30.0-30.4 dB", "Fig. 11, Table III", "07_few_shot_inpainting",
          "SSIM and PSNR on held-out faces, GGCN+AMS completions vs the better of mean and diffusion fills, per "
          "mask; reproduced if higher on every mask and score. Gate: none (the fills are fixed methods)."),
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


@dataclass(frozen=True)
class Difference:
    """The declared test on per-seed values: Welch's t on Δ = mean(candidate) − mean(baseline)."""

    n: tuple[int, int]  # finite values per side
    diverged: tuple[int, int]  # infinite (diverged) values per side
    delta: float
    low: float  # the 95 % interval on Δ
    high: float
    p: float  # two-sided
    p_diverged: float = 1.0  # Fisher's exact test on the diverged counts, two-sided

    @property
    def result(self) -> str:
        """:data:`LOWER`, :data:`HIGHER` or :data:`TIE` (see the module docstring)."""
        if self.p_diverged < 1 - LEVEL:
            return LOWER if self.diverged[0] < self.diverged[1] else HIGHER
        if min(self.n) < MIN_SEEDS:
            return TIE
        if self.high < 0 and self.diverged[0] <= self.diverged[1]:
            return LOWER
        if self.low > 0 and self.diverged[1] <= self.diverged[0]:
            return HIGHER
        return TIE

    def text(self) -> str:
        """e.g. ``"Δ -0.12, 95% interval [-0.2, -0.04], p 0.01, 5 vs 5 seeds"``."""
        gone = f"diverged {self.diverged[0]} vs {self.diverged[1]}" if any(self.diverged) else ""
        runs = f"{self.n[0] + self.diverged[0]} vs {self.n[1] + self.diverged[1]} seeds"
        if self.p_diverged < 1 - LEVEL:
            return f"{gone} of {runs}, Fisher's exact p {_number(self.p_diverged, 2)}"
        if min(self.n) < 2:
            return f"{self.n[0]} vs {self.n[1]} finite seeds: too few to test" + (f" ({gone})" if gone else "")
        interval = f"{LEVEL:.0%} interval [{_number(self.low, 2)}, {_number(self.high, 2)}]"
        return (f"Δ {_number(self.delta, 2)}, {interval}, p {'< 0.001' if self.p < 0.001 else _number(self.p, 2)}, "
                f"{runs}" + (f", {gone}" if gone else ""))

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "result": self.result, "text": self.text()}


def difference(candidate: Sequence[float], baseline: Sequence[float]) -> Difference:
    """Welch's t test of the per-seed values, with the :data:`LEVEL` interval on the difference of means."""
    a, b = np.asarray(candidate, dtype=float), np.asarray(baseline, dtype=float)
    if a.size == 0 or b.size == 0 or np.isnan(a).any() or np.isnan(b).any():
        raise ValueError("the seed test needs non-NaN values on each side (use final_distance on each run)")
    diverged = (int(np.isinf(a).sum()), int(np.isinf(b).sum()))
    a, b = a[np.isfinite(a)], b[np.isfinite(b)]
    n = (a.size, b.size)
    p_diverged = float(stats.fisher_exact([[diverged[0], n[0]], [diverged[1], n[1]]]).pvalue) if any(diverged) else 1.0
    if min(n) < 2:
        return Difference(n, diverged, float("nan"), float("nan"), float("nan"), float("nan"), p_diverged)
    delta = float(a.mean() - b.mean())
    va, vb = a.var(ddof=1) / a.size, b.var(ddof=1) / b.size
    se = float(np.sqrt(va + vb))
    if se == 0:  # both sides constant
        return Difference(n, diverged, delta, delta, delta, 1.0 if delta == 0 else 0.0, p_diverged)
    df = (va + vb) ** 2 / (va ** 2 / (a.size - 1) + vb ** 2 / (b.size - 1))
    half = float(stats.t.ppf(0.5 + LEVEL / 2, df)) * se
    return Difference(n, diverged, delta, delta - half, delta + half, float(2 * stats.t.sf(abs(delta) / se, df)),
                      p_diverged)


def outcome(candidate: Sequence[float], baseline: Sequence[float]) -> str:
    """The declared test's result: :data:`LOWER`, :data:`HIGHER` or :data:`TIE`."""
    return difference(candidate, baseline).result


def judge(candidate: Sequence[float], baseline: Sequence[float], higher_is_better: bool = False,
          learned: bool = True) -> str:
    """The verdict on "candidate is better than baseline" by the declared test, issued only if the
    baseline ``learned`` (else :data:`NOT_LEARNED`)."""
    if not learned:
        return NOT_LEARNED
    result = outcome(candidate, baseline)
    better, worse = (HIGHER, LOWER) if higher_is_better else (LOWER, HIGHER)
    return REPRODUCED if result == better else NOT_REPRODUCED if result == worse else INCONCLUSIVE


def most(flags: Sequence[bool]) -> bool:
    """The gate over seeds: a model learned if it cleared its bar on more than half of them."""
    flags = [bool(f) for f in flags]
    return 2 * sum(flags) > len(flags) > 0


def combine(verdicts: Sequence[str]) -> str:
    """A claim of several parts: not reproduced if any part is not (a part with a learned baseline refutes
    it), else :data:`NOT_LEARNED` if a part's baseline did not learn, else reproduced if every part is."""
    verdicts = list(verdicts)
    if NOT_REPRODUCED in verdicts:
        return NOT_REPRODUCED
    if NOT_LEARNED in verdicts:
        return NOT_LEARNED
    return REPRODUCED if verdicts and all(v == REPRODUCED for v in verdicts) else INCONCLUSIVE


def versus(result: str, baseline: str) -> str:
    """An :func:`outcome` as a phrase, e.g. ``versus("lower", "KL's")`` → ``"lower than KL's"``."""
    if result in (LOWER, HIGHER):
        return f"{result} than {baseline}"
    return f"not distinguishable from {baseline} by the test"


def _number(v: float, digits: int) -> str:
    """``digits`` significant digits, whole numbers from 10^(digits−1) up, at most four decimals (no exponents)."""
    return f"{v:.0f}" if abs(v) >= 10 ** (digits - 1) else f"{round(v, 4):.{digits}g}"


def describe(values: Sequence[float]) -> str:
    """Per-seed values as ``"mean ± sd"`` (one value alone: ``"value (one seed)"``), noting diverged
    (infinite) runs."""
    v = np.asarray(values, dtype=float)
    finite = v[np.isfinite(v)]
    text = f"{_number(finite.mean(), 3)} ± {_number(finite.std(), 2)}" if len(finite) else "—"
    if len(v) == 1 and len(finite) == 1:
        text = f"{_number(finite[0], 3)} (one seed)"
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
    text: str  # one sentence for the book, with both tests
    learned: bool = True  # the gate: the baseline learned

    @property
    def verdict(self) -> str:
        if not self.learned:
            return NOT_LEARNED
        return REPRODUCED if self.reproduced else NOT_REPRODUCED if HIGHER in (self.final, self.auc) else INCONCLUSIVE


def convergence(candidate: dict[str, list[float]], baseline: dict[str, list[float]],
                names: tuple[str, str] = ("wGCN", "GCN"), learned: bool = True) -> Convergence:
    """Whether ``candidate`` ends lower *and* converges faster than ``baseline`` (inputs of :func:`seed_summary`)."""
    cand, base = names
    final, auc = (difference(candidate[k], baseline[k]) for k in ("final", "auc"))
    reproduced, owner = final.result == LOWER and auc.result == LOWER, f"{base}'s"
    outcome = ("is shown here" if reproduced else "is contradicted here" if HIGHER in (final.result, auc.result)
               else "is not shown here, nor is its opposite")
    text = (f"{cand}: the final response distance is {versus(final.result, owner)} ({final.text()}), and the "
            f"area under the curve is {versus(auc.result, owner)} ({auc.text()}); the claim that {cand} ends "
            f"lower and converges faster {outcome}"
            + ("." if learned else f", but {base} did not learn, so there is no verdict."))
    return Convergence(final.result, auc.result, reproduced, text, learned)
