"""Files uploaded through the web UI: size-checked, copied under the data directory, added.

An upload is copied to `<data dir>/uploads/<file name>` before it is added, so the article's
origin is that stable path: uploading a changed version of the same file later replaces the
article instead of adding a second copy (as `assistant add` does for a path). Once added (or
refused) the copy is deleted: the origin is only compared as a name, the file is never read
again, and the article's text is in the store.
"""

from __future__ import annotations

import logging
import shutil
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from assistant.articles import SUPPORTED_SUFFIXES
from assistant.assistant import Assistant, IngestReport, IngestResult

log = logging.getLogger(__name__)

Phase = Callable[[int, int, str], None]  # (done, total, what is happening)


@dataclass(frozen=True)
class Staged:
    """Uploads ready to add, and those refused before reading (with the reason)."""

    paths: tuple[Path, ...]
    refused: tuple[IngestResult, ...]


def human_size(n: int) -> str:
    """Binary units, as Gradio's own "exceeds the maximum allowed size" message uses."""
    for unit, size in (("GB", 1 << 30), ("MB", 1 << 20), ("KB", 1 << 10)):
        if n >= size:
            return f"{n / size:.1f} {unit}"
    return f"{n} bytes"


def stage_uploads(uploads: Sequence[str | Path], folder: Path, max_bytes: int) -> Staged:
    """Copy the uploads that are small enough and of a supported type into `folder`."""
    paths: list[Path] = []
    refused: list[IngestResult] = []
    for upload in uploads:
        source = Path(upload)
        name = source.name
        if source.suffix.lower() not in SUPPORTED_SUFFIXES:
            supported = " ".join(SUPPORTED_SUFFIXES)
            reason = f"unsupported file type '{source.suffix or name}' (supported: {supported})"
            refused.append(IngestResult(name, "failed", reason=reason))
            continue
        try:
            size = source.stat().st_size
        except OSError as e:
            refused.append(IngestResult(name, "failed", reason=f"upload not readable ({e})"))
            continue
        if size > max_bytes:
            reason = (
                f"{human_size(size)} is over the upload limit of {human_size(max_bytes)} "
                "(ASSISTANT_MAX_UPLOAD_BYTES); not added"
            )
            refused.append(IngestResult(name, "failed", reason=reason))
            continue
        folder.mkdir(parents=True, exist_ok=True)
        target = folder / name
        copies = 1
        while target in paths:  # two different files with one name in the same upload
            copies += 1
            target = folder / f"{source.stem} ({copies}){source.suffix}"
        shutil.copyfile(source, target)
        paths.append(target)
    return Staged(tuple(paths), tuple(refused))


def add_with_progress(
    assistant: Assistant, paths: Sequence[Path], progress: Phase | None = None
) -> IngestReport:
    """`Assistant.add`, saying which file is being read, then how many articles are stored."""
    report = progress or (lambda done, total, what: None)

    def reading(done: int, total: int, name: str) -> None:
        report(done, total, f"Reading {name}")

    def storing(done: int, total: int, name: str) -> None:
        report(done, total, f"Storing articles: {done} of {total} done")

    result = assistant.add_loaded(assistant.read(paths, reading), storing)
    report(len(result.results), len(result.results), "Done")
    return result


def add_uploads(
    assistant: Assistant, staged: Staged, progress: Phase | None = None
) -> IngestReport:
    """Add the staged uploads, then delete their copies (also when adding fails part-way)."""
    try:
        report = add_with_progress(assistant, staged.paths, progress)
    finally:
        discard(staged.paths)
    return IngestReport(staged.refused + report.results)


def discard(paths: Sequence[Path]) -> None:
    """Delete staged copies; one that cannot be deleted is logged, never fatal."""
    for path in paths:
        try:
            path.unlink(missing_ok=True)
        except OSError as e:
            log.warning("could not delete the uploaded copy %s: %s", path, e)
