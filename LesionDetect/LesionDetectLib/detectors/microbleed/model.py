"""The shipped microbleed model: the SSD in safetensors with its validated operating points, checked before use."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from LesionDetectLib.detection.weights import MODELS_DIR, NetworkModel, load_network_bundle, save_network_bundle
from LesionDetectLib.errors import LesionDetectError

DEFAULT_MANIFEST = MODELS_DIR / "microbleed.json"
WHAT = "microbleed model"


class MicrobleedModel(NetworkModel):
    """The SSD without feature enhancement; axial slices are resized to input_size² (the INPUT_FOV_MM square)."""

    @property
    def operating_points(self) -> list[dict]:
        """Validation sensitivity, score threshold and false positives per microbleed, by rising sensitivity."""
        return sorted(self.manifest["operating_points"], key=lambda point: point["sensitivity"])


def score_threshold(operating_points: list[dict], sensitivity: float) -> float:
    """The score that finds `sensitivity` of the validation microbleeds, interpolated between operating points
    (the lowest score listed where more is asked than any point reached)."""
    if not operating_points:
        raise LesionDetectError("The microbleed model lists no operating points; its manifest is incomplete.")
    points = sorted(operating_points, key=lambda point: point["sensitivity"])
    sensitivities = np.array([point["sensitivity"] for point in points])
    scores = np.array([point["score"] for point in points])
    return float(np.interp(sensitivity, sensitivities, scores))


def load_microbleed_model(manifest_path: Path = DEFAULT_MANIFEST, weights_path: Path | None = None) -> MicrobleedModel:
    """Read the manifest, check the weights' hash and shapes, and build the network on the CPU."""
    from LesionDetectLib.nets.ssd import SSD, SSDConfig

    network, manifest, sha256 = load_network_bundle(
        manifest_path,
        weights_path,
        WHAT,
        "train one with training/train_microbleed.py",
        lambda c: SSD(SSDConfig(**c)),
    )
    if network.config.feature_enhancement:
        raise LesionDetectError(f"'{manifest_path}' describes a training graph (feature enhancement on), not a model.")
    if not manifest.get("operating_points"):
        raise LesionDetectError(f"'{manifest_path}' lists no operating points; retrain or re-export the model.")
    return MicrobleedModel(network, int(manifest["input_size"]), manifest, sha256)


def save_microbleed_model(network, input_size: int, folder: Path, card: dict) -> Path:
    """Write `microbleed.safetensors` (float32) and its manifest `microbleed.json`; return the manifest path."""
    return save_network_bundle(network, input_size, folder, "microbleed", card)
