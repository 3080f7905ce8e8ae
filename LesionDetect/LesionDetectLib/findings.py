"""Detector output types: `Lesion`, `Surface` and `Findings` (JSON-serialisable except arrays)."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .volume import Volume


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
    """One finding: a box in IJK (inclusive voxel indices) and its RAS centre/size, plus measurements."""

    id: int
    label: str
    box_ijk: np.ndarray  # (2, 3) int: [[i0, j0, k0], [i1, j1, k1]], inclusive
    center_ras: np.ndarray  # (3,)
    size_mm: np.ndarray  # (3,) along the volume's i, j, k axes
    score: float | None = None
    measurements: dict = field(default_factory=dict)
    surface: Surface | None = None

    @classmethod
    def from_box(cls, volume: Volume, lesion_id: int, label: str, box_ijk, **kwargs) -> Lesion:
        """Lesion whose RAS centre and size are those of voxel box `box_ijk` in `volume`."""
        box_ijk = np.asarray(box_ijk, dtype=int)
        center_ijk = box_ijk.mean(axis=0)
        size_mm = (box_ijk[1] - box_ijk[0] + 1) * volume.spacing
        center_ras = volume.ijk_to_ras_points(center_ijk[None])[0]
        return cls(lesion_id, label, box_ijk, center_ras, size_mm, **kwargs)


@dataclass
class Findings:
    """Everything one detector run produced for one volume."""

    detector: str
    method: str
    volume: Volume
    lesions: list[Lesion]
    summary: dict
    model_version: str | None = None
    weights_sha256: str | None = None
    device: str = "cpu"
    heatmap: np.ndarray | None = None  # same (k, j, i) grid as the input: uint8 percent, or float 0…1
    region: np.ndarray | None = None  # uint8 (k, j, i) mask of where the detector looked, when it limits itself
    timings: dict = field(default_factory=dict)
