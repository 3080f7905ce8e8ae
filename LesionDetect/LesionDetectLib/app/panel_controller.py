"""The panel's behaviour without Qt: widgets ↔ parameter node ↔ logic, and one detection run at a time.

`PanelController` owns everything the panel does: it lists the registry's detectors and their
methods, builds the options box from `option_specs`, stores what the user picks in the parameter
node, runs Detect → (Cancel) → import as a small state machine over a worker process, installs
missing packages before a method's first run, and exports STL (into a folder chosen once per scene:
beside the scene file, else the user's documents; enabled only once the input has a run with
surfaces). Each step that blocks the GUI thread (writing the input volume, importing results,
exporting STL) shows a wait cursor and a status message; closing the scene abandons a run without
waiting for its worker. It reaches the UI only through a
`PanelView` (LesionDetectWidget in LesionDetect.py with Qt calls; a recording view in the tests) and
the scene only through its `DetectionLogic` and package installer, so tests drive it for real.

Which widget signal calls which controller method is data (`BINDINGS`, `OPTION_WIDGET_CLASSES`):
the Qt widget loops over it, and tests check every signal against the widget classes' real signals.
"""

from __future__ import annotations

import contextlib
import enum
import logging
import math
import traceback
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import vtk
from slicer.util import VTKObservationMixin

from LesionDetectLib.app.panel_parameters import PanelParameters, module_parameter_node
from LesionDetectLib.app.worker_process import EXIT_EVENT
from LesionDetectLib.detection.device import DEVICE_CHOICES
from LesionDetectLib.detection.options import NODE_KINDS, REGION, OptionSpec, option_specs, options_from
from LesionDetectLib.errors import LesionDetectError, OutputExistsError
from LesionDetectLib.results.stl import COORDINATE_SYSTEMS

logger = logging.getLogger(__name__)

POLL_TIMER = "pollTimer"  # not in the .ui: the Qt widget makes a QTimer under this name
POLL_TIMER_CLASS = "QTimer"
POLL_INTERVAL_MS = 200
CLEANUP_WAIT_S = 3.0  # module unload (Slicer exiting): how long to wait for an abandoned worker to be gone


@dataclass(frozen=True)
class Binding:
    """Widget `widget` (its objectName) emits `signal` (a normalised Qt signature) → controller method `slot`."""

    widget: str
    signal: str
    slot: str


BINDINGS: tuple[Binding, ...] = (
    Binding("inputVolumeSelector", "currentNodeChanged(vtkMRMLNode*)", "on_input_volume_selected"),
    Binding("detectorSelector", "currentIndexChanged(int)", "on_detector_selected"),
    Binding("methodSelector", "currentIndexChanged(int)", "on_method_selected"),
    Binding("deviceSelector", "currentIndexChanged(int)", "on_device_selected"),
    Binding("stlCoordinateSelector", "currentIndexChanged(int)", "on_stl_coordinate_system_selected"),
    Binding("outputFolderButton", "directoryChanged(QString)", "on_output_folder_changed"),
    Binding("detectButton", "clicked(bool)", "on_detect_clicked"),
    Binding("exportStlButton", "clicked(bool)", "on_export_stl_clicked"),
    Binding(POLL_TIMER, "timeout()", "on_poll"),
)

# Option widget kind → (widget class, the signal that carries its new value to `on_option_changed`).
OPTION_WIDGET_CLASSES: dict[str, tuple[str, str]] = {
    "slider": ("ctkSliderWidget", "valueChanged(double)"),  # a float with both bounds
    "double": ("QDoubleSpinBox", "valueChanged(double)"),  # a float with an open range
    "int": ("QSpinBox", "valueChanged(int)"),
    "bool": ("QCheckBox", "toggled(bool)"),
    "choice": ("QComboBox", "currentIndexChanged(int)"),
    "text": ("QLineEdit", "textChanged(QString)"),
    "node": ("qMRMLNodeComboBox", "currentNodeChanged(vtkMRMLNode*)"),  # a region or a second volume
}
REGION_NODE_TYPES = ("vtkMRMLLabelMapVolumeNode", "vtkMRMLSegmentationNode", "vtkMRMLMarkupsROINode")
VOLUME_NODE_TYPES = ("vtkMRMLScalarVolumeNode",)  # label maps too: they are scalar volume nodes
NONE_TEXT = {REGION: "Whole volume"}  # what the node box says when nothing is chosen (default "None")
OPEN_RANGE_LIMIT = 1e9  # spin box bound for an option without one

# Disabled while a run is in progress (the option widgets too).
INPUT_WIDGETS = ("inputVolumeSelector", "detectorSelector", "methodSelector", "deviceSelector")
DEVICE_TOOLTIPS = {
    "auto": "The GPU when one is usable, otherwise the CPU.",
    "cpu": "The CPU (always works; slower for methods with networks).",
    "cuda": "The NVIDIA GPU; refused when none is usable.",
}
STL_TOOLTIPS = {
    "LPS": "LPS millimetres, as Slicer's and Mimics' STL files.",
    "RAS": "RAS millimetres, for tools that expect RAS.",
}


class RunState(enum.Enum):
    IDLE = "idle"
    RUNNING = "running"
    CANCELLING = "cancelling"


DETECT_BUTTON_TEXT = {RunState.IDLE: "Detect", RunState.RUNNING: "Cancel", RunState.CANCELLING: "Cancelling…"}


class PanelView(Protocol):
    """What the controller asks of the panel's widgets, each named by its objectName."""

    def set_text(self, widget: str, text: str) -> None: ...  # a label's or a button's text

    def set_enabled(self, widget: str, enabled: bool) -> None: ...

    def set_items(self, widget: str, items: list[tuple[str, str]], current: int) -> None: ...  # combo: (text, tip)

    def set_value(self, widget: str, value) -> None: ...  # index, node, folder, number or bool; emits nothing

    def set_progress(self, percent: int) -> None: ...

    def show_options(self, fields: list[OptionField]) -> None: ...  # replace the options box's widgets

    def start_poll_timer(self) -> None: ...

    def stop_poll_timer(self) -> None: ...

    def show_error(self, message: str, details: str = "") -> None: ...

    def confirm(self, message: str, title: str) -> bool: ...

    def process_events(self) -> None: ...

    def set_busy(self, busy: bool) -> None: ...  # True: wait cursor (nestable); False: undo one True


@dataclass(frozen=True)
class OptionField:
    """One widget of the options box, generated from an option's spec."""

    name: str  # the option
    widget: str  # its objectName
    kind: str  # a key of OPTION_WIDGET_CLASSES
    widget_class: str
    signal: str
    label: str
    tooltip: str
    minimum: float | None = None
    maximum: float | None = None
    step: float | None = None
    decimals: int | None = None
    suffix: str = ""
    choices: tuple[str, ...] = ()
    node_types: tuple[str, ...] = ()
    none_text: str = "None"


def option_widget_kind(spec: OptionSpec) -> str:
    """Which widget shows an option."""
    if spec.kind in NODE_KINDS:
        return "node"
    if spec.choices:
        return "choice"
    if spec.value_type is bool:
        return "bool"
    if spec.value_type is int:
        return "int"
    if spec.value_type is float:
        return "slider" if spec.minimum is not None and spec.maximum is not None else "double"
    return "text"


def option_fields(options_type: type) -> list[OptionField]:
    """The options box of a detector: one field per option, in declaration order."""
    fields = []
    for spec in option_specs(options_type):
        kind = option_widget_kind(spec)
        widget_class, signal = OPTION_WIDGET_CLASSES[kind]
        extra: dict = {}
        if kind in ("slider", "double", "int"):
            extra["minimum"] = spec.minimum if spec.minimum is not None else -OPEN_RANGE_LIMIT
            extra["maximum"] = spec.maximum if spec.maximum is not None else OPEN_RANGE_LIMIT
            extra["suffix"] = f" {spec.unit}" if spec.unit else ""
            if kind == "int":
                extra["step"] = 1
            else:
                extra["step"], extra["decimals"] = _float_step(spec)
        elif kind == "choice":
            extra["choices"] = tuple(str(choice) for choice in spec.choices)
        elif kind == "node":
            extra["node_types"] = REGION_NODE_TYPES if spec.kind == REGION else VOLUME_NODE_TYPES
            extra["none_text"] = NONE_TEXT.get(spec.kind, "None")
        fields.append(
            OptionField(
                name=spec.name,
                widget=f"option_{spec.name}",
                kind=kind,
                widget_class=widget_class,
                signal=signal,
                label=_option_label(spec),
                tooltip=spec.help,
                **extra,
            )
        )
    return fields


def _option_label(spec: OptionSpec) -> str:
    """An option's row label: "size_mm" with unit mm → "Size:" (the unit is the widget's suffix)."""
    words = spec.name.split("_")
    if len(words) > 1 and spec.unit and words[-1] == spec.unit.lower():
        words = words[:-1]
    return " ".join(words).capitalize() + ":"


def _float_step(spec: OptionSpec) -> tuple[float, int]:
    """A step of about 1/100 of the range (a power of ten), and decimals that show it and the default."""
    if spec.minimum is not None and spec.maximum is not None and spec.maximum > spec.minimum:
        span = spec.maximum - spec.minimum
    else:
        span = abs(spec.default) * 10 if spec.default else 10.0
    step = 10.0 ** math.floor(math.log10(span / 100))
    decimals = max(0, -math.floor(math.log10(step)))
    default_text = f"{spec.default:.6f}".rstrip("0") if spec.default is not None else ""
    default_decimals = len(default_text.split(".")[1]) if "." in default_text else 0
    return step, min(6, max(decimals, default_decimals))


def widget_value(field: OptionField, value):
    """An option value as its widget shows it (a choice as its index)."""
    if field.kind == "choice":
        return field.choices.index(str(value)) if str(value) in field.choices else 0
    return value


def option_value(spec: OptionSpec, field: OptionField, widget_value):
    """What a widget's signal carried, as the option's value."""
    if field.kind == "choice":
        return spec.choices[int(widget_value)]
    if field.kind == "node":
        return widget_value
    return spec.value_type(widget_value)


def offered_methods(detector) -> list:
    """The methods the panel offers: the default first, then the other available ones, best first."""
    default = detector.method(detector.default_method)
    return [default] + [method for method in detector.methods if method.available and method is not default]


class PanelController(VTKObservationMixin):
    """The panel's behaviour; see the module docstring. `view` is a PanelView, `logic` a DetectionLogic."""

    def __init__(self, view: PanelView, logic, packages, detectors=None):
        VTKObservationMixin.__init__(self)
        if detectors is None:
            from LesionDetectLib.detection.registry import detectors
        self.view = view
        self.logic = logic
        self.scene = logic.scene
        self.packages = packages
        self.detectors = detectors  # () -> {id: Detector}
        self.parameters: PanelParameters | None = None
        self.state = RunState.IDLE
        self.run = None
        self.shown: tuple | None = None  # (volume node, detector id, findings) of the last imported run
        self.entered = False
        self._listed_detectors: list[str] = []
        self._listed_methods: list[str] = []
        self._listed_method_items: list[tuple[str, str]] = []
        self._options_shown_for: str | None = None
        self._fields: list[OptionField] = []
        self._updating = False
        self._blocking = False  # a step that blocks the GUI thread is under way (see `_busy`)
        self._dependencies_ready: set[tuple[str, str]] = set()
        self.abandoned: list = []  # threads removing the folders of runs stopped by a scene close

    # ------------------------------------------------------------ life cycle (the widget's setup/enter/exit/cleanup)

    def setup(self) -> None:
        """Observe the scene's close and import events, fill the fixed combo boxes and show the parameter node."""
        self.addObserver(self.scene, self.scene.StartCloseEvent, self.on_scene_start_close)
        self.addObserver(self.scene, self.scene.EndCloseEvent, self.on_scene_end_close)
        self.addObserver(self.scene, self.scene.EndImportEvent, self.on_scene_end_import)
        self.addObserver(self.scene, self.scene.NodeRemovedEvent, self.on_node_removed)
        self.view.set_items("deviceSelector", [(name, DEVICE_TOOLTIPS.get(name, "")) for name in DEVICE_CHOICES], 0)
        self.view.set_items(
            "stlCoordinateSelector", [(name, STL_TOOLTIPS.get(name, "")) for name in COORDINATE_SYSTEMS], 0
        )
        self.initialize_parameter_node()

    def enter(self) -> None:
        self.entered = True
        self.initialize_parameter_node()

    def exit(self) -> None:
        self.entered = False
        self.set_parameter_node(None)

    def cleanup(self) -> None:
        """Stop a run and every observation (the module is being unloaded, often as Slicer exits: a worker
        is waited for a few seconds, so that it does not outlive Slicer)."""
        self._cancel_run(wait_s=CLEANUP_WAIT_S)
        self.set_parameter_node(None)
        self.removeObservers()

    def on_scene_start_close(self, caller=None, event=None) -> None:
        """Abandon a run without waiting for its worker (see `_cancel_run`): closing returns at once."""
        self._cancel_run()
        self.shown = None
        self.set_parameter_node(None)

    def on_scene_end_close(self, caller=None, event=None) -> None:
        if self.entered:
            self.initialize_parameter_node()

    def on_scene_end_import(self, caller=None, event=None) -> None:
        """An imported scene's node references resolve at its end; a loaded scene without an export
        folder of its own gets the default one (beside its file, now that the scene has one)."""
        if self.parameters is not None and not self.parameters.output_folder:
            self.parameters.output_folder = str(self.logic.default_output_folder())  # updates the view
        self.update_view()

    @vtk.calldata_type(vtk.VTK_OBJECT)
    def on_node_removed(self, caller, event, node) -> None:
        """A run's model node removed by the user (not by closing or importing a scene): Export STL may
        have nothing left to export."""
        if node is not None and not self.scene.IsBatchProcessing() and node.IsA("vtkMRMLModelNode"):
            from LesionDetectLib.scene.run_nodes import is_run_node  # not at load: the scene package is heavy

            if is_run_node(node):
                self._update_buttons()

    def initialize_parameter_node(self) -> None:
        """Use the scene's parameter node, choosing the first volume when none is chosen yet, and the
        default export folder when the scene has none (chosen once: kept, and saved with the scene)."""
        parameters = PanelParameters(module_parameter_node(self.scene))
        if parameters.input_volume is None:
            first_volume = self.scene.GetFirstNodeByClass("vtkMRMLScalarVolumeNode")
            if first_volume is not None and not first_volume.IsA("vtkMRMLLabelMapVolumeNode"):
                parameters.input_volume = first_volume
        if not parameters.output_folder:
            parameters.output_folder = str(self.logic.default_output_folder())
        self.set_parameter_node(parameters.node)

    def set_parameter_node(self, node) -> None:
        """Show and edit `node` (None: stop observing the current one)."""
        if self.parameters is not None and self.parameters.node is not node:
            self.removeObserver(self.parameters.node, vtk.vtkCommand.ModifiedEvent, self.update_view)
            self.parameters = None
        if node is not None and self.parameters is None:
            self.parameters = PanelParameters(node)
            self.addObserver(node, vtk.vtkCommand.ModifiedEvent, self.update_view)
            self._options_shown_for = None
        self.update_view()

    # ------------------------------------------------------------ parameter node → widgets

    def current_detector(self):
        """The chosen detector (the first registered one when the chosen id is unknown)."""
        available = self.detectors()
        if not available:
            raise LesionDetectError("No detector is registered.")
        chosen = self.parameters.detector if self.parameters is not None else ""
        return available.get(chosen) or next(iter(available.values()))

    def current_method(self, detector):
        """The chosen method of `detector` when it is offered, else its default."""
        offered = offered_methods(detector)
        chosen = self.parameters.method(detector.id) if self.parameters is not None else ""
        return next((method for method in offered if method.name == chosen), offered[0])

    def update_view(self, caller=None, event=None) -> None:
        """Show what the parameter node holds, and enable what can be used now."""
        if self.parameters is None or self._updating:
            self._update_buttons()
            return
        self._updating = True
        try:
            detectors = self.detectors()
            detector = self.current_detector()
            detector_index = list(detectors).index(detector.id)
            if list(detectors) != self._listed_detectors:
                self._listed_detectors = list(detectors)
                items = [(item.title, _detector_tooltip(item)) for item in detectors.values()]
                self.view.set_items("detectorSelector", items, detector_index)
            else:
                self.view.set_value("detectorSelector", detector_index)

            methods = offered_methods(detector)
            method_index = methods.index(self.current_method(detector))
            method_items = [(item.name, item.description) for item in methods]
            if method_items != self._listed_method_items:
                self._listed_methods = [item.name for item in methods]
                self._listed_method_items = method_items
                self.view.set_items("methodSelector", method_items, method_index)
            else:
                self.view.set_value("methodSelector", method_index)

            self.view.set_value("inputVolumeSelector", self.parameters.input_volume)
            self.view.set_value("deviceSelector", DEVICE_CHOICES.index(self.parameters.device))
            self.view.set_value(
                "stlCoordinateSelector", COORDINATE_SYSTEMS.index(self.parameters.stl_coordinate_system)
            )
            self.view.set_value("outputFolderButton", self.parameters.output_folder)

            if self._options_shown_for != detector.id:
                self._fields = option_fields(detector.Options)
                self.view.show_options(self._fields)
                self._options_shown_for = detector.id
            values = self.parameters.option_values(detector)
            for field in self._fields:
                self.view.set_value(field.widget, widget_value(field, values[field.name]))
        finally:
            self._updating = False
        self._update_buttons()

    def _update_buttons(self) -> None:
        idle = self.state is RunState.IDLE and not self._blocking
        volume_node = self.parameters.input_volume if self.parameters is not None else None
        has_input = volume_node is not None
        running = self.state is RunState.RUNNING and not self._blocking
        self.view.set_text("detectButton", DETECT_BUTTON_TEXT[self.state])
        self.view.set_enabled("detectButton", (idle and has_input) or running)
        self.view.set_enabled("exportStlButton", idle and has_input and self._has_surfaces(volume_node))
        for widget in (*INPUT_WIDGETS, *(field.widget for field in self._fields)):
            self.view.set_enabled(widget, idle)

    def _has_surfaces(self, volume_node) -> bool:
        """Whether the input's current run of the chosen detector left surfaces to export."""
        try:
            return self.logic.has_surfaces(volume_node, self.current_detector().id)
        except LesionDetectError:  # no detector registered
            return False

    @contextlib.contextmanager
    def _busy(self, status: str):
        """A step that blocks the GUI thread: the status and a wait cursor shown first (and the buttons
        disabled, so that a click the repaint delivers does nothing), all undone afterwards, error or not."""
        self._blocking = True
        self.view.set_text("statusLabel", status)
        self.view.set_busy(True)
        try:
            self._update_buttons()
            self.view.process_events()  # paint the status and the cursor before the GUI thread blocks
            yield
        finally:
            self._blocking = False
            self.view.set_busy(False)
            self._update_buttons()

    # ------------------------------------------------------------ widgets → parameter node

    def _accepts(self, index, listed) -> bool:
        """Whether a combo box signal is the user's choice (not our own refill, not 'no selection')."""
        return not self._updating and self.parameters is not None and 0 <= index < len(listed)

    def on_input_volume_selected(self, node) -> None:
        if not self._updating and self.parameters is not None:
            self.parameters.input_volume = node

    def on_detector_selected(self, index: int) -> None:
        if self._accepts(index, self._listed_detectors):
            self.parameters.detector = self._listed_detectors[index]

    def on_method_selected(self, index: int) -> None:
        if self._accepts(index, self._listed_methods):
            self.parameters.set_method(self.current_detector().id, self._listed_methods[index])

    def on_device_selected(self, index: int) -> None:
        if self._accepts(index, DEVICE_CHOICES):
            self.parameters.device = DEVICE_CHOICES[index]

    def on_stl_coordinate_system_selected(self, index: int) -> None:
        if self._accepts(index, COORDINATE_SYSTEMS):
            self.parameters.stl_coordinate_system = COORDINATE_SYSTEMS[index]

    def on_output_folder_changed(self, folder: str) -> None:
        if not self._updating and self.parameters is not None:
            self.parameters.output_folder = folder

    def on_option_changed(self, name: str, value) -> None:
        """An option widget's new value (a choice's index, a region's node)."""
        if self._updating or self.parameters is None:
            return
        detector = self.current_detector()
        spec = next(spec for spec in option_specs(detector.Options) if spec.name == name)
        field = next(field for field in self._fields if field.name == name)
        self.parameters.set_option(detector, name, option_value(spec, field, value))
        if name in detector.live_options:
            self._refilter_shown(detector)

    def _refilter_shown(self, detector) -> None:
        """Show the last run of `detector` on the input volume again at the new live option values."""
        if self.shown is None or self.state is not RunState.IDLE:
            return
        volume_node, detector_id, findings = self.shown
        if detector_id != detector.id or volume_node is not self.parameters.input_volume:
            return
        try:
            options = options_from(detector.Options, self.parameters.option_values(detector))
            findings = detector.refiltered(findings, options)
            self.logic.show_results(findings, volume_node)
        except Exception as error:  # noqa: BLE001 - shown, never raised into Qt
            self._show_error("Could not update the results.", error)
            return
        self.shown = (volume_node, detector_id, findings)
        self.view.set_text("resultsSummaryLabel", self.logic.summary_text(findings))
        self.view.set_text("statusLabel", f"Updated: {len(findings.lesions)} lesion(s).")

    # ------------------------------------------------------------ Detect / Cancel

    def on_detect_clicked(self, checked: bool = False) -> None:
        """Detect when idle; Cancel while a run is in progress; nothing while it is being cancelled."""
        if self._blocking:
            return
        if self.state is RunState.RUNNING:
            self.cancel()
            return
        if self.state is RunState.CANCELLING or self.parameters is None:
            return
        volume_node = self.parameters.input_volume
        if volume_node is None:
            self.view.show_error("Select an input volume first.")
            return
        detector = self.current_detector()
        method = self.current_method(detector)
        if not self.ensure_dependencies(detector, method):
            return
        try:
            with self._busy("Writing the input volume…"):
                run = self.logic.start_detection(
                    volume_node, detector, method.name, self.parameters.device, self.parameters.option_values(detector)
                )
        except Exception as error:  # noqa: BLE001 - any failure to start is shown, never raised into Qt
            self.view.set_text("statusLabel", "Not started.")
            self._show_error("Could not start the detection.", error)
            return
        self.run = run
        self.state = RunState.RUNNING
        self.view.set_progress(0)
        self.view.set_text("resultsSummaryLabel", "")
        self.view.set_text("statusLabel", f"Starting the {detector.title} detector ({method.name})…")
        self._update_buttons()
        self.view.start_poll_timer()

    def cancel(self) -> None:
        """Ask the running worker's process tree to stop; its exit event ends the run."""
        if self.state is not RunState.RUNNING:
            return
        self.run.worker.cancel()
        self.state = RunState.CANCELLING
        self.view.set_text("statusLabel", "Cancelling…")
        self._update_buttons()

    def on_poll(self) -> None:
        """Apply the worker's new events to the progress bar and status; finish the run on its exit event."""
        if self.run is None:
            self.view.stop_poll_timer()
            return
        for event in self.run.worker.poll():
            self.run.record(event)
            kind = event.get("event")
            if kind == "progress" and self.state is RunState.RUNNING:
                self.view.set_progress(int(round(100 * float(event.get("fraction", 0.0)))))
                self.view.set_text("statusLabel", event.get("message") or event.get("stage", ""))
            elif kind == "log":
                logger.info("LesionDetect worker: %s", event.get("message", ""))
            elif kind == EXIT_EVENT:
                self._finish_run(event)
                return

    def _finish_run(self, exit_event: dict) -> None:
        """Import a successful run's results, or say why there are none; then remove its files."""
        self.view.stop_poll_timer()
        run, self.run = self.run, None
        self.state = RunState.IDLE
        try:
            if exit_event["cancelled"]:
                self.view.set_progress(0)
                self.view.set_text("statusLabel", "Cancelled; nothing was imported.")
            elif run.done_event is not None and exit_event["returncode"] == 0:
                self._import_run(run)
            else:
                self.view.set_text("statusLabel", "Failed.")
                message = run.error_message or f"The detection stopped with exit code {exit_event['returncode']}."
                self.view.show_error(message, "\n".join(run.log_tail))
        finally:
            run.discard()
            self._update_buttons()

    def _import_run(self, run) -> None:
        try:
            with self._busy("Importing the results…"):
                findings = self.logic.import_results(run.done_event["output"], run.volume_node)
        except Exception as error:  # noqa: BLE001
            self.view.set_text("statusLabel", "Import failed.")
            self._show_error("Could not import the results.", error)
            return
        self.shown = (run.volume_node, findings.detector, findings)
        self.view.set_text("resultsSummaryLabel", self.logic.summary_text(findings))
        self.view.set_progress(100)
        self.view.set_text("statusLabel", f"Done: {len(findings.lesions)} lesion(s).")

    def _cancel_run(self, wait_s: float = 0.0) -> None:
        """Stop a running worker without importing anything (scene close, module cleanup), waiting at most
        `wait_s` for it: its process tree gets SIGTERM now and SIGKILL after a short grace period, and its
        temporary folder is removed once it has exited, on a background thread (`self.abandoned`)."""
        if self.run is None:
            return
        self.view.stop_poll_timer()
        run, self.run = self.run, None
        self.state = RunState.IDLE
        self.abandoned = [thread for thread in self.abandoned if thread.is_alive()]
        self.abandoned.append(run.abandon())
        if wait_s > 0:
            self.abandoned[-1].join(wait_s)
        self.view.set_progress(0)
        self.view.set_text("statusLabel", "Cancelled; nothing was imported.")
        self._update_buttons()

    # ------------------------------------------------------------ dependencies

    def ensure_dependencies(self, detector, method) -> bool:
        """Before a method's first run: install torch (PyTorch extension) then the rest (pip), after asking."""
        key = (detector.id, method.name)
        if key in self._dependencies_ready:
            return True
        try:
            if self.packages.torch_missing(method):
                self.view.set_text("statusLabel", "Installing PyTorch…")
                if not self.packages.install_torch():
                    self.view.set_text("statusLabel", "Not started: PyTorch is not installed.")
                    return False
            missing = self.packages.missing_packages(method)
            if missing:
                if not self.view.confirm(
                    "LesionDetect needs these Python packages, which will be downloaded and installed now:\n"
                    + "\n".join(missing)
                    + "\n\nThis can take a few minutes.",
                    "Install LesionDetect dependencies",
                ):
                    self.view.set_text("statusLabel", "Not started: the packages were not installed.")
                    return False
                self.view.set_text("statusLabel", "Installing Python packages…")
                self.view.process_events()
                self.packages.pip_install(missing)
        except Exception as error:  # noqa: BLE001
            self.view.set_text("statusLabel", "Not started.")
            self._show_error("Could not install the Python packages LesionDetect needs.", error)
            return False
        still_missing = self.packages.missing_packages(method)
        if self.packages.torch_missing(method):
            still_missing = ["torch", *still_missing]
        if still_missing:
            self.view.set_text("statusLabel", "Not started.")
            self.view.show_error(
                "These packages are still missing after installing them: "
                + ", ".join(still_missing)
                + ". Restart Slicer and click Detect again."
            )
            return False
        self._dependencies_ready.add(key)
        return True

    # ------------------------------------------------------------ Export STL

    def on_export_stl_clicked(self, checked: bool = False) -> None:
        """Write the current run's lesion surfaces as STL files into the chosen folder (asking before
        overwriting; an unwritable folder is refused, named, before anything is written)."""
        if self.parameters is None or self._blocking or self.state is not RunState.IDLE:
            return
        folder = self.parameters.output_folder
        if not folder:
            self.view.show_error("Choose an output folder for the STL files first.")
            return
        coordinate_system = self.parameters.stl_coordinate_system
        export = (self.parameters.input_volume, self.current_detector().id, Path(folder), coordinate_system)
        status = f"Exporting STL files to {folder}…"
        try:
            try:
                with self._busy(status):
                    paths = self.logic.export_stl(*export)
            except OutputExistsError:
                if not self.view.confirm(
                    f"STL files already exist in {folder}. Overwrite them?", "Overwrite STL files"
                ):
                    self.view.set_text("statusLabel", "Not exported: the existing STL files were kept.")
                    return
                with self._busy(status):
                    paths = self.logic.export_stl(*export, overwrite=True)
        except Exception as error:  # noqa: BLE001
            self.view.set_text("statusLabel", "Export failed.")
            self._show_error("Could not export the STL files.", error)
            return
        self.view.set_text("statusLabel", f"Wrote {len(paths)} STL file(s) ({coordinate_system}) to {folder}.")

    def _show_error(self, message: str, error: Exception) -> None:
        """A LesionDetectError says what to do; anything else also carries its traceback."""
        details = "" if isinstance(error, LesionDetectError) else "".join(traceback.format_exception(error))
        self.view.show_error(f"{message}\n\n{error}", details)


def _detector_tooltip(detector) -> str:
    accepts = " or ".join(detector.modalities) if detector.modalities else "any modality"
    kinds = " or ".join(kind.value for kind in detector.input_kinds)
    return f"{detector.title}: a {kinds}, {accepts}."
