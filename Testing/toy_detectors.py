"""Two toy detectors defined only in the tests, to show that adding a detector needs no platform edit.

`blobs` finds bright blobs in a 3D volume; `spots` finds the brightest spot on each frame of an image
sequence. Both are registered by `LESIONDETECT_PLUGINS=toy_detectors` or `registry.register()`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from scipy import ndimage

from LesionDetectLib.detection.detector import Column, Detector, InputKind, Method
from LesionDetectLib.detection.findings import Findings, Lesion, ScoreTable
from LesionDetectLib.detection.options import option
from LesionDetectLib.io.image_sequence import ImageSequence
from LesionDetectLib.io.volume import Volume, ijk_to_ras_matrix

HERE = Path(__file__).parent
BLOB_CENTERS_IJK = ((10, 12, 5), (30, 28, 12))


@dataclass
class BlobOptions:
    threshold: float = field(default=500.0, metadata=option("brightness a blob must reach", minimum=0.0))
    min_voxels: int = field(default=3, metadata=option("smallest blob kept", minimum=1))


class BlobDetector(Detector):
    id = "blobs"
    title = "Bright blobs (toy)"
    input_kinds = (InputKind.VOLUME,)
    methods = (Method("threshold", "connected voxels above a threshold"),)
    Options = BlobOptions
    columns = (Column("voxels", "Voxels", "{} voxels", "{}"),)
    label_colors = {"blob": (0.1, 0.9, 0.9)}
    schema_fragment = HERE / "toy_blobs.schema.json"

    def run(self, image, options, method, device="cpu", progress=None, cancel=None, weights=None):
        progress("blobs", 0.1, "Labelling")
        labels, count = ndimage.label(image.array >= options.threshold)
        lesions = []
        for index, box in enumerate(ndimage.find_objects(labels), start=1):
            voxels = int(np.count_nonzero(labels[box] == index))
            if voxels < options.min_voxels:
                continue
            box_ijk = [[box[2].start, box[1].start, box[0].start], [box[2].stop - 1, box[1].stop - 1, box[0].stop - 1]]
            peak = float(image.array[box][labels[box] == index].max())
            lesions.append(
                Lesion.from_box(image, len(lesions) + 1, "blob", box_ijk, score=1.0, measurements={"voxels": voxels})
            )
            lesions[-1].measurements["peak"] = peak
        heatmap = np.where(labels > 0, 100, 0).astype(np.uint8)
        return Findings(self.id, method, image, lesions, {"count": len(lesions)}, heatmap=heatmap)

    def summary_line(self, findings):
        return f"{findings.summary['count']} blob(s)"

    def sample(self):
        return blob_volume()


@dataclass
class SpotOptions:
    threshold: float = field(default=200.0, metadata=option("brightness of a spot", minimum=0.0))


class SpotDetector(Detector):
    id = "spots"
    title = "Moving spots (toy)"
    input_kinds = (InputKind.SEQUENCE, InputKind.IMAGE)
    methods = (Method("peak", "the brightest spot per frame"),)
    Options = SpotOptions

    def run(self, image, options, method, device="cpu", progress=None, cancel=None, weights=None):
        lesions, maxima = [], []
        heatmap = np.zeros(image.frames.shape, dtype=np.uint8)
        for frame, pixels in enumerate(image.frames):
            maxima.append(float(pixels.max()))
            rows, columns = np.nonzero(pixels >= options.threshold)
            if len(rows):
                box_px = [columns.min(), rows.min(), columns.max() + 1, rows.max() + 1]
                lesions.append(Lesion.on_frame(image, len(lesions) + 1, "spot", frame, box_px, score=0.9))
                heatmap[frame][pixels >= options.threshold] = 90
        table = ScoreTable("frame", ("max",), np.array(maxima)[:, None])
        probability = float(np.mean([m >= options.threshold for m in maxima]))
        return Findings(
            self.id,
            method,
            image,
            lesions,
            {"frames_with_spots": len(lesions)},
            heatmap=heatmap,
            probabilities={"spot": probability},
            score_tables=[table],
        )

    def sample(self):
        return spot_sequence()


def blob_volume() -> Volume:
    """40×40×16 voxels of 0.5 × 0.5 × 2 mm, two 3×3×3 blobs of 900 at `BLOB_CENTERS_IJK`, one single hot voxel."""
    array = np.zeros((16, 40, 40), dtype=np.int16)
    for i, j, k in BLOB_CENTERS_IJK:
        array[k - 1 : k + 2, j - 1 : j + 2, i - 1 : i + 2] = 900
    array[2, 2, 35] = 900  # one voxel: below min_voxels
    return Volume(array, ijk_to_ras_matrix((0.5, 0.5, 2.0), (-10.0, 5.0, 30.0)), "toy blobs", "MR")


def spot_sequence() -> ImageSequence:
    """5 frames of 48×64 pixels at 0.3 mm; a 4×4 spot of 255 moving right on frames 1 and 3."""
    frames = np.zeros((5, 48, 64), dtype=np.uint8)
    frames[1, 10:14, 20:24] = 255
    frames[3, 10:14, 30:34] = 255
    return ImageSequence(frames, "toy cine", "XA", np.arange(5) / 15.0, (0.3, 0.3))
