"""The panel's choices in the scene's parameter node, so they are saved and reloaded with the scene.

A `vtkMRMLScriptedModuleNode` (the one `ScriptedLoadableModuleLogic.getParameterNode()` returns)
holds plain parameters and node references:

- `detector`, `device`, `stlCoordinateSystem`, `outputFolder`: strings (`outputFolder`, where STL files
  go, is filled in once with a default by the panel — beside the scene file, else the user's
  documents — and then changes only when the user chooses another folder);
- `method.<detector id>`: the method chosen for that detector (absent: the detector's default);
- `options.<detector id>`: a JSON object of the option values the user set; an option not in it has
  the default of the detector's `Options` dataclass, so defaults live in one place;
- references `inputVolume` and `option.<detector id>.<option name>` (the node of a region option):
  references, unlike node IDs in a string, follow the nodes when a scene is imported.
"""

from __future__ import annotations

import json

from LesionDetectLib.detection.device import DEVICE_CHOICES
from LesionDetectLib.detection.options import NODE_KINDS, option_specs
from LesionDetectLib.results.stl import COORDINATE_SYSTEMS

MODULE_NAME = "LesionDetect"


def module_parameter_node(scene, module_name: str = MODULE_NAME):
    """The module's singleton parameter node in `scene`, created if missing (as Slicer's logic does)."""
    node = scene.GetSingletonNode(module_name, "vtkMRMLScriptedModuleNode")
    if node is None:
        node = scene.CreateNodeByClass("vtkMRMLScriptedModuleNode")
        node.UnRegister(None)  # the scene holds the only reference
        node.SetSingletonTag(module_name)
        node.SetName(module_name)
        node.SetModuleName(module_name)
        node = scene.AddNode(node)
    elif node.GetModuleName() != module_name:  # closing the scene resets the singleton, module name included
        node.SetModuleName(module_name)
    return node


class PanelParameters:
    """Typed access to the panel's parameter node; values not set read as their defaults."""

    def __init__(self, node):
        self.node = node

    def _get(self, name: str, default: str) -> str:
        value = self.node.GetParameter(name)
        return value if value else default

    def _choice(self, name: str, choices, default: str) -> str:
        value = self._get(name, default)
        return value if value in choices else default

    @property
    def detector(self) -> str:
        """The chosen detector's id; "" when none was chosen (the panel shows the first registered one)."""
        return self.node.GetParameter("detector") or ""

    @detector.setter
    def detector(self, detector_id: str) -> None:
        self.node.SetParameter("detector", detector_id)

    def method(self, detector_id: str) -> str:
        """The method chosen for a detector; "" when none was chosen (the detector's default then)."""
        return self.node.GetParameter(f"method.{detector_id}") or ""

    def set_method(self, detector_id: str, method: str) -> None:
        self.node.SetParameter(f"method.{detector_id}", method)

    @property
    def device(self) -> str:
        return self._choice("device", DEVICE_CHOICES, DEVICE_CHOICES[0])

    @device.setter
    def device(self, device: str) -> None:
        self.node.SetParameter("device", device)

    @property
    def stl_coordinate_system(self) -> str:
        return self._choice("stlCoordinateSystem", COORDINATE_SYSTEMS, COORDINATE_SYSTEMS[0])

    @stl_coordinate_system.setter
    def stl_coordinate_system(self, coordinate_system: str) -> None:
        self.node.SetParameter("stlCoordinateSystem", coordinate_system)

    @property
    def output_folder(self) -> str:
        return self.node.GetParameter("outputFolder") or ""

    @output_folder.setter
    def output_folder(self, folder: str) -> None:
        self.node.SetParameter("outputFolder", str(folder))

    @property
    def input_volume(self):
        return self.node.GetNodeReference("inputVolume")

    @input_volume.setter
    def input_volume(self, volume_node) -> None:
        self.node.SetNodeReferenceID("inputVolume", volume_node.GetID() if volume_node is not None else None)

    def option_values(self, detector) -> dict:
        """Option name → value for every option of `detector`: the user's value, else the dataclass default.

        Region and volume options hold the chosen node (or None)."""
        stored = self._stored_options(detector.id)
        values = {}
        for spec in option_specs(detector.Options):
            if spec.kind in NODE_KINDS:
                values[spec.name] = self.node.GetNodeReference(_region_role(detector.id, spec.name))
            else:
                values[spec.name] = stored.get(spec.name, spec.default)
        return values

    def set_option(self, detector, name: str, value) -> None:
        """Store one option value (a node for a region or volume option)."""
        spec = next((spec for spec in option_specs(detector.Options) if spec.name == name), None)
        if spec is None:
            raise KeyError(f"the {detector.id} detector has no option '{name}'")
        if spec.kind in NODE_KINDS:
            self.node.SetNodeReferenceID(_region_role(detector.id, name), value.GetID() if value is not None else None)
            return
        stored = self._stored_options(detector.id)
        stored[name] = value
        self.node.SetParameter(f"options.{detector.id}", json.dumps(stored, sort_keys=True))

    def _stored_options(self, detector_id: str) -> dict:
        text = self.node.GetParameter(f"options.{detector_id}")
        try:
            stored = json.loads(text) if text else {}
        except ValueError:
            stored = {}
        return stored if isinstance(stored, dict) else {}


def _region_role(detector_id: str, option_name: str) -> str:
    return f"option.{detector_id}.{option_name}"
