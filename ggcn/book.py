"""Glue between runs and the book: artifacts with manifests, load-or-run, and myst-nb glue.

A chapter's results for one profile live in ``artifacts/<chapter>/<profile>/``:
``metrics.json`` (numbers), ``arrays.npz`` (small arrays: sample grids, curves) and
``manifest.json`` (git SHA, versions, device, seed, parameters, wall time). ``smoke``
results are always recomputed (and git-ignored); ``teach``/``paper`` results are
reused when present, so a GPU run done once shows up in every later build.
"""
from __future__ import annotations

import json
import os
import platform
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch

REPO = Path(__file__).resolve().parents[1]


def artifacts_root() -> Path:
    """``$GGCN_ARTIFACTS`` if set, else ``artifacts/`` at the repository root."""
    return Path(os.environ.get("GGCN_ARTIFACTS", REPO / "artifacts"))


def git_sha() -> str:
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], cwd=REPO, capture_output=True, text=True, timeout=5)
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=REPO,
                               capture_output=True, text=True, timeout=5).stdout.strip()
        return out.stdout.strip() + ("-dirty" if dirty else "") if out.returncode == 0 else "unknown"
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def device_name(device: str) -> str:
    if device.startswith("cuda") and torch.cuda.is_available():
        return torch.cuda.get_device_name(torch.device(device))
    return f"cpu ({platform.processor() or platform.machine()}, {torch.get_num_threads()} threads)"


def manifest(params: dict[str, Any], seed: Any, device: str, wall_time_s: float) -> dict[str, Any]:
    """Everything needed to say which run produced a number."""
    import ggcn

    return {
        "git_sha": git_sha(),
        "ggcn_version": ggcn.__version__,
        "torch_version": torch.__version__,
        "python": platform.python_version(),
        "device": device_name(device),
        "seed": seed,
        "parameters": params,
        "wall_time_s": round(wall_time_s, 2),
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }


@dataclass
class Result:
    metrics: dict[str, Any]
    arrays: dict[str, np.ndarray]
    manifest: dict[str, Any]
    loaded: bool  # True when read from a recorded artifact, False when computed now

    def provenance(self) -> str:
        """One line for a figure caption: where these numbers came from."""
        m = self.manifest
        how = "recorded artifact" if self.loaded else "this build's run"
        return (f"{how}: profile {m['parameters'].get('profile', '?')}, seed(s) {m['seed']}, "
                f"{m['device']}, {m['wall_time_s']} s, git {m['git_sha'][:12]}")


def _to_numpy(arrays: dict[str, Any]) -> dict[str, np.ndarray]:
    return {k: (v.detach().cpu().numpy() if isinstance(v, torch.Tensor) else np.asarray(v)) for k, v in arrays.items()}


def save_artifact(path: Path, metrics: dict, arrays: dict, man: dict) -> None:
    path.mkdir(parents=True, exist_ok=True)
    (path / "metrics.json").write_text(json.dumps(metrics, indent=2, sort_keys=True))
    (path / "manifest.json").write_text(json.dumps(man, indent=2, sort_keys=True))
    np.savez_compressed(path / "arrays.npz", **_to_numpy(arrays))


def load_artifact(path: Path) -> Result:
    missing = [f for f in ("metrics.json", "manifest.json") if not (path / f).is_file()]
    if missing:
        raise FileNotFoundError(f"artifact {path} lacks {missing}; rerun the chapter to recreate it")
    arrays = dict(np.load(path / "arrays.npz")) if (path / "arrays.npz").is_file() else {}
    return Result(json.loads((path / "metrics.json").read_text()), arrays,
                  json.loads((path / "manifest.json").read_text()), loaded=True)


def load_or_run(
    chapter: str,
    params: dict[str, Any],
    run: Callable[[], tuple[dict[str, Any], dict[str, Any]]],
    *,
    reuse: bool | None = None,
    device: str = "cpu",
) -> Result:
    """Load ``artifacts/<chapter>/<params['profile']>`` or call ``run() -> (metrics, arrays)`` and save it.

    ``reuse=None`` reuses recorded artifacts except at the ``smoke`` profile.
    """
    profile = params["profile"]
    path = artifacts_root() / chapter / profile
    if reuse is None:
        reuse = profile != "smoke"
    if reuse and (path / "metrics.json").is_file():
        return load_artifact(path)
    start = time.perf_counter()
    metrics, arrays = run()
    man = manifest(params, params.get("seed"), device, time.perf_counter() - start)
    save_artifact(path, metrics, arrays, man)
    return Result(metrics, _to_numpy(arrays), man, loaded=False)


def glue(name: str, value: Any, display: bool = False) -> Any:
    """myst-nb's glue when the book tools are installed; otherwise just return the value."""
    try:
        from myst_nb import glue as nb_glue
    except ImportError:
        return value
    nb_glue(name, value, display=display)
    return value
