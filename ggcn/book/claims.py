"""The reported-vs-reproduced table of the paper's claims, read from recorded artifacts only.

Chapters store verdicts in their artifacts (:func:`ggcn.experiments.verdicts.record`);
``book/claims.md`` joins the newest complete artifact of each chapter with the claims of
:data:`ggcn.experiments.verdicts.CLAIMS`. A claim without a recorded artifact is an error, not a blank.
"""
from pathlib import Path
from typing import Any

from ggcn.book.artifacts import Result, recorded
from ggcn.experiments.verdicts import CLAIMS

MAKE = "make chapter NB={} PROFILE={}"  # the command that records a chapter's artifact


def collect(profile: str, root: Path) -> list[dict[str, Any]]:
    """One row per claim from the newest complete artifact of its chapter (see :func:`ggcn.book.artifacts.recorded`).

    A chapter without one, or an artifact without the claim's verdict, raises with what to run.
    """
    newest = {chapter: _newest(chapter, profile, root) for chapter in dict.fromkeys(c.chapter for c in CLAIMS)}
    rows = []
    for claim in CLAIMS:
        result = newest[claim.chapter]
        if (entry := result.metrics.get("claims", {}).get(claim.id)) is None:
            raise KeyError(f"{result.path / 'metrics.json'} records no verdict on claim {claim.id!r}; "
                           f"rerun chapter {claim.chapter} ({MAKE.format(claim.chapter, profile)})")
        seeds = entry.get("seeds")
        rows.append({"claim": claim.statement, "paper": f"{claim.reported} ({claim.source})", "test": claim.test,
                     "seeds": len(seeds) if isinstance(seeds, list) else seeds, "measured": entry["measured"],
                     "verdict": entry["verdict"], "run": run_label(claim.chapter, result)})
    return rows


def _newest(chapter: str, profile: str, root: Path) -> Result:
    if found := recorded(chapter, profile, root):
        return found[0]
    claims = sorted(c.id for c in CLAIMS if c.chapter == chapter)
    raise FileNotFoundError(f"no recorded artifact for claim(s) {claims}: no complete artifact in "
                            f"{root / chapter / profile}. Run chapter {chapter} at profile {profile!r} "
                            f"({MAKE.format(chapter, profile)})")


def run_label(chapter: str, result: Result) -> str:
    """The "run" column: chapter, profile, seed, device, commit, and whether the current code made it."""
    m = result.manifest
    code = f"other code ({result.other_code})" if result.other_code else "current code"
    return (f"{chapter} · {m['parameters'].get('profile', '?')} · seed {m['seed']} · {m['device']} · "
            f"git {m['git_sha'][:12]} · {code}")
