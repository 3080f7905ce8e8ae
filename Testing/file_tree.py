"""The state of a folder tree, to check that a run wrote nothing and lost nothing."""

import hashlib
import os
from pathlib import Path


def tree_state(root: Path) -> dict:
    """Every folder and file under `root`, hidden ones included: files by content hash and mode."""
    state = {}
    for folder, folders, files in os.walk(root):
        for name in folders:
            state[os.path.relpath(os.path.join(folder, name), root)] = "folder"
        for name in files:
            path = Path(folder) / name
            state[str(path.relative_to(root))] = (hashlib.sha256(path.read_bytes()).hexdigest(), path.stat().st_mode)
    return state
