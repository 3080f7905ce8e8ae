"""The detector registry: one entry per detector id, each declaring the input it accepts."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class DetectorInfo:
    id: str
    title: str
    modality: str
    methods: tuple[str, ...]  # best first

    @property
    def default_method(self) -> str:
        """The best method that can run here: one that needs weights only when they are present."""
        return next(method for method in self.methods if method_available(self.id, method))


DETECTORS: dict[str, DetectorInfo] = {
    "calcium": DetectorInfo("calcium", "Coronary calcium", "CT", ("deep", "classical")),
}


def method_available(detector_id: str, method: str) -> bool:
    """Whether a method's model is installed (methods without learned weights always are)."""
    if (detector_id, method) == ("calcium", "deep"):
        from ..calcium_model import deep_model_available

        return deep_model_available()
    return True


def detector_info(detector_id: str) -> DetectorInfo:
    from ..errors import LesionDetectError

    try:
        return DETECTORS[detector_id]
    except KeyError:
        known = ", ".join(DETECTORS)
        raise LesionDetectError(f"Unknown detector '{detector_id}'; available: {known}.") from None
