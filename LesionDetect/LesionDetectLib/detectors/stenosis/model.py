"""The shipped stenosis model: the frame classifier (CNN + self-attention) in safetensors, checked before use."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

from LesionDetectLib.detection.weights import (
    MODELS_DIR,
    check_shapes,
    checked_weights_path,
    config_arguments,
    file_sha256,
    read_manifest,
)

DEFAULT_MANIFEST = MODELS_DIR / "stenosis.json"
WHAT = "stenosis model"
DEFAULT_THRESHOLD = 0.5


@dataclass
class StenosisModel:
    network: object  # nets.frame_attention.FrameAttentionNet, in eval mode
    input_size: int  # key frames are resized to input_size²
    manifest: dict
    sha256: str

    @property
    def version(self) -> str:
        return self.manifest["version"]

    @property
    def threshold(self) -> float:
        """The frame probability the model was validated to call stenosis at (its card's), else 0.5."""
        return float(self.manifest.get("threshold", DEFAULT_THRESHOLD))


def load_stenosis_model(manifest_path: Path = DEFAULT_MANIFEST, weights_path: Path | None = None) -> StenosisModel:
    """Read the manifest, check the weights' hash and shapes, and build the network on the CPU."""
    from safetensors.torch import load_file

    from LesionDetectLib.nets.frame_attention import FrameAttentionConfig, FrameAttentionNet

    manifest = read_manifest(
        manifest_path,
        {"version", "weights", "sha256", "network", "input_size"},
        WHAT,
        "train one with training/train_stenosis.py",
    )
    weights_path, sha256 = checked_weights_path(manifest_path, manifest, WHAT, weights_path)
    tensors = load_file(str(weights_path))
    network = FrameAttentionNet(FrameAttentionConfig(**config_arguments(manifest["network"])))
    check_shapes(weights_path, network.state_dict(), tensors, "stenosis network")
    network.load_state_dict(tensors)
    return StenosisModel(network.eval(), int(manifest["input_size"]), manifest, sha256)


def save_stenosis_model(network, input_size: int, folder: Path, card: dict) -> Path:
    """Write `stenosis.safetensors` (float32) and its manifest `stenosis.json`; return the manifest path."""
    from safetensors.torch import save_file

    folder.mkdir(parents=True, exist_ok=True)
    weights_path = folder / "stenosis.safetensors"
    save_file(
        {name: value.detach().cpu().contiguous() for name, value in network.state_dict().items()}, str(weights_path)
    )
    manifest = {
        **card,
        "weights": weights_path.name,
        "sha256": file_sha256(weights_path),
        "network": asdict(network.config),
        "input_size": int(input_size),
    }
    manifest_path = folder / "stenosis.json"
    manifest_path.write_text(json.dumps(manifest, indent=2) + "\n")
    return manifest_path
