"""LesionDetect: AI lesion detection in 3D Slicer (module, panel, logic and self-test).

The panel's behaviour is `LesionDetectLib.app.panel_controller.PanelController`, which is Qt-free and
tested on a real scene; this file builds the widgets from Resources/UI/LesionDetect.ui, connects the
signals that `BINDINGS` names to the controller's methods, and carries out the controller's requests
with Qt calls (the `PanelView` methods of `LesionDetectWidget`).

Runs on Slicer 5.10 or later (Python 3.12). On an older Slicer the module still loads and says so
instead of failing at the first Detect, so this file and what it imports at load stay Python 3.9 syntax.
"""

import functools
import logging
import os
import shutil
import sys
from pathlib import Path

import ctk
import qt
import slicer
from slicer.ScriptedLoadableModule import (
    ScriptedLoadableModule,
    ScriptedLoadableModuleLogic,
    ScriptedLoadableModuleTest,
    ScriptedLoadableModuleWidget,
)

MODULE_DIR = os.path.dirname(os.path.abspath(__file__))
if MODULE_DIR not in sys.path:  # Slicer puts it there; a script loading this file by path may not
    sys.path.insert(0, MODULE_DIR)

# Light, Python 3.9-safe imports only: the rest waits until the version check has passed.
from LesionDetectLib.app import dependencies  # noqa: E402
from LesionDetectLib.app.slicer_version import slicer_version_problem  # noqa: E402
from LesionDetectLib.errors import LesionDetectError  # noqa: E402

README_URL = "https://github.com/lesiondetect/LesionDetect#readme"


def versionProblem():
    """Why this Slicer cannot run LesionDetect, or None."""
    return slicer_version_problem(slicer.app.majorVersion, slicer.app.minorVersion, sys.version_info)


class LesionDetect(ScriptedLoadableModule):
    """Module description shown in Slicer's module list and help panel."""

    def __init__(self, parent):
        ScriptedLoadableModule.__init__(self, parent)
        self.parent.title = "LesionDetect"
        self.parent.categories = ["Quantification"]
        self.parent.dependencies = []
        self.parent.contributors = ["LesionDetect contributors"]
        self.parent.helpText = f"""
Detects lesions in a CT or MR volume and shows them as ROIs, a measurement table, surface models and
a heatmap; exports STL surfaces in LPS or RAS millimetres. The first detector finds coronary calcium
on non-contrast CT and reports Agatston, volume and mass scores. Results support research and
review; they are not a medical device. See the <a href="{README_URL}">LesionDetect documentation</a>.
"""
        self.parent.acknowledgementText = """
LesionDetect is open source. It builds on 3D Slicer, MONAI, PyTorch, SimpleITK, scikit-image and VTK,
and follows the separate-process design of SlicerMONAIAuto3DSeg (Andras Lasso, PerkLab).
"""
        problem = versionProblem()
        if problem:
            logging.error(problem)
            self.parent.helpText = f"<p><b>{problem}</b></p>" + self.parent.helpText


class SlicerPackageInstaller(dependencies.PackageInstaller):
    """Installs torch through Slicer's PyTorch extension (the build for this driver) and the rest with pip."""

    def install_torch(self):
        try:
            import PyTorchUtils
        except ModuleNotFoundError:
            raise LesionDetectError(
                "LesionDetect needs PyTorch. Install the 'PyTorch' extension from the Extensions Manager, "
                "restart Slicer, then click Detect again."
            ) from None
        torch = PyTorchUtils.PyTorchUtilsLogic().installTorch(
            askConfirmation=True, torchVersionRequirement=dependencies.torch_version_specifier()
        )
        return torch is not None

    def pip_install(self, requirements):
        slicer.util.pip_install(requirements)


class LesionDetectWidget(ScriptedLoadableModuleWidget):
    """The panel's widgets: built from the .ui, bound to the controller, and its view (`PanelView`)."""

    # Option widget classes by the name `OptionField.widget_class` gives.
    OPTION_WIDGET_FACTORIES = {
        "ctkSliderWidget": lambda: ctk.ctkSliderWidget(),
        "QDoubleSpinBox": lambda: qt.QDoubleSpinBox(),
        "QSpinBox": lambda: qt.QSpinBox(),
        "QCheckBox": lambda: qt.QCheckBox(),
        "QComboBox": lambda: qt.QComboBox(),
        "QLineEdit": lambda: qt.QLineEdit(),
        "qMRMLNodeComboBox": lambda: slicer.qMRMLNodeComboBox(),
    }

    def __init__(self, parent=None):
        ScriptedLoadableModuleWidget.__init__(self, parent)
        self.logic = None
        self.controller = None
        self.ui = None
        self._pollTimer = None
        self._optionWidgets = {}

    def setup(self):
        ScriptedLoadableModuleWidget.setup(self)
        problem = versionProblem()
        if problem:
            label = qt.QLabel(problem)
            label.wordWrap = True
            self.layout.addWidget(label)
            self.layout.addStretch(1)
            return
        from LesionDetectLib.app.panel_controller import BINDINGS, POLL_INTERVAL_MS, PanelController

        uiWidget = slicer.util.loadUI(self.resourcePath("UI/LesionDetect.ui"))
        self.layout.addWidget(uiWidget)
        self.ui = slicer.util.childWidgetVariables(uiWidget)
        uiWidget.setMRMLScene(slicer.mrmlScene)
        self._pollTimer = qt.QTimer()
        self._pollTimer.setInterval(POLL_INTERVAL_MS)

        self.logic = LesionDetectLogic()
        self.controller = PanelController(self, self.logic.detection, SlicerPackageInstaller())
        for binding in BINDINGS:
            self._widget(binding.widget).connect(binding.signal, getattr(self.controller, binding.slot))
        self.controller.setup()

    def cleanup(self):
        if self.controller is not None:
            self.controller.cleanup()

    def enter(self):
        if self.controller is not None:
            self.controller.enter()

    def exit(self):
        if self.controller is not None:
            self.controller.exit()

    # ------------------------------------------------------------ PanelView, with Qt calls

    def _widget(self, name):
        from LesionDetectLib.app.panel_controller import POLL_TIMER

        if name == POLL_TIMER:
            return self._pollTimer
        if name in self._optionWidgets:
            return self._optionWidgets[name]
        return getattr(self.ui, name)

    def set_text(self, widget, text):
        self._widget(widget).text = text

    def set_enabled(self, widget, enabled):
        self._widget(widget).enabled = enabled

    def set_items(self, widget, items, current):
        comboBox = self._widget(widget)
        wasBlocked = comboBox.blockSignals(True)
        try:
            comboBox.clear()
            for index, (text, toolTip) in enumerate(items):
                comboBox.addItem(text)
                comboBox.setItemData(index, toolTip, qt.Qt.ToolTipRole)
            comboBox.currentIndex = current
        finally:
            comboBox.blockSignals(wasBlocked)

    def set_value(self, widget, value):
        target = self._widget(widget)
        className = target.className()
        wasBlocked = target.blockSignals(True)
        try:
            if className == "qMRMLNodeComboBox":
                target.setCurrentNode(value)
            elif className == "QComboBox":
                target.currentIndex = value
            elif className == "ctkDirectoryButton":
                if value:  # an empty folder would show the working directory
                    target.directory = value
            elif className == "QCheckBox":
                target.checked = bool(value)
            elif className == "QLineEdit":
                target.text = str(value)
            else:  # ctkSliderWidget, QSpinBox, QDoubleSpinBox
                target.value = value
        finally:
            target.blockSignals(wasBlocked)

    def set_progress(self, percent):
        self.ui.progressBar.value = percent

    def show_options(self, fields):
        """Replace the options box's rows with one widget per field, each bound to `on_option_changed`."""
        layout = self.ui.optionsCollapsibleButton.layout()
        while layout.rowCount() > 0:
            layout.removeRow(0)  # deletes the row's label and widget
        self._optionWidgets = {}
        for field in fields:
            widget = self._makeOptionWidget(field)
            widget.objectName = field.widget
            widget.toolTip = field.tooltip
            widget.connect(field.signal, functools.partial(self.controller.on_option_changed, field.name))
            layout.addRow(field.label, widget)
            self._optionWidgets[field.widget] = widget
        self.ui.optionsCollapsibleButton.visible = bool(fields)

    def _makeOptionWidget(self, field):
        widget = self.OPTION_WIDGET_FACTORIES[field.widget_class]()
        if field.kind in ("slider", "double"):
            widget.decimals = field.decimals  # before the range and value, which it rounds
            widget.singleStep = field.step
            widget.minimum = field.minimum
            widget.maximum = field.maximum
            widget.suffix = field.suffix
        elif field.kind == "int":
            widget.minimum = int(max(field.minimum, -(2**31)))
            widget.maximum = int(min(field.maximum, 2**31 - 1))
            widget.suffix = field.suffix
        elif field.kind == "choice":
            widget.addItems(list(field.choices))
        elif field.kind == "node":
            widget.nodeTypes = list(field.node_types)
            widget.noneEnabled = True
            widget.noneDisplay = field.none_text
            widget.addEnabled = False
            widget.removeEnabled = False
            widget.setMRMLScene(slicer.mrmlScene)
        return widget

    def start_poll_timer(self):
        self._pollTimer.start()

    def stop_poll_timer(self):
        self._pollTimer.stop()

    def show_error(self, message, details=""):
        if details:
            slicer.util.errorDisplay(message, detailedText=details)
        else:
            slicer.util.errorDisplay(message)

    def confirm(self, message, title):
        return slicer.util.confirmOkCancelDisplay(message, windowTitle=title)

    def process_events(self):
        slicer.app.processEvents()

    def set_busy(self, busy):
        """A wait cursor over the whole application while the GUI thread is blocked (calls nest)."""
        if busy:
            qt.QApplication.setOverrideCursor(qt.QCursor(qt.Qt.WaitCursor))
        else:
            qt.QApplication.restoreOverrideCursor()


class LesionDetectLogic(ScriptedLoadableModuleLogic):
    """Slicer's logic: `self.detection` (a DetectionLogic) starts runs, imports results, exports STL.

    From the Python console: `LesionDetectLogic().detection.start_detection(volumeNode, "calcium", ...)`.
    """

    def __init__(self, scene=None):
        ScriptedLoadableModuleLogic.__init__(self)
        from LesionDetectLib.app.detection_run import DetectionLogic

        self.detection = DetectionLogic(
            scene or slicer.mrmlScene,
            work_dirs=lambda: Path(slicer.util.tempDirectory("LesionDetect")),
            python=shutil.which("PythonSlicer") or sys.executable,
        )


class LesionDetectTest(ScriptedLoadableModuleTest):
    """Runs every registered detector's self-test scenarios on Slicer's own scene."""

    def setUp(self):
        slicer.mrmlScene.Clear()

    def runTest(self):
        problem = versionProblem()
        if problem:
            self.delayDisplay(f"Skipped: {problem}")
            return
        self.setUp()
        self.test_scenarios()

    def test_scenarios(self):
        from LesionDetectLib.scenarios import all_scenarios

        found = all_scenarios()
        self.assertTrue(found, "no registered detector brings a self-test scenario")
        for name, scenario in found:
            self.setUp()
            self.delayDisplay(f"Running {name}")
            scenario(slicer.mrmlScene, Path(slicer.util.tempDirectory(name)))
        self.delayDisplay(f"{len(found)} scenarios passed")
