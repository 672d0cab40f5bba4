"""Glue between runs and the book: keyed artifacts with manifests, load-or-run, and myst-nb glue.

One run of a chapter is one folder, ``artifacts/<chapter>/<profile>/<key>/``, holding
``metrics.json`` (numbers), ``arrays.npz`` (small arrays: sample grids, curves) and
``manifest.json`` (git SHA, versions, device, seed, parameters, wall time, code hashes).

* The **key** (:func:`run_key`, 12 hex digits) is a hash of what made the run: the chapter's
  ``params`` (profile, seed, data root and the chapter parameters) with the device reduced to its
  kind (``cpu``, ``cuda``, not the GPU model). Runs with another seed or parameters get their own
  folder and never overwrite one another.
* The **code** that made the run is recorded in the manifest as hashes of the package
  (``ggcn/**/*.py``) and of the chapter source (``notebooks/<chapter>.md``). A recorded artifact
  made by other code is rerun by default; set ``GGCN_ACCEPT_RECORDED=1`` (or pass
  ``accept_recorded=True``) to use it anyway, and :meth:`Result.provenance` says so.
* An artifact is written whole into a temporary folder beside its place, fsynced, and renamed
  into place, so a reader never sees half of one; of two writers of one key the last rename wins.
  A broken recorded artifact (unreadable json or npz, a missing file) is never reused:
  :func:`load_or_run` reruns it and the new run replaces it; :func:`load_artifact` raises
  :class:`BrokenArtifact` naming the folder and the fix (delete it and rerun the chapter).
* ``smoke`` results are always recomputed (and git-ignored); ``teach``/``paper`` results are
  reused when present, so a GPU run done once shows up in every later build. The artifacts
  folder is checked for writability before a run starts, so no finished run is thrown away.
"""
from __future__ import annotations

import errno
import hashlib
import json
import logging
import os
import platform
import secrets
import shutil
import subprocess
import tempfile
import time
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch

from ggcn.core.train import ensure_writable

REPO = Path(__file__).resolve().parents[1]
PACKAGE = REPO / "ggcn"
NOTEBOOKS = REPO / "notebooks"
ROOT_ENV = "GGCN_ARTIFACTS"
ACCEPT_ENV = "GGCN_ACCEPT_RECORDED"
TMP = ".tmp-"  # prefix of folders being written or deleted; never read as artifacts
MANIFEST_FIELDS = ("git_sha", "device", "seed", "parameters", "wall_time_s", "created")
UNREADABLE = (OSError, ValueError, EOFError, zipfile.BadZipFile, zlib.error)

log = logging.getLogger(__name__)


class BrokenArtifact(RuntimeError):
    """A recorded artifact that cannot be read whole; the message names its folder and the fix."""

    def __init__(self, path: Path, reason: str):
        self.path, self.reason = path, reason
        super().__init__(f"artifact {path} is broken ({reason}): delete {path} and rerun the chapter")


class UnwritableArtifacts(OSError):
    """The artifacts folder cannot be written, found before a run starts."""


def artifacts_root() -> Path:
    """``$GGCN_ARTIFACTS`` if set, else ``artifacts/`` at the repository root."""
    return Path(os.environ.get(ROOT_ENV, REPO / "artifacts"))


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


def device_kind(device: str) -> str:
    """``cuda:1`` → ``cuda``: the kind of device, not which card."""
    return torch.device(device).type


# ---------------------------------------------------------------- keys and code hashes

def run_key(params: dict[str, Any], device: str) -> str:
    """12 hex digits naming a run: a hash of ``params`` with the device kind and the data root made absolute."""
    data_root = params.get("data_root")
    fields = {**params, "device": device_kind(device),
              "data_root": None if data_root is None else str(Path(data_root).expanduser().absolute())}
    canonical = json.dumps(fields, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()[:12]


def artifact_folder(chapter: str, params: dict[str, Any], device: str, root: Path | None = None) -> Path:
    """``<root>/<chapter>/<profile>/<key>``: where the run of ``params`` on ``device`` is recorded."""
    return (root or artifacts_root()) / chapter / params["profile"] / run_key(params, device)


def code_hashes(chapter: str) -> dict[str, str | None]:
    """SHA-256 of the package's ``.py`` files and of ``notebooks/<chapter>.md`` (None when it does not exist)."""
    package = hashlib.sha256()
    for source in sorted(PACKAGE.rglob("*.py")):
        package.update(source.relative_to(PACKAGE).as_posix().encode() + b"\0" + source.read_bytes() + b"\0")
    notebook = NOTEBOOKS / f"{chapter}.md"
    return {"package": package.hexdigest(),
            "chapter": hashlib.sha256(notebook.read_bytes()).hexdigest() if notebook.is_file() else None}


def code_difference(recorded: dict[str, Any] | None, chapter: str) -> str:
    """'' when ``recorded`` code hashes are the current ones, else which differ, as short hashes."""
    current, recorded = code_hashes(chapter), recorded or {}
    return "; ".join(f"{part} {_short(recorded.get(part))}, now {_short(now)}"
                     for part, now in current.items() if recorded.get(part) != now)


def _short(digest: str | None) -> str:
    return digest[:8] if digest else "unknown"


def accepting_recorded(accept: bool | None) -> bool:
    """``accept`` if given, else whether ``$GGCN_ACCEPT_RECORDED`` is set to 1/true/yes."""
    if accept is not None:
        return accept
    return os.environ.get(ACCEPT_ENV, "").strip().lower() in {"1", "true", "yes"}


# ---------------------------------------------------------------- results

def manifest(chapter: str, params: dict[str, Any], device: str, wall_time_s: float) -> dict[str, Any]:
    """Everything needed to say which run, and which code, produced a number."""
    import ggcn

    return {
        "git_sha": git_sha(),
        "code": code_hashes(chapter),
        "ggcn_version": ggcn.__version__,
        "torch_version": torch.__version__,
        "python": platform.python_version(),
        "device": device_name(device),
        "seed": params.get("seed"),
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
    path: Path | None = None
    other_code: str = ""  # when recorded with other code: which hashes differ (see code_difference)

    def provenance(self) -> str:
        """One line for a figure caption: where these numbers came from, and by which code."""
        m = self.manifest
        how = "recorded artifact" if self.loaded else "this build's run"
        line = (f"{how}: profile {m['parameters'].get('profile', '?')}, seed(s) {m['seed']}, "
                f"{m['device']}, {m['wall_time_s']} s, git {m['git_sha'][:12]}")
        return line + (f"; recorded with other code than this build's ({self.other_code})" if self.other_code else "")


def _to_numpy(arrays: dict[str, Any]) -> dict[str, np.ndarray]:
    return {k: (v.detach().cpu().numpy() if isinstance(v, torch.Tensor) else np.asarray(v)) for k, v in arrays.items()}


# ---------------------------------------------------------------- writing

def check_writable(folder: Path) -> None:
    """Create ``folder`` and check it takes a file, or raise :class:`UnwritableArtifacts` saying what to do."""
    try:
        ensure_writable(folder)
    except OSError as err:
        where = f"{ROOT_ENV}={os.environ[ROOT_ENV]}" if ROOT_ENV in os.environ else f"{ROOT_ENV} is not set"
        raise UnwritableArtifacts(
            f"cannot write artifacts to {folder} ({err.strerror or err}, {where}). The run was not started, "
            f"so nothing is lost: make that folder writable, or set {ROOT_ENV} to a writable folder"
        ) from err


def _write_synced(path: Path, write: Callable[[Any], None]) -> None:
    with open(path, "wb") as f:
        write(f)
        f.flush()
        os.fsync(f.fileno())


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _publish(staging: Path, folder: Path) -> None:
    """Rename ``staging`` to ``folder``; one already there is moved aside and deleted (the last rename wins)."""
    while True:
        try:
            os.replace(staging, folder)
            return
        except OSError as err:
            if err.errno not in (errno.ENOTEMPTY, errno.EEXIST):
                raise
        old = folder.with_name(f"{TMP}old-{folder.name}-{secrets.token_hex(4)}")
        try:
            os.replace(folder, old)
        except FileNotFoundError:  # another writer moved it first
            continue
        shutil.rmtree(old, ignore_errors=True)


def save_artifact(path: Path, metrics: dict, arrays: dict, man: dict) -> None:
    """Write the artifact whole into a temporary folder beside ``path``, then rename it to ``path``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f"{TMP}{path.name}-", dir=path.parent))
    try:
        for name, content in (("metrics.json", metrics), ("manifest.json", man)):
            text = json.dumps(content, indent=2, sort_keys=True).encode()
            _write_synced(staging / name, lambda f: f.write(text))
        _write_synced(staging / "arrays.npz", lambda f: np.savez_compressed(f, **_to_numpy(arrays)))
        _fsync_dir(staging)
        _publish(staging, path)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    _fsync_dir(path.parent)


# ---------------------------------------------------------------- reading

def _stamp(path: Path) -> tuple[int, int, int] | None:
    """Which folder sits at ``path`` now: inode and change times (a freed inode can be reused by the
    next folder written, so the inode alone cannot tell two folders apart)."""
    try:
        st = path.stat()
    except FileNotFoundError:
        return None
    return st.st_ino, st.st_ctime_ns, st.st_mtime_ns


def _read_files(path: Path) -> tuple[dict, dict, dict]:
    """metrics, arrays, manifest of the folder ``path``, or :class:`BrokenArtifact` saying what is wrong."""
    try:
        metrics = json.loads((path / "metrics.json").read_text())
        man = json.loads((path / "manifest.json").read_text())
        with np.load(path / "arrays.npz") as npz:
            arrays = {name: npz[name] for name in npz.files}
    except UNREADABLE as err:
        raise BrokenArtifact(path, f"{type(err).__name__}: {err}") from err
    missing = [field for field in MANIFEST_FIELDS if not isinstance(man, dict) or field not in man]
    if missing:
        raise BrokenArtifact(path, f"manifest.json lacks {missing}")
    return metrics, arrays, man


def _read_once(path: Path) -> tuple[dict, dict, dict] | None:
    """The three files if ``path`` stayed one folder while read; None if it was absent or replaced meanwhile."""
    before = _stamp(path)
    if before is None:
        return None
    try:
        files = _read_files(path)
    except BrokenArtifact:
        if _stamp(path) == before:
            raise
        return None
    return files if _stamp(path) == before else None


def load_artifact(path: Path, attempts: int = 10) -> Result:
    """Read the artifact folder ``path`` (``<root>/<chapter>/<profile>/<key>``) whole.

    A folder that another writer replaces while it is read is read again, so the three files always
    come from one run. Raises :class:`BrokenArtifact` when the folder cannot be read whole, and
    ``FileNotFoundError`` when there is none. The chapter whose code is compared is ``path``'s grandparent.
    """
    broken: BrokenArtifact | None = None
    for attempt in range(attempts):
        try:
            files = _read_once(path)
        except BrokenArtifact as err:  # broken, or a replacement the stamp missed: look again before saying so
            files, broken = None, err
        if files is not None:
            metrics, arrays, man = files
            return Result(metrics, arrays, man, loaded=True, path=path,
                          other_code=code_difference(man.get("code"), path.parent.parent.name))
        time.sleep(0.005 * attempt)
    if broken is not None and path.is_dir():
        raise broken
    if not path.is_dir():
        raise FileNotFoundError(f"no artifact at {path}")
    raise BrokenArtifact(path, f"another writer replaced it {attempts} times while it was read")


def recorded(chapter: str, profile: str, root: Path | None = None) -> list[Result]:
    """The complete artifacts of ``chapter`` at ``profile``, newest first; broken ones are logged and left out."""
    results = []
    for folder in (root or artifacts_root()).joinpath(chapter, profile).glob("*"):
        if not folder.is_dir() or folder.name.startswith(TMP):
            continue
        try:
            results.append(load_artifact(folder))
        except BrokenArtifact as err:
            log.warning("%s", err)
        except FileNotFoundError:  # deleted since it was listed
            continue
    return sorted(results, key=lambda r: (r.manifest["created"], r.path.name), reverse=True)


def _reusable(path: Path, accept_recorded: bool | None) -> Result | None:
    """The recorded artifact at ``path`` if it may be reused, else None (and a log line saying why)."""
    if not path.is_dir():
        return None
    try:
        result = load_artifact(path)
    except BrokenArtifact as err:
        log.warning("recorded artifact %s is broken (%s); rerunning it, the new run replaces it", path, err.reason)
        return None
    except FileNotFoundError:  # deleted since it was checked
        return None
    if result.other_code and not accepting_recorded(accept_recorded):
        log.warning("not reusing %s: it was recorded with other code (%s); rerunning. To use it anyway, "
                    "set %s=1 or pass accept_recorded=True to load_or_run", path, result.other_code, ACCEPT_ENV)
        return None
    return result


def load_or_run(
    chapter: str,
    params: dict[str, Any],
    run: Callable[[], tuple[dict[str, Any], dict[str, Any]]],
    *,
    reuse: bool | None = None,
    device: str = "cpu",
    accept_recorded: bool | None = None,
) -> Result:
    """Load the artifact of ``params`` on ``device`` or call ``run() -> (metrics, arrays)`` and record it.

    ``reuse=None`` reuses recorded artifacts except at the ``smoke`` profile. One recorded with
    other code is rerun unless ``accept_recorded`` (default: ``$GGCN_ACCEPT_RECORDED``) is true.
    """
    path = artifact_folder(chapter, params, device)
    if reuse is None:
        reuse = params["profile"] != "smoke"
    found = _reusable(path, accept_recorded) if reuse else None
    if found is not None:
        return found
    check_writable(path.parent)
    start = time.perf_counter()
    metrics, arrays = run()
    man = manifest(chapter, params, device, time.perf_counter() - start)
    save_artifact(path, metrics, arrays, man)
    return Result(metrics, _to_numpy(arrays), man, loaded=False, path=path)


def glue(name: str, value: Any, display: bool = False) -> Any:
    """myst-nb's glue when the book tools are installed; otherwise just return the value."""
    try:
        from myst_nb import glue as nb_glue
    except ImportError:
        return value
    nb_glue(name, value, display=display)
    return value
