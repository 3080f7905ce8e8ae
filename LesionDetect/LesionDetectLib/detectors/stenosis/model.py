"""The shipped stenosis model: the frame classifier (CNN + self-attention) in safetensors, checked before use."""

from __future__ import annotations

from pathlib import Path

from LesionDetectLib.detection.weights import MODELS_DIR, NetworkModel, load_network_bundle, save_network_bundle

DEFAULT_MANIFEST = MODELS_DIR / "stenosis.json"
WHAT = "stenosis model"
DEFAULT_THRESHOLD = 0.5


class StenosisModel(NetworkModel):
    """The frame classifier (nets.frame_attention); key frames are resized to input_size²."""

    @property
    def threshold(self) -> float:
        """The frame probability the model was validated to call stenosis at (its card's), else 0.5."""
        return float(self.manifest.get("threshold", DEFAULT_THRESHOLD))


def load_stenosis_model(manifest_path: Path = DEFAULT_MANIFEST, weights_path: Path | None = None) -> StenosisModel:
    """Read the manifest, check the weights' hash and shapes, and build the network on the CPU."""
    from LesionDetectLib.nets.frame_attention import FrameAttentionConfig, FrameAttentionNet

    network, manifest, sha256 = load_network_bundle(
        manifest_path,
        weights_path,
        WHAT,
        "train one with training/train_stenosis.py",
        lambda c: FrameAttentionNet(FrameAttentionConfig(**c)),
    )
    return StenosisModel(network, int(manifest["input_size"]), manifest, sha256)


def save_stenosis_model(network, input_size: int, folder: Path, card: dict) -> Path:
    """Write `stenosis.safetensors` (float32) and its manifest `stenosis.json`; return the manifest path."""
    return save_network_bundle(network, input_size, folder, "stenosis", card)
