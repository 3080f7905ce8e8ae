"""The bundled sample: a synthetic left-coronary run with two stenoses (seed 7100, 256², 16 frames), written by
training/make_stenosis_sample.py as the platform writes a sequence (frames stacked along k of a NRRD, pixel spacing
in its header); its frame times and ground truth are in the .json beside it."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

SAMPLE_PATH = Path(__file__).with_name("sample_cine.nrrd")


def read_sample():
    from LesionDetectLib.io.image_sequence import ImageSequence
    from LesionDetectLib.io.volume_files import read_volume_file

    stack = read_volume_file(SAMPLE_PATH)
    truth = json.loads(SAMPLE_PATH.with_suffix(".json").read_text())
    column_mm, row_mm = (float(mm) for mm in stack.spacing[:2])
    return ImageSequence(
        np.asarray(stack.array),
        name=truth["name"],
        modality=stack.modality or "XA",
        frame_times_s=np.array(truth["frame_times_s"]),
        pixel_spacing_mm=(row_mm, column_mm),
    )
