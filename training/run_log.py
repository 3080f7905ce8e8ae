"""A training run's log: one JSON line per entry in OUT/train_log.jsonl (appended, so a resumed run continues it),
echoed to the terminal."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path


def run_log(folder: Path) -> Callable[[dict], None]:
    """Create `folder` and return the function that records an entry in its train_log.jsonl."""
    folder.mkdir(parents=True, exist_ok=True)
    stream = open(folder / "train_log.jsonl", "a")

    def record(entry: dict) -> None:
        stream.write(json.dumps(entry) + "\n")
        stream.flush()
        print(json.dumps(entry), flush=True)

    return record
