"""Bad input as a new user gives it, through the real `lesiondetect` program: the exit code, a message that
names the problem (read with every path cut out of it, so the path itself cannot supply a keyword), and a
file system left byte-identical (nothing written, nothing lost, no staging folder left behind).

Every input lives under neutral names (`case/input.nii.gz`, `case/`, `results/out`). The second half
checks the header-against-file checks of each volume format in this process, case by case.
"""

import gzip
import json
import os
import re
import resource
import subprocess
import sys
from pathlib import Path

import imageio.v3 as iio
import numpy as np
import pytest
import SimpleITK as sitk
from dicom_series import write_ct_series
from file_tree import tree_state

from LesionDetectLib.app.cli import main
from LesionDetectLib.detectors.calcium.model import DEFAULT_MANIFEST
from LesionDetectLib.detectors.calcium.sample import make_sample
from LesionDetectLib.errors import LesionDetectError
from LesionDetectLib.io import volume_layout
from LesionDetectLib.io.read_input import read_input
from LesionDetectLib.io.volume import Volume, ijk_to_ras_matrix
from LesionDetectLib.io.volume_io import write_nrrd

REPO = Path(__file__).resolve().parents[1]
HUGE_SIZES = (2048, 2048, 1000)
ADDRESS_SPACE_LIMIT = 4 << 30  # the huge-header case runs under this, well below the 8.4 GB its header claims


def run_cli(*args, address_space=None):
    """`python -m LesionDetectLib.app.cli ARGS` in its own process, JSON-lines progress on stdout."""

    def limit():
        resource.setrlimit(resource.RLIMIT_AS, (address_space, address_space))

    return subprocess.run(
        [sys.executable, "-m", "LesionDetectLib.app.cli", *map(str, args)],
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(REPO / "LesionDetect")},
        timeout=300,
        preexec_fn=limit if address_space else None,
    )


def without_paths(message: str, root: Path) -> str:
    """`message` with every path under `root` (and the bare names of the inputs) cut out."""
    for prefix in {str(root.resolve()), str(root)}:
        message = re.sub(re.escape(prefix) + r"[^\s'\",;:()]*", "<path>", message)
    return re.sub(r"\binput\.[a-z.]+\b", "<file>", message)


# ---- inputs ------------------------------------------------------------------------------------------


def ct_array(shape=(8, 32, 32)) -> np.ndarray:
    """CT-like HU: soft tissue with a corner of air."""
    ct = np.full(shape, 40, np.int16)
    ct[:, :2, :2] = -1000
    return ct


def write_image(path: Path, array, spacing=(0.4, 0.4, 3.0), modality="CT", compress=False) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    image = sitk.GetImageFromArray(array)
    image.SetSpacing(spacing[: image.GetDimension()])
    if modality:
        image.SetMetaData("modality", modality)
    sitk.WriteImage(image, str(path), useCompression=compress)
    return path


def truncated(path: Path) -> Path:
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    return path


def huge_header_nrrd(path: Path) -> Path:
    """A ~211-byte gzip NRRD whose header claims 2048×2048×1000 int16 voxels (8.4 GB)."""
    header = (
        "NRRD0004\n# a tiny file with a huge header\ntype: short\ndimension: 3\n"
        f"sizes: {' '.join(map(str, HUGE_SIZES))}\nspace: left-posterior-superior\n"
        "space directions: (0.4,0,0) (0,0.4,0) (0,0,0.5)\nendian: little\nencoding: gzip\n\n"
    )
    path.write_bytes(header.encode() + gzip.compress(bytes(4096)))
    return path


def zero_spacing_nrrd(path: Path) -> Path:
    header = (
        "NRRD0004\ntype: short\ndimension: 3\nspace: left-posterior-superior\nsizes: 32 32 8\n"
        "space directions: (0.4,0,0) (0,0.4,0) (0,0,0)\nendian: little\nencoding: raw\nspace origin: (0,0,0)\n\n"
    )
    path.write_bytes(header.encode() + ct_array().tobytes())
    return path


def ct_volume(pixel_mm=0.4) -> Volume:
    """A CT-like volume: 12 slices of 64×64 pixels of `pixel_mm` (HU, air around a body)."""
    array = np.full((12, 64, 64), -1000, np.int16)
    array[:, 8:56, 8:56] = 40
    array[5, 30:33, 30:33] = 600
    return Volume(array, ijk_to_ras_matrix((pixel_mm, pixel_mm, 3.0), (0, 0, 0)), "ct", "CT")


def small_ct() -> Volume:
    return make_sample(shape_ijk=(64, 64, 24))[0]


def manifest_with_wrong_sha256(path: Path) -> Path:
    manifest = json.loads(DEFAULT_MANIFEST.read_text())
    manifest["weights"] = str(DEFAULT_MANIFEST.parent / manifest["weights"])
    manifest["sha256"] = "0" * 64
    path.write_text(json.dumps(manifest))
    return path


def previous_results(root: Path, output: Path) -> None:
    """A real earlier run's results (and a file of the user's) in `output`."""
    scan = write_nrrd_volume(root / "earlier" / "scan.nrrd", small_ct())
    assert main(["calcium", "--method", "classical", str(scan), "-o", str(output), "--progress", "none"]) == 0
    (output / "notes.txt").write_text("mine")


def write_nrrd_volume(path: Path, volume: Volume) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    write_nrrd(volume, path)
    return path


def case_input(name: str, root: Path):
    """(the CLI arguments after `calcium`, exit code, words the message needs, names it must mention)."""
    case = root / "case"
    out = root / "results" / "out"
    nrrd = case / "input.nrrd"
    if name == "truncated .nii.gz":
        scan = truncated(write_image(case / "input.nii.gz", ct_volume().array))
        return [scan, "--method", "classical"], 2, ["shorter than its header says"], ["input.nii.gz"]
    if name == "truncated .nii":
        scan = truncated(write_image(case / "input.nii", ct_volume().array))
        return [scan, "--method", "classical"], 2, ["shorter than its header says"], ["input.nii"]
    if name == "text named .nii.gz":
        case.mkdir()
        (case / "input.nii.gz").write_text("patient notes, not an image\n")
        return [case / "input.nii.gz"], 2, ["not a valid NIfTI file"], ["input.nii.gz"]
    if name == "tiny gzip NRRD, huge header":
        case.mkdir()
        scan = huge_header_nrrd(nrrd)
        assert scan.stat().st_size < 300
        return [scan, "--method", "classical"], 2, ["shorter than its header says", "2048×2048×1000"], []
    if name == "MR":
        return [write_image(nrrd, np.abs(ct_array()), modality="MR")], 2, ["MR", "CT"], []
    if name == "2D PNG":
        case.mkdir()
        iio.imwrite(case / "input.png", np.full((32, 32), 90, np.uint8))
        return [case / "input.png"], 2, ["volume"], []
    if name == "one-slice NRRD":
        return [write_image(nrrd, ct_array()[:1])], 2, ["not a 3D volume"], []
    if name == "2D NRRD":
        return [write_image(nrrd, ct_array()[0])], 2, ["2D image", "3D volume"], []
    if name == "zero spacing":
        case.mkdir()
        return [zero_spacing_nrrd(nrrd)], 2, ["zero or missing voxel spacing"], []
    if name == "NaN voxels":
        nan_ct = ct_array().astype(np.float32)
        nan_ct[3, 5, 5] = np.nan
        return [write_image(nrrd, nan_ct)], 2, ["NaN"], []
    if name == "empty folder":
        case.mkdir()
        return [case], 2, ["holds no files"], []
    if name == "folder without images":
        case.mkdir()
        (case / "notes.txt").write_text("scan on Monday\n")
        (case / "README.md").write_text("# study\n")
        return [case], 2, ["no DICOM images", "PNG"], []
    if name == "corrupt DICOM in a series":
        volume = small_ct()
        write_ct_series(Volume(volume.array[:6].copy(), volume.ijk_to_ras, "ct", "CT"), case)
        (case / "CT0003.dcm").write_bytes(b"\0" * 128 + b"DICM" + b"\x02\x00garbage")
        return [case], 2, ["damaged", "DICOM"], ["CT0003.dcm"]
    if name == "two series in a folder":
        volume = small_ct()
        write_ct_series(volume, case / "a")
        write_ct_series(volume, case / "b")
        return [case], 2, ["2 DICOM series", "--series-uid"], []
    if name == "frame sequence":
        case.mkdir()
        for frame in range(3):
            iio.imwrite(case / f"frame{frame}.png", np.full((32, 32), 40 * frame, np.uint8))
        return [case], 2, ["sequence", "volume"], []
    if name == "output exists":
        previous_results(root, out)
        scan = write_nrrd_volume(nrrd, small_ct())
        return [scan, "--method", "classical", "-o", out], 3, ["already holds results", "--overwrite"], ["out"]
    if name == "output is a file":
        scan = write_nrrd_volume(nrrd, small_ct())
        out.parent.mkdir()
        out.write_text("not a folder\n")
        return [scan, "--method", "classical", "-o", out], 2, ["file"], ["out"]
    if name == "output under a file":
        scan = write_nrrd_volume(nrrd, small_ct())
        (root / "somefile").write_text("a file, not a folder\n")
        args = [scan, "--method", "classical", "-o", root / "somefile" / "out"]
        return args, 2, [("not a folder", "not a directory", "is a file", "file exists")], ["somefile"]
    if name == "weights: JSON that is not a manifest":
        scan = write_nrrd_volume(nrrd, ct_volume())
        (root / "model.json").write_text(json.dumps({"model": "mine"}))
        return [scan, "--method", "deep", "--weights", root / "model.json"], 2, ["manifest", "lacks"], ["model.json"]
    if name == "weights: sha256 mismatch":
        scan = write_nrrd_volume(nrrd, ct_volume())
        manifest = manifest_with_wrong_sha256(root / "model.json")
        return [scan, "--method", "deep", "--weights", manifest], 2, ["sha256"], ["model.json"]
    if name == "deep outside its trained pixel size":
        volume = ct_volume(pixel_mm=2.0)  # far outside any trained range (input_range refuses > 25 % beyond)
        return [write_nrrd_volume(nrrd, volume), "--method", "deep"], 2, ["pixel"], []
    raise AssertionError(name)


CASES = [
    "truncated .nii.gz",
    "truncated .nii",
    "text named .nii.gz",
    "tiny gzip NRRD, huge header",
    "MR",
    "2D PNG",
    "one-slice NRRD",
    "2D NRRD",
    "zero spacing",
    "NaN voxels",
    "empty folder",
    "folder without images",
    "corrupt DICOM in a series",
    "two series in a folder",
    "frame sequence",
    "output exists",
    "output is a file",
    "output under a file",
    "weights: JSON that is not a manifest",
    "weights: sha256 mismatch",
    "deep outside its trained pixel size",
]


@pytest.mark.parametrize("name", CASES)
def test_bad_input_is_refused_by_name_and_leaves_the_file_system_as_it_was(tmp_path, name):
    root = tmp_path / "work"
    root.mkdir()
    args, exit_code, words, names = case_input(name, root)
    if "-o" not in args:
        args += ["-o", root / "results" / "out"]
    before = tree_state(tmp_path)
    address_space = ADDRESS_SPACE_LIMIT if name.startswith("tiny") else None
    result = run_cli("calcium", *args, "--progress", "json", address_space=address_space)
    events = [json.loads(line) for line in result.stdout.splitlines() if line.startswith("{")]
    assert events and events[-1]["event"] == "error", result.stdout + result.stderr
    assert (result.returncode, events[-1]["exit_code"]) == (exit_code, exit_code), events[-1]["message"]
    message = events[-1]["message"]
    for needed in names:
        assert needed in message, message
    bare = without_paths(message, root).lower()
    for word in words:
        alternatives = word if isinstance(word, tuple) else (word,)
        assert any(option.lower() in bare for option in alternatives), f"{word!r} not in: {bare}"
    assert "Traceback" not in result.stderr
    assert tree_state(tmp_path) == before


def test_neutral_names_leave_no_keyword_in_the_paths(tmp_path):
    """The table's keywords must come from the message: a path stripped of its root says nothing."""
    message = f"'{tmp_path}/work/case/input.nii.gz' holds no files in '{tmp_path}/work/case'"
    assert without_paths(message, tmp_path / "work") == "'<path>' holds no files in '<path>'"


# ---- header against file, per format, in this process ------------------------------------------------


def refused(path: Path) -> str:
    with pytest.raises(LesionDetectError) as caught:
        read_input(path)
    return str(caught.value)


def ct_image():
    image = sitk.GetImageFromArray(ct_volume().array)
    image.SetSpacing((0.4, 0.4, 3.0))
    return image


@pytest.mark.parametrize("name", ["ct.nrrd", "ct.nii.gz", "ct.nii", "ct.mha", "ct.nhdr", "ct.mhd", "u8.nrrd"])
@pytest.mark.parametrize("compress", [False, True])
def test_every_format_cut_short_is_refused_and_whole_is_read(tmp_path, name, compress):
    image = ct_image()
    if name.startswith("u8"):
        image = sitk.Cast(image > 0, sitk.sitkUInt8)
    path = tmp_path / name
    sitk.WriteImage(image, str(path), useCompression=compress)
    assert read_input(path).array.shape == (12, 64, 64)
    data_file = next((p for p in tmp_path.iterdir() if p.suffix in (".raw", ".zraw", ".gz") and p != path), path)
    data = data_file.read_bytes()
    data_file.write_bytes(data[: len(data) - max(len(data) // 3, 1)])
    assert "shorter than its header says" in refused(path)
    gzip_data = name.endswith(".gz") or (compress and name.endswith((".nrrd", ".nhdr")))
    if not gzip_data:  # a gzip stream cut in its trailer still holds every voxel
        data_file.write_bytes(data[:-1])
        assert "shorter than its header says" in refused(path)


def test_a_detached_data_file_that_is_missing_is_named(tmp_path):
    sitk.WriteImage(ct_image(), str(tmp_path / "ct.nhdr"))
    (tmp_path / "ct.raw").unlink()
    assert "names the data file 'ct.raw'" in refused(tmp_path / "ct.nhdr")


@pytest.mark.parametrize("name, format_name", [("x.nii.gz", "NIfTI"), ("x.nii", "NIfTI"), ("x.nrrd", "NRRD")])
@pytest.mark.parametrize("content", [b"", b"hello, not a scan\n", gzip.compress(b"hello, not a scan\n" * 50)])
def test_a_file_that_is_not_its_format_is_refused_by_name(tmp_path, name, format_name, content):
    (tmp_path / name).write_bytes(content)
    message = refused(tmp_path / name)
    assert f"'{tmp_path / name}' is not a valid {format_name} file" in message


@pytest.mark.parametrize("content", [b"", b"hello, not a scan\n", b"ObjectType = Image\nNDims = 3\n"])
def test_a_file_that_is_not_metaimage_is_refused_by_name(tmp_path, content):
    (tmp_path / "x.mha").write_bytes(content)
    assert "is not a valid MetaImage file" in refused(tmp_path / "x.mha")


def test_gzip_nifti_in_several_members_padded_or_not_compressed_at_all_is_read(tmp_path):
    sitk.WriteImage(ct_image(), str(tmp_path / "ct.nii"))
    data = (tmp_path / "ct.nii").read_bytes()
    variants = {
        "members.nii.gz": gzip.compress(data[:5000]) + gzip.compress(data[5000:]),
        "padded.nii.gz": gzip.compress(data) + bytes(512),
        "plain.nii.gz": data,
    }
    for name, content in variants.items():
        (tmp_path / name).write_bytes(content)
        assert np.array_equal(read_input(tmp_path / name).array, ct_volume().array), name
    (tmp_path / "short.nii.gz").write_bytes(gzip.compress(data[:5000]) + gzip.compress(data[5000:20000]))
    assert "shorter than its header says" in refused(tmp_path / "short.nii.gz")


def test_a_huge_header_on_a_tiny_file_is_refused_with_its_sizes(tmp_path):
    message = refused(huge_header_nrrd(tmp_path / "huge.nrrd"))
    assert "2048×2048×1000 voxels of 2 bytes (8.4 GB)" in message and "can expand to" in message


def test_a_volume_larger_than_the_available_memory_is_refused_before_reading(tmp_path, monkeypatch):
    path = write_image(tmp_path / "ct.nii.gz", ct_volume().array, compress=True)
    monkeypatch.setattr(volume_layout, "available_memory_bytes", lambda: 50_000)
    message = refused(path)
    assert "too large to read here" in message and "64×64×12 voxels" in message and "50.0 kB is available" in message
    mapped = write_nrrd_volume(tmp_path / "ct.nrrd", ct_volume())
    assert read_input(mapped).array.shape == (12, 64, 64)  # mapped from the file, not read into memory


def test_available_memory_is_known_here():
    assert volume_layout.available_memory_bytes() > 0


def test_an_output_folder_that_cannot_be_written_is_refused_before_any_work(tmp_path, monkeypatch, capsys):
    """A read-only existing folder (root, who runs these tests, is never refused: the OS call is made to fail)."""
    from LesionDetectLib.app import cli
    from LesionDetectLib.results import output_folder

    out = tmp_path / "results" / "out"
    out.mkdir(parents=True)
    before = tree_state(tmp_path)

    def read_only(*args, dir=None, **kwargs):
        raise PermissionError(13, "Permission denied", str(dir))

    def no_reading(*args, **kwargs):
        raise AssertionError("the input was read before the output folder was checked")

    monkeypatch.setattr(output_folder.tempfile, "TemporaryFile", read_only)
    monkeypatch.setattr(cli, "_read_input", no_reading)
    assert main(["calcium", "--sample", "-o", str(out), "--progress", "json"]) == 2
    message = json.loads(capsys.readouterr().out.splitlines()[-1])["message"]
    assert str(out) in message and "Permission denied" in message
    assert tree_state(tmp_path) == before
