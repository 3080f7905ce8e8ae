"""All-or-nothing result folders: files are written to a staging folder and moved in at the end.

A cancelled or failed run leaves the output folder exactly as it was. The results of an earlier run
are the files its `report.json` lists in `outputs`; a folder holding them is refused unless
overwriting was asked for, and then exactly those are replaced, all at once: they are moved aside,
the new files moved in, and the old ones deleted (or put back if moving in fails). Other files in the
folder are never touched, and a new result whose name is taken by such a file is refused.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import tempfile
import threading
from pathlib import Path

from LesionDetectLib.errors import LesionDetectError, OutputExistsError

REPORT_NAME = "report.json"
TERMINATION_SIGNALS = (signal.SIGTERM, signal.SIGINT)
FOLDER_MODE = 0o755


def output_files(report: dict) -> list[str]:
    """Every file a report says its run wrote (relative paths), the report itself included."""
    names = [REPORT_NAME]
    for value in report.get("outputs", {}).values():
        names += value if isinstance(value, list) else [value]
    return list(dict.fromkeys(names))


class OutputFolder:
    """Stage result files next to `path`; `commit()` moves them in, `discard()` removes the staging folder."""

    def __init__(self, path, overwrite: bool = False):
        self.path = Path(path).resolve()
        self.overwrite = overwrite
        self.committed = False
        for path in (self.path, *self.path.parents):
            if path.exists() and not path.is_dir():
                raise LesionDetectError(f"{path} is a file, not a folder: choose another output folder.")
        existing = self.existing_results()
        if existing and not overwrite:
            raise OutputExistsError(
                f"{self.path} already holds results ({', '.join(existing[:4])}); "
                "choose another folder or pass --overwrite to replace them."
            )
        self._created = _missing_parents(self.path.parent)
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            if self.path.is_dir():
                _probe_writable(self.path)
            self.staging = Path(tempfile.mkdtemp(prefix=f".{self.path.name}.partial-", dir=self.path.parent))
            self.staging.chmod(FOLDER_MODE)
        except OSError as error:
            self._remove_created_parents()
            where = error.filename or self.path
            raise LesionDetectError(
                f"Cannot write the results to {self.path} ({error.strerror or error} at {where}); "
                "choose a folder you can write to."
            ) from None

    def existing_results(self) -> list[str]:
        """The files (relative paths) an earlier run's report says it wrote here and that are still here."""
        report = self.path / REPORT_NAME
        if not report.is_file():
            return []
        try:
            names = output_files(json.loads(report.read_text(encoding="utf-8")))
        except (OSError, ValueError, AttributeError):
            return [REPORT_NAME]
        return [name for name in names if isinstance(name, str) and (self.path / name).exists()]

    def commit(self) -> None:
        """Move every staged file in, replacing the earlier run's results (only when overwriting) in one step.

        SIGTERM and SIGINT are ignored meanwhile (the move takes milliseconds; stopping half-way would
        leave a mixed folder, and any thread may receive them, so blocking them in this one would not
        do). Once the results are in, a cancel is too late: they stay ignored until the caller restores
        its own handlers. If moving in fails, the caller's handlers come back at once.
        """
        previous = _hold_off_termination()
        try:
            self._move_in()
        finally:
            _end_hold_off(previous, too_late=self.committed)

    def _move_in(self) -> None:
        """The staging folder becomes the output folder, or its files replace the old results in it."""
        if not self.path.exists():
            os.replace(self.staging, self.path)
            self.committed = True
            return
        new_names = [str(path.relative_to(self.staging)) for path in _files_below(self.staging)]
        old_names = self.existing_results()
        taken = [name for name in new_names if (self.path / name).exists() and name not in old_names]
        if taken:
            raise OutputExistsError(
                f"{self.path} holds files this run would replace but did not write ({', '.join(taken[:4])}); "
                "move them or choose another folder."
            )
        backup = Path(tempfile.mkdtemp(prefix=f".{self.path.name}.previous-", dir=self.path.parent))
        moved_old, moved_new = [], []
        try:
            for name in old_names:
                _move(self.path / name, backup / name)
                moved_old.append(name)
            for name in new_names:
                _move(self.staging / name, self.path / name)
                moved_new.append(name)
        except OSError as error:
            for name in reversed(moved_new):
                _move(self.path / name, self.staging / name)
            for name in reversed(moved_old):
                _move(backup / name, self.path / name)
            shutil.rmtree(backup, ignore_errors=True)
            raise LesionDetectError(
                f"Could not replace the results in {self.path} ({error.strerror}: {error.filename}); "
                "the earlier results were kept."
            ) from None
        for name in moved_old:
            _remove_empty_parents(self.path / name, self.path)
        shutil.rmtree(backup, ignore_errors=True)
        shutil.rmtree(self.staging, ignore_errors=True)
        self.committed = True

    def discard(self) -> None:
        shutil.rmtree(self.staging, ignore_errors=True)
        self._remove_created_parents()

    def _remove_created_parents(self) -> None:
        for folder in reversed(self._created):
            try:
                folder.rmdir()
            except OSError:
                break


def _probe_writable(folder: Path) -> None:
    """Create and remove a file in `folder`: raises the OSError a run would meet only at its end."""
    with tempfile.TemporaryFile(dir=folder):
        pass


def _files_below(folder: Path) -> list[Path]:
    return sorted(path for path in folder.rglob("*") if not path.is_dir())


def _move(source: Path, target: Path) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    os.replace(source, target)


def _remove_empty_parents(path: Path, top: Path) -> None:
    """Remove the folders between `path` and `top` that moving `path` away left empty."""
    for folder in path.parents:
        if folder == top or top not in folder.parents:
            return
        try:
            folder.rmdir()
        except OSError:
            return


def _missing_parents(folder: Path) -> list[Path]:
    """The folders from the outermost missing one down to `folder` (those this run will create)."""
    missing = []
    while not folder.exists():
        missing.append(folder)
        folder = folder.parent
    return missing[::-1]


def _hold_off_termination() -> dict | None:
    """Replace the termination handlers by ones that do nothing (main thread only); return the old ones."""
    if threading.current_thread() is not threading.main_thread():
        return None
    return {number: signal.signal(number, signal.SIG_IGN) for number in TERMINATION_SIGNALS}


def _end_hold_off(previous: dict | None, too_late: bool) -> None:
    if previous is not None and not too_late:
        for number, handler in previous.items():
            signal.signal(number, handler)
