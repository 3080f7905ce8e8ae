"""The shipped calcium deep model: ACF trees + SSD weights in one safetensors file, checked before use.

`calcium_deep.json` (the manifest) names the weights file, its sha256, the network's configuration
and the ACF settings; loading refuses a file whose hash or tensor shapes differ, and never unpickles.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from LesionDetectLib.detection.input_range import InputRange
from LesionDetectLib.detection.weights import (
    MODELS_DIR,
    check_shapes,
    checked_weights_path,
    config_arguments,
    file_sha256,
    read_manifest,
)

DEFAULT_MANIFEST = MODELS_DIR / "calcium_deep.json"


@dataclass
class CalciumModel:
    """Everything the deep calcium path needs, ready to run."""

    ssd: object  # nets.ssd.SSD, in eval mode
    acf: object  # acf.BoostedTrees
    acf_threshold: float
    acf_shrink: int
    manifest: dict
    sha256: str

    @property
    def version(self) -> str:
        return self.manifest["version"]

    @property
    def input_range(self) -> InputRange | None:
        """The pixel size and slice spacing the model was trained on (None if its manifest does not say)."""
        return InputRange.from_manifest(self.manifest)


def deep_model_available(manifest_path: Path = DEFAULT_MANIFEST) -> bool:
    """Whether shipped weights are present (the deep method is the default only then)."""
    return manifest_path.is_file()


def load_calcium_model(manifest_path: Path = DEFAULT_MANIFEST, weights_path: Path | None = None) -> CalciumModel:
    """Read the manifest, check the weights' hash and shapes, and build the model on the CPU."""
    from safetensors.torch import load_file

    from LesionDetectLib.detectors.calcium.acf import BoostedTrees
    from LesionDetectLib.nets.ssd import SSD, SSDConfig

    manifest = read_manifest(
        manifest_path,
        {"version", "weights", "sha256", "ssd_config", "acf"},
        "calcium deep model",
        "train one with training/train_calcium.py, or use --method classical",
    )
    weights_path, sha256 = checked_weights_path(manifest_path, manifest, "calcium model", weights_path)
    tensors = load_file(str(weights_path))
    model = SSD(SSDConfig(**config_arguments(manifest["ssd_config"])))
    expected = model.state_dict()
    ssd_tensors = {name[4:]: value for name, value in tensors.items() if name.startswith("ssd.")}
    check_shapes(weights_path, expected, ssd_tensors, "calcium network")
    model.load_state_dict({name: value.to(expected[name].dtype) for name, value in ssd_tensors.items()})
    model.eval()
    acf_arrays = {name[4:]: value.numpy() for name, value in tensors.items() if name.startswith("acf.")}
    return CalciumModel(
        ssd=model,
        acf=BoostedTrees.from_arrays(acf_arrays),
        acf_threshold=float(manifest["acf"]["threshold"]),
        acf_shrink=int(manifest["acf"]["shrink"]),
        manifest=manifest,
        sha256=sha256,
    )


def save_calcium_model(ssd, trees, acf_threshold: float, acf_shrink: int, folder: Path, card: dict) -> Path:
    """Write `calcium_deep.safetensors` (SSD in fp16, ACF arrays) and its manifest; return the manifest path.

    `card` describes the training, including `input_range` (the pixel and slice spacings trained on)."""
    import torch
    from safetensors.torch import save_file

    folder.mkdir(parents=True, exist_ok=True)
    weights_path = folder / "calcium_deep.safetensors"
    tensors = {
        f"ssd.{name}": value.detach().cpu().to(torch.float16) if value.is_floating_point() else value.cpu()
        for name, value in ssd.state_dict().items()
    }
    tensors.update(
        {f"acf.{name}": torch.from_numpy(np.ascontiguousarray(value)) for name, value in trees.to_arrays().items()}
    )
    save_file(tensors, str(weights_path))
    manifest = {
        **card,
        "weights": weights_path.name,
        "sha256": file_sha256(weights_path),
        "ssd_config": asdict(ssd.config),
        "acf": {"threshold": float(acf_threshold), "shrink": int(acf_shrink)},
    }
    manifest_path = folder / "calcium_deep.json"
    manifest_path.write_text(json.dumps(manifest, indent=2) + "\n")
    return manifest_path
