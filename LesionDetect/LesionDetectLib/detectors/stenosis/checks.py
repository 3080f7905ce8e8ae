"""What the stenosis detector refuses: input that is not a grey X-ray angiogram, each named with what to choose instead.

An angiogram is grey and non-negative (detector counts or display grey values): a 3D volume, values far below
zero (a CT in Hounsfield units, whatever its modality says), a colour image (a photo, a screenshot with coloured
overlays), a blank frame or a thumbnail cannot be read for coronary stenosis.
"""

from __future__ import annotations

import numpy as np

from LesionDetectLib.errors import LesionDetectError
from LesionDetectLib.io.grey_pixels import RGB_NOTE
from LesionDetectLib.io.image_sequence import ImageSequence
from LesionDetectLib.io.volume import Volume

CT_LIKE_MIN = -200.0  # below this, pixels are Hounsfield units (air −1000), not X-ray grey values
MIN_FRAME_SIDE_PX = 64  # angiography frames are 512 or 1024 pixels; this small is a thumbnail or an icon
WHAT_TO_CHOOSE = (
    "choose an X-ray coronary angiography run (a multi-frame XA DICOM file, or a folder of its frames as "
    "PNG/JPEG/TIFF), or one grey frame of it"
)


def refuse_volume(image) -> None:
    """A 3D scan is no angiogram, whatever else it is."""
    if isinstance(image, Volume):
        modality = f" ({image.modality})" if image.modality else ""
        raise LesionDetectError(
            f"'{image.name}' is a 3D volume{modality}, not a projection angiogram; {WHAT_TO_CHOOSE}."
        )


def check_angiogram(sequence: ImageSequence) -> None:
    """Refuse frames that are blank, too small, in Hounsfield units or in colour."""
    rows, columns = sequence.frame_shape
    if min(rows, columns) < MIN_FRAME_SIDE_PX:
        raise LesionDetectError(
            f"'{sequence.name}' has frames of {columns}×{rows} pixels, too small for an angiogram (at least "
            f"{MIN_FRAME_SIDE_PX} a side; angiography frames are usually 512 or 1024); {WHAT_TO_CHOOSE}."
        )
    low, high = float(np.min(sequence.frames)), float(np.max(sequence.frames))
    if low == high:
        raise LesionDetectError(f"'{sequence.name}' is blank: every pixel is {low:g}; {WHAT_TO_CHOOSE}.")
    if low < CT_LIKE_MIN:
        raise LesionDetectError(
            f"'{sequence.name}' holds values down to {low:g}, as a CT in Hounsfield units does; X-ray angiography "
            f"frames hold no values below zero; {WHAT_TO_CHOOSE}."
        )
    if RGB_NOTE in sequence.notes:
        raise LesionDetectError(
            f"'{sequence.name}' is a colour image (its red, green and blue differ), such as a photo or a screenshot "
            f"with coloured overlays; an angiogram is grey; {WHAT_TO_CHOOSE}."
        )
