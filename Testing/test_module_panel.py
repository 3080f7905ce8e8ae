"""The Slicer module without the Slicer app: its source, .ui, bindings, CMake, dependency table and worker.

`LesionDetect.py` imports qt, which only exists inside Slicer, so it is checked through its AST and
the .ui file; what it connects is data (`BINDINGS`, `OPTION_WIDGET_CLASSES`) checked here against
the widget classes' real signals. The panel's behaviour is driven for real in test_panel_controller.py.
"""

from __future__ import annotations

import ast
import glob
import inspect
import json
import os
import py_compile
import shutil
import signal
import subprocess
import sys
import textwrap
import time
import xml.etree.ElementTree as ElementTree
from pathlib import Path

import numpy as np
import pytest

from LesionDetectLib.app import dependencies
from LesionDetectLib.app.panel_controller import (
    BINDINGS,
    INPUT_WIDGETS,
    OPTION_WIDGET_CLASSES,
    POLL_TIMER,
    POLL_TIMER_CLASS,
    PanelController,
    PanelView,
)
from LesionDetectLib.app.worker_process import EXIT_EVENT, PACKAGE_PARENT, WorkerProcess, parse_event, worker_command

REPO = Path(__file__).resolve().parents[1]
MODULE_DIR = REPO / "LesionDetect"
MODULE_FILE = MODULE_DIR / "LesionDetect.py"
UI_FILE = MODULE_DIR / "Resources" / "UI" / "LesionDetect.ui"
LIB_DIR = MODULE_DIR / "LesionDetectLib"
POSIX_ONLY = pytest.mark.skipif(os.name == "nt", reason="process-group signals are POSIX; Windows uses taskkill")

# The signals of the widget classes the panel connects, normalised as PythonQt's connect() takes them.
# Qt's: those in both Qt 5.15 and Qt 6, checked against Qt's own QMetaObject below when PyQt5 is installed.
# CTK's and Slicer's, from their headers: commontk/CTK Libs/Widgets/ctkSliderWidget.h and
# ctkDirectoryButton.h, Slicer/Slicer Libs/MRML/Widgets/qMRMLNodeComboBox.h (`const QString&` → `QString`).
QT_SIGNALS = {
    "QPushButton": {"clicked(bool)", "clicked()", "pressed()", "released()", "toggled(bool)"},
    "QComboBox": {"currentIndexChanged(int)", "currentTextChanged(QString)", "activated(int)", "highlighted(int)"},
    "QCheckBox": {"toggled(bool)", "stateChanged(int)", "clicked(bool)"},
    "QSpinBox": {"valueChanged(int)", "textChanged(QString)", "editingFinished()"},
    "QDoubleSpinBox": {"valueChanged(double)", "textChanged(QString)", "editingFinished()"},
    "QLineEdit": {"textChanged(QString)", "textEdited(QString)", "editingFinished()", "returnPressed()"},
    "QTimer": {"timeout()"},
}
CTK_AND_MRML_SIGNALS = {
    "ctkSliderWidget": {"valueChanged(double)", "valueIsChanging(double)", "decimalsChanged(int)"},
    "ctkDirectoryButton": {"directoryChanged(QString)", "directorySelected(QString)"},
    "qMRMLNodeComboBox": {
        "currentNodeChanged(vtkMRMLNode*)",
        "currentNodeChanged(bool)",
        "currentNodeIDChanged(QString)",
        "nodeActivated(vtkMRMLNode*)",
        "nodeAdded(vtkMRMLNode*)",
        "nodeAboutToBeRemoved(vtkMRMLNode*)",
        "currentNodeRenamed(QString)",
    },
}
WIDGET_SIGNALS = {**QT_SIGNALS, **CTK_AND_MRML_SIGNALS}


# ---------------------------------------------------------------- module source


@pytest.fixture(scope="module")
def module_ast() -> ast.Module:
    return ast.parse(MODULE_FILE.read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def ui_root() -> ElementTree.Element:
    return ElementTree.parse(UI_FILE).getroot()


def _classes(tree: ast.Module) -> dict[str, ast.ClassDef]:
    return {node.name: node for node in tree.body if isinstance(node, ast.ClassDef)}


def _methods(class_node: ast.ClassDef) -> dict[str, ast.FunctionDef]:
    return {node.name: node for node in class_node.body if isinstance(node, ast.FunctionDef)}


def _ui_widgets(root: ElementTree.Element) -> dict[str, ElementTree.Element]:
    return {widget.get("name"): widget for widget in root.iter("widget")}


def _ui_classes(root: ElementTree.Element) -> dict[str, str]:
    return {name: widget.get("class") for name, widget in _ui_widgets(root).items()}


def _ui_property(widget: ElementTree.Element, name: str) -> ElementTree.Element | None:
    return next((prop for prop in widget.findall("property") if prop.get("name") == name), None)


def _signal_argument_count(signature: str) -> int:
    arguments = signature[signature.index("(") + 1 : -1]
    return len(arguments.split(",")) if arguments else 0


def test_module_file_compiles(tmp_path):
    py_compile.compile(str(MODULE_FILE), cfile=str(tmp_path / "LesionDetect.pyc"), doraise=True)


def test_module_defines_the_four_template_classes(module_ast):
    expected_bases = {
        "LesionDetect": ["ScriptedLoadableModule"],
        "LesionDetectWidget": ["ScriptedLoadableModuleWidget"],
        "LesionDetectLogic": ["ScriptedLoadableModuleLogic"],
        "LesionDetectTest": ["ScriptedLoadableModuleTest"],
    }
    classes = _classes(module_ast)
    for name, bases in expected_bases.items():
        assert name in classes, f"LesionDetect.py lacks class {name}"
        assert [ast.unparse(base) for base in classes[name].bases] == bases
    assert {"setUp", "runTest"} <= set(_methods(classes["LesionDetectTest"]))


def test_module_never_fakes_slicer_and_imports_no_heavy_package_at_load(module_ast):
    top_level_imports = set()
    for node in module_ast.body:
        if isinstance(node, ast.Import):
            top_level_imports |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            top_level_imports.add(node.module)
    assert {"slicer", "qt", "ctk", "slicer.ScriptedLoadableModule"} <= top_level_imports
    lib_imports = {name for name in top_level_imports if name.startswith("LesionDetectLib")}
    assert lib_imports == {"LesionDetectLib.app", "LesionDetectLib.app.slicer_version", "LesionDetectLib.errors"}, (
        "at load, LesionDetect.py may import only the Python 3.9-safe modules (the version check runs first)"
    )


def _python39() -> str | None:
    found = shutil.which("python3.9")
    candidates = ([found] if found else []) + sorted(
        glob.glob(os.path.expanduser("~/.pyenv/versions/3.9*/bin/python3.9"))
    )
    for candidate in candidates:
        if subprocess.run([candidate, "-c", "pass"], capture_output=True).returncode == 0:
            return candidate
    return None


def test_an_old_slicers_python_loads_the_module_and_gets_the_version_message(tmp_path):
    """Slicer 5.8 runs Python 3.9: the module file and what it imports at load must work there."""
    for path in (MODULE_FILE, LIB_DIR / "app" / "slicer_version.py", LIB_DIR / "app" / "dependencies.py"):
        ast.parse(path.read_text(encoding="utf-8"), feature_version=(3, 9))
    python39 = _python39()
    if python39 is None:
        pytest.skip("no Python 3.9 interpreter here (the grammar check above still ran)")
    script = textwrap.dedent(f"""\
        import py_compile, sys
        sys.path.insert(0, {str(MODULE_DIR)!r})
        py_compile.compile({str(MODULE_FILE)!r}, cfile={str(tmp_path / "LesionDetect.pyc")!r}, doraise=True)
        from LesionDetectLib.app import dependencies
        from LesionDetectLib.app.slicer_version import slicer_version_problem
        from LesionDetectLib.errors import LesionDetectError
        print(slicer_version_problem(5, 8, sys.version_info))
        print(sorted(name for name in sys.modules if name.startswith("LesionDetectLib")))
        """)
    result = subprocess.run([python39, "-c", script], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    message, modules = result.stdout.strip().splitlines()
    assert message.startswith("LesionDetect needs 3D Slicer 5.10 or later; this is Slicer 5.8 (Python 3.9).")
    assert ast.literal_eval(modules) == [
        "LesionDetectLib",
        "LesionDetectLib.app",
        "LesionDetectLib.app.dependencies",
        "LesionDetectLib.app.slicer_version",
        "LesionDetectLib.errors",
    ]


def test_the_module_checks_the_slicer_version_before_building_the_panel(module_ast):
    classes = _classes(module_ast)
    module_init = ast.unparse(_methods(classes["LesionDetect"])["__init__"])
    setup = _methods(classes["LesionDetectWidget"])["setup"]
    setup_source = ast.unparse(setup)
    assert "versionProblem()" in module_init and "versionProblem()" in setup_source
    assert setup_source.index("versionProblem()") < setup_source.index("loadUI")
    assert setup_source.index("return") < setup_source.index("panel_controller"), "the controller import waits"
    assert "versionProblem()" in ast.unparse(_methods(classes["LesionDetectTest"])["runTest"])


# ---------------------------------------------------------------- bindings: widget → signal → controller method


def test_every_binding_names_a_widget_of_the_ui_a_signal_it_has_and_a_controller_method(ui_root):
    classes = {**_ui_classes(ui_root), POLL_TIMER: POLL_TIMER_CLASS}
    assert {binding.widget for binding in BINDINGS} >= {"detectButton", "exportStlButton", "methodSelector", POLL_TIMER}
    for binding in BINDINGS:
        assert binding.widget in classes, f"binding to '{binding.widget}', which LesionDetect.ui does not have"
        widget_class = classes[binding.widget]
        assert binding.signal in WIDGET_SIGNALS[widget_class], (
            f"{binding.widget} is a {widget_class}, which has no signal {binding.signal}; "
            f"it has {sorted(WIDGET_SIGNALS[widget_class])}"
        )
        slot = getattr(PanelController, binding.slot, None)
        assert callable(slot), f"PanelController has no method {binding.slot}"
        parameters = list(inspect.signature(slot).parameters.values())[1:]
        required = [p for p in parameters if p.default is inspect.Parameter.empty]
        assert len(required) <= _signal_argument_count(binding.signal) <= len(parameters), (
            f"{binding.slot}{inspect.signature(slot)} cannot take what {binding.signal} sends"
        )
    assert len({(binding.widget, binding.signal) for binding in BINDINGS}) == len(BINDINGS)


def test_every_option_widget_class_has_its_signal_and_the_widget_can_make_it(module_ast):
    for kind, (widget_class, signal_signature) in OPTION_WIDGET_CLASSES.items():
        assert signal_signature in WIDGET_SIGNALS[widget_class], f"{kind}: {widget_class} has no {signal_signature}"
        assert _signal_argument_count(signal_signature) == 1, "on_option_changed(name, value) takes one value"
    widget_class = _classes(module_ast)["LesionDetectWidget"]
    factories = next(
        node.value
        for node in widget_class.body
        if isinstance(node, ast.Assign) and ast.unparse(node.targets[0]) == "OPTION_WIDGET_FACTORIES"
    )
    assert {key.value for key in factories.keys} == {cls for cls, _ in OPTION_WIDGET_CLASSES.values()}


def test_the_signal_table_matches_qts_own_meta_objects():
    qt_core = pytest.importorskip("PyQt5.QtCore", reason="PyQt5 checks the Qt part of the table")
    from PyQt5 import QtWidgets

    for class_name, signals in QT_SIGNALS.items():
        qt_class = getattr(QtWidgets, class_name, None) or getattr(qt_core, class_name)
        meta_object = qt_class.staticMetaObject
        real = {
            bytes(meta_object.method(index).methodSignature()).decode()
            for index in range(meta_object.methodCount())
            if meta_object.method(index).methodType() == qt_core.QMetaMethod.Signal
        }
        assert signals <= real, f"{class_name} has no signal(s) {sorted(signals - real)}"


def test_the_widget_connects_only_what_the_binding_tables_say(module_ast):
    connects = [
        node
        for node in ast.walk(module_ast)
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "connect"
    ]
    assert connects, "LesionDetect.py connects no signal"
    for call in connects:
        assert not isinstance(call.args[0], ast.Constant), (
            f"'{ast.unparse(call)}': signals come from BINDINGS or the option fields, not from literals here"
        )
    setup = ast.unparse(_methods(_classes(module_ast)["LesionDetectWidget"])["setup"])
    assert "for binding in BINDINGS:" in setup
    assert "connect(binding.signal, getattr(self.controller, binding.slot))" in setup
    assert "self.controller.setup()" in setup


def test_the_widget_implements_the_view_interface_and_forwards_its_life_cycle(module_ast):
    widget = _methods(_classes(module_ast)["LesionDetectWidget"])
    view_methods = {
        name: function
        for name, function in inspect.getmembers(PanelView, inspect.isfunction)
        if not name.startswith("_")
    }
    assert set(view_methods) >= {
        "set_text",
        "set_enabled",
        "set_progress",
        "start_poll_timer",
        "show_error",
        "confirm",
        "set_busy",
    }
    for name, function in view_methods.items():
        assert name in widget, f"LesionDetectWidget does not implement PanelView.{name}"
        expected = list(inspect.signature(function).parameters)
        assert [argument.arg for argument in widget[name].args.args] == expected, f"{name}: parameters differ"
    set_busy = ast.unparse(widget["set_busy"])
    assert "setOverrideCursor" in set_busy and "WaitCursor" in set_busy and "restoreOverrideCursor" in set_busy
    for life_cycle in ("cleanup", "enter", "exit"):
        assert f"self.controller.{life_cycle}()" in ast.unparse(widget[life_cycle])


# ---------------------------------------------------------------- .ui file


def test_ui_has_every_widget_the_code_uses(module_ast, ui_root):
    used = {
        node.attr
        for node in ast.walk(module_ast)
        if isinstance(node, ast.Attribute) and ast.unparse(node.value) == "self.ui"
    }
    named = {binding.widget for binding in BINDINGS if binding.widget != POLL_TIMER} | set(INPUT_WIDGETS)
    missing = (used | named) - set(_ui_widgets(ui_root))
    assert not missing, f"the code uses {sorted(missing)} but the .ui file has no such widget"


def test_ui_has_the_panel_layout(ui_root):
    widgets = _ui_widgets(ui_root)
    expected = {
        "inputVolumeSelector": "qMRMLNodeComboBox",
        "detectorSelector": "QComboBox",
        "methodSelector": "QComboBox",
        "deviceSelector": "QComboBox",
        "optionsCollapsibleButton": "ctkCollapsibleButton",
        "detectButton": "QPushButton",
        "progressBar": "QProgressBar",
        "statusLabel": "QLabel",
        "resultsSummaryLabel": "QLabel",
        "stlCoordinateSelector": "QComboBox",
        "outputFolderButton": "ctkDirectoryButton",
        "exportStlButton": "QPushButton",
    }
    assert {name: widgets[name].get("class") for name in expected if name in widgets} == expected
    sections = {
        _ui_property(widget, "text").findtext("string")
        for widget in widgets.values()
        if widget.get("class") == "ctkCollapsibleButton"
    }
    assert sections == {"Inputs", "Options", "Run", "Results"}
    assert ui_root.find("widget").get("class") == "qMRMLWidget"
    options_layout = widgets["optionsCollapsibleButton"].find("layout")
    assert options_layout.get("class") == "QFormLayout" and not list(options_layout), "the options box starts empty"


def test_ui_leaves_parameters_and_choices_to_the_controller(ui_root):
    """No connectGui: the controller maps widgets ↔ parameter node, and fills the combo boxes itself."""
    for name, widget in _ui_widgets(ui_root).items():
        assert _ui_property(widget, "SlicerParameterName") is None, f"{name} names a parameter the controller owns"
        if widget.get("class") == "QComboBox":
            assert not widget.findall("item"), f"{name}: the controller lists its items"


def test_ui_connects_the_scene_to_every_node_combo_box(ui_root):
    node_combo_boxes = {
        name for name, widget in _ui_widgets(ui_root).items() if widget.get("class") == "qMRMLNodeComboBox"
    }
    top_name = ui_root.find("widget").get("name")
    connected = {
        connection.findtext("receiver")
        for connection in ui_root.iter("connection")
        if connection.findtext("sender") == top_name
        and connection.findtext("signal") == "mrmlSceneChanged(vtkMRMLScene*)"
        and connection.findtext("slot") == "setMRMLScene(vtkMRMLScene*)"
    }
    assert node_combo_boxes == {"inputVolumeSelector"}, "region selectors are generated from the detector's options"
    assert connected == node_combo_boxes


def test_icons_are_png_of_the_expected_size():
    from PIL import Image

    for path in (MODULE_DIR / "Resources" / "Icons" / "LesionDetect.png", REPO / "Resources" / "LesionDetect.png"):
        with Image.open(path) as icon:
            assert icon.format == "PNG" and icon.size[0] == icon.size[1] >= 128


# ---------------------------------------------------------------- CMake


def _configured_module_lists(tmp_path: Path, slicer_version: tuple[int, int] = (5, 10)) -> dict[str, list[str]]:
    """Configure LesionDetect/CMakeLists.txt with recording stand-ins for Slicer's two macros."""
    project = tmp_path / "project"
    project.mkdir(parents=True)
    record = tmp_path / "record"
    record.mkdir()
    (project / "CMakeLists.txt").write_text(
        textwrap.dedent(f"""\
        cmake_minimum_required(VERSION 3.16.3)
        project(RecordModuleLists NONE)
        function(slicerMacroBuildScriptedModule)
          cmake_parse_arguments(ARG "WITH_GENERIC_TESTS" "NAME" "SCRIPTS;RESOURCES" ${{ARGN}})
          file(WRITE "{record.as_posix()}/scripts" "${{ARG_SCRIPTS}}")
          file(WRITE "{record.as_posix()}/resources" "${{ARG_RESOURCES}}")
        endfunction()
        function(slicer_add_python_unittest)
          cmake_parse_arguments(ARG "" "SCRIPT" "" ${{ARGN}})
          file(WRITE "{record.as_posix()}/unittest" "${{ARG_SCRIPT}}")
        endfunction()
        set(BUILD_TESTING ON)
        set(Slicer_VERSION_MAJOR {slicer_version[0]})
        set(Slicer_VERSION_MINOR {slicer_version[1]})
        add_subdirectory("{MODULE_DIR.as_posix()}" module)
        """)
    )
    subprocess.run(
        ["cmake", "-S", str(project), "-B", str(tmp_path / "build")], check=True, capture_output=True, text=True
    )
    return {name: (record / name).read_text().split(";") for name in ("scripts", "resources", "unittest")}


def _files_on_disk(folder: Path) -> set[str]:
    """Files under `folder`, relative to the module folder, skipping caches and hidden files."""
    return {
        path.relative_to(MODULE_DIR).as_posix()
        for path in folder.rglob("*")
        if path.is_file()
        and "__pycache__" not in path.parts
        and not any(p.startswith(".") for p in path.parts)
        and path.suffix != ".pyc"
    }


@pytest.mark.skipif(shutil.which("cmake") is None, reason="cmake is not installed")
def test_module_cmake_lists_every_package_file_and_registers_the_self_test(tmp_path):
    lists = _configured_module_lists(tmp_path)
    library_files = _files_on_disk(LIB_DIR)
    library_scripts = {path for path in library_files if path.endswith(".py")}
    assert {"LesionDetectLib/app/worker_process.py", "LesionDetectLib/app/panel_controller.py"} <= library_scripts
    assert set(lists["scripts"]) == {"LesionDetect.py"} | library_scripts
    data_files = (library_files - library_scripts) | _files_on_disk(MODULE_DIR / "Resources")
    assert {
        "LesionDetectLib/results/schemas/report.schema.json",
        "Resources/Models/calcium_deep.safetensors",
    } <= data_files
    unlisted = data_files - set(lists["resources"])
    assert not unlisted, f"add these to MODULE_PYTHON_RESOURCES in LesionDetect/CMakeLists.txt: {sorted(unlisted)}"
    assert lists["unittest"] == ["LesionDetect.py"]


@pytest.mark.skipif(shutil.which("cmake") is None, reason="cmake is not installed")
def test_module_cmake_refuses_a_slicer_older_than_the_minimum(tmp_path):
    from LesionDetectLib.app.slicer_version import MINIMUM_SLICER

    text = (MODULE_DIR / "CMakeLists.txt").read_text()
    assert f'set(LESIONDETECT_MINIMUM_SLICER_VERSION "{MINIMUM_SLICER[0]}.{MINIMUM_SLICER[1]}")' in text
    with pytest.raises(subprocess.CalledProcessError) as refused:
        _configured_module_lists(tmp_path / "old", slicer_version=(5, 8))
    assert "LesionDetect needs Slicer 5.10 or later; this is Slicer 5.8." in refused.value.stderr.replace("\n", "")
    assert _configured_module_lists(tmp_path / "new", slicer_version=(5, 11))["unittest"] == ["LesionDetect.py"]


def test_extension_cmake_declares_the_extension():
    text = (REPO / "CMakeLists.txt").read_text()
    for required in (
        "cmake_minimum_required(VERSION 3.16.3)",
        "project(LesionDetect)",
        "find_package(Slicer REQUIRED)",
        "include(${Slicer_USE_FILE})",
        "add_subdirectory(LesionDetect)",
        "include(${Slicer_EXTENSION_GENERATE_CONFIG})",
        "include(${Slicer_EXTENSION_CPACK})",
    ):
        assert required in text
    for variable in ("HOMEPAGE", "CATEGORY", "CONTRIBUTORS", "DESCRIPTION", "ICONURL", "SCREENSHOTURLS", "DEPENDS"):
        assert f"set(EXTENSION_{variable} " in text
    assert "slicer_add_python_unittest(SCRIPT ${MODULE_NAME}.py)" in (MODULE_DIR / "CMakeLists.txt").read_text()


# ---------------------------------------------------------------- dependencies


def test_no_package_is_missing_in_this_environment():
    from LesionDetectLib.detection.registry import detectors

    for detector in detectors().values():
        for method in detector.methods:
            assert dependencies.missing_packages(method) == [], f"{detector.id}/{method.name}"
            assert not dependencies.torch_missing(method)


def test_a_missing_package_is_reported_by_its_pip_requirement(monkeypatch):
    from LesionDetectLib.detection.detector import Method

    monkeypatch.setitem(dependencies.REQUIRED_PACKAGES, "lesiondetect_absent_module", "lesiondetect-absent==1.0")
    assert dependencies.missing_packages(Method("plain", "")) == ["lesiondetect-absent==1.0"]


def test_only_a_method_that_needs_torch_or_declares_packages_asks_for_them():
    from LesionDetectLib.detection.detector import Method

    plain = Method("plain", "")
    network = Method("network", "", needs_torch=True, packages={"lesiondetect_absent_net": "absent-net==1.0"})
    assert dependencies.missing_packages(network) == ["absent-net==1.0"]
    assert dependencies.missing_packages(plain) == []
    assert not dependencies.torch_missing(plain) and not dependencies.torch_missing(network)  # torch is here
    assert dependencies.torch_version_specifier() == ">=2.2,<2.15"


def test_requirements_never_name_a_package_that_must_stay_out_of_slicer():
    from packaging.requirements import Requirement

    from LesionDetectLib.detection.registry import detectors

    requirements = list(dependencies.REQUIRED_PACKAGES.values()) + [dependencies.TORCH_REQUIREMENT]
    requirements += [r for d in detectors().values() for m in d.methods for r in m.packages.values()]
    names = {Requirement(requirement).name.lower() for requirement in requirements}
    assert not names & {name.lower() for name in dependencies.NEVER_PIP_INSTALL}
    assert {"slicer-core", "vtk", "trame-slicer"} <= set(dependencies.NEVER_PIP_INSTALL)
    assert "numpy-stl" not in names, "STL is written with VTK; numpy-stl is a test tool only"


def test_checking_dependencies_imports_none_of_them():
    script = (
        "import sys; from LesionDetectLib.app import dependencies as d; "
        "from LesionDetectLib.app import panel_controller; "
        "from LesionDetectLib.detection.registry import detectors; "
        "methods = [m for det in detectors().values() for m in det.methods]; "
        "assert all(d.missing_packages(m) == [] and not d.torch_missing(m) for m in methods); "
        "heavy = set(d.REQUIRED_PACKAGES) - {'numpy'} | {'torch', 'monai', 'skimage', 'cc3d'}; "
        "print(sorted(heavy & set(sys.modules)))"
    )
    command, env = worker_command([])
    result = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]", "the panel imported a package the worker needs, at load"


# ---------------------------------------------------------------- worker process


def _run_until(worker: WorkerProcess, until=lambda event: event["event"] == EXIT_EVENT, timeout: float = 60.0):
    """Poll like the panel's QTimer until an event matches; return every event seen so far."""
    events = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for event in worker.poll():
            events.append(event)
            if until(event):
                return events
        time.sleep(0.01)
    worker.cancel(grace_seconds=0.1)
    raise AssertionError(f"timed out after {timeout} s; events so far: {events}")


def _alive(pid: int) -> bool:
    """Whether a process exists and is not a zombie."""
    if Path("/proc/self/stat").exists():
        try:
            state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except (FileNotFoundError, ProcessLookupError):
            return False
        return state not in ("Z", "X")
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def _gone_within(pid: int, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if not _alive(pid):
            return True
        time.sleep(0.02)
    return False


def test_parse_event_keeps_json_events_and_wraps_other_lines():
    assert parse_event('{"event": "progress", "fraction": 0.5}\n') == {"event": "progress", "fraction": 0.5}
    assert parse_event("UserWarning: something\n", "stderr") == {
        "event": "log",
        "message": "UserWarning: something",
        "stream": "stderr",
    }
    assert parse_event('{"no_event": 1}')["event"] == "log"
    assert parse_event("[1, 2]")["message"] == "[1, 2]"


def test_worker_command_makes_the_package_importable_from_anywhere(tmp_path):
    command, env = worker_command(["calcium", "in.nrrd"], python="/opt/python")
    assert command == ["/opt/python", "-m", "LesionDetectLib.app.cli", "calcium", "in.nrrd"]
    assert env["PYTHONPATH"].split(os.pathsep)[0] == str(PACKAGE_PARENT)
    assert env["PYTHONUNBUFFERED"] == "1" and env["PYTHONIOENCODING"] == "utf-8"
    probe = [sys.executable, "-c", "import LesionDetectLib; print(LesionDetectLib.__file__); print('≥ 130 HU')"]
    worker = WorkerProcess(probe, env=env, cwd=str(tmp_path))
    events = _run_until(worker)
    assert [event["message"] for event in events[:2]] == [str(LIB_DIR / "__init__.py"), "≥ 130 HU"]
    assert events[-1] == {"event": EXIT_EVENT, "returncode": 0, "cancelled": False}


def test_worker_streams_events_in_order_and_captures_stderr():
    script = textwrap.dedent("""\
        import json, sys
        print(json.dumps({"event": "start", "detector": "calcium"}), flush=True)
        print("not json: a warning on stdout", flush=True)
        for fraction in (0.25, 0.5, 1.0):
            print(json.dumps({"event": "progress", "stage": "score", "fraction": fraction}), flush=True)
        print("Traceback on stderr", file=sys.stderr, flush=True)
        print(json.dumps({"event": "done", "lesions": 3}), flush=True)
        sys.exit(0)
        """)
    worker = WorkerProcess([sys.executable, "-c", script])
    events = _run_until(worker)
    stdout_events = [e for e in events if e.get("stream") != "stderr" and e["event"] != EXIT_EVENT]
    assert [e["event"] for e in stdout_events] == ["start", "log", "progress", "progress", "progress", "done"]
    assert stdout_events[1]["message"] == "not json: a warning on stdout"
    assert [e["fraction"] for e in stdout_events if e["event"] == "progress"] == [0.25, 0.5, 1.0]
    assert {"event": "log", "message": "Traceback on stderr", "stream": "stderr"} in events
    assert events[-1] == {"event": EXIT_EVENT, "returncode": 0, "cancelled": False}
    assert worker.poll() == [] and not worker.is_running and worker.returncode == 0


def test_worker_reports_a_failing_exit_code():
    script = "import json, sys; print(json.dumps({'event': 'error', 'message': 'bad'})); sys.exit(2)"
    worker = WorkerProcess([sys.executable, "-c", script])
    assert worker.wait(30) == 2
    events = _run_until(worker)
    assert events[0] == {"event": "error", "message": "bad"}
    assert events[-1]["returncode"] == 2


_SPAWNS_A_GRANDCHILD = textwrap.dedent("""\
    import json, signal, subprocess, sys, time
    ignore = sys.argv[1] == "ignore-sigterm"
    nap = "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN) if {ignore} else None; time.sleep(120)"
    grandchild = subprocess.Popen([sys.executable, "-c", nap.format(ignore=ignore)])
    if ignore:
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
    print(json.dumps({"event": "spawned", "pid": grandchild.pid}), flush=True)
    time.sleep(120)
    """)


@POSIX_ONLY
def test_cancel_kills_the_child_and_its_grandchild():
    worker = WorkerProcess([sys.executable, "-c", _SPAWNS_A_GRANDCHILD, "obey"])
    events = _run_until(worker, lambda event: event["event"] == "spawned")
    grandchild_pid = events[-1]["pid"]
    assert _alive(grandchild_pid)
    worker.cancel()
    assert worker.wait(10) == -signal.SIGTERM
    assert _gone_within(grandchild_pid, 5), "the grandchild survived the cancel"
    assert _run_until(worker, timeout=10)[-1] == {"event": EXIT_EVENT, "returncode": -signal.SIGTERM, "cancelled": True}


@POSIX_ONLY
def test_cancel_returns_at_once_and_kills_a_tree_that_ignores_sigterm():
    worker = WorkerProcess([sys.executable, "-c", _SPAWNS_A_GRANDCHILD, "ignore-sigterm"])
    events = _run_until(worker, lambda event: event["event"] == "spawned")
    grandchild_pid = events[-1]["pid"]
    started = time.monotonic()
    worker.cancel(grace_seconds=1.0)
    assert time.monotonic() - started < 0.5, "cancel() must not block the Slicer GUI"
    time.sleep(0.3)
    assert worker.is_running, "the child ignores SIGTERM, so it must still run during the grace period"
    assert worker.wait(10) == -signal.SIGKILL
    assert _gone_within(grandchild_pid, 5), "the grandchild survived SIGKILL of its process group"


@POSIX_ONLY
def test_when_exited_calls_back_on_another_thread_once_the_process_is_gone(tmp_path):
    import threading

    worker = WorkerProcess([sys.executable, "-c", _SPAWNS_A_GRANDCHILD, "ignore-sigterm"])
    events = _run_until(worker, lambda event: event["event"] == "spawned")
    called = []
    started = time.monotonic()
    worker.cancel(grace_seconds=0.5)
    thread = worker.when_exited(lambda: called.append((worker.returncode, threading.current_thread())))
    assert time.monotonic() - started < 0.2 and not called, "when_exited() must not block"
    thread.join(10)
    assert called == [(-signal.SIGKILL, thread)]
    assert _gone_within(events[-1]["pid"], 5)


# ---------------------------------------------------------------- the real CLI


@pytest.fixture(scope="module")
def sample_nrrd(tmp_path_factory) -> Path:
    from LesionDetectLib.detectors.calcium.sample import make_sample
    from LesionDetectLib.io.volume_io import write_nrrd

    volume, _, _ = make_sample(shape_ijk=(128, 128, 24))
    path = tmp_path_factory.mktemp("sample") / "sample.nrrd"
    write_nrrd(volume, path)
    return path


def _cli_args(sample_nrrd: Path, out_dir: Path) -> list[str]:
    return [
        "calcium",
        str(sample_nrrd),
        "-o",
        str(out_dir),
        "--method",
        "classical",
        "--progress",
        "json",
        "--device",
        "cpu",
        "--no-snapshot",
    ]


def test_worker_process_runs_real_cli(sample_nrrd, tmp_path):
    out_dir = tmp_path / "results"
    command, env = worker_command(_cli_args(sample_nrrd, out_dir))
    worker = WorkerProcess(command, env=env, cwd=str(tmp_path))
    events = _run_until(worker, timeout=300)
    json_events = [e for e in events if e["event"] not in ("log", EXIT_EVENT)]
    assert json_events[0]["event"] == "start" and json_events[0]["detector"] == "calcium"
    fractions = [e["fraction"] for e in json_events if e["event"] == "progress"]
    assert fractions and all(0.0 <= f <= 1.0 for f in fractions)
    assert fractions == sorted(fractions), "progress went backwards"
    done = json_events[-1]
    assert done["event"] == "done", events
    assert done["lesions"] > 0 and "agatston_total" in done["summary"]
    assert Path(done["report"]).is_file() and Path(done["output"]) == out_dir.resolve()
    assert json.loads(Path(done["report"]).read_text())["detector"] == "calcium"
    assert events[-1] == {"event": EXIT_EVENT, "returncode": 0, "cancelled": False}


@POSIX_ONLY
def test_cancelling_the_real_cli_writes_nothing(sample_nrrd, tmp_path):
    # The real CLI, run with a progress reporter that pauses 0.5 s after each event, so that the
    # cancel lands mid-run instead of racing a run that takes 50 ms on this small sample.
    slow_cli = (
        "import runpy, time; from LesionDetectLib.detection import progress; report = progress.Progress.__call__; "
        "progress.Progress.__call__ = lambda self, *a, **k: (report(self, *a, **k), time.sleep(0.5))[0]; "
        "runpy.run_module('LesionDetectLib.app.cli', run_name='__main__')"
    )
    out_dir = tmp_path / "results"
    command, env = worker_command(_cli_args(sample_nrrd, out_dir))
    worker = WorkerProcess([sys.executable, "-c", slow_cli, *command[3:]], env=env, cwd=str(tmp_path))
    events = _run_until(worker, lambda event: event["event"] == "progress", timeout=120)
    worker.cancel()
    events += _run_until(worker, timeout=30)
    assert worker.returncode in (130, -signal.SIGTERM)
    if worker.returncode == 130:
        assert "cancelled" in [e["event"] for e in events]
    assert "done" not in [e["event"] for e in events]
    assert not out_dir.exists(), "a cancelled run left an output folder"
    assert not [p.name for p in tmp_path.iterdir() if p.name.startswith(".results")], "staging folder left behind"


# ---------------------------------------------------------------- the panel's path on a real scene


def _add_volume_node(scene, volume, node_class="vtkMRMLScalarVolumeNode", name=None):
    import slicer.util

    node = scene.AddNewNodeByClass(node_class, name or volume.name)
    node.SetIJKToRASMatrix(slicer.util.vtkMatrixFromArray(volume.ijk_to_ras))
    slicer.util.updateVolumeFromArray(node, volume.array)
    return node


def test_detect_import_and_export_like_the_panel(mrml_scene, tmp_path):
    from LesionDetectLib.app.detection_run import export_stl, import_results, start_detection, summary_text
    from LesionDetectLib.detectors.calcium.sample import make_sample
    from LesionDetectLib.errors import LesionDetectError
    from LesionDetectLib.io.volume import Volume

    volume, _, heart_mask = make_sample(shape_ijk=(128, 128, 24))
    volume_node = _add_volume_node(mrml_scene, volume)
    region_node = _add_volume_node(
        mrml_scene, Volume(heart_mask, volume.ijk_to_ras, "heart"), "vtkMRMLLabelMapVolumeNode"
    )
    run = start_detection(
        volume_node,
        tmp_path / "work",
        detector="calcium",
        method="classical",
        device="cpu",
        options={"region": region_node},
    )
    assert sorted(p.name for p in run.work_dir.iterdir()) == ["input.nrrd", "region.nrrd"]
    for event in _run_until(run.worker, timeout=300):
        run.record(event)
    assert run.worker.returncode == 0 and run.error_message is None, list(run.log_tail)
    assert run.done_event["summary"]["scope"] == "region"

    findings = import_results(mrml_scene, run.done_event["output"], volume_node)
    assert len(findings.lesions) == run.done_event["lesions"] > 0
    assert mrml_scene.GetNodesByClass("vtkMRMLMarkupsROINode").GetNumberOfItems() == len(findings.lesions)
    text = summary_text(findings)
    assert text.startswith(f"{len(findings.lesions)} lesion(s) found.")
    assert "Agatston " in text and findings.summary["scope_note"] in text
    run.discard()
    assert not run.work_dir.exists()

    stl_dir = tmp_path / "stl"
    paths = export_stl(mrml_scene, volume_node, "calcium", stl_dir, "RAS")
    assert len(paths) == 1 + len([lesion for lesion in findings.lesions if lesion.surface is not None])
    assert all(path.is_file() and b"SPACE=RAS" in path.read_bytes()[:80] for path in paths)
    with pytest.raises(LesionDetectError):
        export_stl(mrml_scene, volume_node, "calcium", stl_dir, "RAS")
    other_node = _add_volume_node(mrml_scene, volume, name="no run yet")
    with pytest.raises(LesionDetectError, match="run Detect"):
        export_stl(mrml_scene, other_node, "calcium", tmp_path / "none")


def test_option_flags_round_trip_through_the_clis_own_parser(tmp_path):
    """What start_detection passes is what the CLI's flags (generated from the same specs) parse back."""
    import argparse

    from test_panel_toy_detector import ToyOptions

    from LesionDetectLib.app.detection_run import option_arguments
    from LesionDetectLib.detection.options import add_option_flags, options_from_args

    region_node = object()
    written = {}

    def write_region(name, node):
        written[name] = node
        return tmp_path / f"{name}.nrrd"

    values = {"threshold_hu": 0.1 + 0.2, "min_voxels": 4, "merge": False, "label": "spot", "region": region_node}
    args = option_arguments(ToyOptions, values, write_region)
    assert written == {"region": region_node}
    assert args[:2] == ["--region", str(tmp_path / "region.nrrd")] and "--no-merge" in args
    parser = argparse.ArgumentParser()
    add_option_flags(parser, ToyOptions)
    parsed = options_from_args(ToyOptions, parser.parse_args(args), lambda kind, path: f"{kind} mask of {path}")
    assert parsed.threshold_hu == 0.1 + 0.2, "floats travel at full precision"
    assert (parsed.min_voxels, parsed.merge, parsed.label) == (4, False, "spot")
    assert parsed.region == f"region mask of {tmp_path / 'region.nrrd'}"
    no_values = parser.parse_args(option_arguments(ToyOptions, {}, write_region))
    defaults = options_from_args(ToyOptions, no_values, lambda kind, path: path)
    assert defaults == ToyOptions(), "no values: every default, and no region flag"


def test_starting_without_a_volume_says_so_and_leaves_no_folder(tmp_path):
    from LesionDetectLib.app.detection_run import start_detection
    from LesionDetectLib.errors import LesionDetectError

    work_dir = tmp_path / "work"
    work_dir.mkdir()
    with pytest.raises(LesionDetectError, match="input volume"):
        start_detection(None, work_dir, detector="calcium")
    assert not work_dir.exists()


def test_summary_text_is_the_count_the_detectors_lines_and_the_warnings():
    from LesionDetectLib.app.detection_run import summary_text
    from LesionDetectLib.detection.findings import Findings
    from LesionDetectLib.io.volume import Volume

    summary = {"agatston_total": 123.456, "category": "101-400", "cac_drs": "A2", "scope_note": "Whole field."}
    findings = Findings("calcium", "classical", Volume(np.zeros((2, 2, 2), np.int16), np.eye(4)), [], summary)
    findings.warnings = ["gantry tilt of 7° corrected"]
    assert summary_text(findings) == (
        "0 lesion(s) found.\nAgatston 123.5 (category 101-400, CAC-DRS A2)\nWhole field.\n"
        "Warning: gantry tilt of 7° corrected"
    )
