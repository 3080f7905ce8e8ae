"""The detector registry: every `Detector` subclass in `detectors/<id>/detector.py`, found by walking the package.

A detector folder without a `detector.py` (one whose parts are being built) is not a detector yet.

Detectors outside the package (a plug-in, a toy detector in a test) join with `register()` in this
process, or by naming their module in the environment variable LESIONDETECT_PLUGINS
(comma-separated) so that a worker process started by the panel finds them too.
"""

from __future__ import annotations

import importlib
import os
import pkgutil
from pathlib import Path

from LesionDetectLib.detection.detector import Detector
from LesionDetectLib.errors import LesionDetectError

PLUGINS_VARIABLE = "LESIONDETECT_PLUGINS"
_registered: dict[str, Detector] = {}
_discovered = False


def register(detector: Detector) -> Detector:
    """Add (or replace) a detector instance under its id; returns it."""
    _registered[detector.id] = detector
    return detector


def unregister(detector_id: str) -> None:
    _registered.pop(detector_id, None)


def detectors() -> dict[str, Detector]:
    """Detector id → detector, the package's own first (alphabetical), then plug-ins in registration order."""
    _discover()
    return dict(_registered)


def get_detector(detector_id: str) -> Detector:
    try:
        return detectors()[detector_id]
    except KeyError:
        known = ", ".join(detectors())
        raise LesionDetectError(f"Unknown detector '{detector_id}'; available: {known}.") from None


def _discover() -> None:
    global _discovered
    if _discovered:
        return
    _discovered = True
    import LesionDetectLib.detectors as package

    for info in sorted(pkgutil.iter_modules(package.__path__), key=lambda info: info.name):
        if info.ispkg and (Path(info.module_finder.path) / info.name / "detector.py").is_file():
            _register_module(f"{package.__name__}.{info.name}.detector")
    for name in filter(None, (part.strip() for part in os.environ.get(PLUGINS_VARIABLE, "").split(","))):
        _register_module(name)


def _register_module(module_name: str) -> None:
    module = importlib.import_module(module_name)
    for value in vars(module).values():
        if isinstance(value, type) and issubclass(value, Detector) and value is not Detector:
            if value.__module__ == module.__name__ and getattr(value, "id", None):
                _registered.setdefault(value.id, value())
