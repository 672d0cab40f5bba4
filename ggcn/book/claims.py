"""The paper's claims, and how a run records its verdict on one.

Chapters compute verdicts from their own runs and store them in their artifact
(``metrics["claims"][claim_id]``) with :func:`record`; ``book/claims.md`` joins the newest
complete artifact of each chapter (:func:`ggcn.book.artifacts.recorded`) with :data:`CLAIMS` into the
reported-vs-reproduced table, saying for each which seed, device and code made it. Nothing is
typed by hand: a claim without a recorded artifact is an error, not a blank.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from ggcn.book.artifacts import Result, recorded

REPRODUCED, NOT_REPRODUCED, INCONCLUSIVE = "reproduced", "not reproduced", "inconclusive at this scale"
VERDICTS = (REPRODUCED, NOT_REPRODUCED, INCONCLUSIVE)


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
          "the JKO rule keeps the particles closer to the data.", "qualitative (2-D particle picture)", "Fig. 1, Sec. 3",
          "02_kl_vs_jko"),
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


def compare_lower(ours: Sequence[float], theirs: Sequence[float], z: float = 2.0) -> str:
    """Verdict on "ours is lower than theirs" from per-seed values.

    Reproduced when the difference of means exceeds ``z`` standard errors in the claimed
    direction, not reproduced when it does so in the other direction, inconclusive otherwise.
    """
    a, b = np.asarray(ours, float), np.asarray(theirs, float)
    if len(a) < 2 or len(b) < 2:
        return INCONCLUSIVE
    se = np.sqrt(a.var(ddof=1) / len(a) + b.var(ddof=1) / len(b))
    diff = b.mean() - a.mean()
    if diff > z * se and diff > 0:
        return REPRODUCED
    if -diff > z * se and diff < 0:
        return NOT_REPRODUCED
    return INCONCLUSIVE


def collect(profile: str, root: Path) -> list[dict[str, Any]]:
    """One row per claim from the newest complete artifact of its chapter (see :func:`ggcn.book.artifacts.recorded`).

    A chapter without one, or an artifact without the claim's verdict, raises with what to run.
    """
    newest = {chapter: _newest(chapter, profile, root) for chapter in dict.fromkeys(c.chapter for c in CLAIMS)}
    rows = []
    for claim in CLAIMS:
        result = newest[claim.chapter]
        entry = result.metrics.get("claims", {}).get(claim.id)
        if entry is None:
            raise KeyError(f"{result.path / 'metrics.json'} records no verdict on claim {claim.id!r}; "
                           f"rerun chapter {claim.chapter} ({_make(claim.chapter, profile)})")
        rows.append({
            "claim": claim.statement, "paper": f"{claim.reported} ({claim.source})",
            "measured": entry["measured"], "verdict": entry["verdict"], "run": run_label(claim.chapter, result),
        })
    return rows


def _make(chapter: str, profile: str) -> str:
    return f"make chapter NB={chapter} PROFILE={profile}"


def _newest(chapter: str, profile: str, root: Path) -> Result:
    found = recorded(chapter, profile, root)
    if not found:
        claims = sorted(c.id for c in CLAIMS if c.chapter == chapter)
        raise FileNotFoundError(
            f"no recorded artifact for claim(s) {claims}: no complete artifact in {root / chapter / profile}. "
            f"Run chapter {chapter} at profile {profile!r} ({_make(chapter, profile)})"
        )
    return found[0]


def run_label(chapter: str, result: Result) -> str:
    """The "run" column: chapter, profile, seed, device, and whether the current code made it."""
    m = result.manifest
    code = f"other code ({result.other_code})" if result.other_code else "current code"
    return f"{chapter} · {m['parameters'].get('profile', '?')} · seed {m['seed']} · {m['device']} · {code}"
