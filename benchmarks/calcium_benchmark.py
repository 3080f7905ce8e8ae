"""Calcium run time and peak memory as ratios against peers, all measured in this one run.

Contenders, each in a fresh process on the same uncompressed NRRD of the bundled phantom:
- lesiondetect: read → candidates → Agatston → partial-volume surfaces → STL (+ report files);
- naive: SimpleITK read, scipy.ndimage.label, per-lesion Agatston with ndimage, skimage marching cubes
  on each lesion's mask, numpy-stl — the same job written the obvious way;
- slicer: Slicer's own path on slicer-core: threshold mask → segmentation → closed surface →
  ExportSegmentsClosedSurfaceRepresentationToFiles (STL), no scoring;
- floor: five plain numpy copies of the volume (the memory-bound job's floor).
Peak memory is counted above each process's footprint once its libraries are imported.
Usage: python benchmarks/calcium_benchmark.py [--sizes 64x3.0 300x0.5] [--repeats 3]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "LesionDetect"))
CONTENDERS = ("lesiondetect", "naive", "slicer", "floor")


def run_lesiondetect(nrrd: Path, out: Path) -> None:
    from LesionDetectLib.detectors.calcium.classical import detect_calcium
    from LesionDetectLib.io.volume_io import read_volume
    from LesionDetectLib.results.result_files import write_results

    write_results(detect_calcium(read_volume(nrrd)), out)


def run_naive(nrrd: Path, out: Path) -> None:
    import numpy as np
    import SimpleITK as sitk
    from scipy import ndimage
    from skimage import measure
    from stl import mesh

    image = sitk.ReadImage(str(nrrd))
    hu = sitk.GetArrayFromImage(image)
    spacing = image.GetSpacing()
    labels, count = ndimage.label(hu >= 130, structure=np.ones((3, 3, 3)))
    voxel_mm3 = spacing[0] * spacing[1] * spacing[2]
    slice_structure = np.zeros((3, 3, 3))
    slice_structure[1] = 1
    meshes = []
    for index, box in enumerate(ndimage.find_objects(labels), start=1):
        lesion = labels[box] == index
        if lesion.sum() * voxel_mm3 > 1500:
            continue
        pieces, n = ndimage.label(lesion, structure=slice_structure)
        areas = ndimage.sum(lesion, pieces, range(1, n + 1)) * spacing[0] * spacing[1]
        peaks = ndimage.maximum(hu[box], pieces, range(1, n + 1))
        weights = np.clip(np.floor(np.asarray(peaks) / 100), 1, 4)
        _agatston = float(np.sum(np.where(areas >= 1, areas * weights, 0))) * spacing[2] / 3
        verts, faces, _, _ = measure.marching_cubes(np.pad(lesion, 1).astype(np.float32), 0.5, spacing=spacing[::-1])
        origin = np.array([box[d].start - 1 for d in range(3)]) * spacing[::-1]
        lesion_mesh = mesh.Mesh(np.zeros(len(faces), dtype=mesh.Mesh.dtype))
        lesion_mesh.vectors[:] = (verts + origin)[faces][:, :, ::-1]
        lesion_mesh.save(str(out / f"lesion_{index}.stl"))
        meshes.append(lesion_mesh.data)
    mesh.Mesh(np.concatenate(meshes)).save(str(out / "combined.stl"))


def run_slicer(nrrd: Path, out: Path) -> None:
    import SimpleITK as sitk
    import slicer
    from trame_slicer.core import SlicerApp
    from vtkmodules.vtkCommonCore import vtkStringArray

    app = SlicerApp()
    scene = app.scene
    started = time.perf_counter()  # the app's start-up is not part of the job
    print(json.dumps({"startup_rss_mib": _memory_mib("VmRSS")}))
    image = sitk.ReadImage(str(nrrd))
    mask = (sitk.GetArrayViewFromImage(image) >= 130).astype("uint8")
    labelmap = scene.AddNewNodeByClass("vtkMRMLLabelMapVolumeNode")
    labelmap.SetSpacing(image.GetSpacing())
    labelmap.SetOrigin(-image.GetOrigin()[0], -image.GetOrigin()[1], image.GetOrigin()[2])
    slicer.util.updateVolumeFromArray(labelmap, mask)
    segmentation = scene.AddNewNodeByClass("vtkMRMLSegmentationNode")
    logic = slicer.vtkSlicerSegmentationsModuleLogic
    logic.ImportLabelmapToSegmentationNode(labelmap, segmentation)
    segmentation.CreateClosedSurfaceRepresentation()
    ids = vtkStringArray()
    segmentation.GetSegmentation().GetSegmentIDs(ids)
    logic.ExportSegmentsClosedSurfaceRepresentationToFiles(str(out), segmentation, ids, "STL", True, 1.0, False)
    print(json.dumps({"excluding_startup_s": time.perf_counter() - started}))


def run_floor(nrrd: Path, out: Path) -> None:
    import numpy as np

    from LesionDetectLib.io.volume_io import read_volume

    volume = np.array(read_volume(nrrd).array)  # in memory: the floor copies RAM to RAM, not the file
    volume = volume.copy()  # and into pages the heap already holds: the strictest floor
    started = time.perf_counter()
    for _ in range(5):
        volume = volume.copy()
    print(json.dumps({"excluding_startup_s": time.perf_counter() - started}))


def import_libraries() -> None:
    """Import every contender's libraries first: start-up cost is not part of the job."""
    import scipy.ndimage  # noqa: F401
    import SimpleITK  # noqa: F401
    import skimage.measure  # noqa: F401
    import stl  # noqa: F401
    import vtk  # noqa: F401

    import LesionDetectLib.detectors.calcium.classical  # noqa: F401
    import LesionDetectLib.io.volume_io  # noqa: F401
    import LesionDetectLib.results.result_files  # noqa: F401


def _memory_mib(field: str) -> float:
    """VmRSS or VmHWM (peak) of this process from /proc (the peak resets at exec, unlike ru_maxrss)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"{field} not in /proc/self/status")


def measure_one(contender: str, nrrd: Path) -> dict:
    """Run one contender in this (fresh) process; print its wall time and its peak memory above start-up."""
    from LesionDetectLib.app.heap import keep_freed_memory

    keep_freed_memory()
    import_libraries()
    baseline_mib = _memory_mib("VmRSS")
    with tempfile.TemporaryDirectory() as out:
        started = time.perf_counter()
        globals()[f"run_{contender}"](nrrd, Path(out))
        seconds = time.perf_counter() - started
    return {"seconds": seconds, "peak_mib": _memory_mib("VmHWM"), "baseline_mib": baseline_mib}


def spawn(contender: str, nrrd: Path) -> dict:
    result = subprocess.run(
        [sys.executable, __file__, "--one", contender, str(nrrd)], capture_output=True, text=True, check=True
    )
    lines = [json.loads(line) for line in result.stdout.splitlines() if line.startswith("{")]
    measured = lines[-1]
    inner = [line["excluding_startup_s"] for line in lines if "excluding_startup_s" in line]
    if inner:
        measured["seconds"] = inner[0]
    startup = [line["startup_rss_mib"] for line in lines if "startup_rss_mib" in line]
    measured["peak_mib"] -= startup[0] if startup else measured["baseline_mib"]
    return measured


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", nargs="+", default=["64x3.0", "300x0.5"], help="SLICESxSLICE_MM of 512×512 phantoms")
    parser.add_argument("--repeats", type=int, default=3, help="runs per contender; the fastest counts")
    parser.add_argument("--one", nargs=2, metavar=("CONTENDER", "NRRD"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        print(json.dumps(measure_one(args.one[0], Path(args.one[1]))))
        return
    from LesionDetectLib.detectors.calcium.sample import make_sample
    from LesionDetectLib.io.volume_io import write_nrrd

    print("Calcium run on the bundled phantom (512×512 slices), fastest of", args.repeats, "runs per contender")
    print(f"{'phantom':>14} {'contender':>13} {'time s':>8} {'+peak MiB':>9} {'ours faster ×':>14} {'peak ratio':>11}")
    with tempfile.TemporaryDirectory() as folder:
        for size in args.sizes:
            slices, slice_mm = size.split("x")
            nrrd = Path(folder) / f"phantom_{size}.nrrd"
            write_nrrd(make_sample(shape_ijk=(512, 512, int(slices)), slice_spacing_mm=float(slice_mm))[0], nrrd)
            results = {}
            for contender in CONTENDERS:
                runs = [spawn(contender, nrrd) for _ in range(args.repeats)]
                results[contender] = {
                    "seconds": min(run["seconds"] for run in runs),
                    "peak_mib": min(run["peak_mib"] for run in runs),
                }
            ours = results["lesiondetect"]
            for contender, measured in results.items():
                speedup = measured["seconds"] / ours["seconds"]
                peak_ratio = measured["peak_mib"] / ours["peak_mib"]
                columns = f"{measured['seconds']:8.3f} {measured['peak_mib']:9.0f} {speedup:14.2f} {peak_ratio:11.2f}"
                print(f"{size:>14} {contender:>13} {columns}")
            floor_ratio = ours["seconds"] / results["floor"]["seconds"]
            naive_met = results["naive"]["seconds"] >= 5 * ours["seconds"]
            slicer_met = results["slicer"]["seconds"] >= 3 * ours["seconds"]
            print(
                f"{size:>14} targets: ≥5× naive {'met' if naive_met else 'NOT met'}, "
                f"≥3× slicer {'met' if slicer_met else 'NOT met'}, "
                f"≤3× floor {'met' if floor_ratio <= 3 else 'NOT met'} (ours = {floor_ratio:.1f}× floor)"
            )


if __name__ == "__main__":
    main()
