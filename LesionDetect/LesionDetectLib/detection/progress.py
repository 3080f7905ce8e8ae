"""Progress reporting for the CLI: a tqdm bar, JSON lines (the protocol the Slicer panel reads) or nothing.
Errors and cancellation always reach stderr outside JSON mode, so a quiet run still says why it stopped.

JSON-lines events, one object per line on stdout: `start`, `progress` (stage, fraction 0..1,
message), `log`, `done` (output, report, lesions, summary), `error` (message, exit_code), `cancelled`.
"""

from __future__ import annotations

import json
import sys


class Progress:
    """Emit run events in the chosen mode: 'bar', 'json' or 'none'."""

    def __init__(self, mode: str = "bar", stream=None):
        self.mode = mode
        self.stream = stream or sys.stdout
        self._bar = None
        self._fraction = 0.0

    def event(self, name: str, **fields) -> None:
        if self.mode == "json":
            self.stream.write(json.dumps({"event": name, **fields}, ensure_ascii=False) + "\n")
            self.stream.flush()
        elif name in ("error", "cancelled") or (self.mode == "bar" and name == "log"):
            self._close_bar()
            print(fields.get("message", name), file=sys.stderr)

    def __call__(self, stage: str, fraction: float, message: str = "") -> None:
        fraction = max(self._fraction, min(1.0, float(fraction)))
        self._fraction = fraction
        if self.mode == "json":
            self.event("progress", stage=stage, fraction=round(fraction, 4), message=message)
        elif self.mode == "bar":
            if self._bar is None:
                from tqdm import tqdm

                self._bar = tqdm(total=100, unit="%", bar_format="{l_bar}{bar}| {elapsed}", file=sys.stderr)
            self._bar.set_description(stage)
            self._bar.update(round(fraction * 100) - self._bar.n)

    def close(self) -> None:
        self._close_bar()

    def _close_bar(self) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None
