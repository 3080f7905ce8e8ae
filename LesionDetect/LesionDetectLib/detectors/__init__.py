"""The detector registry: one entry per detector id, each declaring the input it accepts."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class DetectorInfo:
    id: str
    title: str
    modality: str
    methods: tuple[str, ...]
    default_method: str


DETECTORS: dict[str, DetectorInfo] = {
    "calcium": DetectorInfo("calcium", "Coronary calcium", "CT", ("classical",), "classical"),
}


def detector_info(detector_id: str) -> DetectorInfo:
    from ..errors import LesionDetectError

    try:
        return DETECTORS[detector_id]
    except KeyError:
        known = ", ".join(DETECTORS)
        raise LesionDetectError(f"Unknown detector '{detector_id}'; available: {known}.") from None
