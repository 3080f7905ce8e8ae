"""One run's nodes: their tags, their subject-hierarchy folder, and removing exactly them on a rerun.

Every node a run creates carries the attributes `LesionDetect.Detector` and `LesionDetect.InputVolumeID`
(the input node's ID, whatever kind of node it is); a rerun removes exactly those nodes (and the proxy
nodes of the run's sequence browsers) and never a node the user made, whatever its name or folder.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

import numpy as np
import slicer
import vtk

from LesionDetectLib.errors import LesionDetectError

DETECTOR_ATTRIBUTE = "LesionDetect.Detector"
INPUT_VOLUME_ATTRIBUTE = "LesionDetect.InputVolumeID"  # the input node's ID (a volume, sequence or browser)
INPUT_NODE_ATTRIBUTE = INPUT_VOLUME_ATTRIBUTE
LESION_ID_ATTRIBUTE = "LesionDetect.LesionID"
DESCRIPTION_ATTRIBUTE = "LesionDetect.Description"  # per-frame ROI text (sequence items keep attributes)
SUMMARY_ATTRIBUTE = "LesionDetect.Summary"
MODALITY_ATTRIBUTE = "DICOM.Modality"


@dataclass
class RunNodes:
    """The nodes one `show_findings` call created (proxy nodes for a sequence, the nodes themselves otherwise)."""

    folder_item_id: int
    roi_nodes: list = field(default_factory=list)
    table_node: object = None  # one row per lesion
    model_nodes: list = field(default_factory=list)
    heatmap_node: object = None  # for a sequence: the heatmap proxy, which follows the browser
    image_node: object = None  # sequences / 2D images: the frame shown (a proxy, a created volume or the input)
    browser_node: object = None  # sequences: the browser that moves every proxy
    score_table_node: object = None  # one row per frame or slice, one column per score label
    probability_table_node: object = None  # scan- or clip-level probabilities, one row per label
    plot_chart_node: object = None  # the score table's columns against slice or frame
    plot_series_nodes: list = field(default_factory=list)
    frame_table_node: object = None  # sequences: the proxy table of the selected frame's scores
    sequence_nodes: dict = field(default_factory=dict)  # role ("frames", "heatmap", "scores", "boxes …") → node
    reused_nodes: list = field(default_factory=list)  # the user's nodes shown as they are (never tagged)

    def nodes(self) -> list:
        """Every node the run made (proxies included, reused user nodes not), without duplicates, in order."""
        listed = [
            self.browser_node,
            *self.sequence_nodes.values(),
            self.image_node,
            *self.roi_nodes,
            self.table_node,
            self.score_table_node,
            self.probability_table_node,
            self.plot_chart_node,
            *self.plot_series_nodes,
            self.frame_table_node,
            *self.model_nodes,
            self.heatmap_node,
        ]
        unique = []
        for node in listed:
            if node is None or any(node is reused for reused in self.reused_nodes):
                continue
            if all(node is not seen for seen in unique):
                unique.append(node)
        return unique


def input_key(input_node) -> str:
    """What run nodes record as their input: the node's ID (or a key given as text)."""
    if isinstance(input_node, str):
        return input_node
    if input_node is None or not input_node.GetID():
        raise LesionDetectError("The input node is not in the scene.")
    return input_node.GetID()


def subject_hierarchy(scene):
    hierarchy = slicer.vtkMRMLSubjectHierarchyNode.GetSubjectHierarchyNode(scene)
    if hierarchy is None:
        raise LesionDetectError("The scene has no subject hierarchy; the Subject Hierarchy module is not loaded.")
    return hierarchy


def create_run_folder(scene, input_node, key: str, detector_id: str, input_name: str, summary: dict) -> int:
    """A tagged folder beside the input node's item (or at the top), holding the summary as JSON."""
    hierarchy = subject_hierarchy(scene)
    input_item_id = hierarchy.GetItemByDataNode(input_node) if input_node is not None else 0
    parent_item_id = hierarchy.GetItemParent(input_item_id) if input_item_id else hierarchy.GetSceneItemID()
    folder_item_id = hierarchy.CreateFolderItem(parent_item_id, f"{detector_id.capitalize()} findings – {input_name}")
    hierarchy.SetItemAttribute(folder_item_id, DETECTOR_ATTRIBUTE, detector_id)
    hierarchy.SetItemAttribute(folder_item_id, INPUT_VOLUME_ATTRIBUTE, key)
    hierarchy.SetItemAttribute(folder_item_id, SUMMARY_ATTRIBUTE, json.dumps(summary, default=_json_value))
    return folder_item_id


def tag(node, detector_id: str, key: str) -> None:
    """Mark a node (or a sequence item) as a member of the run of `detector_id` on input `key`."""
    node.SetAttribute(DETECTOR_ATTRIBUTE, detector_id)
    node.SetAttribute(INPUT_VOLUME_ATTRIBUTE, key)


def adopt(scene, nodes, folder_item_id: int, detector_id: str, key: str) -> None:
    """Tag the nodes and move them into the run folder."""
    hierarchy = subject_hierarchy(scene)
    for node in nodes:
        tag(node, detector_id, key)
        _place_in_folder(hierarchy, node, folder_item_id)


def remove_run(scene, input_node, detector_id: str) -> int:
    """Remove the nodes a previous run of `detector_id` made for this input; return how many were removed.

    `input_node` is the input node (volume, sequence, browser) or its ID.
    """
    key = input_key(input_node)
    members = run_members(scene, key, detector_id)
    hierarchy = subject_hierarchy(scene)
    folder_item_ids = _run_folder_item_ids(hierarchy, key, detector_id)
    # Browsers first: a browser whose sequences disappear would otherwise rebuild its proxies.
    members.sort(key=lambda node: not node.IsA("vtkMRMLSequenceBrowserNode"))
    for node in members:
        if scene.IsNodePresent(node):
            _remove_with_helper_nodes(scene, node)
    for folder_item_id in folder_item_ids:
        if hierarchy.GetNumberOfItemChildren(folder_item_id) == 0:
            hierarchy.RemoveItem(folder_item_id)
    return len(members)


def run_members(scene, key: str, detector_id: str) -> list:
    """Tagged nodes of the run, and the proxy nodes of its browsers (a proxy copies its item's tags,
    and a proxy of a reused user sequence has none), in scene order."""
    members = tagged_nodes(scene, key, detector_id)
    for browser in [node for node in members if node.IsA("vtkMRMLSequenceBrowserNode")]:
        proxies = vtk.vtkCollection()
        browser.GetAllProxyNodes(proxies)
        for index in range(proxies.GetNumberOfItems()):
            proxy = proxies.GetItemAsObject(index)
            if all(proxy is not member for member in members):
                members.append(proxy)
    return members


def tagged_nodes(scene, key: str, detector_id: str) -> list:
    nodes = scene.GetNodes()
    members = []
    for index in range(nodes.GetNumberOfItems()):
        node = nodes.GetItemAsObject(index)
        if _is_run_member(node.GetAttribute, key, detector_id):
            members.append(node)
    return members


def is_run_node(node) -> bool:
    """Whether any LesionDetect run made this node."""
    return bool(node.GetAttribute(DETECTOR_ATTRIBUTE))


def _place_in_folder(hierarchy, node, folder_item_id: int) -> None:
    """Move the node's item into the folder; create the item where nothing added it (no Slicer GUI)."""
    item_id = hierarchy.GetItemByDataNode(node)
    if item_id:
        hierarchy.SetItemParent(item_id, folder_item_id)
    else:
        hierarchy.CreateItem(folder_item_id, node)


def _is_run_member(get_attribute, key: str, detector_id: str) -> bool:
    return get_attribute(DETECTOR_ATTRIBUTE) == detector_id and get_attribute(INPUT_VOLUME_ATTRIBUTE) == key


def _remove_with_helper_nodes(scene, node) -> None:
    """Remove a node, its subject-hierarchy item, and the display and storage nodes it owns."""
    helper_nodes = []
    if node.IsA("vtkMRMLDisplayableNode"):
        helper_nodes += [node.GetNthDisplayNode(n) for n in range(node.GetNumberOfDisplayNodes())]
    if node.IsA("vtkMRMLStorableNode"):
        helper_nodes += [node.GetNthStorageNode(n) for n in range(node.GetNumberOfStorageNodes())]
    hierarchy = slicer.vtkMRMLSubjectHierarchyNode.GetSubjectHierarchyNode(scene)
    item_id = hierarchy.GetItemByDataNode(node) if hierarchy else 0
    if item_id:  # not every scene drops the item of a removed node itself
        hierarchy.RemoveItem(item_id, False, False)
    scene.RemoveNode(node)
    for helper_node in helper_nodes:
        if helper_node is not None and scene.IsNodePresent(helper_node):
            scene.RemoveNode(helper_node)


def _run_folder_item_ids(hierarchy, key: str, detector_id: str) -> list[int]:
    item_ids = vtk.vtkIdList()
    hierarchy.GetItemChildren(hierarchy.GetSceneItemID(), item_ids, True)
    folder_item_ids = []
    for index in range(item_ids.GetNumberOfIds()):
        item_id = item_ids.GetId(index)
        if hierarchy.GetItemDataNode(item_id) is None and _is_run_member(
            lambda name, item_id=item_id: hierarchy.GetItemAttribute(item_id, name), key, detector_id
        ):
            folder_item_ids.append(item_id)
    return folder_item_ids


def _json_value(value):
    """numpy scalars and arrays in the summary as plain JSON values."""
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")
