"""Hemorrhage detector speed: the classification pass per slice as a ratio against the paper's 36 ms per image
(seeds/004, a P100 GPU), Grad-CAM of the positive labels timed apart, and the whole run per scan.

The scan is a synthetic head CT from training/synthetic_head_ct.py (512², 5 mm slices by default) or any
scan given with --input. After one warm-up run, the fastest of --repeats counts.
Usage: python benchmarks/hemorrhage_benchmark.py [--matrix 512] [--seed 7] [--input PATH] [--manifest M]
       [--device cpu|cuda] [--repeats 3]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
from timing import fastest

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "LesionDetect"), str(ROOT / "training")]

from LesionDetectLib.detectors.hemorrhage.classify import classify_slices  # noqa: E402
from LesionDetectLib.detectors.hemorrhage.detect import detect_hemorrhage, scan_heatmap  # noqa: E402
from LesionDetectLib.detectors.hemorrhage.labels import LABELS  # noqa: E402
from LesionDetectLib.detectors.hemorrhage.model import DEFAULT_MANIFEST, load_hemorrhage_model  # noqa: E402
from LesionDetectLib.detectors.hemorrhage.options import HemorrhageOptions  # noqa: E402
from LesionDetectLib.detectors.hemorrhage.preprocess import head_frame, network_input  # noqa: E402
from LesionDetectLib.io.axial_view import axial_view  # noqa: E402

PAPER_MS_PER_IMAGE = 36.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--matrix", type=int, default=512)
    parser.add_argument("--seed", type=int, default=7, help="generator seed of the synthetic scan")
    parser.add_argument("--input", type=Path, help="a head CT (file or DICOM folder) instead of a synthetic one")
    parser.add_argument("--manifest", type=Path, default=DEFAULT_MANIFEST)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    import torch

    if args.input:
        from LesionDetectLib.io.read_input import read_input

        volume = read_input(args.input)
    else:
        from synthetic_head_ct import make_head_case

        volume = make_head_case(args.seed, matrix=args.matrix).volume
    model = load_hemorrhage_model(args.manifest)
    hu = axial_view(volume).to_network(volume.array)
    frame = head_frame(hu, float(np.mean(volume.spacing[:2])))
    slices = len(hu)
    preprocess_s, inputs = fastest(lambda: network_input(hu, frame, model.input_size), args.repeats)
    classify_s, probabilities = fastest(lambda: classify_slices(model.network, inputs, args.device), args.repeats)
    positive = [label for label, p in zip(LABELS, probabilities.scan) if p >= 0.5] or ["any"]
    gradcam_s, _ = fastest(
        lambda: scan_heatmap(model.network, inputs, probabilities.final, positive, 0.0, frame, hu),
        args.repeats,
    )
    options = HemorrhageOptions()
    scan_s, findings = fastest(lambda: detect_hemorrhage(volume, model, options, args.device), args.repeats)
    per_slice_ms = 1000 * classify_s / slices
    print(f"scan: {volume.name}, {slices} slices of {volume.array.shape[1]}×{volume.array.shape[2]}")
    print(f"threads: {torch.get_num_threads()}, device: {args.device}, model {model.version}")
    print(f"preprocess (windows, head square, resize): {1000 * preprocess_s / slices:.1f} ms/slice")
    print(
        f"classification pass (CNN + reduction + BiLSTM): {per_slice_ms:.1f} ms/slice = "
        f"{per_slice_ms / PAPER_MS_PER_IMAGE:.2f} × the paper's {PAPER_MS_PER_IMAGE:.0f} ms (P100)"
    )
    print(f"Grad-CAM of {', '.join(positive)} on every slice: {1000 * gradcam_s / slices:.1f} ms/slice")
    print(f"whole run per scan (as the CLI's detector, positives only): {scan_s:.2f} s, {findings.summary['positive']}")


if __name__ == "__main__":
    main()
