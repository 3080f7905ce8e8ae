"""The Slicer module without the Slicer app: its source, .ui, CMake, dependency table and worker process.

`LesionDetect.py` imports qt, which only exists inside Slicer, so it is checked through its AST; the
worker process is exercised against real child processes, and against the real CLI.
"""

from __future__ import annotations

import ast
import json
import os
import py_compile
import re
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

from LesionDetectLib import dependencies
from LesionDetectLib.worker_process import EXIT_EVENT, PACKAGE_PARENT, WorkerProcess, parse_event, worker_command

REPO = Path(__file__).resolve().parents[1]
MODULE_DIR = REPO / "LesionDetect"
MODULE_FILE = MODULE_DIR / "LesionDetect.py"
UI_FILE = MODULE_DIR / "Resources" / "UI" / "LesionDetect.ui"
LIB_DIR = MODULE_DIR / "LesionDetectLib"
POSIX_ONLY = pytest.mark.skipif(os.name == "nt", reason="process-group signals are POSIX; Windows uses taskkill")


# ---------------------------------------------------------------- module source


@pytest.fixture(scope="module")
def module_ast() -> ast.Module:
    return ast.parse(MODULE_FILE.read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def ui_root() -> ElementTree.Element:
    return ElementTree.parse(UI_FILE).getroot()


def _classes(tree: ast.Module) -> dict[str, ast.ClassDef]:
    return {node.name: node for node in tree.body if isinstance(node, ast.ClassDef)}


def _parameter_node_class(tree: ast.Module) -> ast.ClassDef:
    wrapped = [
        node
        for node in _classes(tree).values()
        if any(ast.unparse(decorator) == "parameterNodeWrapper" for decorator in node.decorator_list)
    ]
    assert len(wrapped) == 1, "expected exactly one @parameterNodeWrapper class"
    return wrapped[0]


def _parameters(tree: ast.Module) -> dict[str, ast.AnnAssign]:
    """Parameter name → its annotated assignment in the parameter node class."""
    return {
        node.target.id: node
        for node in _parameter_node_class(tree).body
        if isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name)
    }


def _module_constants(tree: ast.Module) -> dict[str, object]:
    """Module-level NAME = <literal> assignments."""
    constants = {}
    for node in tree.body:
        if isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name):
            try:
                constants[node.targets[0].id] = ast.literal_eval(node.value)
            except ValueError:
                pass
    return constants


def _choices(annotation: ast.expr, constants: dict) -> list | None:
    """The values of a `Choice(...)` inside an annotation, or None without one."""
    for node in ast.walk(annotation):
        if isinstance(node, ast.Call) and ast.unparse(node.func) == "Choice":
            argument = node.args[0]
            return constants[argument.id] if isinstance(argument, ast.Name) else ast.literal_eval(argument)
    return None


def _ui_widgets(root: ElementTree.Element) -> dict[str, ElementTree.Element]:
    return {widget.get("name"): widget for widget in root.iter("widget")}


def _ui_property(widget: ElementTree.Element, name: str) -> ElementTree.Element | None:
    return next((prop for prop in widget.findall("property") if prop.get("name") == name), None)


def _parameter_widgets(root: ElementTree.Element) -> dict[str, ElementTree.Element]:
    """SlicerParameterName → the widget carrying it."""
    bound = {}
    for widget in root.iter("widget"):
        prop = _ui_property(widget, "SlicerParameterName")
        if prop is not None:
            bound[prop.findtext("string")] = widget
    return bound


def test_module_file_compiles(tmp_path):
    py_compile.compile(str(MODULE_FILE), cfile=str(tmp_path / "LesionDetect.pyc"), doraise=True)


def test_module_defines_the_four_template_classes(module_ast):
    expected_bases = {
        "LesionDetect": ["ScriptedLoadableModule"],
        "LesionDetectWidget": ["ScriptedLoadableModuleWidget", "VTKObservationMixin"],
        "LesionDetectLogic": ["ScriptedLoadableModuleLogic"],
        "LesionDetectTest": ["ScriptedLoadableModuleTest"],
    }
    classes = _classes(module_ast)
    for name, bases in expected_bases.items():
        assert name in classes, f"LesionDetect.py lacks class {name}"
        assert [ast.unparse(base) for base in classes[name].bases] == bases
    assert _parameter_node_class(module_ast).name == "LesionDetectParameterNode"


def test_logic_and_test_classes_have_the_entry_points_the_panel_and_ctest_call(module_ast):
    classes = _classes(module_ast)
    methods = {name: {f.name for f in node.body if isinstance(f, ast.FunctionDef)} for name, node in classes.items()}
    assert {"getParameterNode", "startDetection", "importResults", "exportStl"} <= methods["LesionDetectLogic"]
    assert {"setUp", "runTest"} <= methods["LesionDetectTest"]
    assert {"setup", "cleanup", "enter", "exit", "onDetectButton", "onExportStlButton"} <= methods["LesionDetectWidget"]


def test_module_never_fakes_slicer_and_imports_no_heavy_package_at_load(module_ast):
    top_level_imports = set()
    for node in module_ast.body:
        if isinstance(node, ast.Import):
            top_level_imports |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            top_level_imports.add(node.module)
    assert not top_level_imports & {"torch", "monai", "skimage", "cc3d", "stl", "LesionDetectLib.scene"}
    assert {"slicer", "qt", "slicer.ScriptedLoadableModule"} <= top_level_imports


# ---------------------------------------------------------------- .ui file


def test_ui_has_every_widget_the_code_uses(module_ast, ui_root):
    used = {
        node.attr
        for node in ast.walk(module_ast)
        if isinstance(node, ast.Attribute) and ast.unparse(node.value) == "self.ui"
    }
    assert len(used) >= 10, f"expected the panel to use its widgets, found only {sorted(used)}"
    missing = used - set(_ui_widgets(ui_root))
    assert not missing, f"LesionDetect.py uses self.ui.{sorted(missing)} but the .ui file has no such widget"


def test_ui_has_the_panel_layout(ui_root):
    widgets = _ui_widgets(ui_root)
    expected = {
        "inputVolumeSelector": "qMRMLNodeComboBox",
        "regionSelector": "qMRMLNodeComboBox",
        "detectorSelector": "QComboBox",
        "methodSelector": "QComboBox",
        "deviceSelector": "QComboBox",
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
    assert sections == {"Inputs", "Run", "Results"}
    assert ui_root.find("widget").get("class") == "qMRMLWidget"


def test_ui_parameter_names_exist_and_fit_their_widgets(module_ast, ui_root):
    parameters = _parameters(module_ast)
    constants = _module_constants(module_ast)
    bound = _parameter_widgets(ui_root)
    assert set(bound) == {"inputVolume", "regionNode", "device", "stlCoordinateSystem", "outputFolder"}
    for name, widget in bound.items():
        assert name in parameters, f"the .ui binds '{name}', which LesionDetectParameterNode does not define"
        annotation = parameters[name].annotation
        widget_class = widget.get("class")
        if widget_class == "QComboBox":  # connectGui needs a Choice, and refills the box with it
            choices = _choices(annotation, constants)
            assert choices, f"'{name}' is bound to a QComboBox but has no Choice annotation"
            items = [item.findtext("property/string") for item in widget.findall("item")]
            assert items == choices
            assert ast.literal_eval(parameters[name].value) in choices
        elif widget_class == "ctkDirectoryButton":
            assert ast.unparse(annotation) in ("Path", "pathlib.Path")
        elif widget_class == "qMRMLNodeComboBox":
            node_types = [s.text for s in _ui_property(widget, "nodeTypes").iter("string")]
            annotated = [n.id for n in ast.walk(annotation) if isinstance(n, ast.Name) and n.id.startswith("vtkMRML")]
            assert node_types == annotated
        else:
            pytest.fail(f"no connectGui connector for {widget_class} ('{name}')")


def test_unbound_parameters_are_driven_by_the_widget_code(module_ast, ui_root):
    parameters = set(_parameters(module_ast))
    unbound = parameters - set(_parameter_widgets(ui_root))
    assert unbound == {"detector", "method"}
    source = MODULE_FILE.read_text(encoding="utf-8")
    for name in unbound:
        assert f"self._parameterNode.{name} = " in source


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
    assert node_combo_boxes == {"inputVolumeSelector", "regionSelector"}
    assert connected == node_combo_boxes


def test_icons_are_png_of_the_expected_size():
    from PIL import Image

    for path in (MODULE_DIR / "Resources" / "Icons" / "LesionDetect.png", REPO / "Resources" / "LesionDetect.png"):
        with Image.open(path) as icon:
            assert icon.format == "PNG" and icon.size[0] == icon.size[1] >= 128


# ---------------------------------------------------------------- CMake


def _configured_module_lists(tmp_path: Path) -> dict[str, list[str]]:
    """Configure LesionDetect/CMakeLists.txt with recording stand-ins for Slicer's two macros."""
    project = tmp_path / "project"
    project.mkdir()
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
    assert "LesionDetectLib/worker_process.py" in library_scripts
    assert set(lists["scripts"]) == {"LesionDetect.py"} | library_scripts
    data_files = (library_files - library_scripts) | _files_on_disk(MODULE_DIR / "Resources")
    assert "LesionDetectLib/schemas/report.schema.json" in data_files
    unlisted = data_files - set(lists["resources"])
    assert not unlisted, f"add these to MODULE_PYTHON_RESOURCES in LesionDetect/CMakeLists.txt: {sorted(unlisted)}"
    assert lists["unittest"] == ["LesionDetect.py"]


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
    assert dependencies.missing_packages() == []
    assert not dependencies.torch_missing()


def test_a_missing_package_is_reported_by_its_pip_requirement(monkeypatch):
    monkeypatch.setitem(dependencies.REQUIRED_PACKAGES, "lesiondetect_absent_module", "lesiondetect-absent==1.0")
    assert dependencies.missing_packages() == ["lesiondetect-absent==1.0"]


def test_only_methods_with_networks_ask_for_torch_and_monai(monkeypatch):
    assert dependencies.needs_networks("deep") and not dependencies.needs_networks("classical")
    monkeypatch.setitem(dependencies.NETWORK_PACKAGES, "lesiondetect_absent_network", "absent-network==1.0")
    assert "absent-network==1.0" in dependencies.missing_packages("deep")
    assert "absent-network==1.0" not in dependencies.missing_packages("classical")


def test_requirements_never_name_a_package_that_must_stay_out_of_slicer():
    requirements = {**dependencies.REQUIRED_PACKAGES, **dependencies.NETWORK_PACKAGES}.values()
    names = {re.split("[=<>]", requirement)[0].lower() for requirement in requirements}
    assert not names & {name.lower() for name in dependencies.NEVER_PIP_INSTALL}
    assert {"slicer-core", "vtk", "trame-slicer"} <= set(dependencies.NEVER_PIP_INSTALL)
    assert dependencies.NETWORK_PACKAGES["monai"] == "monai==1.6.1"
    assert dependencies.REQUIRED_PACKAGES["skimage"] == "scikit-image==0.26.*"


def test_checking_dependencies_imports_none_of_them():
    script = (
        "import sys; from LesionDetectLib import dependencies as d; "
        "assert d.missing_packages() == [] and not d.torch_missing(); "
        "print(sorted((set(d.REQUIRED_PACKAGES) | {'torch'}) & set(sys.modules)))"
    )
    command, env = worker_command([])
    result = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"


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
    assert command == ["/opt/python", "-m", "LesionDetectLib.cli", "calcium", "in.nrrd"]
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


# ---------------------------------------------------------------- the real CLI


def _cli_importable() -> bool:
    try:
        import LesionDetectLib.cli  # noqa: F401
    except ImportError:
        return False
    return True


NEEDS_CLI = pytest.mark.skipif(not _cli_importable(), reason="LesionDetectLib.cli cannot be imported yet")


@pytest.fixture(scope="module")
def sample_nrrd(tmp_path_factory) -> Path:
    from LesionDetectLib.sample import make_sample
    from LesionDetectLib.volume_io import write_nrrd

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


@NEEDS_CLI
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


@NEEDS_CLI
@POSIX_ONLY
def test_cancelling_the_real_cli_writes_nothing(sample_nrrd, tmp_path):
    # The real CLI, run with a progress reporter that pauses 0.5 s after each event, so that the
    # cancel lands mid-run instead of racing a run that takes 50 ms on this small sample.
    slow_cli = (
        "import runpy, time; from LesionDetectLib import progress; report = progress.Progress.__call__; "
        "progress.Progress.__call__ = lambda self, *a, **k: (report(self, *a, **k), time.sleep(0.5))[0]; "
        "runpy.run_module('LesionDetectLib.cli', run_name='__main__')"
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


@NEEDS_CLI
def test_detect_import_and_export_like_the_panel(mrml_scene, tmp_path):
    from LesionDetectLib.detection_run import export_stl, import_results, start_detection, summary_text
    from LesionDetectLib.errors import LesionDetectError
    from LesionDetectLib.sample import make_sample
    from LesionDetectLib.volume import Volume

    volume, _, heart_mask = make_sample(shape_ijk=(128, 128, 24))
    volume_node = _add_volume_node(mrml_scene, volume)
    region_node = _add_volume_node(
        mrml_scene, Volume(heart_mask, volume.ijk_to_ras, "heart"), "vtkMRMLLabelMapVolumeNode"
    )
    run = start_detection(volume_node, tmp_path / "work", device="cpu", region_node=region_node)
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
    assert "Agatston total: " in text and findings.summary["scope_note"] in text
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


def test_starting_without_a_volume_says_so_and_leaves_no_folder(tmp_path):
    from LesionDetectLib.detection_run import start_detection
    from LesionDetectLib.errors import LesionDetectError

    work_dir = tmp_path / "work"
    work_dir.mkdir()
    with pytest.raises(LesionDetectError, match="input volume"):
        start_detection(None, work_dir)
    assert not work_dir.exists()


def test_summary_text_lists_scalar_values_and_ends_with_the_scope_note():
    from LesionDetectLib.detection_run import summary_text
    from LesionDetectLib.findings import Findings
    from LesionDetectLib.volume import Volume

    summary = {
        "agatston_total": 123.456,
        "category": "101–400",
        "per_artery": None,
        "scope_note": "Whole field.",
        "excluded": {"bone": 2},
    }
    findings = Findings("calcium", "classical", Volume(np.zeros((2, 2, 2), np.int16), np.eye(4)), [], summary)
    assert summary_text(findings) == "0 lesion(s) found.\nAgatston total: 123.5\nCategory: 101–400\nWhole field."
