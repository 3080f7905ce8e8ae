"""Microbleed detector speed per scan on this machine, SSD-300 against SSD-512 (VGG-16), each stage timed.

The scan is a synthetic SWI from training/synthetic_swi.py (its drawn matrix and slices; --seed) or any volume given
with --input. Each network, the two VGG-16 SSDs and the SSD-300 on MobileNetV2, runs the detector's whole
pipeline (N4 and normalisation, the SSD on every slice, the 3D merge) with its config's architecture and random
weights, which take the same time as trained ones. After one warm-up run, the fastest of --repeats counts.
Usage: python benchmarks/microbleed_benchmark.py [--seed 9001] [--input PATH] [--threads 2] [--repeats 2]
"""

from __future__ import annotations

import sys
from pathlib import Path

import yaml
from timing import case_arguments, fastest

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "LesionDetect"), str(ROOT / "training")]

from LesionDetectLib.detectors.microbleed.detect import find_candidates  # noqa: E402
from LesionDetectLib.detectors.microbleed.model import MicrobleedModel  # noqa: E402
from LesionDetectLib.detectors.microbleed.options import MicrobleedOptions  # noqa: E402
from LesionDetectLib.nets.ssd import SSD, SSDConfig  # noqa: E402

CONFIGS = {
    "SSD-300": "microbleed_ssd300_vgg16.yaml",
    "SSD-512": "microbleed_ssd512_vgg16.yaml",
    "SSD-300 MobileNetV2": "microbleed_ssd300_mobilenet.yaml",
}


def model_of(config_name: str) -> MicrobleedModel:
    """The config's network (random weights, eval mode) as a detector model."""
    settings = yaml.safe_load((ROOT / "training" / "configs" / config_name).read_text())["model"]
    settings = {key: tuple(value) if isinstance(value, list) else value for key, value in settings.items()}
    network = SSD(SSDConfig(**{key: value for key, value in settings.items() if key != "pretrained"})).eval()
    return MicrobleedModel(network, settings["image_size"], {"version": config_name}, "")


def main() -> None:
    args = case_arguments(__doc__.splitlines()[0], "SWI scan")
    if args.input:
        from LesionDetectLib.io.read_input import read_input

        volume = read_input(args.input)
    else:
        from synthetic_swi import make_swi_case

        volume = make_swi_case(args.seed).volume
    i, j, k = volume.shape_ijk
    print(f"scan {i}×{j}×{k} voxels of {volume.spacing.round(2).tolist()} mm, {args.threads} torch threads")
    seconds = {}
    for name, config in CONFIGS.items():
        model = model_of(config)
        best, found = fastest(lambda model=model: find_candidates(volume, model, MicrobleedOptions()), args.repeats)
        seconds[name] = best
        stages = ", ".join(f"{stage} {value:.2f} s" for stage, value in found.timings.items())
        print(f"{name}: {best:.2f} s per scan ({1000 * found.timings['network_s'] / k:.0f} ms per slice; {stages})")
    print(f"SSD-512 / SSD-300 time per scan: {seconds['SSD-512'] / seconds['SSD-300']:.2f}")


if __name__ == "__main__":
    main()
