"""Calcium candidates: 3D components ≥ threshold, with obvious bone and field-of-view cuts set aside."""

from __future__ import annotations

from dataclasses import dataclass

import cc3d
import numpy as np

from LesionDetectLib.detectors.calcium.options import BoneRules
from LesionDetectLib.io.volume import Volume


@dataclass
class Component:
    """One 26-connected component of the thresholded volume."""

    label: int
    box_ijk: np.ndarray | None  # (2, 3) inclusive; None for components excluded by volume alone
    voxel_count: int


@dataclass
class Candidates:
    labels: np.ndarray  # (k, j, i) component labels, 0 = background
    kept: list[Component]
    excluded: list[tuple[Component, str]]  # with the reason

    def kept_mask(self) -> np.ndarray:
        """bool (k, j, i): the voxels of the kept components."""
        kept = np.zeros(int(self.labels.max()) + 1, dtype=bool)
        kept[[c.label for c in self.kept]] = True
        return kept[self.labels]


def find_candidates(volume: Volume, threshold_hu: float, rules: BoneRules) -> Candidates:
    """Label voxels ≥ threshold over the whole field of view and set aside bone-like components.

    Bone is judged on whole components, before any heart region cuts them into plaque-sized pieces.
    """
    mask = volume.array >= threshold_hu
    labels = cc3d.connected_components(mask, connectivity=26, binary_image=True)
    voxel_volume_mm3 = float(abs(np.linalg.det(volume.ijk_to_ras[:3, :3])))
    foreground = np.flatnonzero(mask)
    foreground_labels = labels.ravel()[foreground]
    counts = np.bincount(foreground_labels)
    max_voxels = rules.max_lesion_volume_mm3 / voxel_volume_mm3
    kept, excluded, bone_labels = [], [], set()
    for label in np.flatnonzero(counts > max_voxels):
        volume_mm3 = counts[label] * voxel_volume_mm3
        bone_labels.add(int(label))
        excluded.append(
            (
                Component(int(label), None, int(counts[label])),
                f"bone: {volume_mm3:.0f} mm³ is larger than {rules.max_lesion_volume_mm3:g} mm³",
            )
        )
    small = (counts > 0) & (counts <= max_voxels)
    is_small_voxel = small[foreground_labels]
    size_kji = np.array(volume.array.shape)
    for component in _components(foreground[is_small_voxel], foreground_labels[is_small_voxel], mask.shape, counts):
        reason = _bone_reason(component, volume, size_kji, rules)
        if reason:
            excluded.append((component, reason))
            bone_labels.add(component.label)
        else:
            kept.append(component)
    margin_voxels = np.ceil(rules.bone_margin_mm / volume.spacing).astype(int)
    near_bone = [c for c in kept if _touches_labels(labels, c.box_ijk, margin_voxels, bone_labels)]
    for component in near_bone:
        kept.remove(component)
        excluded.append((component, f"bone fragment: within {rules.bone_margin_mm:g} mm of excluded bone"))
    return Candidates(labels, kept, excluded)


def _components(foreground: np.ndarray, foreground_labels: np.ndarray, shape_kji, counts) -> list[Component]:
    """Components with their inclusive IJK boxes, from their foreground voxels' flat indices."""
    labels = np.unique(foreground_labels)
    k, j, i = np.unravel_index(foreground, shape_kji)
    lo = np.full((len(counts), 3), np.iinfo(np.int64).max)
    hi = np.full((len(counts), 3), -1)
    for axis, coordinates in enumerate((i, j, k)):
        np.minimum.at(lo[:, axis], foreground_labels, coordinates)
        np.maximum.at(hi[:, axis], foreground_labels, coordinates)
    return [Component(int(label), np.array([lo[label], hi[label]]), int(counts[label])) for label in labels]


def _bone_reason(component: Component, volume: Volume, size_kji, rules: BoneRules) -> str:
    extent_mm = (component.box_ijk[1] - component.box_ijk[0] + 1) * volume.spacing
    if extent_mm.max() > rules.max_lesion_extent_mm:
        return f"bone: {extent_mm.max():.0f} mm long, longer than {rules.max_lesion_extent_mm:g} mm"
    lo, hi = component.box_ijk
    if lo[0] == 0 or lo[1] == 0 or hi[0] == size_kji[2] - 1 or hi[1] == size_kji[1] - 1:
        return "bone: cut by the edge of the field of view (rib or sternum)"
    return ""


def _touches_labels(labels: np.ndarray, box_ijk: np.ndarray, margin_voxels: np.ndarray, bone_labels: set) -> bool:
    if not bone_labels:
        return False
    lo = np.maximum(box_ijk[0] - margin_voxels, 0)
    hi = box_ijk[1] + margin_voxels + 1
    neighbourhood = labels[lo[2] : hi[2], lo[1] : hi[1], lo[0] : hi[0]]
    present = np.unique(neighbourhood)
    return any(int(label) in bone_labels for label in present)
