"""LesionDetect: AI lesion detection in 3D Slicer (module, panel, logic and self-test).

The panel runs the `lesiondetect` CLI in a separate process on a temporary NRRD, shows its progress,
cancels it on request, and imports its results into the scene through `LesionDetectLib`.
"""

import inspect
import logging
import os
import shutil
import sys
import traceback
from pathlib import Path
from typing import Annotated, Optional, Union

import qt
import slicer
import vtk
from slicer import (
    vtkMRMLLabelMapVolumeNode,
    vtkMRMLMarkupsROINode,
    vtkMRMLScalarVolumeNode,
    vtkMRMLSegmentationNode,
)
from slicer.parameterNodeWrapper import Choice, parameterNodeWrapper
from slicer.ScriptedLoadableModule import (
    ScriptedLoadableModule,
    ScriptedLoadableModuleLogic,
    ScriptedLoadableModuleTest,
    ScriptedLoadableModuleWidget,
)
from slicer.util import VTKObservationMixin

MODULE_DIR = os.path.dirname(os.path.abspath(__file__))
if MODULE_DIR not in sys.path:  # Slicer puts it there; a script loading this file by path may not
    sys.path.insert(0, MODULE_DIR)

# Light imports only: the packages the worker needs may not be installed yet when Slicer starts.
from LesionDetectLib import dependencies  # noqa: E402
from LesionDetectLib.worker_process import EXIT_EVENT  # noqa: E402

README_URL = "https://github.com/lesiondetect/LesionDetect#readme"
DEVICES = ["auto", "cpu", "cuda"]
STL_COORDINATE_SYSTEMS = ["LPS", "RAS"]
POLL_INTERVAL_MS = 200


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


@parameterNodeWrapper
class LesionDetectParameterNode:
    """The panel's choices, saved with the scene."""

    inputVolume: vtkMRMLScalarVolumeNode
    regionNode: Optional[Union[vtkMRMLLabelMapVolumeNode, vtkMRMLSegmentationNode, vtkMRMLMarkupsROINode]]
    detector: str = "calcium"
    method: str = ""  # empty: the detector's default (deep when its weights are installed)
    device: Annotated[str, Choice(DEVICES)] = "auto"
    stlCoordinateSystem: Annotated[str, Choice(STL_COORDINATE_SYSTEMS)] = "LPS"
    outputFolder: Path


class LesionDetectWidget(ScriptedLoadableModuleWidget, VTKObservationMixin):
    """The panel: maps widgets to the parameter node and drives one detection run at a time."""

    def __init__(self, parent=None):
        ScriptedLoadableModuleWidget.__init__(self, parent)
        VTKObservationMixin.__init__(self)
        self.logic = None
        self._parameterNode = None
        self._parameterNodeGuiTag = None
        self._run = None
        self._pollTimer = None

    def setup(self):
        ScriptedLoadableModuleWidget.setup(self)
        uiWidget = slicer.util.loadUI(self.resourcePath("UI/LesionDetect.ui"))
        self.layout.addWidget(uiWidget)
        self.ui = slicer.util.childWidgetVariables(uiWidget)
        uiWidget.setMRMLScene(slicer.mrmlScene)

        self.logic = LesionDetectLogic()
        self._pollTimer = qt.QTimer()
        self._pollTimer.setInterval(POLL_INTERVAL_MS)
        self._pollTimer.connect("timeout()", self.onPollWorker)

        for detectorId, title in self.logic.detectorTitles().items():
            self.ui.detectorSelector.addItem(title, detectorId)

        self.addObserver(slicer.mrmlScene, slicer.mrmlScene.StartCloseEvent, self.onSceneStartClose)
        self.addObserver(slicer.mrmlScene, slicer.mrmlScene.EndCloseEvent, self.onSceneEndClose)
        self.ui.detectorSelector.connect("currentIndexChanged(int)", self.onDetectorSelected)
        self.ui.methodSelector.connect("currentIndexChanged(int)", self.onMethodSelected)
        self.ui.detectButton.connect("clicked(bool)", self.onDetectButton)
        self.ui.exportStlButton.connect("clicked(bool)", self.onExportStlButton)

        self.initializeParameterNode()

    def cleanup(self):
        self._cancelRun()
        self.removeObservers()

    def enter(self):
        self.initializeParameterNode()

    def exit(self):
        self.setParameterNode(None)

    def onSceneStartClose(self, caller, event):
        self._cancelRun()
        self.setParameterNode(None)

    def onSceneEndClose(self, caller, event):
        if self.parent.isEntered:
            self.initializeParameterNode()

    def initializeParameterNode(self):
        """Use the scene's parameter node, selecting the first volume if none is chosen yet."""
        self.setParameterNode(self.logic.getParameterNode())
        if not self._parameterNode.inputVolume:
            firstVolumeNode = slicer.mrmlScene.GetFirstNodeByClass("vtkMRMLScalarVolumeNode")
            if firstVolumeNode and not firstVolumeNode.IsA("vtkMRMLLabelMapVolumeNode"):
                self._parameterNode.inputVolume = firstVolumeNode

    def setParameterNode(self, inputParameterNode):
        """Connect the widgets to `inputParameterNode` (None disconnects)."""
        if self._parameterNode:
            self._parameterNode.disconnectGui(self._parameterNodeGuiTag)
            self._parameterNodeGuiTag = None
            self.removeObserver(self._parameterNode, vtk.vtkCommand.ModifiedEvent, self.updateGUIFromParameterNode)
        self._parameterNode = inputParameterNode
        if self._parameterNode:
            self._parameterNodeGuiTag = self._parameterNode.connectGui(self.ui)
            self.addObserver(self._parameterNode, vtk.vtkCommand.ModifiedEvent, self.updateGUIFromParameterNode)
            self.updateGUIFromParameterNode()

    def updateGUIFromParameterNode(self, caller=None, event=None):
        """Show the detector and method the parameter node holds, and enable what can be clicked."""
        if not self._parameterNode:
            return
        detectorIndex = self.ui.detectorSelector.findData(self._parameterNode.detector)
        wasBlocked = self.ui.detectorSelector.blockSignals(True)
        self.ui.detectorSelector.currentIndex = max(detectorIndex, 0)
        self.ui.detectorSelector.blockSignals(wasBlocked)
        self._fillMethodSelector()
        self._updateButtons()

    def _fillMethodSelector(self):
        """List the methods of the selected detector, selecting the parameter node's method."""
        methods = self.logic.detectorMethods(self._parameterNode.detector)
        wasBlocked = self.ui.methodSelector.blockSignals(True)
        self.ui.methodSelector.clear()
        for method in methods:
            self.ui.methodSelector.addItem(method, method)
        methodIndex = self.ui.methodSelector.findData(self._parameterNode.method)
        self.ui.methodSelector.currentIndex = max(methodIndex, 0)
        self.ui.methodSelector.blockSignals(wasBlocked)
        if methodIndex < 0:
            self._parameterNode.method = methods[0]

    def _updateButtons(self):
        running = self._run is not None
        hasInput = bool(self._parameterNode and self._parameterNode.inputVolume)
        self.ui.detectButton.text = "Cancel" if running else "Detect"
        self.ui.detectButton.toolTip = "Stop the running detection" if running else "Run the selected detector"
        self.ui.detectButton.enabled = running or hasInput
        self.ui.exportStlButton.enabled = hasInput and not running
        for widget in (
            self.ui.inputVolumeSelector,
            self.ui.regionSelector,
            self.ui.detectorSelector,
            self.ui.methodSelector,
            self.ui.deviceSelector,
        ):
            widget.enabled = not running

    def onDetectorSelected(self, index):
        if self._parameterNode and index >= 0:
            detectorId = self.ui.detectorSelector.itemData(index)
            with slicer.util.NodeModify(self._parameterNode):
                self._parameterNode.detector = detectorId
                self._parameterNode.method = self.logic.detectorMethods(detectorId)[0]

    def onMethodSelected(self, index):
        if self._parameterNode and index >= 0:
            self._parameterNode.method = self.ui.methodSelector.itemData(index)

    def onDetectButton(self):
        """Detect, or Cancel while a run is in progress."""
        if self._run is not None:
            self._run.worker.cancel()
            self.ui.statusLabel.text = "Cancelling…"
            self.ui.detectButton.enabled = False
            return
        if not self._ensureDependencies(self._parameterNode.method):
            return
        self.ui.statusLabel.text = "Writing the input volume…"
        slicer.app.processEvents()
        try:
            self._run = self.logic.startDetection(self._parameterNode)
        except Exception as error:
            self.ui.statusLabel.text = "Not started."
            _showError("Could not start the detection.", error)
            return
        self.ui.progressBar.value = 0
        self.ui.resultsSummaryLabel.text = ""
        self.ui.statusLabel.text = "Starting the worker…"
        self._updateButtons()
        self._pollTimer.start()

    def onPollWorker(self):
        """Apply the worker's new events to the progress bar and status; finish the run on exit."""
        if self._run is None:
            self._pollTimer.stop()
            return
        for event in self._run.worker.poll():
            self._run.record(event)
            kind = event.get("event")
            if kind == "progress":
                self.ui.progressBar.value = int(round(100 * float(event.get("fraction", 0.0))))
                self.ui.statusLabel.text = event.get("message") or event.get("stage", "")
            elif kind == "log":
                logging.info("LesionDetect worker: %s", event.get("message", ""))
            elif kind == EXIT_EVENT:
                self._finishRun(event)
                return

    def _finishRun(self, exitEvent):
        """Import the results of a successful run, or say why there are none; then clean up."""
        self._pollTimer.stop()
        run, self._run = self._run, None
        try:
            if exitEvent["cancelled"]:
                self.ui.progressBar.value = 0
                self.ui.statusLabel.text = "Cancelled; nothing was imported."
            elif run.done_event is not None and exitEvent["returncode"] == 0:
                self._importRun(run)
            else:
                self.ui.statusLabel.text = "Failed."
                slicer.util.errorDisplay(
                    run.error_message or f"The detection stopped with exit code {exitEvent['returncode']}.",
                    detailedText="\n".join(run.log_tail),
                )
        finally:
            run.discard()
            self._updateButtons()

    def _importRun(self, run):
        """Show a finished run's findings in the scene and its summary in the panel."""
        self.ui.statusLabel.text = "Importing the results…"
        try:
            findings = self.logic.importResults(run.done_event["output"], run.volume_node)
        except Exception as error:
            self.ui.statusLabel.text = "Import failed."
            _showError("Could not import the results.", error)
            return
        self.ui.resultsSummaryLabel.text = self.logic.summaryText(findings)
        self.ui.progressBar.value = 100
        self.ui.statusLabel.text = f"Done: {len(findings.lesions)} lesion(s)."

    def _cancelRun(self):
        """Stop a running worker without importing anything (scene close, module cleanup)."""
        if self._run is not None:
            self._pollTimer.stop()
            self._run.worker.cancel()
            self._run.worker.wait(10)
            self._run.discard()
            self._run = None

    def _ensureDependencies(self, method):
        """After confirmation, install what `method` lacks: torch first (else pip pulls its own), then the rest."""
        networks = dependencies.needs_networks(method)
        if networks and dependencies.torch_missing() and not self._installTorch():
            return False
        missing = dependencies.missing_packages(method)
        if missing:
            if not slicer.util.confirmOkCancelDisplay(
                "LesionDetect needs these Python packages, which will be downloaded and installed now:\n"
                + "\n".join(missing)
                + "\n\nThis can take a few minutes.",
                windowTitle="Install LesionDetect dependencies",
            ):
                return False
            try:
                slicer.util.pip_install(missing)
            except Exception as error:
                _showError("Could not install the Python packages.", error)
                return False
        return not (networks and dependencies.torch_missing()) and not dependencies.missing_packages(method)

    def _installTorch(self):
        """Install PyTorch through the PyTorch extension, which picks the build for this GPU driver."""
        try:
            import PyTorchUtils
        except ModuleNotFoundError:
            slicer.util.errorDisplay(
                "LesionDetect needs PyTorch. Install the 'PyTorch' extension from the Extensions Manager, "
                "restart Slicer, then click Detect again."
            )
            return False
        torch = PyTorchUtils.PyTorchUtilsLogic().installTorch(
            askConfirmation=True, torchVersionRequirement=dependencies.TORCH_REQUIREMENT
        )
        return torch is not None

    def onExportStlButton(self):
        """Write the current run's lesion surfaces as STL files into the chosen folder."""
        from LesionDetectLib.errors import OutputExistsError

        parameters = self._parameterNode
        folder = Path(parameters.outputFolder)
        export = [parameters.inputVolume, parameters.detector, folder, parameters.stlCoordinateSystem]
        try:
            try:
                paths = self.logic.exportStl(*export)
            except OutputExistsError:
                if not slicer.util.confirmOkCancelDisplay(f"STL files already exist in {folder}. Overwrite them?"):
                    return
                paths = self.logic.exportStl(*export, overwrite=True)
        except Exception as error:
            _showError("Could not export the STL files.", error)
            return
        self.ui.statusLabel.text = f"Wrote {len(paths)} STL file(s) ({parameters.stlCoordinateSystem}) to {folder}."


def _showError(message, error):
    """Error popup: a LesionDetectError says what to do; anything else also carries its traceback."""
    from LesionDetectLib.errors import LesionDetectError

    details = {} if isinstance(error, LesionDetectError) else {"detailedText": traceback.format_exc()}
    slicer.util.errorDisplay(f"{message}\n\n{error}", **details)


class LesionDetectLogic(ScriptedLoadableModuleLogic):
    """Starts the worker, imports its results and exports surfaces; usable from the Python console."""

    def __init__(self, scene=None):
        ScriptedLoadableModuleLogic.__init__(self)
        self.scene = scene or slicer.mrmlScene

    def getParameterNode(self):
        return LesionDetectParameterNode(super().getParameterNode())

    @staticmethod
    def detectorTitles():
        """Detector id → title, in registry order."""
        from LesionDetectLib.detectors import DETECTORS

        return {detectorId: info.title for detectorId, info in DETECTORS.items()}

    @staticmethod
    def detectorMethods(detectorId):
        """The methods a detector offers, its default first."""
        from LesionDetectLib.detectors import detector_info

        info = detector_info(detectorId)
        return [info.default_method] + [method for method in info.methods if method != info.default_method]

    def startDetection(self, parameterNode, python=None):
        """Write the chosen volume (and region) to a temporary folder and start the CLI on it; return the run."""
        from LesionDetectLib.detection_run import start_detection

        return start_detection(
            parameterNode.inputVolume,
            slicer.util.tempDirectory("LesionDetect"),
            detector=parameterNode.detector,
            method=parameterNode.method,
            device=parameterNode.device,
            region_node=parameterNode.regionNode,
            python=python or shutil.which("PythonSlicer") or sys.executable,
        )

    def importResults(self, outDir, inputVolumeNode):
        """Load a result folder into the scene next to `inputVolumeNode`; return its findings."""
        from LesionDetectLib.detection_run import import_results

        return import_results(self.scene, outDir, inputVolumeNode)

    def exportStl(self, inputVolumeNode, detectorId, folder, coordinateSystem="LPS", overwrite=False):
        """Write the current run's surfaces (combined and per lesion) as STL; return the paths."""
        from LesionDetectLib.detection_run import export_stl

        return export_stl(self.scene, inputVolumeNode, detectorId, folder, coordinateSystem, overwrite)

    @staticmethod
    def summaryText(findings):
        """A few lines for the panel's results box."""
        from LesionDetectLib.detection_run import summary_text

        return summary_text(findings)


class LesionDetectTest(ScriptedLoadableModuleTest):
    """Runs every `scenario_*` of `LesionDetectLib.scenarios` on Slicer's own scene."""

    def setUp(self):
        slicer.mrmlScene.Clear()

    def runTest(self):
        self.setUp()
        self.test_scenarios()

    def test_scenarios(self):
        from LesionDetectLib import scenarios

        found = [
            (name, function)
            for name, function in inspect.getmembers(scenarios, inspect.isfunction)
            if name.startswith("scenario_") and function.__module__ == scenarios.__name__
        ]
        self.assertTrue(found, "LesionDetectLib.scenarios defines no scenario_* function")
        found.sort(key=lambda item: item[1].__code__.co_firstlineno)
        for name, scenario in found:
            self.setUp()
            self.delayDisplay(f"Running {name}")
            scenario(slicer.mrmlScene, Path(slicer.util.tempDirectory(name)))
        self.delayDisplay(f"{len(found)} scenarios passed")
