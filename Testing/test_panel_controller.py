"""The panel's behaviour, driven for real: PanelController on a slicer-core scene, a real worker process
running the real CLI, and a view that records what the panel would show.

The view refuses any widget the .ui file (or the generated options box) lacks, and any request that
does not fit the widget's class; the user's actions go through `BINDINGS`, the same table the Qt
widget connects, so a binding to the wrong controller method fails here.
"""

from __future__ import annotations

import dataclasses
import itertools
import json
import os
import time
import xml.etree.ElementTree as ElementTree
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
from test_panel_toy_detector import (
    ABSENT_REQUIREMENT,
    TOY_ID,
    ToyDetector,
    toy_volume,
    toy_worker_environment,
)

from LesionDetectLib.app import dependencies
from LesionDetectLib.app.dependencies import PackageInstaller
from LesionDetectLib.app.detection_run import ABANDON_GRACE_S, DetectionLogic
from LesionDetectLib.app.panel_controller import (
    BINDINGS,
    POLL_TIMER,
    POLL_TIMER_CLASS,
    PanelController,
    RunState,
)
from LesionDetectLib.app.panel_parameters import PanelParameters, module_parameter_node
from LesionDetectLib.detection.options import option_specs
from LesionDetectLib.detection.registry import detectors, register, unregister
from LesionDetectLib.scene.run_nodes import remove_run

UI_FILE = Path(__file__).resolve().parents[1] / "LesionDetect" / "Resources" / "UI" / "LesionDetect.ui"
TEXT_CLASSES = {"QLabel", "QPushButton"}
VALUE_CLASSES = {
    "qMRMLNodeComboBox",
    "QComboBox",
    "ctkDirectoryButton",
    "QCheckBox",
    "ctkSliderWidget",
    "QSpinBox",
    "QDoubleSpinBox",
    "QLineEdit",
}
RUN_TIMEOUT_S = 300


def ui_widget_classes() -> dict[str, str]:
    """objectName → class of every widget in LesionDetect.ui."""
    root = ElementTree.parse(UI_FILE).getroot()
    return {widget.get("name"): widget.get("class") for widget in root.iter("widget")}


class RecordingView:
    """A PanelView that keeps what the panel shows, refusing widgets that do not exist or do not fit."""

    def __init__(self):
        self.widgets = {**ui_widget_classes(), POLL_TIMER: POLL_TIMER_CLASS}
        self.texts: dict[str, str] = {}
        self.enabled: dict[str, bool] = {}
        self.items: dict[str, list[tuple[str, str]]] = {}
        self.values: dict[str, object] = {}
        self.fields = []
        self.options_builds = 0
        self.progress = None
        self.timer_running = False
        self.errors: list[tuple[str, str]] = []
        self.questions: list[str] = []
        self.answers: list[bool] = []
        self.busy = 0  # wait cursors shown and not yet taken back
        self.busy_log: list[str] = []  # the status shown as each wait cursor went up
        self.calls = 0

    def _check(self, widget: str, classes=None) -> None:
        self.calls += 1
        assert widget in self.widgets, f"the panel has no widget named '{widget}'"
        if classes is not None:
            assert self.widgets[widget] in classes, f"'{widget}' is a {self.widgets[widget]}, not one of {classes}"

    def set_text(self, widget, text):
        self._check(widget, TEXT_CLASSES)
        self.texts[widget] = text

    def set_enabled(self, widget, enabled):
        self._check(widget)
        assert self.widgets[widget] != POLL_TIMER_CLASS
        self.enabled[widget] = bool(enabled)

    def set_items(self, widget, items, current):
        self._check(widget, {"QComboBox"})
        assert 0 <= current < len(items), f"{widget}: index {current} of {len(items)} items"
        self.items[widget] = list(items)
        self.values[widget] = current

    def set_value(self, widget, value):
        self._check(widget, VALUE_CLASSES)
        if self.widgets[widget] == "QComboBox":
            assert 0 <= value < len(self.items[widget]), f"{widget}: index {value} of {self.items[widget]}"
        self.values[widget] = value

    def set_progress(self, percent):
        self.calls += 1
        assert 0 <= percent <= 100
        self.progress = percent

    def show_options(self, fields):
        self.calls += 1
        for field in self.fields:
            del self.widgets[field.widget]
        self.fields = list(fields)
        self.options_builds += 1
        for field in fields:
            assert field.widget not in self.widgets, f"option widget '{field.widget}' clashes with the .ui"
            self.widgets[field.widget] = field.widget_class
            if field.kind == "choice":
                self.items[field.widget] = [(choice, "") for choice in field.choices]

    def start_poll_timer(self):
        self.calls += 1
        self.timer_running = True

    def stop_poll_timer(self):
        self.calls += 1
        self.timer_running = False

    def show_error(self, message, details=""):
        self.calls += 1
        self.errors.append((message, details))

    def confirm(self, message, title):
        self.calls += 1
        self.questions.append(message)
        assert self.answers, f"the panel asked an unexpected question: {message}"
        return self.answers.pop(0)

    def process_events(self):
        self.calls += 1

    def set_busy(self, busy):
        self.calls += 1
        if busy:
            self.busy += 1
            self.busy_log.append(self.texts.get("statusLabel", ""))
        else:
            assert self.busy > 0, "the wait cursor was taken back more often than it was shown"
            self.busy -= 1

    # What the user sees

    def texts_of(self, widget: str) -> list[str]:
        return [text for text, _ in self.items[widget]]

    def field(self, name: str):
        return next(field for field in self.fields if field.name == name)


class RecordingInstaller(PackageInstaller):
    """The real checks; the two installers are stand-ins that record what they were asked and mark it present."""

    def __init__(self):
        self.log: list[str] = []
        self.installed: set[str] = set()
        self.torch_absent = False  # pretend torch is not installed until install_torch() runs
        self.torch_answer = True

    def torch_missing(self, method):
        return (self.torch_absent and method.needs_torch) or super().torch_missing(method)

    def missing_packages(self, method):
        return [requirement for requirement in super().missing_packages(method) if requirement not in self.installed]

    def install_torch(self):
        self.log.append("install_torch")
        if self.torch_answer:
            self.torch_absent = False
        return self.torch_answer

    def pip_install(self, requirements):
        self.log.append("pip_install " + " ".join(requirements))
        self.installed |= set(requirements)


def user_acts(panel, widget: str, *signal_args) -> None:
    """The widget's signal, delivered as the Qt widget delivers it: through BINDINGS."""
    binding = next(binding for binding in BINDINGS if binding.widget == widget)
    getattr(panel.controller, binding.slot)(*signal_args)


def user_chooses(panel, widget: str, text: str) -> None:
    """Pick an item of a combo box by its text."""
    user_acts(panel, widget, panel.view.texts_of(widget).index(text))


def user_sets_option(panel, name: str, widget_value) -> None:
    """An option widget's value signal (bound by the Qt widget to `on_option_changed(name, value)`)."""
    panel.view.field(name)  # the widget exists
    panel.controller.on_option_changed(name, widget_value)


def poll_until_idle(panel, timeout: float = RUN_TIMEOUT_S) -> None:
    """Let the poll timer fire (only while the panel keeps it running) until the run is over."""
    deadline = time.monotonic() + timeout
    while panel.controller.state is not RunState.IDLE:
        assert panel.view.timer_running, "a run is in progress but the poll timer is not running"
        assert time.monotonic() < deadline, f"the run did not end within {timeout} s"
        user_acts(panel, POLL_TIMER)
        time.sleep(0.02)


def add_volume_node(scene, volume, node_class="vtkMRMLScalarVolumeNode", name=None):
    import slicer.util

    node = scene.AddNewNodeByClass(node_class, name or volume.name)
    node.SetIJKToRASMatrix(slicer.util.vtkMatrixFromArray(volume.ijk_to_ras))
    slicer.util.updateVolumeFromArray(node, volume.array)
    return node


@pytest.fixture
def toy_detector(monkeypatch):
    """The toy detector, in this process's registry (after the package's own, as a plug-in comes in Slicer)
    and in the worker's."""
    detectors()  # discovers the package's detectors first, also when this file runs on its own
    toy_worker_environment(monkeypatch)
    detector = register(ToyDetector())
    yield detector
    unregister(TOY_ID)


@pytest.fixture
def home(tmp_path, monkeypatch):
    """The user's home folder (with a Documents folder), so that no test writes to the real one."""
    home = tmp_path / "home"
    (home / "Documents").mkdir(parents=True)
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("USERPROFILE", str(home))
    return home


@pytest.fixture
def panel(mrml_scene, tmp_path, toy_detector, home):
    """A set-up, entered panel on the real scene with one toy volume in it."""
    volume_node = add_volume_node(mrml_scene, toy_volume())
    runs = itertools.count()
    logic = DetectionLogic(mrml_scene, lambda: tmp_path / f"run{next(runs)}")
    view, packages = RecordingView(), RecordingInstaller()
    controller = PanelController(view, logic, packages)
    controller.setup()
    controller.enter()
    yield SimpleNamespace(
        controller=controller,
        view=view,
        packages=packages,
        scene=mrml_scene,
        volume_node=volume_node,
        tmp_path=tmp_path,
        home=home,
    )
    controller.cleanup()
    mrml_scene.SetURL("")  # the shared scene: closing it keeps its file name
    assert view.busy == 0, "a wait cursor was left up"


def parameters_of(panel) -> PanelParameters:
    return PanelParameters(module_parameter_node(panel.scene))


def choose_toy(panel, method="quick") -> None:
    user_chooses(panel, "detectorSelector", ToyDetector.title)
    user_chooses(panel, "methodSelector", method)


def wait_for(condition, timeout: float) -> bool:
    """Whether `condition()` became true within `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.02)
    return condition()


def process_alive(pid: int) -> bool:
    """Whether a process exists and is not a zombie."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError):
        return False
    return state not in ("Z", "X")


def poll_until_status(panel, prefix: str, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while not panel.view.texts.get("statusLabel", "").startswith(prefix):
        assert time.monotonic() < deadline, f"no '{prefix}' status within {timeout} s: {panel.view.texts}"
        user_acts(panel, POLL_TIMER)
        time.sleep(0.02)


def run_toy_with_surfaces(panel) -> None:
    """A toy run whose lesion has a surface, imported."""
    choose_toy(panel)
    user_sets_option(panel, "surface", True)
    user_acts(panel, "detectButton", False)
    poll_until_idle(panel)
    assert panel.view.texts["statusLabel"] == "Done: 1 lesion(s).", panel.view.errors


# ---------------------------------------------------------------- registry → widgets


def test_detectors_and_methods_come_from_the_registry_default_first_unavailable_left_out(panel):
    view = panel.view
    assert view.texts_of("detectorSelector") == [detector.title for detector in detectors().values()]
    calcium = detectors()["calcium"]
    assert view.texts_of("methodSelector")[0] == calcium.default_method
    assert view.texts_of("methodSelector") == [m.name for m in calcium.methods if m.available][:1] + [
        m.name for m in calcium.methods if m.available and m.name != calcium.default_method
    ]
    user_chooses(panel, "detectorSelector", ToyDetector.title)
    assert view.texts_of("methodSelector") == ["net", "quick"], "'shipped' has no weights here"
    assert view.values["methodSelector"] == 0
    assert dict(view.items["methodSelector"])["quick"] == "thresholds the volume"
    assert view.texts_of("deviceSelector") == ["auto", "cpu", "cuda"]
    assert view.texts_of("stlCoordinateSelector") == ["LPS", "RAS"]
    assert view.values["inputVolumeSelector"] is panel.volume_node, "the first volume is chosen"


def test_choosing_a_method_stores_it_in_the_parameter_node(panel):
    choose_toy(panel, "net")
    assert parameters_of(panel).method(TOY_ID) == "net"
    user_chooses(panel, "methodSelector", "quick")
    assert module_parameter_node(panel.scene).GetParameter(f"method.{TOY_ID}") == "quick"
    assert panel.view.values["methodSelector"] == panel.view.texts_of("methodSelector").index("quick")
    panel.controller.exit()
    panel.controller.enter()
    assert panel.view.texts_of("methodSelector")[panel.view.values["methodSelector"]] == "quick"


def test_choosing_device_stl_space_and_folder_stores_them(panel):
    user_chooses(panel, "deviceSelector", "cpu")
    user_chooses(panel, "stlCoordinateSelector", "RAS")
    user_acts(panel, "outputFolderButton", str(panel.tmp_path / "stl"))
    parameters = parameters_of(panel)
    assert (parameters.device, parameters.stl_coordinate_system) == ("cpu", "RAS")
    assert parameters.output_folder == str(panel.tmp_path / "stl")
    user_acts(panel, "inputVolumeSelector", None)
    assert parameters.input_volume is None
    assert panel.view.enabled["detectButton"] is False and panel.view.enabled["exportStlButton"] is False


def test_parameter_node_edits_show_in_the_view(panel):
    parameters = parameters_of(panel)
    parameters.device = "cuda"
    assert panel.view.values["deviceSelector"] == 2
    parameters.detector = TOY_ID
    assert panel.view.values["detectorSelector"] == list(detectors()).index(TOY_ID)
    assert [field.name for field in panel.view.fields] == [spec.name for spec in option_specs(ToyDetector.Options)]


# ---------------------------------------------------------------- the options box


def test_the_options_box_is_generated_from_option_specs_and_rebuilt_when_the_detector_changes(panel):
    view = panel.view
    calcium = detectors()["calcium"]
    assert [field.name for field in view.fields] == [spec.name for spec in option_specs(calcium.Options)]
    builds = view.options_builds
    user_chooses(panel, "detectorSelector", ToyDetector.title)
    assert view.options_builds == builds + 1
    kinds = {field.name: (field.widget_class, field.signal) for field in view.fields}
    assert kinds == {
        "region": ("qMRMLNodeComboBox", "currentNodeChanged(vtkMRMLNode*)"),
        "threshold_hu": ("ctkSliderWidget", "valueChanged(double)"),
        "min_voxels": ("QSpinBox", "valueChanged(int)"),
        "merge": ("QCheckBox", "toggled(bool)"),
        "label": ("QComboBox", "currentIndexChanged(int)"),
        "pause_s": ("QDoubleSpinBox", "valueChanged(double)"),
        "uninterruptible": ("QCheckBox", "toggled(bool)"),
        "surface": ("QCheckBox", "toggled(bool)"),
    }, "'internal' has no option metadata and must not be shown"
    threshold = view.field("threshold_hu")
    assert (threshold.minimum, threshold.maximum, threshold.suffix, threshold.label) == (
        0.0,
        3000.0,
        " HU",
        "Threshold:",
    )
    assert view.field("label").choices == ("bright", "spot")
    assert set(view.field("region").node_types) == {
        "vtkMRMLLabelMapVolumeNode",
        "vtkMRMLSegmentationNode",
        "vtkMRMLMarkupsROINode",
    }
    user_sets_option(panel, "threshold_hu", 450.0)  # a parameter change does not rebuild the box
    assert view.options_builds == builds + 1
    assert all(view.enabled[field.widget] for field in view.fields)


def test_defaults_come_from_the_options_dataclass_and_only_the_users_values_are_stored(panel):
    choose_toy(panel)
    view = panel.view
    assert view.values["option_threshold_hu"] == 300.0
    assert view.values["option_merge"] is True and view.values["option_label"] == 0
    assert view.values["option_region"] is None
    assert module_parameter_node(panel.scene).GetParameter(f"options.{TOY_ID}") == ""
    user_sets_option(panel, "label", 1)
    user_sets_option(panel, "merge", False)
    assert json.loads(module_parameter_node(panel.scene).GetParameter(f"options.{TOY_ID}")) == {
        "label": "spot",
        "merge": False,
    }
    assert view.values["option_label"] == 1 and view.values["option_merge"] is False


def test_option_values_are_saved_and_restored_with_the_scene(panel):
    choose_toy(panel)
    region_node = add_volume_node(panel.scene, toy_volume(), "vtkMRMLLabelMapVolumeNode", "heart")
    user_sets_option(panel, "threshold_hu", 450.0)
    user_sets_option(panel, "min_voxels", 3)
    user_sets_option(panel, "region", region_node)
    scene = panel.scene
    scene.SetSaveToXMLString(1)
    scene.Commit()
    saved = scene.GetSceneXMLString()

    scene.Clear(False)  # closing the scene resets the parameter node; the entered panel shows the fresh one
    assert panel.view.texts_of("detectorSelector")[panel.view.values["detectorSelector"]] != ToyDetector.title
    scene.SetLoadFromXMLString(1)
    scene.SetSceneXMLString(saved)
    scene.Import()
    restored = parameters_of(panel).option_values(ToyDetector())
    assert restored["threshold_hu"] == 450.0 and restored["min_voxels"] == 3
    assert restored["region"] is not None and restored["region"].GetName() == "heart"
    assert panel.view.values["option_threshold_hu"] == 450.0
    assert panel.view.values["option_region"] is restored["region"]
    assert panel.view.texts_of("methodSelector")[panel.view.values["methodSelector"]] == "quick"


# ---------------------------------------------------------------- Detect → progress → import


def test_detect_starts_the_poll_timer_runs_the_worker_and_imports_the_results(panel):
    choose_toy(panel)
    view = panel.view
    user_acts(panel, "detectButton", False)
    assert panel.controller.state is RunState.RUNNING
    assert view.timer_running, "Detect must start the poll timer"
    assert view.texts["detectButton"] == "Cancel" and view.enabled["detectButton"]
    assert not any(view.enabled[name] for name in ("detectorSelector", "methodSelector", "option_threshold_hu"))
    assert not view.enabled["exportStlButton"]
    work_dir = panel.controller.run.work_dir
    assert sorted(path.name for path in work_dir.iterdir()) == ["input.nrrd"]
    progress_seen = []
    deadline = time.monotonic() + RUN_TIMEOUT_S
    while panel.controller.state is not RunState.IDLE and time.monotonic() < deadline:
        assert view.timer_running
        user_acts(panel, POLL_TIMER)
        progress_seen.append(view.progress)
        time.sleep(0.02)
    assert not view.errors, view.errors
    assert not view.timer_running and view.progress == 100
    assert view.texts["statusLabel"] == "Done: 1 lesion(s)."
    assert view.texts["resultsSummaryLabel"].startswith("1 lesion(s) found.")
    assert "Toy detector: bright voxels only." in view.texts["resultsSummaryLabel"]
    assert progress_seen == sorted(progress_seen), "progress went backwards"
    assert panel.scene.GetNodesByClass("vtkMRMLMarkupsROINode").GetNumberOfItems() == 1
    assert not work_dir.exists(), "the run's temporary files were left behind"
    assert view.texts["detectButton"] == "Detect" and view.enabled["detectButton"] and view.enabled["methodSelector"]


def test_region_and_option_values_reach_the_cli_as_flags(panel):
    choose_toy(panel)
    volume = toy_volume()
    outside_the_bright_block = np.zeros_like(volume.array, dtype=np.uint8)
    outside_the_bright_block[:, :4, :] = 1
    region_node = add_volume_node(
        panel.scene, type(volume)(outside_the_bright_block, volume.ijk_to_ras, "outside"), "vtkMRMLLabelMapVolumeNode"
    )
    user_sets_option(panel, "region", region_node)
    user_sets_option(panel, "threshold_hu", 450.0)
    user_sets_option(panel, "merge", False)
    user_acts(panel, "detectButton", False)
    run = panel.controller.run
    command = run.worker.command
    assert command[command.index("--region") + 1] == str(run.work_dir / "region.nrrd")
    assert command[command.index("--threshold-hu") + 1] == "450.0" and "--no-merge" in command
    assert command[command.index("--method") + 1] == "quick"
    poll_until_idle(panel)
    assert not panel.view.errors, panel.view.errors
    assert panel.view.texts["statusLabel"] == "Done: 0 lesion(s).", "the region excludes the bright block"


def test_cancel_goes_from_running_through_cancelling_to_idle_and_imports_nothing(panel):
    choose_toy(panel)
    user_sets_option(panel, "pause_s", 5.0)
    view = panel.view
    user_acts(panel, "detectButton", False)
    work_dir = panel.controller.run.work_dir
    deadline = time.monotonic() + 120
    while not view.texts.get("statusLabel", "").startswith("Toy step") and time.monotonic() < deadline:
        user_acts(panel, POLL_TIMER)
        time.sleep(0.02)
    assert view.texts["statusLabel"] == "Toy step 1 of 4"
    user_acts(panel, "detectButton", False)  # the button reads "Cancel" now
    assert panel.controller.state is RunState.CANCELLING
    assert view.texts["detectButton"] == "Cancelling…" and not view.enabled["detectButton"]
    assert view.texts["statusLabel"] == "Cancelling…"
    user_acts(panel, "detectButton", False)  # a second click while cancelling does nothing
    assert panel.controller.state is RunState.CANCELLING
    poll_until_idle(panel, timeout=30)
    assert view.texts["statusLabel"] == "Cancelled; nothing was imported." and view.progress == 0
    assert not view.errors
    assert panel.scene.GetNodesByClass("vtkMRMLMarkupsROINode").GetNumberOfItems() == 0
    assert not work_dir.exists()
    assert view.texts["detectButton"] == "Detect" and view.enabled["detectButton"]


def test_a_failing_run_reports_the_workers_message_and_log(panel):
    choose_toy(panel)
    user_sets_option(panel, "min_voxels", 900)
    user_acts(panel, "detectButton", False)
    poll_until_idle(panel)
    assert panel.view.texts["statusLabel"] == "Failed."
    [(message, details)] = panel.view.errors
    assert "The toy refuses lesions of more than 500 voxels." in message
    assert panel.controller.state is RunState.IDLE and panel.view.enabled["detectButton"]


def test_options_out_of_bounds_and_a_missing_volume_are_refused_before_a_worker_starts(panel):
    choose_toy(panel)
    module_parameter_node(panel.scene).SetParameter(f"options.{TOY_ID}", json.dumps({"threshold_hu": 5000.0}))
    user_acts(panel, "detectButton", False)
    assert panel.controller.state is RunState.IDLE and not panel.view.timer_running
    [(message, _)] = panel.view.errors
    assert "Could not start the detection." in message and "--threshold-hu must be ≤ 3000" in message
    assert panel.view.texts["statusLabel"] == "Not started."
    assert not list(panel.tmp_path.glob("run*")), "a refused run left a folder"
    user_acts(panel, "inputVolumeSelector", None)
    user_acts(panel, "detectButton", False)
    assert panel.view.errors[-1][0] == "Select an input volume first."


# ---------------------------------------------------------------- dependencies before the first Detect


def test_dependencies_are_keyed_by_the_detectors_method(toy_detector):
    assert dependencies.missing_packages(toy_detector.method("quick")) == []
    assert dependencies.missing_packages(toy_detector.method("net")) == [ABSENT_REQUIREMENT]
    assert not dependencies.torch_missing(toy_detector.method("quick"))
    calcium = detectors()["calcium"]
    for method in calcium.methods:
        assert dependencies.required_packages(method).keys() >= dependencies.REQUIRED_PACKAGES.keys()
    assert "monai" in dependencies.required_packages(calcium.method("deep"))
    assert "monai" not in dependencies.required_packages(calcium.method("classical"))


def test_missing_packages_are_installed_after_confirmation_before_the_first_detect(panel):
    choose_toy(panel, "net")
    view, packages = panel.view, panel.packages
    view.answers = [False]
    user_acts(panel, "detectButton", False)
    assert ABSENT_REQUIREMENT in view.questions[-1]
    assert packages.log == [] and panel.controller.state is RunState.IDLE
    assert view.texts["statusLabel"] == "Not started: the packages were not installed."
    view.answers = [True]
    user_acts(panel, "detectButton", False)
    assert packages.log == [f"pip_install {ABSENT_REQUIREMENT}"]
    assert panel.controller.state is RunState.RUNNING and view.timer_running
    poll_until_idle(panel)
    assert view.texts["statusLabel"] == "Done: 1 lesion(s).", view.errors
    questions = len(view.questions)
    user_acts(panel, "detectButton", False)  # checked once per method: no second question
    assert len(view.questions) == questions
    poll_until_idle(panel)


def test_torch_comes_first_through_the_pytorch_installer_then_pip(panel):
    choose_toy(panel, "net")
    packages, view = panel.packages, panel.view
    packages.torch_absent, packages.torch_answer = True, False
    user_acts(panel, "detectButton", False)
    assert packages.log == ["install_torch"] and not view.questions, "no pip before torch"
    assert view.texts["statusLabel"] == "Not started: PyTorch is not installed."
    packages.torch_answer = True
    view.answers = [True]
    user_acts(panel, "detectButton", False)
    assert packages.log == ["install_torch", "install_torch", f"pip_install {ABSENT_REQUIREMENT}"]
    poll_until_idle(panel)
    packages.log.clear()
    choose_toy(panel, "quick")
    user_acts(panel, "detectButton", False)
    assert packages.log == [], "a method without torch installs nothing"
    poll_until_idle(panel)


# ---------------------------------------------------------------- scene observers


def test_cleanup_removes_every_observer_it_added_to_the_scene(panel):
    controller = panel.controller
    scene = panel.scene
    observed = [(obj, tag) for obj, _, _, _, tag, _ in controller.Observations]
    assert {obj.GetClassName() for obj, _ in observed} == {"vtkMRMLScene", "vtkMRMLScriptedModuleNode"}
    assert all(obj.GetCommand(tag) is not None for obj, tag in observed)
    controller.cleanup()
    assert all(obj.GetCommand(tag) is None for obj, tag in observed), "cleanup left observers on the scene"
    calls = panel.view.calls
    scene.Clear(False)
    module_parameter_node(scene).SetParameter("device", "cuda")
    assert panel.view.calls == calls, "a cleaned-up panel still reacts to the scene"


@pytest.mark.skipif(os.name == "nt" or not Path("/proc/self/stat").exists(), reason="POSIX signals, /proc")
def test_closing_the_scene_during_a_run_returns_at_once_and_the_worker_and_its_folder_go(panel):
    """A worker that holds off SIGTERM (as a network's forward pass does) must not hold up closing the scene."""
    choose_toy(panel)
    user_sets_option(panel, "pause_s", 60.0)
    user_sets_option(panel, "uninterruptible", True)
    user_acts(panel, "detectButton", False)
    poll_until_status(panel, "Toy step 1")  # the CLI is in the detector, with SIGTERM held off
    run = panel.controller.run
    started = time.monotonic()
    panel.scene.Clear(False)
    assert time.monotonic() - started < 0.5, "closing the scene waited for the worker"
    assert panel.controller.run is None and panel.controller.state is RunState.IDLE
    assert not panel.view.timer_running and not panel.view.errors
    assert panel.view.texts["statusLabel"] == "Cancelled; nothing was imported."
    assert wait_for(lambda: not process_alive(run.worker.pid), ABANDON_GRACE_S + 3), "the worker outlived the close"
    assert wait_for(lambda: not run.work_dir.exists(), 5), "the run's temporary folder was left behind"
    time.sleep(0.3)
    assert panel.scene.GetNodesByClass("vtkMRMLMarkupsROINode").GetNumberOfItems() == 0, "something was imported"
    assert panel.view.values["inputVolumeSelector"] is None
    assert (
        panel.view.texts_of("detectorSelector")[panel.view.values["detectorSelector"]] == detectors()["calcium"].title
    )
    assert panel.view.enabled["detectButton"] is False


# ---------------------------------------------------------------- Export STL


def test_export_stl_after_a_calcium_run_and_asks_before_overwriting(panel):
    from LesionDetectLib.detectors.calcium.sample import make_sample

    volume, _, _ = make_sample(shape_ijk=(96, 96, 16))
    sample_node = add_volume_node(panel.scene, volume)
    view = panel.view
    user_acts(panel, "inputVolumeSelector", sample_node)
    user_chooses(panel, "methodSelector", "classical")
    assert view.enabled["exportStlButton"] is False, "nothing to export yet"
    user_acts(panel, "exportStlButton", False)  # a click the disabled button cannot send is still refused
    assert "run Detect" in view.errors[-1][0]
    stl_dir = panel.tmp_path / "stl"
    user_acts(panel, "outputFolderButton", str(stl_dir))
    user_acts(panel, "detectButton", False)
    poll_until_idle(panel)
    assert view.texts["statusLabel"].startswith("Done: ") and len(view.errors) == 1, view.errors
    assert view.enabled["exportStlButton"] is True
    user_chooses(panel, "stlCoordinateSelector", "RAS")
    user_acts(panel, "exportStlButton", False)
    written = sorted(stl_dir.rglob("*.stl"))
    assert written and all(b"SPACE=RAS" in path.read_bytes()[:80] for path in written)
    assert view.texts["statusLabel"] == f"Wrote {len(written)} STL file(s) (RAS) to {stl_dir}."
    before = {path: path.read_bytes() for path in written}
    user_chooses(panel, "stlCoordinateSelector", "LPS")
    view.answers = [False]
    user_acts(panel, "exportStlButton", False)
    assert "already exist" in view.questions[-1] and len(view.errors) == 1
    assert {path: path.read_bytes() for path in written} == before, "overwritten without asking"
    view.answers = [True]
    user_acts(panel, "exportStlButton", False)
    assert len(view.errors) == 1 and view.texts["statusLabel"].startswith("Wrote ")
    assert all(b"SPACE=LPS" in path.read_bytes()[:80] for path in written)


def test_the_export_folder_defaults_to_the_documents_folder_chosen_once_and_the_users_choice_is_kept(panel):
    view, home = panel.view, panel.home
    default = home / "Documents" / "LesionDetect"
    assert parameters_of(panel).output_folder == str(default), "chosen when the panel first showed the scene"
    assert view.values["outputFolderButton"] == str(default)
    assert not default.exists(), "choosing a folder creates nothing"
    (home / "Documents").rename(home / "Papers")  # the default is kept, not chosen again
    panel.controller.exit()
    panel.controller.enter()
    assert parameters_of(panel).output_folder == str(default)
    user_acts(panel, "outputFolderButton", str(panel.tmp_path / "mine"))
    panel.controller.exit()
    panel.controller.enter()
    assert view.values["outputFolderButton"] == str(panel.tmp_path / "mine")
    panel.scene.Clear(False)  # a new scene, and no Documents folder now: the home folder
    assert parameters_of(panel).output_folder == str(home / "LesionDetect")
    assert view.values["outputFolderButton"] == str(home / "LesionDetect")


def test_a_scene_loaded_from_a_file_gets_an_export_folder_beside_it_and_keeps_a_saved_one(panel):
    scene, view = panel.scene, panel.view
    scene_file = panel.tmp_path / "cases" / "case 7.mrml"
    scene_file.parent.mkdir()
    parameters_of(panel).output_folder = ""  # a scene saved before the panel chose a folder
    scene.SetURL(str(scene_file))
    assert scene.Commit()
    scene.Clear(False)
    scene.SetURL(str(scene_file))
    assert scene.Connect()  # File > Load Scene
    beside = scene_file.parent / "case 7-LesionDetect"
    assert parameters_of(panel).output_folder == str(beside)
    assert view.values["outputFolderButton"] == str(beside)
    user_acts(panel, "outputFolderButton", str(panel.tmp_path / "chosen"))
    assert scene.Commit()  # saved with the scene, and reloaded as it was
    scene.Clear(False)
    scene.SetURL(str(scene_file))
    assert scene.Connect()
    assert parameters_of(panel).output_folder == str(panel.tmp_path / "chosen")


def test_export_stl_is_enabled_only_while_the_input_has_a_run_with_surfaces(panel):
    view = panel.view
    choose_toy(panel)
    assert view.enabled["exportStlButton"] is False, "no run yet"
    user_acts(panel, "detectButton", False)
    assert view.enabled["exportStlButton"] is False, "running"
    poll_until_idle(panel)
    assert view.texts["statusLabel"] == "Done: 1 lesion(s)."
    assert view.enabled["exportStlButton"] is False, "a run without surfaces has nothing to export"
    user_sets_option(panel, "surface", True)
    user_acts(panel, "detectButton", False)
    assert view.enabled["exportStlButton"] is False, "running"
    poll_until_idle(panel)
    assert view.enabled["exportStlButton"] is True, "the import brought surfaces"
    other_node = add_volume_node(panel.scene, toy_volume(), name="no run yet")
    user_acts(panel, "inputVolumeSelector", other_node)
    assert view.enabled["exportStlButton"] is False, "this input has no run"
    user_acts(panel, "inputVolumeSelector", panel.volume_node)
    assert view.enabled["exportStlButton"] is True
    user_chooses(panel, "detectorSelector", detectors()["calcium"].title)
    assert view.enabled["exportStlButton"] is False, "no calcium run on this input"
    choose_toy(panel)
    assert view.enabled["exportStlButton"] is True
    model_nodes = panel.scene.GetNodesByClass("vtkMRMLModelNode")
    assert model_nodes.GetNumberOfItems() == 1
    panel.scene.RemoveNode(model_nodes.GetItemAsObject(0))  # the user deletes the surface
    assert view.enabled["exportStlButton"] is False, "the run's surface was removed"
    user_acts(panel, "detectButton", False)
    poll_until_idle(panel)
    assert view.enabled["exportStlButton"] is True
    assert remove_run(panel.scene, panel.volume_node, TOY_ID) > 0  # the whole run's nodes
    assert view.enabled["exportStlButton"] is False


def test_an_unwritable_export_folder_is_refused_by_name_before_anything_is_written(panel):
    view = panel.view
    run_toy_with_surfaces(panel)
    blocker = panel.tmp_path / "a file"
    blocker.write_text("not a folder")
    cases = {
        blocker: f"The output folder {blocker} is a file",
        blocker / "stl": f"The output folder {blocker / 'stl'} cannot be created: {blocker} is a file",
    }
    if os.name != "nt" and os.geteuid() != 0:  # root writes into read-only folders
        read_only = panel.tmp_path / "read-only"
        read_only.mkdir(mode=0o555)
        cases[read_only / "stl"] = f"The output folder {read_only / 'stl'} cannot be created: {read_only} is not"
        cases[read_only] = f"The output folder {read_only} is not writable"
    for folder, message in cases.items():
        before = sorted(panel.tmp_path.rglob("*"))
        user_acts(panel, "outputFolderButton", str(folder))
        user_acts(panel, "exportStlButton", False)
        error, _ = view.errors.pop()
        assert message in error, error
        assert error.startswith("Could not export the STL files.") and not view.questions
        assert sorted(panel.tmp_path.rglob("*")) == before, f"{folder}: something was written"
        assert view.texts["statusLabel"] == "Export failed." and view.busy == 0
        assert view.enabled["exportStlButton"] is True, "the user can choose another folder and retry"
    assert not view.errors
    user_acts(panel, "outputFolderButton", str(panel.tmp_path / "new" / "stl"))  # made as needed
    user_acts(panel, "exportStlButton", False)
    assert not view.errors and (panel.tmp_path / "new" / "stl" / "combined.stl").is_file()


def test_each_blocking_step_shows_a_wait_cursor_and_a_status_taken_back_also_on_error(panel, monkeypatch):
    """Writing the input volume, importing the results and exporting STL block the GUI thread."""
    view, logic = panel.view, panel.controller.logic
    seen = {}

    def spy(name):
        real = getattr(logic, name)

        def call(*args, **kwargs):
            seen[name] = (view.busy, view.texts.get("statusLabel"), view.enabled["detectButton"])
            return real(*args, **kwargs)

        monkeypatch.setattr(logic, name, call)

    for name in ("start_detection", "import_results", "export_stl"):
        spy(name)
    run_toy_with_surfaces(panel)
    user_acts(panel, "outputFolderButton", str(panel.tmp_path / "stl"))
    user_acts(panel, "exportStlButton", False)
    assert seen == {
        "start_detection": (1, "Writing the input volume…", False),
        "import_results": (1, "Importing the results…", False),
        "export_stl": (1, f"Exporting STL files to {panel.tmp_path / 'stl'}…", False),
    }
    assert view.busy == 0 and view.texts["statusLabel"].startswith("Wrote ")
    assert view.busy_log == ["Writing the input volume…", "Importing the results…", seen["export_stl"][1]]

    def fails(*args, **kwargs):
        view.busy_log.append(f"failing with {view.busy} wait cursor(s)")
        raise RuntimeError("disk on fire")

    starts = logic.start_detection
    for name in ("import_results", "export_stl", "start_detection"):
        monkeypatch.setattr(logic, name, fails)
    user_acts(panel, "exportStlButton", False)
    assert view.busy == 0 and view.texts["statusLabel"] == "Export failed."
    user_acts(panel, "detectButton", False)
    assert view.busy == 0 and view.texts["statusLabel"] == "Not started." and panel.controller.run is None
    monkeypatch.setattr(logic, "start_detection", starts)
    user_acts(panel, "detectButton", False)
    poll_until_idle(panel)
    assert view.busy == 0 and view.texts["statusLabel"] == "Import failed."
    assert [message.split("\n")[0] for message, _ in view.errors] == [
        "Could not export the STL files.",
        "Could not start the detection.",
        "Could not import the results.",
    ]
    assert all("disk on fire" in message for message, _ in view.errors)
    assert view.busy_log[3:] == [
        "Exporting STL files to " + str(panel.tmp_path / "stl") + "…",
        "failing with 1 wait cursor(s)",
        "Writing the input volume…",
        "failing with 1 wait cursor(s)",
        "Writing the input volume…",
        "Importing the results…",
        "failing with 1 wait cursor(s)",
    ]
    assert view.enabled["detectButton"] and view.enabled["methodSelector"], "the panel is usable again"


def test_a_live_option_reshows_the_last_run_without_a_new_worker(panel, monkeypatch):
    """A detector's live option (the microbleed operating point is one) changes the shown nodes at once: the
    detector's `refiltered` gets the last imported findings and the new value, no worker starts."""
    calls = []

    def relabelled(self, findings, options):
        calls.append(options.label)
        lesions = [dataclasses.replace(lesion, label=options.label) for lesion in findings.lesions]
        return dataclasses.replace(findings, lesions=lesions)

    monkeypatch.setattr(ToyDetector, "live_options", ("label",))
    monkeypatch.setattr(ToyDetector, "refiltered", relabelled)
    choose_toy(panel)
    user_acts(panel, "detectButton", False)
    poll_until_idle(panel)
    rois = panel.scene.GetNodesByClass("vtkMRMLMarkupsROINode")
    assert [rois.GetItemAsObject(n).GetName() for n in range(rois.GetNumberOfItems())] == ["bright 1"]
    user_sets_option(panel, "label", panel.view.field("label").choices.index("spot"))
    assert calls == ["spot"] and panel.controller.run is None and panel.controller.state is RunState.IDLE
    rois = panel.scene.GetNodesByClass("vtkMRMLMarkupsROINode")
    assert [rois.GetItemAsObject(n).GetName() for n in range(rois.GetNumberOfItems())] == ["spot 1"]
    assert panel.view.texts["statusLabel"] == "Updated: 1 lesion(s)."
    user_sets_option(panel, "min_voxels", 3)  # not live: nothing reshown
    assert calls == ["spot"]
