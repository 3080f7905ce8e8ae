"""Write the stenosis detector's bundled sample: synthetic angiography run seed 7100 (a left system with two
stenoses, 62 % and 30 %), 256², 16 frames, from training/synthetic_angiography.py; a seed no model trains or is
validated on (train 0–59, validation 5000–5019; evaluate_stenosis.py defaults to 9000–9039).

    python training/make_stenosis_sample.py    # → detectors/stenosis/sample_cine.nrrd (+ .json)

The frames are stored as the platform writes a sequence's maps: stacked along k of a NRRD whose i and j spacing
are the imager pixel spacing (`ImageSequence.frame_ijk_to_ras`); times and ground truth go in the .json.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "LesionDetect"))

from synthetic_angiography import make_angiography_clip  # noqa: E402

from LesionDetectLib.detectors.stenosis.sample import SAMPLE_PATH  # noqa: E402
from LesionDetectLib.io.volume import Volume  # noqa: E402
from LesionDetectLib.io.volume_io import write_nrrd  # noqa: E402

SEED, MATRIX, FRAMES = 7100, 256, 16


def main() -> int:
    clip = make_angiography_clip(SEED, matrix=MATRIX, frame_count=FRAMES)
    sequence = clip.image_sequence()
    sequence.name = "synthetic coronary angiography (sample)"
    stack = Volume(sequence.frames, sequence.frame_ijk_to_ras(), sequence.name, "XA")
    write_nrrd(stack, SAMPLE_PATH, overwrite=True, compress=True)
    truth = {
        "name": sequence.name,
        "seed": SEED,
        "matrix": MATRIX,
        "generator_version": clip.settings["generator_version"],
        "label": clip.label,
        "frame_times_s": [round(float(t), 6) for t in clip.frame_times_s],
        "filled_phase": [int(frame) for frame in clip.filled_phase.nonzero()[0]],
        "stenoses": [
            {"vessel": s["vessel"], "severity": round(float(s["severity"]), 3), "kind": s["kind"]}
            for s in clip.stenoses
        ],
        "boxes_px": [[[round(float(v), 2) for v in box["box_px"]] for box in frame] for frame in clip.boxes_px],
    }
    SAMPLE_PATH.with_suffix(".json").write_text(json.dumps(truth, indent=2) + "\n")
    print(SAMPLE_PATH, f"{SAMPLE_PATH.stat().st_size / 1e6:.2f} MB", truth["label"], truth["filled_phase"])
    return 0


if __name__ == "__main__":
    sys.exit(main())
