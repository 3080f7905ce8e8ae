"""All-or-nothing result folders: files are written to a staging folder and moved in at the end.

A cancelled or failed run leaves the output folder exactly as it was. A folder that already holds
results is refused unless overwriting was asked for; other files in it are never touched.
"""

from __future__ import annotations

import os
import shutil
import signal
import tempfile
from pathlib import Path

from .errors import OutputExistsError

RESULT_NAMES = (
    "report.json",
    "lesions.csv",
    "boxes.mrk.json",
    "snapshot.png",
    "heatmap.nrrd",
    "region.nrrd",
    "lesions",
)


class OutputFolder:
    """Stage result files next to `path`; `commit()` moves them in, `discard()` removes the staging folder."""

    def __init__(self, path, overwrite: bool = False, result_names=RESULT_NAMES):
        self.path = Path(path).resolve()
        self.overwrite = overwrite
        self.result_names = tuple(result_names)
        existing = self.existing_results()
        if existing and not overwrite:
            raise OutputExistsError(
                f"{self.path} already holds results ({', '.join(existing[:4])}); "
                "choose another folder or pass --overwrite to replace them."
            )
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.staging = Path(tempfile.mkdtemp(prefix=f".{self.path.name}.partial-", dir=self.path.parent))

    def existing_results(self) -> list[str]:
        if not self.path.is_dir():
            return []
        return sorted(entry.name for entry in self.path.iterdir() if self._is_result(entry.name))

    def _is_result(self, name: str) -> bool:
        return name in self.result_names or name.endswith(".stl")

    def commit(self) -> None:
        """Move every staged file into the output folder, replacing old results only when overwriting."""
        blocked = _block_termination()
        try:
            if not self.path.exists():
                os.replace(self.staging, self.path)
                return
            for name in self.existing_results():
                old = self.path / name
                shutil.rmtree(old) if old.is_dir() else old.unlink()
            for entry in self.staging.iterdir():
                os.replace(entry, self.path / entry.name)
            self.staging.rmdir()
        finally:
            _unblock_termination(blocked)

    def discard(self) -> None:
        shutil.rmtree(self.staging, ignore_errors=True)


def _block_termination():
    if hasattr(signal, "pthread_sigmask"):
        return signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGTERM, signal.SIGINT})
    return None


def _unblock_termination(previous) -> None:
    if previous is not None:
        signal.pthread_sigmask(signal.SIG_SETMASK, previous)
