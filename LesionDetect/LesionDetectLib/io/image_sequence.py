"""`ImageSequence`: 2D frames over time (an X-ray cine, a folder of frames) or a single 2D image.

A projection image has no patient RAS geometry: it keeps pixels, frame times and, when the file
says so, the imager pixel spacing (mm at the detector plane), so that boxes can also be given in mm.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from LesionDetectLib.errors import LesionDetectError


@dataclass
class ImageSequence:
    """Frames indexed (frame, row, column); one frame for a single 2D image."""

    frames: np.ndarray
    name: str = "image"
    modality: str | None = None
    frame_times_s: np.ndarray | None = None  # (frames,) seconds from the first frame; None if unknown
    pixel_spacing_mm: tuple[float, float] | None = None  # (row, column) spacing, None if unknown
    notes: list[str] = field(default_factory=list)  # what reading had to assume (e.g. "RGB read as grey")

    @property
    def frame_count(self) -> int:
        return int(self.frames.shape[0])

    @property
    def frame_shape(self) -> tuple[int, int]:
        """(rows, columns) of every frame."""
        return int(self.frames.shape[1]), int(self.frames.shape[2])

    @property
    def is_single_image(self) -> bool:
        return self.frame_count == 1

    @property
    def frame_rate_hz(self) -> float | None:
        """Cine rate from the frame times, when they are known and even enough to have one."""
        if self.frame_times_s is None or len(self.frame_times_s) < 2:
            return None
        step = float(np.median(np.diff(self.frame_times_s)))
        return 1.0 / step if step > 0 else None

    def frame_ijk_to_ras(self) -> np.ndarray:
        """IJK→RAS of one frame shown as a single-slice volume, as Slicer and SimpleITK place a 2D image:
        origin 0, columns along L, rows along P (so RAS = diag(-1, -1, 1)), pixel spacing or 1 mm."""
        row_mm, column_mm = self.pixel_spacing_mm or (1.0, 1.0)
        return np.diag([-column_mm, -row_mm, 1.0, 1.0])

    def box_px_to_ras(self, box_px) -> tuple[np.ndarray, np.ndarray]:
        """(centre RAS, size mm along i, j, k) of a frame box on this sequence's own frame geometry."""
        center_ras, size_mm, _ = frame_box_ras(box_px, self.frame_ijk_to_ras())
        return center_ras, size_mm

    def validate(self) -> None:
        """Refuse what no detector can use: not (frames, rows, columns), tiny frames, non-finite pixels."""
        if self.frames.ndim != 3 or self.frames.shape[0] < 1 or min(self.frames.shape[1:]) < 8:
            raise LesionDetectError(
                f"'{self.name}' is not a 2D image or a sequence of 2D frames (array shape {self.frames.shape})."
            )
        if self.frame_times_s is not None and len(self.frame_times_s) != self.frame_count:
            raise LesionDetectError(
                f"'{self.name}' has {self.frame_count} frames but {len(self.frame_times_s)} frame times."
            )
        if np.issubdtype(self.frames.dtype, np.floating) and not np.all(np.isfinite(self.frames)):
            bad = int(np.count_nonzero(~np.isfinite(self.frames)))
            raise LesionDetectError(f"'{self.name}' contains {bad} NaN or infinite pixels.")


def frame_box_ras(box_px, frame_ijk_to_ras: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(centre RAS, size mm (width, height, one slice), direction columns) of a pixel box on a 2D frame.

    `box_px` is [x0, y0, x1, y1] in pixel-edge coordinates (pixel column c spans x in [c, c + 1]), so
    its centre lies at IJK ((x0 + x1) / 2 − ½, (y0 + y1) / 2 − ½, 0) on the frame's voxel-centred grid.
    """
    x0, y0, x1, y1 = (float(v) for v in box_px)
    matrix = np.asarray(frame_ijk_to_ras, dtype=float)
    center_ijk = np.array([(x0 + x1) / 2 - 0.5, (y0 + y1) / 2 - 0.5, 0.0])
    center_ras = matrix[:3, :3] @ center_ijk + matrix[:3, 3]
    spacing = np.linalg.norm(matrix[:3, :3], axis=0)
    size_mm = np.array([(x1 - x0) * spacing[0], (y1 - y0) * spacing[1], spacing[2]])
    return center_ras, size_mm, matrix[:3, :3] / spacing
