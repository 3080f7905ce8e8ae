"""Stenosis detector speed per clip on this machine, each stage timed: reading, key frames, network, heatmaps.

The clip is a synthetic 512² run from training/synthetic_angiography.py (--seed), written as a PNG frame folder and
read back through the platform reader, or any run given with --input. The network is the shipped model when there is
one (else the config's architecture with random weights, which take the same time), beside the same CNN without
the attention module: the ablation's cost. After one warm-up run, the fastest of --repeats counts.
Usage: python benchmarks/stenosis_benchmark.py [--seed 9001] [--input PATH] [--threads 2] [--repeats 2]
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

import numpy as np
import yaml
from timing import case_arguments, fastest

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "LesionDetect"), str(ROOT / "training")]

from LesionDetectLib.detectors.stenosis.heatmaps import frame_heatmaps  # noqa: E402
from LesionDetectLib.detectors.stenosis.key_frames import key_frames  # noqa: E402
from LesionDetectLib.detectors.stenosis.model import DEFAULT_MANIFEST, load_stenosis_model  # noqa: E402
from LesionDetectLib.detectors.stenosis.preprocess import network_input  # noqa: E402
from LesionDetectLib.io.read_input import read_input  # noqa: E402
from LesionDetectLib.nets.frame_attention import FrameAttentionConfig, FrameAttentionNet  # noqa: E402

CONFIG = ROOT / "training" / "configs" / "stenosis_mobilenet.yaml"


def networks() -> dict:
    """name → (network in eval mode, input size): the shipped model (or random weights) and its ablation."""
    settings = yaml.safe_load(CONFIG.read_text())
    model = {key: value for key, value in settings["model"].items() if key != "pretrained"}
    size = settings["input_size"]
    if DEFAULT_MANIFEST.is_file():
        shipped = load_stenosis_model()
        first = (f"shipped {shipped.version}", shipped.network.eval(), shipped.input_size)
    else:
        first = ("attention (random weights)", FrameAttentionNet(FrameAttentionConfig(**model)).eval(), size)
    without = FrameAttentionNet(FrameAttentionConfig(**{**model, "attention": False})).eval()
    return {first[0]: first[1:], "no attention (random weights)": (without, size)}


def written_clip(seed: int, folder: Path) -> Path:
    """A synthetic run as a PNG frame folder (8- or 16-bit, as the generator drew it)."""
    import imageio.v3 as iio
    from synthetic_angiography import make_angiography_clip

    for index, frame in enumerate(make_angiography_clip(seed, matrix=512).frames):
        iio.imwrite(folder / f"frame{index:03d}.png", frame)
    return folder


def main() -> None:
    args = case_arguments(__doc__.splitlines()[0], "run")
    import torch

    with tempfile.TemporaryDirectory() as temporary:
        source = args.input or written_clip(args.seed, Path(temporary))
        read_s, sequence = fastest(lambda: read_input(source), args.repeats)
    frames = np.asarray(sequence.frames)
    print(f"clip {len(frames)} frames of {sequence.frame_shape[0]}×{sequence.frame_shape[1]}, {args.threads} threads")
    key_s, chosen = fastest(lambda: key_frames(frames, sequence.pixel_spacing_mm), args.repeats)
    totals = {}
    for name, (network, size) in networks().items():
        inputs = network_input(frames[chosen.indices], chosen.text_mask, size)
        with torch.no_grad():
            network_s, _ = fastest(lambda network=network, inputs=inputs: network(inputs), args.repeats)
        heat_s, _ = fastest(
            lambda network=network, inputs=inputs: frame_heatmaps(network, inputs, sequence.frame_shape), args.repeats
        )
        totals[name] = read_s + key_s + network_s + heat_s
        print(
            f"{name}: {totals[name]:.2f} s per clip (reading {read_s:.2f} s, key frames {key_s:.2f} s, "
            f"network {network_s:.2f} s for {len(inputs)} key frames = {1000 * network_s / len(inputs):.0f} ms each, "
            f"heatmaps {heat_s:.2f} s)"
        )
    with_attention, without = totals.values()
    print(f"with / without attention, time per clip: {with_attention / without:.2f}")


if __name__ == "__main__":
    main()
