"""The classical calcium path: bone set aside, regions, refusals, geometry, closed partial-volume surfaces."""

import numpy as np
import pytest
from phantoms import add_sphere, ct_volume
from vtkmodules.vtkFiltersCore import vtkFeatureEdges

from LesionDetectLib.detection.findings import Surface
from LesionDetectLib.detectors.calcium.classical import CalciumParams, detect_calcium
from LesionDetectLib.errors import LesionDetectError
from LesionDetectLib.results.meshes import iso_surface_ijk, polydata_from_surface


def test_large_bone_and_field_of_view_cuts_are_excluded_and_listed():
    volume = ct_volume((30, 128, 128), (0.5, 0.5, 3.0))
    volume.array[:, 100:120, 50:80] = 600  # a vertebra-like block through every slice
    volume.array[10:14, 40:50, 0:6] = 500  # a rib cut by the field of view
    volume.array[10:12, 92:96, 60:64] = 450  # a fragment 2 mm from the vertebra
    volume.array[15, 30:36, 30:36] = 300  # a plaque
    findings = detect_calcium(volume, CalciumParams(surfaces=False))
    assert len(findings.lesions) == 1
    assert findings.lesions[0].box_ijk.tolist() == [[30, 30, 15], [35, 35, 15]]
    reasons = " | ".join(item["reason"] for item in findings.summary["excluded"])
    assert "larger than" in reasons and "field of view" in reasons and "bone fragment" in reasons
    assert findings.summary["scope"] == "whole_field_of_view"
    assert "not a coronary calcium score" in findings.summary["scope_note"]


def test_region_limits_the_count_and_changes_the_scope():
    volume = ct_volume((5, 64, 64), (0.5, 0.5, 3.0))
    volume.array[2, 10:14, 10:14] = 400
    volume.array[2, 40:44, 40:44] = 400
    region = np.zeros(volume.array.shape, bool)
    region[:, 30:60, 30:60] = True
    findings = detect_calcium(volume, CalciumParams(region=region, surfaces=False))
    assert [lesion.box_ijk[0].tolist() for lesion in findings.lesions] == [[40, 40, 2]]
    assert findings.summary["scope"] == "region"


@pytest.mark.parametrize(
    "change, message",
    [
        (lambda v: setattr(v, "modality", "MR"), "needs a non-contrast CT"),
        (lambda v: v.array.__setitem__(slice(None), np.abs(v.array)), "does not look like CT"),
        (lambda v: setattr(v, "array", v.array[:1]), "not a 3D volume"),
        (lambda v: v.ijk_to_ras.__setitem__((2, 2), 0.0), "zero or missing voxel spacing"),
        (lambda v: setattr(v, "array", np.where(v.array > 0, np.nan, v.array.astype(np.float32))), "NaN"),
        (lambda v: setattr(v, "ijk_to_ras", v.ijk_to_ras[:, [2, 1, 0, 3]]), "not made of axial slices"),
    ],
)
def test_bad_input_is_refused_with_a_message_naming_the_problem(change, message):
    volume = ct_volume((5, 32, 32), (0.5, 0.5, 3.0))
    volume.array[2, 10:14, 10:14] = 400
    before = volume.array.copy()
    change(volume)
    with pytest.raises(LesionDetectError, match=message):
        detect_calcium(volume)
    if volume.array.shape == before.shape and volume.array.dtype == before.dtype and message != "does not look like CT":
        assert np.array_equal(volume.array, before)


@pytest.mark.parametrize("rotation_deg", [0.0, 25.0])
def test_roi_centre_and_surface_sit_on_a_lesion_at_a_known_lps_position(rotation_deg):
    angle = np.deg2rad(rotation_deg)
    directions_lps = np.array([[np.cos(angle), -np.sin(angle), 0], [np.sin(angle), np.cos(angle), 0], [0, 0, 1]])
    volume = ct_volume((24, 64, 64), (0.6, 0.6, 1.0), origin_lps=(-20.0, -15.0, 100.0), directions_lps=directions_lps)
    center_ijk = np.array([31.0, 28.0, 12.0])
    center_lps = directions_lps @ (center_ijk * [0.6, 0.6, 1.0]) + [-20.0, -15.0, 100.0]
    add_sphere(volume, center_lps, 2.5, 600)
    findings = detect_calcium(volume)
    assert len(findings.lesions) == 1
    lesion = findings.lesions[0]
    center_ras = center_lps * [-1, -1, 1]
    half_voxel = 0.5 * volume.spacing.min()
    assert np.linalg.norm(lesion.center_ras - center_ras) <= half_voxel
    points_lps = lesion.surface.points_ras * [-1, -1, 1]
    assert np.linalg.norm(points_lps.mean(axis=0) - center_lps) <= half_voxel
    radii = np.linalg.norm(points_lps - center_lps, axis=1)
    assert radii.min() > 2.0 and radii.max() < 3.5


def test_surfaces_are_closed_manifold_and_wound_outward():
    volume = ct_volume((20, 64, 64), (0.4, 0.4, 1.5))
    add_sphere(volume, (10.0, 12.0, 15.0), 2.0, 500)
    add_sphere(volume, (16.0, 12.0, 15.0), 1.5, 300)  # a neighbour that must not join the first surface
    volume.array[10, 40:44, 40:46] = 800
    findings = detect_calcium(volume)
    assert len(findings.lesions) == 3
    for lesion in findings.lesions:
        edges = vtkFeatureEdges()
        edges.SetInputData(polydata_from_surface(lesion.surface, normals=False))
        edges.BoundaryEdgesOn()
        edges.NonManifoldEdgesOn()
        edges.FeatureEdgesOff()
        edges.ManifoldEdgesOff()
        edges.Update()
        assert edges.GetOutput().GetNumberOfCells() == 0
        assert lesion.surface.volume_mm3 > 0


def mask_surface_volume(volume, threshold):
    """Volume inside the iso-surface of the binary ≥ threshold mask (the staircase a labelmap gives)."""
    mask = np.pad((volume.array >= threshold).astype(np.float32), 1)
    points_ijk, triangles = iso_surface_ijk(mask, 0.5)
    return Surface(volume.ijk_to_ras_points(points_ijk - 1), triangles).volume_mm3


@pytest.mark.parametrize("spacing, tolerance", [((0.5, 0.5, 0.5), 0.06), ((0.4, 0.4, 3.0), 0.15)])
def test_partial_volume_surface_is_closer_to_the_true_volume_than_the_mask_surface(spacing, tolerance):
    """Dense plaques (400–1000 HU) bloom past 130 HU: the mask inflates them, the half-maximum surface does not."""
    rng = np.random.default_rng(7)
    surface_errors, staircase_errors, mask_surface_errors = [], [], []
    for _ in range(6):
        shape_kji = (int(np.ceil(14 / spacing[2])), int(14 / spacing[1]), int(14 / spacing[0]))
        volume = ct_volume(shape_kji, spacing)
        center = np.array([7.0, 7.0, 7.0]) + rng.uniform(-0.5, 0.5, 3) * spacing
        true_volume = add_sphere(volume, center, rng.uniform(2.0, 4.0), rng.uniform(400, 1000))
        findings = detect_calcium(volume)
        assert len(findings.lesions) == 1
        surface_errors.append(abs(findings.lesions[0].surface.volume_mm3 / true_volume - 1))
        staircase_errors.append(abs(findings.summary["volume_mm3_total"] / true_volume - 1))
        mask_surface_errors.append(abs(mask_surface_volume(volume, 130) / true_volume - 1))
    assert np.mean(surface_errors) < np.mean(staircase_errors)
    assert np.mean(surface_errors) < np.mean(mask_surface_errors)
    assert np.mean(surface_errors) < tolerance
