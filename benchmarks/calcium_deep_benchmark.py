"""Deep calcium path speed: time per scan and per slice, as ratios against the classical path and seed 003's 18.3 s.

Both methods run in this process on the same bundled phantom (512×512, 64 slices of 3 mm by default),
after one warm-up run each; the fastest of --repeats counts. Stages of the deep path are listed too, and
the time of the same network run over every slice tiled into 64-px crops (what the ACF proposals save).
Usage: python benchmarks/calcium_deep_benchmark.py [--slices 64] [--slice-mm 3] [--device cpu|cuda] [--repeats 3]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "LesionDetect"))

from LesionDetectLib.detectors.calcium.classical import detect_calcium  # noqa: E402
from LesionDetectLib.detectors.calcium.crops import CROP_PX, Window, heart_frame  # noqa: E402
from LesionDetectLib.detectors.calcium.deep import detect_calcium_deep, run_network  # noqa: E402
from LesionDetectLib.detectors.calcium.model import load_calcium_model  # noqa: E402
from LesionDetectLib.detectors.calcium.sample import make_sample  # noqa: E402

SEED_003_SECONDS_PER_SCAN = 18.3  # 3D ResNet-50 CAC scoring, seeds/003 (its hardware)
TARGET_FRACTION = 1 / 3


def fastest(run, repeats: int):
    run()  # warm-up: first-call allocations and library initialisation
    best, result = float("inf"), None
    for _ in range(repeats):
        started = time.perf_counter()
        result = run()
        best = min(best, time.perf_counter() - started)
    return best, result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--slices", type=int, default=64)
    parser.add_argument("--slice-mm", type=float, default=3.0)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    import torch

    volume, _, _ = make_sample(shape_ijk=(512, 512, args.slices), slice_spacing_mm=args.slice_mm)
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
    print(f"Calcium deep path on the bundled phantom, 512×512×{args.slices} at {args.slice_mm:g} mm, {device}")
    print(f"  deep:      {deep_s:7.3f} s/scan  {1000 * deep_s / args.slices:7.1f} ms/slice")
    print(f"  classical: {classical_s:7.3f} s/scan  {1000 * classical_s / args.slices:7.1f} ms/slice")
    print(f"  deep / classical: {deep_s / classical_s:.1f}×")
    ratio = deep_s / SEED_003_SECONDS_PER_SCAN
    verdict = "met" if ratio <= TARGET_FRACTION else "NOT met"
    print(f"  deep / seed 003 (18.3 s/scan): {ratio:.3f} — target ≤ 1/3: {verdict}")
    print(
        f"  network on every 64-px tile of every slice instead of ACF windows: {tiled_s:.3f} s/scan "
        f"({tiled_s / deep_s:.0f}× the deep path; {len(tiles)} tiles)"
    )
    windows = findings.summary["candidates"]["windows"]
    print(f"  ACF windows: {windows} ({windows / args.slices:.1f} per slice); stages of the last run:")
    for name, seconds in findings.timings.items():
        print(f"    {name:>24}: {seconds:.3f} s")


if __name__ == "__main__":
    main()
