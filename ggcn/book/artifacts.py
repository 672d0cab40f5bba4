"""Glue between runs and the book: keyed artifacts with manifests, load-or-run, and myst-nb glue.

A run is one folder ``artifacts/<chapter>/<profile>/<key>/`` with ``metrics.json``, ``arrays.npz`` and
``manifest.json`` (git SHA, versions, device, seed, parameters, wall time, hashes of the package and the
chapter). The key hashes the parameters with the device kind, so no two runs share a folder. Artifacts are
written whole into a temporary folder and renamed into place; a broken one is never reused. ``smoke`` runs
are always recomputed; ``teach``/``paper`` ones, and by default only those recorded by the current code
(``GGCN_ACCEPT_RECORDED=1`` accepts others), are reused.
"""
import contextlib
import errno
import hashlib
import json
import logging
import os
import platform
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

from ggcn.core.train import ensure_writable, sync_to_disk

REPO = Path(__file__).resolve().parents[2]
PACKAGE = REPO / "ggcn"
NOTEBOOKS = REPO / "notebooks"
ROOT_ENV = "GGCN_ARTIFACTS"
ACCEPT_ENV = "GGCN_ACCEPT_RECORDED"
TMP = ".tmp-"  # prefix of folders being written or deleted; never read as artifacts
MANIFEST_FIELDS = ("git_sha", "device", "seed", "parameters", "wall_time_s", "created")

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
    """The commit checked out, with ``-dirty`` when tracked files differ from it; ``unknown`` without git."""
    try:
        head, status = (subprocess.run(["git", *args], cwd=REPO, capture_output=True, text=True, timeout=5)
                        for args in (["rev-parse", "HEAD"], ["status", "--porcelain", "--untracked-files=no"]))
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return head.stdout.strip() + ("-dirty" if status.stdout.strip() else "") if head.returncode == 0 else "unknown"


def device_name(device: str) -> str:
    """The CUDA card's name, or the CPU's with the threads torch uses."""
    if device.startswith("cuda") and torch.cuda.is_available():
        return torch.cuda.get_device_name(torch.device(device))
    return f"cpu ({platform.processor() or platform.machine()}, {torch.get_num_threads()} threads)"


def run_key(params: dict[str, Any], device: str) -> str:
    """12 hex digits naming a run: a hash of ``params`` with the device kind (``cuda``, not which card)
    and the data root made absolute."""
    root = params.get("data_root")
    fields = {**params, "device": torch.device(device).type,
              "data_root": None if root is None else str(Path(root).expanduser().absolute())}
    return hashlib.sha256(json.dumps(fields, sort_keys=True, separators=(",", ":")).encode()).hexdigest()[:12]


def artifact_folder(chapter: str, params: dict[str, Any], device: str, root: Path | None = None) -> Path:
    """``<root>/<chapter>/<profile>/<key>``: where the run of ``params`` on ``device`` is recorded."""
    return (root or artifacts_root()) / chapter / params["profile"] / run_key(params, device)


def code_hashes(chapter: str) -> dict[str, str | None]:
    """SHA-256 of the package's ``.py`` files and of ``notebooks/<chapter>.md`` (None when it does not exist)."""
    package = b"".join(source.relative_to(PACKAGE).as_posix().encode() + b"\0" + source.read_bytes() + b"\0"
                       for source in sorted(PACKAGE.rglob("*.py")))
    notebook = NOTEBOOKS / f"{chapter}.md"
    return {"package": hashlib.sha256(package).hexdigest(),
            "chapter": hashlib.sha256(notebook.read_bytes()).hexdigest() if notebook.is_file() else None}


def code_difference(recorded: dict[str, Any] | None, chapter: str) -> str:
    """'' when the ``recorded`` code hashes are the current ones, else which differ, as short hashes."""
    recorded = recorded or {}
    return "; ".join(f"{part} {(recorded.get(part) or 'unknown')[:8]}, now {(now or 'unknown')[:8]}"
                     for part, now in code_hashes(chapter).items() if recorded.get(part) != now)


def manifest(chapter: str, params: dict[str, Any], device: str, wall_time_s: float,
             cpu_time_s: float | None = None) -> dict[str, Any]:
    """Everything needed to say which run, and which code, produced a number (``cpu_time_s``: the run's
    CPU seconds over all its threads)."""
    import ggcn

    return {"git_sha": git_sha(), "code": code_hashes(chapter), "ggcn_version": ggcn.__version__,
            "torch_version": torch.__version__, "python": platform.python_version(), "device": device_name(device),
            "seed": params.get("seed"), "parameters": params, "wall_time_s": round(wall_time_s, 2),
            "cpu_time_s": None if cpu_time_s is None else round(cpu_time_s, 2),
            "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}


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
        m, how = self.manifest, "recorded artifact" if self.loaded else "this build's run"
        cpu = f", {m['cpu_time_s']} CPU s" if m.get("cpu_time_s") is not None else ""
        line = (f"{how}: profile {m['parameters'].get('profile', '?')}, base seed {m['seed']}, {m['device']}, "
                f"{m['wall_time_s']} s{cpu}, git {m['git_sha'][:12]}")
        return line + (f"; recorded with other code than this build's ({self.other_code})" if self.other_code else "")


def _to_numpy(arrays: dict[str, Any]) -> dict[str, np.ndarray]:
    return {k: (v.detach().cpu().numpy() if isinstance(v, torch.Tensor) else np.asarray(v)) for k, v in arrays.items()}


def save_artifact(path: Path, metrics: dict, arrays: dict, man: dict) -> None:
    """Write the artifact whole into a temporary folder beside ``path``, then rename it to ``path``; one
    already there is moved aside and deleted (of two writers of one key, the last rename wins)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f"{TMP}{path.name}-", dir=path.parent))
    try:
        for name, content in (("metrics.json", metrics), ("manifest.json", man)):
            (staging / name).write_text(json.dumps(content, indent=2, sort_keys=True))
        np.savez_compressed(staging / "arrays.npz", **_to_numpy(arrays))
        for written in (*staging.iterdir(), staging):
            sync_to_disk(written)
        while True:
            try:
                os.replace(staging, path)
                break
            except OSError as err:
                if err.errno not in (errno.ENOTEMPTY, errno.EEXIST):
                    raise
            old = path.with_name(f"{TMP}old-{path.name}-{os.urandom(4).hex()}")
            with contextlib.suppress(FileNotFoundError):  # another writer moved it first
                os.replace(path, old)
                shutil.rmtree(old, ignore_errors=True)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    sync_to_disk(path.parent)


def _stamp(path: Path) -> tuple[int, int, int] | None:
    """Which folder is at ``path`` now: inode and change times (a freed inode is reused by the next write)."""
    with contextlib.suppress(FileNotFoundError):
        st = path.stat()
        return st.st_ino, st.st_ctime_ns, st.st_mtime_ns
    return None


def _read_files(path: Path) -> tuple[dict, dict, dict]:
    """metrics, arrays, manifest of the folder ``path``, or :class:`BrokenArtifact` saying what is wrong."""
    try:
        metrics, man = (json.loads((path / name).read_text()) for name in ("metrics.json", "manifest.json"))
        with np.load(path / "arrays.npz") as npz:
            arrays = {name: npz[name] for name in npz.files}
    except (OSError, ValueError, EOFError, zipfile.BadZipFile, zlib.error) as err:
        raise BrokenArtifact(path, f"{type(err).__name__}: {err}") from err
    if missing := [field for field in MANIFEST_FIELDS if not isinstance(man, dict) or field not in man]:
        raise BrokenArtifact(path, f"manifest.json lacks {missing}")
    return metrics, arrays, man


def load_artifact(path: Path, attempts: int = 10) -> Result:
    """Read the artifact folder ``path`` (``<root>/<chapter>/<profile>/<key>``) whole.

    A folder that another writer replaces while it is read (its stamp changes) is read again, so the three
    files come from one run; a broken one is looked at again before it is called broken. Raises
    :class:`BrokenArtifact`, or ``FileNotFoundError`` when there is none.
    """
    broken: BrokenArtifact | None = None
    for attempt in range(attempts):
        before = _stamp(path)
        try:
            files = _read_files(path) if before else None
        except BrokenArtifact as err:
            files, broken = None, err
        if files and _stamp(path) == before:
            return Result(*files, loaded=True, path=path,
                          other_code=code_difference(files[2].get("code"), path.parent.parent.name))
        time.sleep(0.005 * attempt)
    if not path.is_dir():
        raise FileNotFoundError(f"no artifact at {path}")
    raise broken or BrokenArtifact(path, f"another writer replaced it {attempts} times while it was read")


def _readable(path: Path, broken: str) -> Result | None:
    """The artifact at ``path``; None when there is none or it is broken (logged as ``broken % (path, reason)``)."""
    with contextlib.suppress(FileNotFoundError):  # deleted since it was listed
        try:
            return load_artifact(path) if path.is_dir() else None
        except BrokenArtifact as err:
            log.warning(broken, path, err.reason)
    return None


def recorded(chapter: str, profile: str, root: Path | None = None) -> list[Result]:
    """The complete artifacts of ``chapter`` at ``profile``, newest first; broken ones are logged and left out."""
    folders = (root or artifacts_root()).joinpath(chapter, profile).glob("*")
    found = [_readable(f, "artifact %s is broken (%s): delete it") for f in folders if not f.name.startswith(TMP)]
    return sorted(filter(None, found), key=lambda r: (r.manifest["created"], r.path.name), reverse=True)


def load_or_run(chapter: str, params: dict[str, Any], run: Callable[[], tuple[dict[str, Any], dict[str, Any]]], *,
                reuse: bool | None = None, device: str = "cpu", accept_recorded: bool | None = None) -> Result:
    """Load the artifact of ``params`` on ``device`` or call ``run() -> (metrics, arrays)`` and record it.

    ``reuse=None`` reuses recorded artifacts except at the ``smoke`` profile; one recorded with other code
    is rerun unless ``accept_recorded`` (default: ``$GGCN_ACCEPT_RECORDED``) is true. The folder is checked
    for writability before the run starts, so no finished run is thrown away.
    """
    path = artifact_folder(chapter, params, device)
    if accept_recorded is None:
        accept_recorded = os.environ.get(ACCEPT_ENV, "").strip().lower() in {"1", "true", "yes"}
    broken = "recorded artifact %s is broken (%s); rerunning it, the new run replaces it"
    if (params["profile"] != "smoke" if reuse is None else reuse) and (found := _readable(path, broken)):
        if accept_recorded or not found.other_code:
            return found
        log.warning("not reusing %s: it was recorded with other code (%s); rerunning. To use it anyway, "
                    "set %s=1 or pass accept_recorded=True to load_or_run", path, found.other_code, ACCEPT_ENV)
    try:
        ensure_writable(path.parent)
    except OSError as err:
        where = f"{ROOT_ENV}={os.environ[ROOT_ENV]}" if ROOT_ENV in os.environ else f"{ROOT_ENV} is not set"
        raise UnwritableArtifacts(f"cannot write artifacts to {path.parent} ({err.strerror or err}, {where}). The run "
                                  f"was not started, so nothing is lost: make that folder writable, or set {ROOT_ENV} "
                                  "to a writable folder") from err
    start, cpu = time.perf_counter(), time.process_time()
    metrics, arrays = run()
    man = manifest(chapter, params, device, time.perf_counter() - start, time.process_time() - cpu)
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
