"""`Volume`: a voxel array (k, j, i) with its IJK→RAS geometry, and the checks every detector needs."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from LesionDetectLib.errors import LesionDetectError

LPS_TO_RAS = np.diag([-1.0, -1.0, 1.0, 1.0])


@dataclass
class Volume:
    """A 3D image: `array` indexed (k, j, i) like `slicer.util.arrayFromVolume`, `ijk_to_ras` 4×4 in mm."""

    array: np.ndarray
    ijk_to_ras: np.ndarray
    name: str = "volume"
    modality: str | None = None
    notes: list[str] = field(default_factory=list)  # what reading had to do (e.g. "gantry tilt ... corrected")

    @property
    def spacing(self) -> np.ndarray:
        """Voxel size along i, j, k in mm (lengths of the IJK→RAS columns)."""
        return np.linalg.norm(self.ijk_to_ras[:3, :3], axis=0)

    @property
    def directions(self) -> np.ndarray:
        """Unit vectors of the i, j, k axes in RAS, as columns."""
        return self.ijk_to_ras[:3, :3] / self.spacing

    @property
    def shape_ijk(self) -> tuple[int, int, int]:
        return tuple(int(n) for n in self.array.shape[::-1])

    def ijk_to_ras_points(self, points_ijk: np.ndarray) -> np.ndarray:
        """Map (N, 3) continuous IJK indices to RAS millimetres."""
        points_ijk = np.asarray(points_ijk, dtype=float)
        return points_ijk @ self.ijk_to_ras[:3, :3].T + self.ijk_to_ras[:3, 3]

    def ras_to_ijk_points(self, points_ras: np.ndarray) -> np.ndarray:
        ras_to_ijk = np.linalg.inv(self.ijk_to_ras)
        points_ras = np.asarray(points_ras, dtype=float)
        return points_ras @ ras_to_ijk[:3, :3].T + ras_to_ijk[:3, 3]

    def validate(self) -> None:
        """Refuse what no detector can use: not 3D, degenerate geometry, non-finite voxels."""
        if self.array.ndim != 3 or min(self.array.shape) < 2:
            raise LesionDetectError(
                f"'{self.name}' is not a 3D volume (array shape {self.array.shape}); "
                "the detectors need a stack of at least 2 slices."
            )
        matrix = np.asarray(self.ijk_to_ras, dtype=float)
        if matrix.shape != (4, 4) or not np.all(np.isfinite(matrix)):
            raise LesionDetectError(f"'{self.name}' has no valid IJK-to-RAS matrix.")
        if np.any(self.spacing <= 1e-6) or abs(np.linalg.det(matrix[:3, :3])) < 1e-12:
            spacing = ", ".join(f"{s:g}" for s in self.spacing)
            raise LesionDetectError(
                f"'{self.name}' has zero or missing voxel spacing ({spacing} mm); "
                "set the spacing in the file header before running a detector."
            )
        if np.issubdtype(self.array.dtype, np.floating) and not np.all(np.isfinite(self.array)):
            bad = int(np.count_nonzero(~np.isfinite(self.array)))
            raise LesionDetectError(
                f"'{self.name}' contains {bad} NaN or infinite voxels; "
                "fix or crop the volume before running a detector."
            )


def ijk_to_ras_matrix(spacing, origin_ras, directions_ras=None) -> np.ndarray:
    """Build IJK→RAS from spacing (i, j, k), origin and direction columns (RAS)."""
    directions = np.eye(3) if directions_ras is None else np.asarray(directions_ras, float)
    matrix = np.eye(4)
    matrix[:3, :3] = directions * np.asarray(spacing, float)
    matrix[:3, 3] = origin_ras
    return matrix
