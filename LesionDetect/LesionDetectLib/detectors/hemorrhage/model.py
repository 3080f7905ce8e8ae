"""The shipped hemorrhage model: CNN, PCA reduction and BiLSTM in one safetensors file, checked before use."""

from __future__ import annotations

from pathlib import Path

from LesionDetectLib.detection.weights import MODELS_DIR, NetworkModel, load_network_bundle, save_network_bundle

DEFAULT_MANIFEST = MODELS_DIR / "hemorrhage.json"
WHAT = "hemorrhage model"


class HemorrhageModel(NetworkModel):
    """The CNN, PCA and BiLSTM (nets.slice_sequence); slices are resized to input_size² (the INPUT_FOV_MM square)."""


def load_hemorrhage_model(manifest_path: Path = DEFAULT_MANIFEST, weights_path: Path | None = None) -> HemorrhageModel:
    """Read the manifest, check the weights' hash and shapes, and build the network on the CPU."""
    from LesionDetectLib.nets.slice_sequence import SliceSequenceConfig, SliceSequenceNet

    network, manifest, sha256 = load_network_bundle(
        manifest_path,
        weights_path,
        WHAT,
        "train one with training/train_hemorrhage.py",
        lambda c: SliceSequenceNet(SliceSequenceConfig(**c)),
    )
    return HemorrhageModel(network, int(manifest["input_size"]), manifest, sha256)


def save_hemorrhage_model(network, input_size: int, folder: Path, card: dict) -> Path:
    """Write `hemorrhage.safetensors` (float32) and its manifest `hemorrhage.json`; return the manifest path."""
    return save_network_bundle(network, input_size, folder, "hemorrhage", card)
