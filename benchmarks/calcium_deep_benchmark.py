"""Deep calcium path speed: time per scan and per slice, as ratios against the classical path and seed 003's 18.3 s.

Both methods run in this process on the same scan, after one warm-up run each; the fastest of --repeats
counts. The scan is the bundled phantom (512×512, 64 slices of 3 mm by default) or any scan given with
--input (e.g. a real CT read by hand). Listed too: the candidate windows (one per calcium piece in the
heart region), how many of them ACF's threshold would keep, the deep path's stages, and the same network
run over every slice tiled into 64-px crops (what looking only at calcium pieces saves).
Usage: python benchmarks/calcium_deep_benchmark.py [--slices 64] [--slice-mm 3] [--input PATH] [--device cpu|cuda]
       [--repeats 3]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from timing import fastest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "LesionDetect"))

from LesionDetectLib.detectors.calcium.classical import detect_calcium  # noqa: E402
from LesionDetectLib.detectors.calcium.crops import CROP_PX, Window, heart_frame  # noqa: E402
from LesionDetectLib.detectors.calcium.deep import detect_calcium_deep, run_network  # noqa: E402
from LesionDetectLib.detectors.calcium.model import load_calcium_model  # noqa: E402
from LesionDetectLib.detectors.calcium.sample import make_sample  # noqa: E402
from LesionDetectLib.io.read_input import read_input  # noqa: E402

SEED_003_SECONDS_PER_SCAN = 18.3  # 3D ResNet-50 CAC scoring, seeds/003 (its hardware)
TARGET_FRACTION = 1 / 3


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--slices", type=int, default=64)
    parser.add_argument("--slice-mm", type=float, default=3.0)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--input", type=Path, help="a scan (file or DICOM folder) instead of the bundled phantom")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    import torch

    if args.input:
        volume = read_input(args.input)
        scan = f"'{args.input}'"
    else:
        volume, _, _ = make_sample(shape_ijk=(512, 512, args.slices), slice_spacing_mm=args.slice_mm)
        scan = "the bundled phantom"
    slices = volume.array.shape[0]
    model = load_calcium_model()
    deep_s, findings = fastest(lambda: detect_calcium_deep(volume, model, device=args.device), args.repeats)
    classical_s, _ = fastest(lambda: detect_calcium(volume), args.repeats)
    tiles = [  # the same network over every slice, tiled at native resolution: the work ACF saves
        Window(k, (j + CROP_PX / 2, i + CROP_PX / 2), float(CROP_PX))
        for k in range(volume.array.shape[0])
        for j in range(0, volume.array.shape[1], CROP_PX)
        for i in range(0, volume.array.shape[2], CROP_PX)
    ]
    frame = heart_frame(findings.region.astype(bool))
    tiled_s, _ = fastest(lambda: run_network(model, volume, tiles, frame, args.device), 1)
    device = torch.cuda.get_device_name(0) if args.device == "cuda" else f"CPU, {torch.get_num_threads()} threads"
    shape = "×".join(str(n) for n in volume.array.shape[::-1])
    print(f"Calcium deep path on {scan}, {shape} at {volume.spacing[2]:g} mm slices, {device}")
    print(f"  deep:      {deep_s:7.3f} s/scan  {1000 * deep_s / slices:7.1f} ms/slice")
    print(f"  classical: {classical_s:7.3f} s/scan  {1000 * classical_s / slices:7.1f} ms/slice")
    print(f"  deep / classical: {deep_s / classical_s:.1f}×")
    per_64 = deep_s * 64 / slices
    ratio = per_64 / SEED_003_SECONDS_PER_SCAN
    verdict = "met" if ratio <= TARGET_FRACTION else "NOT met"
    print(f"  deep per 64 slices / seed 003 (18.3 s per 64-slice scan): {ratio:.3f} — target ≤ 1/3: {verdict}")
    print(
        f"  network on every 64-px tile of every slice instead of the candidate windows: {tiled_s:.3f} s/scan "
        f"({tiled_s / deep_s:.0f}× the deep path; {len(tiles)} tiles)"
    )
    candidates = findings.summary["candidates"]
    windows = candidates["windows"]
    print(
        f"  candidate windows: {windows} ({windows / slices:.1f} per slice); ACF's threshold would keep "
        f"{candidates['acf_would_keep']}; stages of the last run:"
    )
    for name, seconds in findings.timings.items():
        print(f"    {name:>24}: {seconds:.3f} s")


if __name__ == "__main__":
    main()
