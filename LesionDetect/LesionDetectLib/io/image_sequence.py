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
        """(centre RAS, size mm along i, j, k) of a frame box [x0, y0, x1, y1] in pixel-edge coordinates."""
        x0, y0, x1, y1 = np.asarray(box_px, dtype=float)
        matrix = self.frame_ijk_to_ras()
        center_ijk = np.array([(x0 + x1) / 2 - 0.5, (y0 + y1) / 2 - 0.5, 0.0])
        spacing = np.abs(np.diag(matrix)[:3])
        return matrix[:3, :3] @ center_ijk + matrix[:3, 3], np.array([x1 - x0, y1 - y0, 1.0]) * spacing

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
