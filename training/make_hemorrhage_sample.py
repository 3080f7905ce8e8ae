"""Write the hemorrhage detector's bundled sample: synthetic head CT seed 7001 (an intraparenchymal blob with
oedema rim and a subdural crescent), 192², from training/synthetic_head_ct.py; a seed no model trains or is
evaluated on (train 0–79, validation 5000–5015, held-out 9000–9039).

    python training/make_hemorrhage_sample.py    # → detectors/hemorrhage/sample_head_ct.nrrd (+ .json)
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "LesionDetect"))

from synthetic_head_ct import make_head_case  # noqa: E402

from LesionDetectLib.detectors.hemorrhage.labels import LABELS  # noqa: E402
from LesionDetectLib.detectors.hemorrhage.sample import SAMPLE_PATH  # noqa: E402
from LesionDetectLib.io.volume_io import write_nrrd  # noqa: E402

SEED, MATRIX = 7001, 192


def main() -> int:
    case = make_head_case(SEED, matrix=MATRIX)
    case.volume.name = "synthetic head CT (sample)"
    SAMPLE_PATH.parent.mkdir(parents=True, exist_ok=True)
    write_nrrd(case.volume, SAMPLE_PATH, overwrite=True, compress=True)
    truth = {
        "seed": SEED,
        "matrix": MATRIX,
        "generator_version": case.settings["generator_version"],
        "positive_slices": {label: int(n) for label, n in zip(LABELS, case.slice_labels.sum(axis=0))},
    }
    SAMPLE_PATH.with_suffix(".json").write_text(json.dumps(truth, indent=2) + "\n")
    print(SAMPLE_PATH, truth)
    return 0


if __name__ == "__main__":
    sys.exit(main())
