"""The scene adapter on a real slicer-core MRML scene: nodes, geometry, reruns, user nodes, region masks.

The findings come from toy detectors ("toy", "other-toy"): what tables and descriptions say is decided by the
columns a test declares, and colours by the label colours a registered toy detector declares.
"""

import json

import numpy as np
import pytest
import slicer
import slicer.util
import vtk
from skimage.measure import marching_cubes

from LesionDetectLib.detection import registry
from LesionDetectLib.detection.detector import Column, Detector
from LesionDetectLib.detection.findings import Findings, Lesion, Surface
from LesionDetectLib.errors import LesionDetectError
from LesionDetectLib.io.volume import LPS_TO_RAS, ijk_to_ras_matrix
from LesionDetectLib.results.colors import PALETTE_RGB, color_for_label, hash_color
from LesionDetectLib.results.lesion_text import detector_columns, lesion_description
from LesionDetectLib.scene import (
    DETECTOR_ATTRIBUTE,
    INPUT_VOLUME_ATTRIBUTE,
    SUMMARY_ATTRIBUTE,
    region_mask_from_node,
    remove_run,
    show_findings,
    show_heatmap_in_3d,
    show_heatmap_in_slice_views,
    surfaces_from_run,
    volume_from_node,
)

SHAPE_KJI = (16, 40, 48)

# The columns a detector would declare: description words ("text") and table cell formats ("cell").
TOY_COLUMNS = (
    Column("site", "Site", text="{}", cell="{}"),
    Column("index", "Index", text="Index {:.1f}", cell="{:.1f}"),
    Column("volume_mm3", "Volume (mm³)", text="volume {:.1f} mm³", cell="{:.1f}"),
    Column("mass_mg", "Mass (mg)", text="mass {:.1f} mg", cell="{:.1f}"),
    Column("peak_hu", "Peak (HU)", text="peak {:.0f} HU", cell="{:.0f}"),
)
TOY_COLOR = (0.12, 0.34, 0.56)


class ToyDetector(Detector):
    """Registered only inside `toy_detector`: it declares columns and a label colour, nothing else."""

    id = "toy-registered"
    title = "Toy"
    columns = TOY_COLUMNS
    label_colors = {"Nodule": TOY_COLOR}


@pytest.fixture
def toy_detector():
    detector = registry.register(ToyDetector())
    yield detector
    registry.unregister(detector.id)


@pytest.fixture
def scene(mrml_scene):
    return mrml_scene


def rotation(axis: int, degrees: float) -> np.ndarray:
    angle = np.deg2rad(degrees)
    a, b = [n for n in range(3) if n != axis]
    matrix = np.eye(3)
    matrix[a, a] = matrix[b, b] = np.cos(angle)
    matrix[a, b], matrix[b, a] = -np.sin(angle), np.sin(angle)
    return matrix


AXIAL_IJK_TO_RAS = ijk_to_ras_matrix((0.8, 0.8, 2.5), (-12.0, 30.0, -20.0), LPS_TO_RAS[:3, :3])
OBLIQUE_IJK_TO_RAS = ijk_to_ras_matrix(
    (0.7, 0.9, 2.0), (5.0, -8.0, 11.0), rotation(2, 30) @ rotation(0, 20) @ LPS_TO_RAS[:3, :3]
)
MIRRORED_IJK_TO_RAS = ijk_to_ras_matrix((0.6, 0.6, 1.5), (0.0, 0.0, 0.0), np.diag([-1.0, 1.0, 1.0]) @ rotation(1, 10))


def add_volume(
    scene, name="CT", ijk_to_ras=AXIAL_IJK_TO_RAS, shape_kji=SHAPE_KJI, node_class="vtkMRMLScalarVolumeNode"
):
    node = scene.AddNewNodeByClass(node_class, name)
    node.SetIJKToRASMatrix(slicer.util.vtkMatrixFromArray(ijk_to_ras))
    array = np.arange(np.prod(shape_kji), dtype=np.int16).reshape(shape_kji) % 1000
    slicer.util.updateVolumeFromArray(node, array)
    return node


def ball_surface(center_ras, radius_mm: float) -> Surface:
    """A closed sphere mesh in RAS from marching cubes on a 0.5 mm grid."""
    step = 0.5
    half = int(np.ceil(radius_mm / step)) + 2
    axis = np.arange(-half, half + 1) * step
    zz, yy, xx = np.meshgrid(axis, axis, axis, indexing="ij")
    field = np.sqrt(xx**2 + yy**2 + zz**2)
    verts_zyx, faces, _, _ = marching_cubes(field, radius_mm, spacing=(step, step, step))
    points_ras = verts_zyx[:, ::-1] - half * step + np.asarray(center_ras)
    return Surface(points_ras, faces[:, ::-1].astype(np.int64))


def make_findings(volume_node, detector="toy", with_heatmap=True) -> Findings:
    volume = volume_from_node(volume_node)
    first = Lesion.from_box(
        volume,
        1,
        "nodule",
        [[5, 6, 3], [9, 12, 6]],
        score=0.91,
        measurements={
            "slices": (3, 6),
            "site": "A1",
            "index": 12.3,
            "volume_mm3": 25.14,
            "mass_mg": 4.2,
            "peak_hu": 512,
            "spread": 0.123456,
        },
    )
    second = Lesion.from_box(
        volume,
        2,
        "nodule",
        [[30, 20, 8], [35, 27, 12]],
        score=0.55,
        measurements={"index": 3.0, "volume_mm3": 7.5, "peak_hu": 250, "slices": (8, 12), "site": "B2"},
    )
    first.surface = ball_surface(first.center_ras, 2.0)
    second.surface = ball_surface(second.center_ras, 3.0)
    heatmap = None
    if with_heatmap:
        heatmap = np.linspace(-0.2, 1.3, volume.array.size, dtype=np.float32).reshape(volume.array.shape)
    summary = {"index_total": np.float64(15.3), "category": "11–100", "lesion_count": 2}
    return Findings(detector, "test", volume, [first, second], summary, heatmap=heatmap)


def subject_hierarchy(scene):
    return slicer.vtkMRMLSubjectHierarchyNode.GetSubjectHierarchyNode(scene)


def folder_children(scene, folder_item_id):
    item_ids = vtk.vtkIdList()
    subject_hierarchy(scene).GetItemChildren(folder_item_id, item_ids)
    hierarchy = subject_hierarchy(scene)
    return {hierarchy.GetItemDataNode(item_ids.GetId(n)).GetID() for n in range(item_ids.GetNumberOfIds())}


def all_run_nodes(run):
    return [*run.roi_nodes, run.table_node, *run.model_nodes] + ([run.heatmap_node] if run.heatmap_node else [])


def test_volume_from_node_is_a_view_with_geometry_and_modality(scene):
    node = add_volume(scene, "Chest CT", OBLIQUE_IJK_TO_RAS)
    volume = volume_from_node(node)
    assert np.shares_memory(volume.array, slicer.util.arrayFromVolume(node))
    np.testing.assert_allclose(volume.ijk_to_ras, OBLIQUE_IJK_TO_RAS, atol=1e-9)
    assert volume.name == "Chest CT" and volume.modality is None
    node.SetAttribute("DICOM.Modality", "CT")
    assert volume_from_node(node).modality == "CT"


def test_volume_under_linear_transform_is_read_in_world_coordinates(scene):
    node = add_volume(scene)
    to_parent = np.eye(4)
    to_parent[:3, :3] = rotation(1, 15)
    to_parent[:3, 3] = (4.0, -3.0, 9.0)
    transform_node = scene.AddNewNodeByClass("vtkMRMLLinearTransformNode")
    transform_node.SetMatrixTransformToParent(slicer.util.vtkMatrixFromArray(to_parent))
    node.SetAndObserveTransformNodeID(transform_node.GetID())
    np.testing.assert_allclose(volume_from_node(node).ijk_to_ras, to_parent @ AXIAL_IJK_TO_RAS, atol=1e-9)
    run = show_findings(scene, node, make_findings(node))
    heatmap_ijk_to_ras = vtk.vtkMatrix4x4()
    run.heatmap_node.GetIJKToRASMatrix(heatmap_ijk_to_ras)
    np.testing.assert_allclose(
        slicer.util.arrayFromVTKMatrix(heatmap_ijk_to_ras), to_parent @ AXIAL_IJK_TO_RAS, atol=1e-9
    )


def test_volume_under_nonlinear_transform_is_refused(scene):
    node = add_volume(scene)
    spline = vtk.vtkThinPlateSplineTransform()
    source, target = vtk.vtkPoints(), vtk.vtkPoints()
    for point in [(0, 0, 0), (50, 0, 0), (0, 50, 0), (0, 0, 50)]:
        source.InsertNextPoint(point)
        target.InsertNextPoint(np.add(point, (1, 2, 0)))
    spline.SetSourceLandmarks(source)
    spline.SetTargetLandmarks(target)
    transform_node = scene.AddNewNodeByClass("vtkMRMLTransformNode")
    transform_node.SetAndObserveTransformToParent(spline)
    node.SetAndObserveTransformNodeID(transform_node.GetID())
    with pytest.raises(LesionDetectError, match="harden"):
        volume_from_node(node)


def test_show_findings_puts_tagged_named_nodes_in_one_folder(scene):
    hierarchy = subject_hierarchy(scene)
    study_item_id = hierarchy.CreateFolderItem(hierarchy.GetSceneItemID(), "Study")
    node = add_volume(scene, "Cardiac CT")
    hierarchy.CreateItem(study_item_id, node)
    findings = make_findings(node)
    run = show_findings(scene, node, findings)

    assert hierarchy.GetItemName(run.folder_item_id) == "Toy findings – Cardiac CT"
    assert hierarchy.GetItemParent(run.folder_item_id) == study_item_id
    assert folder_children(scene, run.folder_item_id) == {n.GetID() for n in all_run_nodes(run)}
    assert {n.GetID() for n in run.nodes()} == {n.GetID() for n in all_run_nodes(run)}
    assert run.browser_node is None and run.image_node is None
    assert [n.GetName() for n in run.roi_nodes] == ["nodule 1", "nodule 2"]
    assert [n.GetName() for n in run.model_nodes] == ["nodule 1 surface", "nodule 2 surface"]
    assert run.table_node.GetName() == "toy lesions" and run.heatmap_node.GetName() == "toy heatmap"
    for created in all_run_nodes(run):
        assert created.GetAttribute(DETECTOR_ATTRIBUTE) == "toy"
        assert created.GetAttribute(INPUT_VOLUME_ATTRIBUTE) == node.GetID()
    summary = json.loads(hierarchy.GetItemAttribute(run.folder_item_id, SUMMARY_ATTRIBUTE))
    assert summary == {"index_total": 15.3, "category": "11–100", "lesion_count": 2}


@pytest.mark.parametrize(
    "ijk_to_ras", [AXIAL_IJK_TO_RAS, OBLIQUE_IJK_TO_RAS, MIRRORED_IJK_TO_RAS], ids=["axial", "oblique", "mirrored"]
)
def test_roi_has_the_lesion_centre_size_and_orientation(scene, ijk_to_ras):
    node = add_volume(scene, ijk_to_ras=ijk_to_ras)
    findings = make_findings(node, with_heatmap=False)
    run = show_findings(scene, node, findings)
    directions = findings.volume.directions
    for roi_node, lesion in zip(run.roi_nodes, findings.lesions):
        center = np.zeros(3)
        roi_node.GetCenterWorld(center)
        np.testing.assert_allclose(center, lesion.center_ras, atol=1e-6)
        np.testing.assert_allclose(roi_node.GetSize(), lesion.size_mm, atol=1e-6)
        roi_axes = np.zeros((3, 3))
        for n, get_axis in enumerate((roi_node.GetXAxisWorld, roi_node.GetYAxisWorld, roi_node.GetZAxisWorld)):
            axis = np.zeros(3)
            get_axis(axis)
            roi_axes[:, n] = axis
        np.testing.assert_allclose(np.abs(np.sum(roi_axes * directions, axis=0)), 1.0, atol=1e-6)
        # The box covers exactly the lesion's voxels: a rotated or misplaced box would not.
        mask = region_mask_from_node(roi_node, node)
        (i0, j0, k0), (i1, j1, k1) = lesion.box_ijk
        expected = np.zeros(SHAPE_KJI, dtype=np.uint8)
        expected[k0 : k1 + 1, j0 : j1 + 1, i0 : i1 + 1] = 1
        np.testing.assert_array_equal(mask, expected)


def test_roi_is_locked_coloured_and_described_by_the_columns(scene):
    node = add_volume(scene)
    run = show_findings(scene, node, make_findings(node), columns=TOY_COLUMNS)
    roi_node = run.roi_nodes[0]
    assert roi_node.GetLocked()
    assert not roi_node.GetDisplayNode().GetHandlesInteractive()
    np.testing.assert_allclose(roi_node.GetDisplayNode().GetColor(), hash_color("nodule"))
    # Declared columns first, in their order and words; the others as "key value" in the lesion's order.
    assert roi_node.GetDescription() == (
        "score 0.91, A1, Index 12.3, volume 25.1 mm³, mass 4.2 mg, peak 512 HU, slices 3–6, spread 0.123456"
    )
    assert run.roi_nodes[1].GetDescription() == "score 0.55, B2, Index 3.0, volume 7.5 mm³, peak 250 HU, slices 8–12"


def test_without_columns_every_measurement_reads_key_value(scene):
    node = add_volume(scene)
    run = show_findings(scene, node, make_findings(node, detector="not-registered"))
    assert run.roi_nodes[1].GetDescription() == "score 0.55, index 3, volume_mm3 7.5, peak_hu 250, slices 8–12, site B2"
    names = [run.table_node.GetColumnName(c) for c in range(run.table_node.GetNumberOfColumns())]
    assert names[3:6] == ["slices", "site", "index"]  # the lesions' own order


def test_the_registered_detector_gives_columns_and_colours(scene, toy_detector):
    node = add_volume(scene)
    run = show_findings(scene, node, make_findings(node, detector=toy_detector.id))
    assert run.roi_nodes[0].GetDescription().startswith("score 0.91, A1, Index 12.3, volume 25.1 mm³")
    np.testing.assert_allclose(run.roi_nodes[0].GetDisplayNode().GetColor(), TOY_COLOR)
    np.testing.assert_allclose(run.model_nodes[0].GetDisplayNode().GetColor(), TOY_COLOR)
    assert run.table_node.GetColumnTitle("volume_mm3") == "Volume (mm³)"
    assert detector_columns(toy_detector.id) == TOY_COLUMNS
    assert detector_columns("no-such-detector") == () and detector_columns(None) == ()


def test_lesion_description_can_read_like_a_calcium_report():
    columns = (
        Column("artery", "Artery", text="{}", cell="{}"),
        Column("agatston", "Agatston", text="Agatston {:.1f}", cell="{:.1f}"),
        Column("volume_mm3", "Volume (mm³)", text="volume {:.1f} mm³", cell="{:.1f}"),
        Column("peak_hu", "Peak (HU)", text="peak {:.0f} HU", cell="{:.0f}"),
    )
    measurements = {"peak_hu": 512.4, "volume_mm3": 25.06, "agatston": 12.34, "artery": "LAD", "note": None}
    lesion = Lesion(1, "plaque", score=0.934, measurements=measurements)
    assert lesion_description(lesion, columns) == "score 0.93, LAD, Agatston 12.3, volume 25.1 mm³, peak 512 HU"
    assert lesion_description(lesion) == "score 0.93, peak_hu 512.4, volume_mm3 25.06, agatston 12.34, artery LAD"
    broken = (Column("artery", "Artery", text="{:.1f}"),)  # a template the value does not fit
    assert lesion_description(lesion, broken).startswith("score 0.93, artery LAD, peak_hu 512.4")


def test_label_colours_come_from_detectors_then_a_stable_palette(toy_detector):
    assert color_for_label("nodule") == TOY_COLOR and color_for_label("NODULE") == TOY_COLOR
    assert color_for_label("nodule", toy_detector.id) == TOY_COLOR

    class Rival(Detector):
        id = "toy-rival"
        title = "Rival"
        label_colors = {"nodule": (0.9, 0.1, 0.1)}

    registry.register(Rival())
    try:
        assert color_for_label("nodule", "toy-rival") == (0.9, 0.1, 0.1)  # the run's own detector wins
        assert color_for_label("nodule", toy_detector.id) == TOY_COLOR
    finally:
        registry.unregister("toy-rival")
    for label in ("cyst", "mass", "something new"):
        assert color_for_label(label) == hash_color(label) == color_for_label(label.upper())
        assert color_for_label(label) in PALETTE_RGB
    assert len({hash_color(f"label {n}") for n in range(40)}) == len(PALETTE_RGB)  # the hash spreads labels


def test_table_has_a_row_per_lesion_with_typed_columns(scene):
    node = add_volume(scene)
    findings = make_findings(node)
    table_node = show_findings(scene, node, findings, columns=TOY_COLUMNS).table_node
    names = [table_node.GetColumnName(c) for c in range(table_node.GetNumberOfColumns())]
    assert names == [
        "id",
        "label",
        "score",
        "site",
        "index",
        "volume_mm3",
        "mass_mg",
        "peak_hu",
        "slices",
        "spread",
        "center R",
        "center A",
        "center S",
    ]
    assert table_node.GetNumberOfRows() == 2
    table = table_node.GetTable()
    assert table.GetColumnByName("label").GetValue(1) == "nodule"
    assert table.GetColumnByName("site").GetValue(1) == "B2"
    assert table.GetColumnByName("slices").GetValue(0) == "3–6"
    assert table_node.GetColumnType("score") == vtk.VTK_DOUBLE
    assert table_node.GetColumnType("id") == vtk.VTK_INT
    assert table_node.GetColumnType("site") == vtk.VTK_STRING
    assert table_node.GetColumnType("peak_hu") == vtk.VTK_INT
    assert table.GetColumnByName("index").GetValue(0) == pytest.approx(12.3)
    assert table.GetColumnByName("volume_mm3").GetValue(0) == pytest.approx(25.1, abs=1e-12)  # as "{:.1f}" writes it
    assert table.GetColumnByName("spread").GetValue(0) == pytest.approx(0.123456, abs=1e-12)  # undeclared: as is
    assert np.isnan(table.GetColumnByName("mass_mg").GetValue(1))  # only the first lesion has a mass
    assert table.GetColumnByName("peak_hu").GetValue(1) == 250
    assert table_node.GetColumnTitle("volume_mm3") == "Volume (mm³)" and table_node.GetUseColumnTitleAsColumnHeader()
    assert table_node.GetColumnUnitLabel("volume_mm3") == "mm³" and table_node.GetColumnUnitLabel("center R") == "mm"
    for n, axis in enumerate("RAS"):
        assert table.GetColumnByName(f"center {axis}").GetValue(1) == pytest.approx(findings.lesions[1].center_ras[n])


def test_a_cell_format_that_writes_text_makes_a_text_column(scene):
    node = add_volume(scene)
    columns = (Column("index", "Index", cell="{:.0%}"),)
    table_node = show_findings(scene, node, make_findings(node), columns=columns).table_node
    assert table_node.GetColumnType("index") == vtk.VTK_STRING
    assert [table_node.GetTable().GetColumnByName("index").GetValue(n) for n in range(2)] == ["1230%", "300%"]


def test_model_nodes_hold_the_surfaces(scene):
    node = add_volume(scene)
    findings = make_findings(node)
    run = show_findings(scene, node, findings)
    for model_node, lesion in zip(run.model_nodes, findings.lesions):
        polydata = model_node.GetPolyData()
        assert polydata.GetNumberOfPoints() == len(lesion.surface.points_ras)
        assert polydata.GetNumberOfCells() == len(lesion.surface.triangles)
        bounds = np.array(polydata.GetBounds()).reshape(3, 2)
        np.testing.assert_allclose(bounds[:, 0], lesion.surface.points_ras.min(axis=0), atol=1e-4)
        np.testing.assert_allclose(bounds[:, 1], lesion.surface.points_ras.max(axis=0), atol=1e-4)
        display_node = model_node.GetDisplayNode()
        assert display_node.GetVisibility3D() and display_node.GetVisibility2D()
        np.testing.assert_allclose(display_node.GetColor(), color_for_label("nodule"))
    surfaces = surfaces_from_run(scene, node, "toy")
    assert [name for name, _ in surfaces] == ["nodule 1 surface", "nodule 2 surface"]
    np.testing.assert_allclose(surfaces[1][1].points_ras, findings.lesions[1].surface.points_ras, atol=1e-4)
    np.testing.assert_array_equal(surfaces[1][1].triangles, findings.lesions[1].surface.triangles)


def test_heatmap_has_the_input_geometry_and_an_overlay_display(scene):
    node = add_volume(scene, ijk_to_ras=OBLIQUE_IJK_TO_RAS)
    findings = make_findings(node)
    heatmap_node = show_findings(scene, node, findings).heatmap_node
    ijk_to_ras = vtk.vtkMatrix4x4()
    heatmap_node.GetIJKToRASMatrix(ijk_to_ras)
    np.testing.assert_allclose(slicer.util.arrayFromVTKMatrix(ijk_to_ras), OBLIQUE_IJK_TO_RAS, atol=1e-9)
    values = slicer.util.arrayFromVolume(heatmap_node)
    assert values.dtype == np.float32 and values.shape == SHAPE_KJI
    np.testing.assert_allclose(values, np.clip(findings.heatmap, 0, 1))
    display_node = heatmap_node.GetDisplayNode()
    assert display_node.GetColorNodeID() == "vtkMRMLPETProceduralColorNodePET-Heat"
    assert (display_node.GetWindowLevelMin(), display_node.GetWindowLevelMax()) == (0.0, 1.0)
    assert display_node.GetApplyThreshold() and display_node.GetLowerThreshold() == pytest.approx(0.05)

    composite_nodes = [scene.AddNewNodeByClass("vtkMRMLSliceCompositeNode") for _ in range(3)]
    assert show_heatmap_in_slice_views(scene, heatmap_node, opacity=0.4) >= 3
    for composite_node in composite_nodes:
        assert composite_node.GetForegroundVolumeID() == heatmap_node.GetID()
        assert composite_node.GetForegroundOpacity() == pytest.approx(0.4)


def test_heatmap_on_another_grid_is_refused_before_anything_changes(scene):
    node = add_volume(scene)
    run = show_findings(scene, node, make_findings(node))
    node_count = scene.GetNumberOfNodes()
    findings = make_findings(node)
    findings.heatmap = findings.heatmap[:-1]
    with pytest.raises(LesionDetectError, match="heatmap"):
        show_findings(scene, node, findings)
    assert scene.GetNumberOfNodes() == node_count
    assert all(scene.GetNodeByID(n.GetID()) is n for n in all_run_nodes(run))


def test_rerun_replaces_only_its_own_nodes(scene):
    hierarchy = subject_hierarchy(scene)
    node = add_volume(scene)
    first = show_findings(scene, node, make_findings(node))
    node_count = scene.GetNumberOfNodes()
    first_ids = {n.GetID() for n in all_run_nodes(first)}

    user_roi = scene.AddNewNodeByClass("vtkMRMLMarkupsROINode", "nodule 1")
    user_points = scene.AddNewNodeByClass("vtkMRMLMarkupsFiducialNode", "my note")
    hierarchy.CreateItem(first.folder_item_id, user_points)  # the user moved a node into our folder
    other_node = add_volume(scene, "other CT")
    other_volume_run = show_findings(scene, other_node, make_findings(other_node))
    other_detector_run = show_findings(scene, node, make_findings(node, detector="other-toy"))
    node_count = scene.GetNumberOfNodes()

    second = show_findings(scene, node, make_findings(node))
    assert scene.GetNumberOfNodes() == node_count
    second_ids = {n.GetID() for n in all_run_nodes(second)}
    assert not first_ids & second_ids
    assert all(scene.GetNodeByID(node_id) is None for node_id in first_ids)
    for survivor in [user_roi, user_points, *all_run_nodes(other_volume_run), *all_run_nodes(other_detector_run)]:
        assert scene.GetNodeByID(survivor.GetID()) is survivor
    assert user_roi.GetName() == "nodule 1"
    # The old folder still holds the user's node, so it stays; the new run has a folder of its own.
    assert folder_children(scene, first.folder_item_id) == {user_points.GetID()}
    assert second.folder_item_id != first.folder_item_id
    assert folder_children(scene, second.folder_item_id) == second_ids


def test_remove_run_counts_nodes_and_drops_the_empty_folder(scene):
    hierarchy = subject_hierarchy(scene)
    node = add_volume(scene)
    run = show_findings(scene, node, make_findings(node))
    node_count = scene.GetNumberOfNodes()
    assert remove_run(scene, node, "toy") == 6  # 2 ROIs, table, 2 models, heatmap
    assert scene.GetNumberOfNodes() == node_count - 6 * 2 + 1  # each with its display node except the table
    assert not hierarchy.GetItemName(run.folder_item_id)
    assert remove_run(scene, node, "toy") == 0
    assert remove_run(scene, node.GetID(), "toy") == 0  # the input may also be given by its ID


def test_labelmap_on_the_same_grid_is_used_as_is(scene):
    node = add_volume(scene, ijk_to_ras=OBLIQUE_IJK_TO_RAS)
    labelmap = add_volume(scene, "region", OBLIQUE_IJK_TO_RAS, node_class="vtkMRMLLabelMapVolumeNode")
    labels = np.zeros(SHAPE_KJI, dtype=np.int16)
    labels[2:5, 10:20, 7:9] = 3
    slicer.util.updateVolumeFromArray(labelmap, labels)
    mask = region_mask_from_node(labelmap, node)
    assert mask.dtype == np.uint8
    np.testing.assert_array_equal(mask, labels > 0)


def coarse_region(scene, node_class):
    """A 2 mm labelmap, offset by a quarter voxel of the input, labelling source voxels [3..5]³ —
    which cover input voxels [5..10] on i and j and k (see the index arithmetic in the test)."""
    coarse_ijk_to_ras = ijk_to_ras_matrix((2.0, 2.0, 2.0), (-0.25, -0.25, -0.25))
    labelmap = add_volume(scene, "coarse region", coarse_ijk_to_ras, (10, 10, 10), node_class)
    labels = np.zeros((10, 10, 10), dtype=np.int16)
    labels[3:6, 3:6, 3:6] = 1
    slicer.util.updateVolumeFromArray(labelmap, labels)
    return labelmap


def expected_coarse_mask():
    # Input voxel n sits at n mm, i.e. coarse index (n + 0.25) / 2: voxels 5..10 round to 3..5.
    expected = np.zeros((14, 14, 14), dtype=np.uint8)
    expected[5:11, 5:11, 5:11] = 1
    return expected


def test_labelmap_on_another_grid_is_resampled_nearest_neighbour(scene):
    node = add_volume(scene, ijk_to_ras=np.eye(4), shape_kji=(14, 14, 14))
    labelmap = coarse_region(scene, "vtkMRMLLabelMapVolumeNode")
    np.testing.assert_array_equal(region_mask_from_node(labelmap, node), expected_coarse_mask())


def test_segmentation_is_exported_onto_the_input_grid(scene):
    node = add_volume(scene, ijk_to_ras=np.eye(4), shape_kji=(14, 14, 14))
    labelmap = coarse_region(scene, "vtkMRMLLabelMapVolumeNode")
    segmentation = scene.AddNewNodeByClass("vtkMRMLSegmentationNode", "region")
    assert slicer.vtkSlicerSegmentationsModuleLogic.ImportLabelmapToSegmentationNode(labelmap, segmentation)
    node_count = scene.GetNumberOfNodes()
    np.testing.assert_array_equal(region_mask_from_node(segmentation, node), expected_coarse_mask())
    assert scene.GetNumberOfNodes() == node_count  # the temporary labelmap is gone


def test_empty_segmentation_and_unknown_nodes_are_refused(scene):
    node = add_volume(scene)
    with pytest.raises(LesionDetectError, match="no segments"):
        region_mask_from_node(scene.AddNewNodeByClass("vtkMRMLSegmentationNode", "empty"), node)
    with pytest.raises(LesionDetectError, match="cannot be used as a region"):
        region_mask_from_node(scene.AddNewNodeByClass("vtkMRMLTableNode", "a table"), node)


def test_heatmap_in_3d_is_volume_rendered_and_leaves_with_its_run(scene):
    node = add_volume(scene)
    findings = make_findings(node)
    findings.heatmap = np.rint(np.clip(findings.heatmap, 0, 1) * 100).astype(np.uint8)  # percent, as detectors write
    heatmap_node = show_findings(scene, node, findings).heatmap_node
    np.testing.assert_allclose(slicer.util.arrayFromVolume(heatmap_node), findings.heatmap / 100.0, atol=1e-6)
    logic = slicer.vtkSlicerVolumeRenderingLogic()
    logic.SetMRMLScene(scene)
    display_node = show_heatmap_in_3d(scene, heatmap_node, logic, lowest=0.3)
    assert display_node.GetVisibility() and display_node.GetVolumeNode() is heatmap_node
    volume_property = display_node.GetVolumePropertyNode().GetVolumeProperty()
    opacity = volume_property.GetScalarOpacity()
    assert opacity.GetValue(0.2) == 0.0 and opacity.GetValue(0.9) > 0.3
    assert remove_run(scene, node, "toy") > 0
    assert scene.GetNodesByClass("vtkMRMLVolumePropertyNode").GetNumberOfItems() == 0
    assert scene.GetNodesByClass("vtkMRMLVolumeRenderingDisplayNode").GetNumberOfItems() == 0


def test_the_volume_presenter_shows_volume_findings(scene):
    from LesionDetectLib.scene import volume_presenter

    node = add_volume(scene)
    run = volume_presenter.show_findings(scene, node, make_findings(node), TOY_COLUMNS)
    assert len(run.roi_nodes) == 2 and run.roi_nodes[0].GetDescription().startswith("score 0.91, A1, Index 12.3")
