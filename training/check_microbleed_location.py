"""How well the position-based lobar/deep guess separates synthetic microbleeds: depth inside the head vs truth.

    python training/check_microbleed_location.py --seeds 0 40

Prints, for each threshold on the depth inside the head's surface, how many lobar and deep microbleeds the guess
gets right; `detectors/microbleed/location.DEEP_FROM_SURFACE_MM` is set from it. Synthetic heads only: real heads
vary more (atrophy, head size), which is why the guess is labelled as one.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "LesionDetect"))

from synthetic_swi import make_swi_case  # noqa: E402

from LesionDetectLib.detectors.microbleed.intensity import head_mask  # noqa: E402
from LesionDetectLib.detectors.microbleed.location import DEEP_FROM_SURFACE_MM, depth_in_head_mm  # noqa: E402


def depths_and_truth(seeds) -> tuple[np.ndarray, np.ndarray]:
    """Depth (mm) of every microbleed centre inside the head, and whether it is deep."""
    depths, deep = [], []
    for seed in seeds:
        case = make_swi_case(seed)
        depth = depth_in_head_mm(head_mask(case.volume.array), case.volume.spacing)
        for microbleed in case.microbleeds:
            centre = np.clip(np.round(microbleed["center_ijk"][::-1]).astype(int), 0, np.array(depth.shape) - 1)
            depths.append(depth[tuple(centre)])
            deep.append(microbleed["location"] == "deep")
    return np.array(depths), np.array(deep)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs=2, default=(0, 40), metavar=("FIRST", "END"))
    args = parser.parse_args(argv)
    depths, deep = depths_and_truth(range(*args.seeds))
    print(f"{deep.size} microbleeds ({deep.sum()} deep); depth of lobar {np.percentile(depths[~deep], [5, 50, 95])}")
    print(f"depth of deep {np.percentile(depths[deep], [5, 50, 95])} mm (5th, 50th, 95th percentile)")
    for threshold in sorted({*range(26, 52, 2), DEEP_FROM_SURFACE_MM}):
        called = depths >= threshold
        print(f"{threshold:5.1f} mm: lobar right {np.mean(~called[~deep]):.2f}, deep right {np.mean(called[deep]):.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
