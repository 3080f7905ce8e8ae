"""Findings on an image sequence (a cine) or a single 2D image → nodes that play in Slicer.

A cine becomes Slicer sequences, all synchronised by one `vtkMRMLSequenceBrowserNode`:

- "frames": one single-slice scalar volume per frame, or the user's own sequence when the input node is
  a sequence, a sequence browser or a browser's proxy volume holding these frames (reused, never changed);
- "heatmap": one overlay volume per frame (heat colours, transparent under the threshold);
- "boxes …": per-frame ROI nodes, one sequence per box slot (a label's 1st, 2nd … box on a frame): a
  frame where the slot is empty holds an ROI without control points, which Slicer does not draw;
- "scores": a table per frame (label, score) from the findings' per-frame score tables.

The browser's proxy nodes are what views and tables show; selecting an item (`SetSelectedItemNumber`)
moves all of them. A run also gets a static lesion table and a table of scores per frame.
A single 2D image is shown as a plain single-slice volume with ROIs and a heatmap, without a browser.

Frame geometry (as SimpleITK and Slicer place a 2D image): IJK→RAS = diag(−1, −1, 1) · diag(column
spacing, row spacing, 1), origin 0; 1 mm pixels when the spacing is unknown. A reused node keeps its own.
"""

from __future__ import annotations

import numpy as np
import slicer
import slicer.util
import vtk

from LesionDetectLib.detection.findings import Findings, Lesion
from LesionDetectLib.errors import LesionDetectError
from LesionDetectLib.io.image_sequence import ImageSequence, frame_box_ras
from LesionDetectLib.results.lesion_text import detector_columns, lesion_description
from LesionDetectLib.scene.heatmap import add_heatmap_node, heatmap_volume, style_heatmap
from LesionDetectLib.scene.inputs import ijk_to_world_matrix
from LesionDetectLib.scene.plots import add_score_plot
from LesionDetectLib.scene.rois import add_frame_roi, frame_roi_item, style_roi
from LesionDetectLib.scene.run_nodes import (
    MODALITY_ATTRIBUTE,
    RunNodes,
    adopt,
    create_run_folder,
    input_key,
    is_run_node,
    remove_run,
    tag,
)
from LesionDetectLib.scene.tables import (
    add_lesion_table,
    add_probability_table,
    add_score_table,
    frame_score_tables,
    frame_scores_item,
)

FRAME_INDEX_NAME = "frame"

_own_sequences_logics: list = []  # (scene, logic) made here where the application has no Sequences module


def get_sequences_logic(scene, logic=None):
    """The Sequences module logic that updates proxy nodes: `logic` if given, Slicer's own, or one made
    here for this scene (slicer-core registers none) and kept for the life of the process."""
    if logic is not None:
        return logic
    module = getattr(getattr(slicer, "modules", None), "sequences", None)
    if module is not None:
        return module.logic()
    for known_scene, known_logic in _own_sequences_logics:
        if known_scene is scene:
            return known_logic
    logic = slicer.vtkSlicerSequencesLogic()
    logic.SetMRMLScene(scene)  # registers the sequence node classes and observes browser nodes
    _own_sequences_logics.append((scene, logic))
    return logic


def show_sequence_findings(scene, input_node, findings: Findings, columns=None, sequences_logic=None) -> RunNodes:
    """Replace the previous run of `findings.detector` on this input with the findings on its frames.

    `input_node` is the node the frames came from (a sequence browser, a sequence, a proxy or 2D volume),
    or None: then the run is keyed by the image name and builds its own image nodes.
    """
    sequence = findings.image
    if not isinstance(sequence, ImageSequence):
        raise LesionDetectError("The sequence presenter shows findings on an image sequence or a 2D image.")
    columns = detector_columns(findings.detector) if columns is None else tuple(columns)
    _check_findings(findings, sequence)
    key = input_key(input_node) if input_node is not None else f"image:{sequence.name}"
    if sequence.is_single_image:
        image_node = _matching_image_node(input_node, sequence)  # refuses a mismatch before any change
        remove_run(scene, key, findings.detector)
        return _show_single_image(scene, input_node, image_node, key, findings, columns)
    logic = get_sequences_logic(scene, sequences_logic)
    frames_sequence = _reusable_frames(input_node, sequence, logic)  # refuses a mismatch before any change
    remove_run(scene, key, findings.detector)
    return _show_cine(scene, input_node, frames_sequence, key, findings, columns, logic)


def image_sequence_from_node(node, logic=None) -> ImageSequence:
    """Frames (frame, row, column) of a sequence browser, a sequence of volumes, a browser's proxy volume,
    or a single-slice volume (one frame); pixel spacing from the first frame's geometry."""
    if node is None:
        raise LesionDetectError("Select an image sequence or a 2D image as input.")
    frames_sequence = None
    if node.IsA("vtkMRMLSequenceBrowserNode"):
        frames_sequence = node.GetMasterSequenceNode()
    elif node.IsA("vtkMRMLSequenceNode"):
        frames_sequence = node
    elif node.IsA("vtkMRMLVolumeNode") and node.GetScene() is not None:
        browser = get_sequences_logic(node.GetScene(), logic).GetFirstBrowserNodeForProxyNode(node)
        frames_sequence = browser.GetSequenceNode(node) if browser is not None else None
    if frames_sequence is not None:
        volumes = [frames_sequence.GetNthDataNode(n) for n in range(frames_sequence.GetNumberOfDataNodes())]
        if not volumes or not all(v is not None and v.IsA("vtkMRMLScalarVolumeNode") for v in volumes):
            raise LesionDetectError(f"'{frames_sequence.GetName()}' is not a sequence of scalar images.")
        frames = [_single_slice(v) for v in volumes]
        first, name = volumes[0], frames_sequence.GetName()
    elif node.IsA("vtkMRMLScalarVolumeNode") and node.GetImageData() is not None:
        frames, first, name = [_single_slice(node)], node, node.GetName()
    else:
        raise LesionDetectError(f"'{node.GetName()}' is not an image sequence or a 2D image.")
    if len({frame.shape for frame in frames}) != 1:
        raise LesionDetectError(f"The frames of '{name}' differ in size.")
    spacing = first.GetSpacing()
    times = None
    if frames_sequence is not None and frames_sequence.GetIndexUnit() == "s":
        try:
            times = np.array([float(frames_sequence.GetNthIndexValue(n)) for n in range(len(frames))])
            times -= times[0]
        except ValueError:
            times = None
    modality = first.GetAttribute(MODALITY_ATTRIBUTE) or node.GetAttribute(MODALITY_ATTRIBUTE) or None
    return ImageSequence(np.stack(frames), name, modality, times, (float(spacing[1]), float(spacing[0])))


def _single_slice(volume_node) -> np.ndarray:
    array = slicer.util.arrayFromVolume(volume_node)
    if array.ndim != 3 or array.shape[0] != 1:
        raise LesionDetectError(f"'{volume_node.GetName()}' is not a 2D image (array shape {array.shape}).")
    return np.array(array[0])


def _check_findings(findings: Findings, sequence: ImageSequence) -> None:
    if findings.heatmap is not None and np.shape(findings.heatmap) != sequence.frames.shape:
        raise LesionDetectError(
            f"The {findings.detector} heatmap has shape {np.shape(findings.heatmap)} but the frames have "
            f"{sequence.frames.shape}; the detector must return one heatmap per frame on the frame grid."
        )
    for lesion in findings.lesions:
        if lesion.box_px is None or lesion.frame is None or not 0 <= lesion.frame < sequence.frame_count:
            raise LesionDetectError(
                f"{findings.detector} lesion {lesion.id} has no pixel box on a frame of '{sequence.name}'."
            )


def _matching_image_node(input_node, sequence: ImageSequence):
    """The input volume itself when it holds this 2D image, None when the input is not a volume."""
    if input_node is None or not input_node.IsA("vtkMRMLScalarVolumeNode"):
        return None
    rows, columns = sequence.frame_shape
    image_data = input_node.GetImageData()
    dimensions = image_data.GetDimensions() if image_data is not None else None
    if dimensions != (columns, rows, 1):
        raise LesionDetectError(
            f"The findings are on a {columns}×{rows} image but '{input_node.GetName()}' has dimensions {dimensions}."
        )
    return input_node


def _reusable_frames(input_node, sequence: ImageSequence, logic):
    """The user's sequence of these frames behind the input node, or None when the frames must be built."""
    if input_node is None or is_run_node(input_node):
        return None
    if input_node.IsA("vtkMRMLSequenceBrowserNode"):
        frames_sequence = input_node.GetMasterSequenceNode()
    elif input_node.IsA("vtkMRMLSequenceNode"):
        frames_sequence = input_node
    elif input_node.IsA("vtkMRMLVolumeNode"):
        browser = logic.GetFirstBrowserNodeForProxyNode(input_node)
        if browser is None or is_run_node(browser):
            return None
        frames_sequence = browser.GetSequenceNode(input_node)
    else:
        return None
    if frames_sequence is None or is_run_node(frames_sequence):
        return None
    rows, columns = sequence.frame_shape
    first = frames_sequence.GetNthDataNode(0) if frames_sequence.GetNumberOfDataNodes() else None
    dimensions = first.GetImageData().GetDimensions() if first is not None and first.IsA("vtkMRMLVolumeNode") else None
    if frames_sequence.GetNumberOfDataNodes() != sequence.frame_count or dimensions != (columns, rows, 1):
        raise LesionDetectError(
            f"The findings are on {sequence.frame_count} frames of {columns}×{rows} pixels but "
            f"'{frames_sequence.GetName()}' holds {frames_sequence.GetNumberOfDataNodes()} items of {dimensions}."
        )
    return frames_sequence


def _show_single_image(scene, input_node, image_node, key: str, findings: Findings, columns) -> RunNodes:
    sequence, detector = findings.image, findings.detector
    folder_item_id = create_run_folder(
        scene, input_node, key, detector, _input_name(input_node, sequence), findings.summary
    )
    run = RunNodes(folder_item_id)
    if image_node is None:
        ijk_to_ras = sequence.frame_ijk_to_ras()
        image_node = scene.AddNewNodeByClass("vtkMRMLScalarVolumeNode", sequence.name)
        image_node.SetIJKToRASMatrix(slicer.util.vtkMatrixFromArray(ijk_to_ras))
        slicer.util.updateVolumeFromArray(image_node, sequence.frames[:1])
        image_node.CreateDefaultDisplayNodes()
        if sequence.modality:
            image_node.SetAttribute(MODALITY_ATTRIBUTE, sequence.modality)
    else:
        ijk_to_ras = ijk_to_world_matrix(image_node)
        run.reused_nodes.append(image_node)
    run.image_node = image_node
    run.roi_nodes = [add_frame_roi(scene, lesion, ijk_to_ras, detector) for lesion in findings.lesions]
    for roi_node, lesion in zip(run.roi_nodes, findings.lesions):  # after sizing: resizing clears descriptions
        roi_node.SetDescription(lesion_description(lesion, columns))
    run.table_node = add_lesion_table(scene, findings, columns, _location_columns(findings.lesions, ijk_to_ras))
    score_tables = frame_score_tables(findings, 1)
    if score_tables:
        run.score_table_node = add_score_table(scene, findings, score_tables)
    if findings.probabilities:
        run.probability_table_node = add_probability_table(scene, findings)
    if findings.heatmap is not None:
        run.heatmap_node = add_heatmap_node(scene, f"{detector} heatmap", np.asarray(findings.heatmap), ijk_to_ras)
    adopt(scene, run.nodes(), folder_item_id, detector, key)
    return run


def _show_cine(scene, input_node, frames_sequence, key: str, findings: Findings, columns, logic) -> RunNodes:
    sequence, detector = findings.image, findings.detector
    name = _input_name(input_node, sequence)
    folder_item_id = create_run_folder(scene, input_node, key, detector, name, findings.summary)
    run = RunNodes(folder_item_id)

    def new_sequence(role: str, node_name: str, items):
        """A tagged sequence with one item per frame, indexed like the frames."""
        sequence_node = scene.AddNewNodeByClass("vtkMRMLSequenceNode", node_name)
        sequence_node.SetIndexName(index_name)
        sequence_node.SetIndexUnit(index_unit)
        sequence_node.SetIndexType(index_type)
        for index_value, item in zip(index_values, items):
            tag(item, detector, key)  # a proxy takes its item's attributes, so items carry the run tags
            sequence_node.SetDataNodeAtValue(item, index_value)
        run.sequence_nodes[role] = sequence_node
        return sequence_node

    if frames_sequence is None:  # build the frames
        ijk_to_ras = sequence.frame_ijk_to_ras()
        index_name, index_unit, index_type = FRAME_INDEX_NAME, "", slicer.vtkMRMLSequenceNode.NumericIndex
        index_values = [str(frame) for frame in range(sequence.frame_count)]
        frames_sequence = new_sequence("frames", f"{sequence.name} frames", _frame_items(sequence, ijk_to_ras))
    else:  # the user's sequence: indexed its way, geometry its own
        run.sequence_nodes["frames"] = frames_sequence
        run.reused_nodes.append(frames_sequence)
        first = frames_sequence.GetNthDataNode(0)
        matrix = vtk.vtkMatrix4x4()
        first.GetIJKToRASMatrix(matrix)
        ijk_to_ras = slicer.util.arrayFromVTKMatrix(matrix)
        index_name, index_unit = frames_sequence.GetIndexName(), frames_sequence.GetIndexUnit()
        index_type = frames_sequence.GetIndexType()
        index_values = [frames_sequence.GetNthIndexValue(n) for n in range(frames_sequence.GetNumberOfDataNodes())]

    browser = scene.AddNewNodeByClass("vtkMRMLSequenceBrowserNode", f"{detector} findings – {name}")
    run.browser_node = browser
    if sequence.frame_rate_hz:
        browser.SetPlaybackRateFps(sequence.frame_rate_hz)
    browser.SetPlaybackLooped(True)

    def synchronise(sequence_node, proxy_name: str):
        """Add the sequence to the browser; the Sequences logic makes its proxy node, which is returned.

        Settings change inside one modification of the browser so that the proxy is made once, from an
        item, with changes not saved back (findings are read-only) and with the name given here."""
        modifying = browser.StartModify()
        browser.AddSynchronizedSequenceNodeID(sequence_node.GetID())
        browser.SetSaveChanges(sequence_node, False)
        browser.SetOverwriteProxyName(sequence_node, False)
        browser.EndModify(modifying)
        if browser.GetProxyNode(sequence_node) is None:  # a logic that does not observe this browser yet
            logic.UpdateProxyNodesFromSequences(browser)
        proxy = browser.GetProxyNode(sequence_node)
        if proxy is None:
            raise LesionDetectError(f"The Sequences module made no proxy node for '{sequence_node.GetName()}'.")
        proxy.SetName(proxy_name)
        if proxy.IsA("vtkMRMLDisplayableNode") and proxy.GetDisplayNode() is None:
            proxy.CreateDefaultDisplayNodes()
        return proxy

    # The frames proxy of a reused sequence is this browser's own, beside the user's browser's proxy.
    reused = bool(run.reused_nodes)
    run.image_node = synchronise(frames_sequence, f"{name} ({detector})" if reused else sequence.name)

    if findings.heatmap is not None:
        heatmap = np.asarray(findings.heatmap)
        items = [heatmap_volume(heatmap[frame : frame + 1], ijk_to_ras) for frame in range(sequence.frame_count)]
        heatmap_sequence = new_sequence("heatmap", f"{detector} heatmap frames", items)
        run.heatmap_node = synchronise(heatmap_sequence, f"{detector} heatmap")
        style_heatmap(scene, run.heatmap_node)

    for label, slots in _box_slots(findings.lesions, sequence.frame_count).items():
        for slot, slot_lesions in enumerate(slots):
            title = f"{label} box" if len(slots) == 1 else f"{label} box {slot + 1}"
            items = [
                frame_roi_item(lesion, ijk_to_ras, "" if lesion is None else lesion_description(lesion, columns))
                for lesion in slot_lesions
            ]
            roi_sequence = new_sequence(f"boxes {label} {slot + 1}", f"{title} frames", items)
            proxy = synchronise(roi_sequence, title)
            style_roi(proxy, label, detector)
            run.roi_nodes.append(proxy)

    score_tables = frame_score_tables(findings, sequence.frame_count)
    if score_tables:
        items = [frame_scores_item(score_tables, frame, f"{detector} scores") for frame in range(sequence.frame_count)]
        scores_sequence = new_sequence("scores", f"{detector} scores frames", items)
        run.frame_table_node = synchronise(scores_sequence, f"{detector} scores (selected frame)")
        run.score_table_node = add_score_table(scene, findings, score_tables, sequence.frame_times_s)
        run.plot_chart_node, run.plot_series_nodes = add_score_plot(scene, findings, run.score_table_node, score_tables)
    if findings.probabilities:
        run.probability_table_node = add_probability_table(scene, findings)

    run.table_node = add_lesion_table(scene, findings, columns, _location_columns(findings.lesions, ijk_to_ras))
    browser.SetSelectedItemNumber(0)
    logic.UpdateProxyNodesFromSequences(browser)  # the proxies show frame 0 now
    adopt(scene, run.nodes(), folder_item_id, detector, key)
    return run


def _frame_items(sequence: ImageSequence, ijk_to_ras: np.ndarray) -> list:
    items = []
    for frame in range(sequence.frame_count):
        node = slicer.vtkMRMLScalarVolumeNode()
        node.SetIJKToRASMatrix(slicer.util.vtkMatrixFromArray(ijk_to_ras))
        slicer.util.updateVolumeFromArray(node, np.ascontiguousarray(sequence.frames[frame : frame + 1]))
        if sequence.modality:
            node.SetAttribute(MODALITY_ATTRIBUTE, sequence.modality)
        items.append(node)
    return items


def _box_slots(lesions: list[Lesion], frame_count: int) -> dict[str, list[list]]:
    """label → slots, each a lesion or None per frame: a label's boxes on a frame fill its slots best score first."""
    by_label: dict[str, list[list[Lesion]]] = {}
    for lesion in lesions:
        by_label.setdefault(lesion.label, [[] for _ in range(frame_count)])[lesion.frame].append(lesion)
    slots = {}
    for label, per_frame in by_label.items():
        for frame_lesions in per_frame:
            frame_lesions.sort(key=lambda lesion: (lesion.score is None, -(lesion.score or 0.0), lesion.id))
        slot_count = max(len(frame_lesions) for frame_lesions in per_frame)
        slots[label] = [[fl[slot] if slot < len(fl) else None for fl in per_frame] for slot in range(slot_count)]
    return slots


def _location_columns(lesions: list[Lesion], ijk_to_ras: np.ndarray) -> list[tuple[str, str, list]]:
    """frame, the pixel box, its size in mm (when the spacing is known) and its centre in RAS."""
    boxes = [np.asarray(lesion.box_px, dtype=float) for lesion in lesions]
    centers = [frame_box_ras(box, ijk_to_ras)[0] for box in boxes]
    columns = [("frame", "", [lesion.frame for lesion in lesions])]
    columns += [(name, "px", [float(box[n]) for box in boxes]) for n, name in enumerate(("x0", "y0", "x1", "y1"))]
    if lesions and all(lesion.size_mm is not None for lesion in lesions):
        columns += [
            (name, "mm", [float(lesion.size_mm[n]) for lesion in lesions]) for n, name in enumerate(("width", "height"))
        ]
    columns += [(f"center {axis}", "mm", [float(center[n]) for center in centers]) for n, axis in enumerate("RAS")]
    return columns


def _input_name(input_node, sequence: ImageSequence) -> str:
    return input_node.GetName() if input_node is not None and input_node.GetName() else sequence.name


__all__ = [
    "image_sequence_from_node",
    "get_sequences_logic",
    "show_sequence_findings",
]
