"""Write the microbleed detector's bundled sample: synthetic SWI seed 7215 at 1 mm pixels and 2 mm slices, from
training/synthetic_swi.py, stored as 8-bit magnitude; a seed no model trains, validates or is evaluated on (train
0–299, validation 300–339, held-out 9000–).

    python training/make_microbleed_sample.py    # → detectors/microbleed/sample_swi.nrrd (+ .json)
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "LesionDetect"))

from synthetic_swi import make_swi_case  # noqa: E402

from LesionDetectLib.detectors.microbleed.sample import SAMPLE_PATH  # noqa: E402
from LesionDetectLib.io.volume import Volume  # noqa: E402
from LesionDetectLib.io.volume_io import write_nrrd  # noqa: E402

SEED, PIXEL_MM, SLICE_MM = 7215, 1.0, 2.0


def main() -> int:
    case = make_swi_case(SEED, pixel_mm=PIXEL_MM, slice_mm=SLICE_MM)
    magnitude = case.volume.array
    eight_bit = np.clip(np.round(255 * magnitude / np.percentile(magnitude, 99.9)), 0, 255).astype(np.uint8)
    volume = Volume(eight_bit, case.volume.ijk_to_ras, name="synthetic SWI (sample)", modality="MR")
    write_nrrd(volume, SAMPLE_PATH, overwrite=True, compress=True)
    truth = {
        "seed": SEED,
        "generator_version": case.settings["generator_version"],
        "microbleeds": [
            {key: m[key] for key in ("center_ras_mm", "diameter_mm", "location", "region")} for m in case.microbleeds
        ],
    }
    SAMPLE_PATH.with_suffix(".json").write_text(json.dumps(truth, indent=2) + "\n")
    print(SAMPLE_PATH, f"{volume.shape_ijk}, {len(case.microbleeds)} microbleeds")
    return 0


if __name__ == "__main__":
    sys.exit(main())
