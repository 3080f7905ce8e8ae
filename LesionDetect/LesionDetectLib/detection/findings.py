"""Detector output types: `Lesion`, `Surface`, `ScoreTable` and `Findings` (JSON-serialisable except arrays).

A lesion sits in a 3D volume (a voxel box, its RAS centre and size) or on one frame of an image
sequence (the frame index and a pixel box, in mm too when the pixel spacing is known).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from LesionDetectLib.io.image_sequence import ImageSequence
from LesionDetectLib.io.volume import Volume

Image = Volume | ImageSequence


@dataclass
class Surface:
    """A closed triangle mesh in RAS millimetres; triangles wind outward."""

    points_ras: np.ndarray  # (N, 3) float
    triangles: np.ndarray  # (M, 3) int

    @property
    def volume_mm3(self) -> float:
        """Enclosed volume by the divergence theorem (positive for outward winding)."""
        a, b, c = (self.points_ras[self.triangles[:, n]] for n in range(3))
        return float(np.einsum("ij,ij->i", a, np.cross(b, c)).sum() / 6.0)


@dataclass
class Lesion:
    """One finding with its location and measurements.

    In a volume: `box_ijk` (inclusive voxel indices), `center_ras`, `size_mm` along i, j, k.
    On a frame of a sequence: `frame` (0-based, input order) and `box_px` [x0, y0, x1, y1] in column/row
    pixels; `size_mm` is (width, height) when the pixel spacing is known.
    """

    id: int
    label: str
    box_ijk: np.ndarray | None = None  # (2, 3) int: [[i0, j0, k0], [i1, j1, k1]], inclusive
    center_ras: np.ndarray | None = None  # (3,)
    size_mm: np.ndarray | None = None
    score: float | None = None
    measurements: dict = field(default_factory=dict)
    surface: Surface | None = None
    frame: int | None = None
    box_px: np.ndarray | None = None  # (4,) float: x0, y0, x1, y1

    @classmethod
    def from_box(cls, volume: Volume, lesion_id: int, label: str, box_ijk, **kwargs) -> Lesion:
        """Lesion whose RAS centre and size are those of voxel box `box_ijk` in `volume`."""
        box_ijk = np.asarray(box_ijk, dtype=int)
        center_ijk = box_ijk.mean(axis=0)
        size_mm = (box_ijk[1] - box_ijk[0] + 1) * volume.spacing
        center_ras = volume.ijk_to_ras_points(center_ijk[None])[0]
        return cls(lesion_id, label, box_ijk, center_ras, size_mm, **kwargs)

    @classmethod
    def on_frame(cls, sequence: ImageSequence, lesion_id: int, label: str, frame: int, box_px, **kwargs) -> Lesion:
        """Lesion on frame `frame` of `sequence`, box [x0, y0, x1, y1] in pixels (mm size when spacing is known)."""
        box_px = np.asarray(box_px, dtype=float)
        size_mm = None
        if sequence.pixel_spacing_mm is not None:
            row_mm, column_mm = sequence.pixel_spacing_mm
            size_mm = np.array([(box_px[2] - box_px[0]) * column_mm, (box_px[3] - box_px[1]) * row_mm])
        return cls(lesion_id, label, size_mm=size_mm, frame=int(frame), box_px=box_px, **kwargs)


@dataclass
class ScoreTable:
    """Probabilities or scores per slice or per frame: one row each, one column per named label."""

    axis: str  # "slice" or "frame"
    labels: tuple[str, ...]
    values: np.ndarray  # (rows, len(labels)) float

    def rows(self) -> list[dict]:
        return [
            {self.axis: index, **{label: float(value) for label, value in zip(self.labels, row)}}
            for index, row in enumerate(self.values)
        ]


@dataclass
class Findings:
    """Everything one detector run produced for one input (a volume, a 2D image or an image sequence)."""

    detector: str
    method: str
    image: Image
    lesions: list[Lesion]
    summary: dict
    candidates: list[Lesion] | None = None  # scored below the operating point, best first; None: no such notion
    model_version: str | None = None
    weights_sha256: str | None = None
    device: str = "cpu"
    heatmap: np.ndarray | None = None  # the input's array shape (k, j, i) or (frame, row, col): uint8 % or 0…1
    region: np.ndarray | None = None  # uint8 mask on the input's grid of where the detector looked
    probabilities: dict[str, float] = field(default_factory=dict)  # scan- or clip-level, label → probability
    score_tables: list[ScoreTable] = field(default_factory=list)  # per slice / per frame
    warnings: list[str] = field(default_factory=list)
    params: dict = field(default_factory=dict)  # the options the run used (JSON values)
    timings: dict = field(default_factory=dict)

    @property
    def volume(self) -> Volume:
        """The input volume (volume detectors only)."""
        if not isinstance(self.image, Volume):
            raise TypeError(f"the {self.detector} findings are on an image sequence, not a volume")
        return self.image
