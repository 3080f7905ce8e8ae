"""Findings on an image sequence (a cine) and on a single 2D image, shown on a real slicer-core MRML scene.

A toy cine: 5 frames of 64×64 pixels with a bright blob moving right and down, lesions on frames 1 and 3
(two "nodule" boxes and a "cyst" box on frame 3), a heatmap per frame and a per-frame score table.
Pixels are 0.3 mm wide (columns) and 0.4 mm high (rows), so swapped axes would show.
"""

import numpy as np
import pytest
import slicer
import slicer.util
import vtk

from LesionDetectLib.detection.detector import Column
from LesionDetectLib.detection.findings import Findings, Lesion, ScoreTable
from LesionDetectLib.errors import LesionDetectError
from LesionDetectLib.io.image_sequence import ImageSequence
from LesionDetectLib.results.lesion_text import lesion_description
from LesionDetectLib.scene import (
    DETECTOR_ATTRIBUTE,
    INPUT_VOLUME_ATTRIBUTE,
    image_sequence_from_node,
    remove_run,
    show_findings,
    show_heatmap_in_slice_views,
    show_image_in_slice_views,
)
from LesionDetectLib.scene.run_nodes import DESCRIPTION_ATTRIBUTE, LESION_ID_ATTRIBUTE
from LesionDetectLib.scene.sequence_presenter import get_sequences_logic

FRAMES, ROWS, COLUMNS = 5, 64, 64
ROW_MM, COLUMN_MM = 0.4, 0.3
COLUMNS_DECLARED = (Column("area_mm2", "Area (mm²)", text="area {:.1f} mm²", cell="{:.1f}"),)


@pytest.fixture
def scene(mrml_scene):
    """The shared scene, with its subject hierarchy node made up front (so node counts are the run's)."""
    slicer.vtkMRMLSubjectHierarchyNode.GetSubjectHierarchyNode(mrml_scene)
    return mrml_scene


def blob_center(frame: int) -> tuple[float, float]:
    """(x, y) pixel centre of the blob on a frame."""
    return 12.0 + 8.0 * frame, 20.0 + 5.0 * frame


def toy_cine(frames=FRAMES, spacing=(ROW_MM, COLUMN_MM), name="cine") -> ImageSequence:
    yy, xx = np.mgrid[0:ROWS, 0:COLUMNS]
    pixels = np.zeros((frames, ROWS, COLUMNS), dtype=np.uint16)
    for frame in range(frames):
        x, y = blob_center(frame)
        pixels[frame] = 100 + frame + 900 * (((xx - x) ** 2 + (yy - y) ** 2) < 16)
    times = np.arange(frames) / 15.0
    return ImageSequence(pixels, name, "XA", times, spacing)


def blob_box(frame: int, half: float = 4.0) -> list[float]:
    x, y = blob_center(frame)
    return [x - half, y - half, x + half + 1, y + half + 1]


def toy_findings(sequence: ImageSequence, detector="toy-cine") -> Findings:
    lesions = [
        Lesion.on_frame(sequence, 1, "nodule", 1, blob_box(1), score=0.8, measurements={"area_mm2": 10.0}),
        Lesion.on_frame(sequence, 2, "nodule", 3, blob_box(3), score=0.9, measurements={"area_mm2": 12.345}),
        Lesion.on_frame(sequence, 3, "nodule", 3, [2, 50, 10, 60], score=0.4),
        Lesion.on_frame(sequence, 4, "cyst", 3, [40, 2, 60, 12], score=0.7, measurements={"kind": "simple"}),
    ]
    yy, xx = np.mgrid[0:ROWS, 0:COLUMNS]
    heatmap = np.zeros(sequence.frames.shape, dtype=np.float32)
    for frame in range(sequence.frame_count):
        x, y = blob_center(frame)
        heatmap[frame] = np.exp(-((xx - x) ** 2 + (yy - y) ** 2) / 30.0) * (0.5 + 0.1 * frame)
    scores = ScoreTable("frame", ("nodule", "cyst"), np.array([[0.1 * f, 0.05 * f + 0.01] for f in range(5)]))
    return Findings(
        detector, "test", sequence, lesions, {"frames_with_lesions": 2}, heatmap=heatmap, score_tables=[scores]
    )


def expected_center_ras(box_px, row_mm=ROW_MM, column_mm=COLUMN_MM) -> np.ndarray:
    """Pixel-edge box → voxel-centre IJK → RAS for diag(-1, -1, 1) · diag(column, row, 1) at origin 0."""
    x0, y0, x1, y1 = box_px
    i, j = (x0 + x1) / 2 - 0.5, (y0 + y1) / 2 - 0.5
    return np.array([-i * column_mm, -j * row_mm, 0.0])


def roi_center(roi_node) -> np.ndarray:
    center = np.zeros(3)
    roi_node.GetCenterWorld(center)
    return center


def matrix_of(volume_node) -> np.ndarray:
    matrix = vtk.vtkMatrix4x4()
    volume_node.GetIJKToRASMatrix(matrix)
    return slicer.util.arrayFromVTKMatrix(matrix)


def node_ids(scene) -> set[str]:
    nodes = scene.GetNodes()
    return {nodes.GetItemAsObject(n).GetID() for n in range(nodes.GetNumberOfItems())}


def rois_by_name(run) -> dict:
    return {node.GetName(): node for node in run.roi_nodes}


def user_cine_browser(scene, sequence: ImageSequence, spacing=0.5, origin=(10.0, -20.0, 5.0)):
    """The user's own sequence of the frames (time index in s) with a browser and its proxy volume."""
    logic = get_sequences_logic(scene)
    frames = scene.AddNewNodeByClass("vtkMRMLSequenceNode", "my cine")
    frames.SetIndexName("time")
    frames.SetIndexUnit("s")
    for frame in range(sequence.frame_count):
        item = slicer.vtkMRMLScalarVolumeNode()
        item.SetSpacing(spacing, spacing, 1.0)
        item.SetOrigin(*origin)
        slicer.util.updateVolumeFromArray(item, sequence.frames[frame : frame + 1])
        frames.SetDataNodeAtValue(item, f"{frame / 15.0:.4f}")
    browser = scene.AddNewNodeByClass("vtkMRMLSequenceBrowserNode", "my browser")
    logic.AddSynchronizedNode(frames, None, browser)
    browser.SetSelectedItemNumber(0)
    logic.UpdateProxyNodesFromSequences(browser)
    return frames, browser, browser.GetProxyNode(frames)


def test_a_cine_plays_in_one_browser_that_moves_every_proxy(scene):
    sequence = toy_cine()
    findings = toy_findings(sequence)
    run = show_findings(scene, None, findings, columns=COLUMNS_DECLARED)

    browser = run.browser_node
    assert browser is not None and browser.IsA("vtkMRMLSequenceBrowserNode")
    assert scene.GetNodesByClass("vtkMRMLSequenceBrowserNode").GetNumberOfItems() == 1
    frames = run.sequence_nodes["frames"]
    assert browser.GetMasterSequenceNode() is frames and frames.GetNumberOfDataNodes() == FRAMES
    assert set(run.sequence_nodes) == {
        "frames",
        "heatmap",
        "boxes nodule 1",
        "boxes nodule 2",
        "boxes cyst 1",
        "scores",
    }
    for sequence_node in run.sequence_nodes.values():
        assert sequence_node.GetNumberOfDataNodes() == FRAMES
        assert browser.IsSynchronizedSequenceNode(sequence_node, True)
    assert browser.GetPlaybackRateFps() == pytest.approx(15.0)
    assert sorted(rois_by_name(run)) == ["cyst box", "nodule box 1", "nodule box 2"]

    # The frame geometry: as a 2D image in Slicer, column spacing along -R, row spacing along -A, origin 0.
    expected_matrix = np.diag([-COLUMN_MM, -ROW_MM, 1.0, 1.0])
    np.testing.assert_allclose(matrix_of(run.image_node), expected_matrix, atol=1e-12)
    np.testing.assert_allclose(matrix_of(run.heatmap_node), expected_matrix, atol=1e-12)

    browser.SetSelectedItemNumber(3)
    np.testing.assert_array_equal(slicer.util.arrayFromVolume(run.image_node)[0], sequence.frames[3])
    np.testing.assert_allclose(slicer.util.arrayFromVolume(run.heatmap_node)[0], findings.heatmap[3], atol=1e-7)
    rois = rois_by_name(run)
    best, second, cyst = findings.lesions[1], findings.lesions[2], findings.lesions[3]
    np.testing.assert_allclose(roi_center(rois["nodule box 1"]), expected_center_ras(best.box_px), atol=1e-9)
    np.testing.assert_allclose(rois["nodule box 1"].GetSize(), [9 * COLUMN_MM, 9 * ROW_MM, 1.0], atol=1e-9)
    np.testing.assert_allclose(roi_center(rois["nodule box 2"]), expected_center_ras(second.box_px), atol=1e-9)
    np.testing.assert_allclose(roi_center(rois["cyst box"]), expected_center_ras(cyst.box_px), atol=1e-9)
    assert rois["nodule box 1"].GetAttribute(LESION_ID_ATTRIBUTE) == "2"
    assert rois["nodule box 1"].GetAttribute(DESCRIPTION_ATTRIBUTE) == "score 0.90, area 12.3 mm²"
    assert rois["cyst box"].GetAttribute(DESCRIPTION_ATTRIBUTE) == lesion_description(cyst) == "score 0.70, kind simple"
    scores = run.frame_table_node.GetTable()
    assert [scores.GetValue(r, 0).ToString() for r in range(scores.GetNumberOfRows())] == ["nodule", "cyst"]
    np.testing.assert_allclose([scores.GetValue(r, 1).ToDouble() for r in range(2)], [0.3, 0.16])

    browser.SetSelectedItemNumber(1)  # one nodule box; the others are empty (an ROI without points is not drawn)
    np.testing.assert_array_equal(slicer.util.arrayFromVolume(run.image_node)[0], sequence.frames[1])
    np.testing.assert_allclose(roi_center(rois["nodule box 1"]), expected_center_ras(findings.lesions[0].box_px))
    assert rois["nodule box 1"].GetNumberOfControlPoints() == 1
    assert rois["nodule box 2"].GetNumberOfControlPoints() == 0 and rois["cyst box"].GetNumberOfControlPoints() == 0

    rois["nodule box 1"].SetCenter(99.0, 99.0, 0.0)  # an edit of a proxy is not saved into the findings
    browser.SetSelectedItemNumber(2)  # no lesion on this frame
    assert all(roi.GetNumberOfControlPoints() == 0 for roi in run.roi_nodes)
    browser.SetSelectedItemNumber(1)
    np.testing.assert_allclose(roi_center(rois["nodule box 1"]), expected_center_ras(findings.lesions[0].box_px))
    browser.SetSelectedItemNumber(2)
    np.testing.assert_allclose(slicer.util.arrayFromVolume(run.heatmap_node)[0], findings.heatmap[2], atol=1e-7)
    for proxy in [run.image_node, run.heatmap_node, *run.roi_nodes, run.frame_table_node]:
        assert proxy.GetAttribute(DETECTOR_ATTRIBUTE) == "toy-cine"  # items carry the tags proxies copy
    assert frames.GetNumberOfDataNodes() == FRAMES  # browsing never adds items (changes are not saved)
    assert not any(browser.GetSaveChanges(node) for node in run.sequence_nodes.values())


def test_cine_proxies_are_styled_and_the_tables_list_lesions_and_frame_scores(scene):
    sequence = toy_cine()
    findings = toy_findings(sequence)
    run = show_findings(scene, None, findings, columns=COLUMNS_DECLARED)
    display = run.heatmap_node.GetDisplayNode()
    assert display.GetColorNodeID() == "vtkMRMLPETProceduralColorNodePET-Heat" and display.GetApplyThreshold()
    roi_display = rois_by_name(run)["nodule box 1"].GetDisplayNode()
    assert not roi_display.GetHandlesInteractive() and rois_by_name(run)["nodule box 1"].GetLocked()
    assert roi_display.GetColor() != rois_by_name(run)["cyst box"].GetDisplayNode().GetColor()

    table_node = run.table_node
    names = [table_node.GetColumnName(c) for c in range(table_node.GetNumberOfColumns())]
    assert names[:5] == ["id", "label", "score", "area_mm2", "kind"]
    assert names[5:] == ["frame", "x0", "y0", "x1", "y1", "width", "height", "center R", "center A", "center S"]
    table = table_node.GetTable()
    assert table_node.GetNumberOfRows() == 4
    assert [table.GetColumnByName("frame").GetValue(r) for r in range(4)] == [1, 3, 3, 3]
    assert table.GetColumnByName("area_mm2").GetValue(1) == pytest.approx(12.3, abs=1e-12)
    assert table.GetColumnByName("width").GetValue(3) == pytest.approx(20 * COLUMN_MM)
    assert table.GetColumnByName("height").GetValue(3) == pytest.approx(10 * ROW_MM)
    assert table.GetColumnByName("center A").GetValue(1) == pytest.approx(expected_center_ras(blob_box(3))[1])

    score_table = run.score_table_node.GetTable()
    assert run.score_table_node.GetNumberOfRows() == FRAMES
    assert [score_table.GetColumnName(c) for c in range(score_table.GetNumberOfColumns())] == [
        "frame",
        "time",
        "nodule",
        "cyst",
    ]
    assert score_table.GetColumnByName("cyst").GetValue(4) == pytest.approx(0.21)
    assert score_table.GetColumnByName("time").GetValue(3) == pytest.approx(0.2)

    composite_nodes = [scene.AddNewNodeByClass("vtkMRMLSliceCompositeNode") for _ in range(2)]
    assert show_image_in_slice_views(scene, run.image_node) >= 2
    assert show_heatmap_in_slice_views(scene, run.heatmap_node) >= 2
    for composite_node in composite_nodes:
        assert composite_node.GetBackgroundVolumeID() == run.image_node.GetID()
        assert composite_node.GetForegroundVolumeID() == run.heatmap_node.GetID()


def test_rerun_replaces_only_the_run_nodes_and_remove_run_leaves_user_nodes(scene):
    sequence = toy_cine()
    get_sequences_logic(scene)  # the node classes are registered from here on
    user_roi = scene.AddNewNodeByClass("vtkMRMLMarkupsROINode", "nodule box 1")
    user_sequence = scene.AddNewNodeByClass("vtkMRMLSequenceNode", "cine frames")
    user_browser = scene.AddNewNodeByClass("vtkMRMLSequenceBrowserNode", "toy-cine findings – cine")
    user_nodes = [user_roi, user_sequence, user_browser]
    with_user_nodes = node_ids(scene)

    first = show_findings(scene, None, toy_findings(sequence))
    first_ids = node_ids(scene) - with_user_nodes
    assert {n.GetID() for n in first.nodes()} <= first_ids
    other = show_findings(scene, None, toy_findings(sequence, detector="other-cine"))
    count = scene.GetNumberOfNodes()

    second = show_findings(scene, None, toy_findings(sequence))
    assert scene.GetNumberOfNodes() == count
    assert all(scene.GetNodeByID(node_id) is None for node_id in first_ids)
    assert not first_ids & {n.GetID() for n in second.nodes()}
    for survivor in [*user_nodes, *other.nodes()]:
        assert scene.GetNodeByID(survivor.GetID()) is survivor
    assert user_roi.GetName() == "nodule box 1" and user_browser.GetAttribute(DETECTOR_ATTRIBUTE) is None
    for node in second.nodes():
        assert node.GetAttribute(INPUT_VOLUME_ATTRIBUTE) == "image:cine"  # no input node: keyed by the image name

    assert remove_run(scene, "image:cine", "toy-cine") == len(second.nodes())
    assert remove_run(scene, "image:cine", "other-cine") == len(other.nodes())
    assert node_ids(scene) == with_user_nodes  # not a display or storage node left
    hierarchy = slicer.vtkMRMLSubjectHierarchyNode.GetSubjectHierarchyNode(scene)
    assert not hierarchy.GetItemName(second.folder_item_id)


def test_the_users_own_cine_is_reused_not_copied_nor_changed(scene):
    sequence = toy_cine()
    user_frames, user_browser, user_proxy = user_cine_browser(scene, sequence)
    before = node_ids(scene)
    findings = toy_findings(sequence)
    run = show_findings(scene, user_browser, findings)

    assert run.sequence_nodes["frames"] is user_frames and run.browser_node is not user_browser
    assert run.browser_node.GetMasterSequenceNode() is user_frames
    assert scene.GetNodesByClass("vtkMRMLSequenceNode").GetNumberOfItems() == 1 + 5  # heatmap, 3 box slots, scores
    assert user_frames.GetAttribute(DETECTOR_ATTRIBUTE) is None and user_frames not in run.nodes()
    assert run.sequence_nodes["heatmap"].GetNthIndexValue(3) == user_frames.GetNthIndexValue(3)
    # The boxes sit on the user's frames, in their geometry (0.5 mm pixels, i along -R from the origin).
    run.browser_node.SetSelectedItemNumber(3)
    np.testing.assert_array_equal(slicer.util.arrayFromVolume(run.image_node)[0], sequence.frames[3])
    x0, y0, x1, y1 = findings.lesions[1].box_px
    ijk = np.array([(x0 + x1) / 2 - 0.5, (y0 + y1) / 2 - 0.5, 0.0])
    expected = matrix_of(user_frames.GetNthDataNode(0))[:3, :3] @ ijk + (10.0, -20.0, 5.0)
    np.testing.assert_allclose(roi_center(rois_by_name(run)["nodule box 1"]), expected, atol=1e-9)
    assert user_browser.GetSelectedItemNumber() == 0  # the user's browser did not move
    np.testing.assert_array_equal(slicer.util.arrayFromVolume(user_proxy)[0], sequence.frames[0])

    # Its proxy volume as input names the same run; removing it leaves every user node as it was.
    again = show_findings(scene, user_proxy, findings)
    assert again.sequence_nodes["frames"] is user_frames
    assert remove_run(scene, user_browser, "toy-cine") > 0
    assert remove_run(scene, user_proxy, "toy-cine") > 0
    assert node_ids(scene) == before
    assert user_frames.GetNumberOfDataNodes() == FRAMES and user_browser.GetMasterSequenceNode() is user_frames


def test_mismatched_input_or_heatmap_is_refused_before_anything_changes(scene):
    sequence = toy_cine()
    _, short_browser, _ = user_cine_browser(scene, toy_cine(frames=4))
    count = scene.GetNumberOfNodes()
    with pytest.raises(LesionDetectError, match="5 frames"):
        show_findings(scene, short_browser, toy_findings(sequence))
    findings = toy_findings(sequence)
    findings.heatmap = findings.heatmap[:, :-1]
    with pytest.raises(LesionDetectError, match="heatmap"):
        show_findings(scene, None, findings)
    findings = toy_findings(sequence)
    findings.lesions[0].frame = 7
    with pytest.raises(LesionDetectError, match="lesion 1"):
        show_findings(scene, None, findings)
    assert scene.GetNumberOfNodes() == count


def test_a_single_2d_image_is_a_plain_volume_with_rois_and_heatmap(scene):
    image = toy_cine(frames=1, name="chest x-ray")
    lesion = Lesion.on_frame(image, 1, "nodule", 0, blob_box(0), score=0.6)
    heatmap = np.zeros((1, ROWS, COLUMNS), dtype=np.uint8)
    heatmap[0, 10:20, 5:15] = 80  # percent
    findings = Findings("toy-xray", "test", image, [lesion], {}, heatmap=heatmap)
    run = show_findings(scene, None, findings)

    assert run.browser_node is None
    assert scene.GetNodesByClass("vtkMRMLSequenceBrowserNode").GetNumberOfItems() == 0
    assert run.image_node.GetName() == "chest x-ray" and run.image_node.GetAttribute("DICOM.Modality") == "XA"
    np.testing.assert_array_equal(slicer.util.arrayFromVolume(run.image_node), image.frames)
    np.testing.assert_allclose(matrix_of(run.image_node), np.diag([-COLUMN_MM, -ROW_MM, 1.0, 1.0]), atol=1e-12)
    np.testing.assert_allclose(matrix_of(run.heatmap_node), matrix_of(run.image_node), atol=1e-12)
    np.testing.assert_allclose(slicer.util.arrayFromVolume(run.heatmap_node), heatmap / 100.0, atol=1e-6)
    (roi,) = run.roi_nodes
    np.testing.assert_allclose(roi_center(roi), expected_center_ras(lesion.box_px), atol=1e-9)
    np.testing.assert_allclose(roi.GetSize(), [9 * COLUMN_MM, 9 * ROW_MM, 1.0], atol=1e-9)
    assert roi.GetDescription() == "score 0.60" and roi.GetLocked()
    for node in run.nodes():
        assert node.GetAttribute(DETECTOR_ATTRIBUTE) == "toy-xray"

    count = scene.GetNumberOfNodes()
    rerun = show_findings(scene, None, findings)
    assert scene.GetNumberOfNodes() == count and rerun.image_node is not run.image_node
    assert scene.GetNodeByID(run.image_node.GetID()) is None


def test_a_users_2d_volume_is_used_as_the_image_and_survives_remove_run(scene):
    image = toy_cine(frames=1, spacing=None, name="photo")
    user_node = scene.AddNewNodeByClass("vtkMRMLScalarVolumeNode", "my photo")
    user_node.SetSpacing(0.2, 0.2, 1.0)
    user_node.SetOrigin(-5.0, 3.0, 0.0)
    slicer.util.updateVolumeFromArray(user_node, image.frames)
    before = node_ids(scene)
    lesion = Lesion.on_frame(image, 1, "spot", 0, [10, 20, 14, 30])
    assert lesion.size_mm is None  # no pixel spacing known
    run = show_findings(scene, user_node, Findings("toy-xray", "test", image, [lesion], {}))
    assert run.image_node is user_node and user_node not in run.nodes()
    ijk = np.array([11.5, 24.5, 0.0])
    np.testing.assert_allclose(roi_center(run.roi_nodes[0]), matrix_of(user_node)[:3, :3] @ ijk + (-5.0, 3.0, 0.0))
    names = [run.table_node.GetColumnName(c) for c in range(run.table_node.GetNumberOfColumns())]
    assert "width" not in names and "x0" in names
    with pytest.raises(LesionDetectError, match="dimensions"):
        show_findings(scene, user_node, Findings("toy-xray", "test", ImageSequence(np.zeros((1, 32, 32))), [], {}))
    assert remove_run(scene, user_node, "toy-xray") == len(run.nodes())
    assert node_ids(scene) == before and user_node.GetAttribute(DETECTOR_ATTRIBUTE) is None


def test_frames_read_back_from_a_browser_a_sequence_or_a_proxy(scene):
    sequence = toy_cine()
    frames, browser, proxy = user_cine_browser(scene, sequence, spacing=0.5)
    for node in (browser, frames, proxy):
        read = image_sequence_from_node(node)
        np.testing.assert_array_equal(read.frames, sequence.frames)
        assert read.pixel_spacing_mm == (0.5, 0.5) and read.name == "my cine"
        np.testing.assert_allclose(read.frame_times_s, np.arange(FRAMES) / 15.0, atol=1e-4)
    run = show_findings(scene, None, toy_findings(sequence))
    read = image_sequence_from_node(run.browser_node)
    np.testing.assert_array_equal(read.frames, sequence.frames)
    assert read.pixel_spacing_mm == pytest.approx((ROW_MM, COLUMN_MM)) and read.frame_times_s is None
    single = scene.AddNewNodeByClass("vtkMRMLScalarVolumeNode", "one")
    slicer.util.updateVolumeFromArray(single, sequence.frames[2:3])
    np.testing.assert_array_equal(image_sequence_from_node(single).frames, sequence.frames[2:3])
    with pytest.raises(LesionDetectError, match="not an image sequence"):
        image_sequence_from_node(scene.AddNewNodeByClass("vtkMRMLTableNode", "a table"))


def test_one_sequences_logic_per_scene(mrml_scene):
    assert get_sequences_logic(mrml_scene) is get_sequences_logic(mrml_scene)
    mine = slicer.vtkSlicerSequencesLogic()
    assert get_sequences_logic(mrml_scene, mine) is mine
