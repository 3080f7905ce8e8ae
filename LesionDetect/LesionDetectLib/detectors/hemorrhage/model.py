"""The shipped hemorrhage model: CNN, PCA reduction and BiLSTM in one safetensors file, checked before use."""

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

DEFAULT_MANIFEST = MODELS_DIR / "hemorrhage.json"
WHAT = "hemorrhage model"


@dataclass
class HemorrhageModel:
    network: object  # nets.slice_sequence.SliceSequenceNet, in eval mode
    input_size: int  # slices are resized to input_size² (the INPUT_FOV_MM square)
    manifest: dict
    sha256: str

    @property
    def version(self) -> str:
        return self.manifest["version"]


def load_hemorrhage_model(manifest_path: Path = DEFAULT_MANIFEST, weights_path: Path | None = None) -> HemorrhageModel:
    """Read the manifest, check the weights' hash and shapes, and build the network on the CPU."""
    from safetensors.torch import load_file

    from LesionDetectLib.nets.slice_sequence import SliceSequenceConfig, SliceSequenceNet

    manifest = read_manifest(
        manifest_path,
        {"version", "weights", "sha256", "network", "input_size"},
        WHAT,
        "train one with training/train_hemorrhage.py",
    )
    weights_path, sha256 = checked_weights_path(manifest_path, manifest, WHAT, weights_path)
    tensors = load_file(str(weights_path))
    network = SliceSequenceNet(SliceSequenceConfig(**config_arguments(manifest["network"])))
    check_shapes(weights_path, network.state_dict(), tensors, "hemorrhage network")
    network.load_state_dict(tensors)
    return HemorrhageModel(network.eval(), int(manifest["input_size"]), manifest, sha256)


def save_hemorrhage_model(network, input_size: int, folder: Path, card: dict) -> Path:
    """Write `hemorrhage.safetensors` (float32) and its manifest `hemorrhage.json`; return the manifest path."""
    from safetensors.torch import save_file

    folder.mkdir(parents=True, exist_ok=True)
    weights_path = folder / "hemorrhage.safetensors"
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
    manifest_path = folder / "hemorrhage.json"
    manifest_path.write_text(json.dumps(manifest, indent=2) + "\n")
    return manifest_path
