"""STL export of lesion surfaces in millimetres: LPS by default like Slicer and Mimics, RAS on request.

The header carries `SPACE=LPS` or `SPACE=RAS`, the convention Slicer's model reader uses.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import vtk

from LesionDetectLib.detection.findings import Surface
from LesionDetectLib.errors import LesionDetectError, OutputExistsError
from LesionDetectLib.results.meshes import merge_surfaces, polydata_from_surface, surface_from_polydata

COORDINATE_SYSTEMS = ("LPS", "RAS")
LESION_FOLDER = "lesions"


def write_stl_files(
    named_surfaces: list[tuple[str, Surface]],
    folder,
    coordinate_system: str = "LPS",
    combined_name: str = "combined.stl",
    overwrite: bool = False,
) -> list[Path]:
    """Write one combined STL and one STL per named surface (under `lesions/`); return their paths."""
    coordinate_system = coordinate_system.upper()
    if coordinate_system not in COORDINATE_SYSTEMS:
        raise LesionDetectError(f"STL coordinate system must be LPS or RAS, not '{coordinate_system}'.")
    folder = Path(folder)
    targets = [(folder / combined_name, merge_surfaces([surface for _, surface in named_surfaces]))]
    targets += [(folder / LESION_FOLDER / f"{_file_stem(name)}.stl", surface) for name, surface in named_surfaces]
    existing = [str(path) for path, _ in targets if path.exists()]
    if existing and not overwrite:
        raise OutputExistsError(f"Not overwriting existing STL files: {', '.join(existing[:3])}.")
    (folder / LESION_FOLDER).mkdir(parents=True, exist_ok=True)
    for path, surface in targets:
        write_stl(surface, path, coordinate_system)
    return [path for path, _ in targets]


def write_stl(surface: Surface, path: Path, coordinate_system: str = "LPS") -> None:
    """Binary STL of one RAS surface, converted to `coordinate_system`."""
    points = surface.points_ras * (np.array([-1.0, -1.0, 1.0]) if coordinate_system == "LPS" else 1.0)
    writer = vtk.vtkSTLWriter()
    writer.SetInputData(polydata_from_surface(Surface(points, surface.triangles), normals=False))
    writer.SetFileTypeToBinary()
    writer.SetHeader(f"LesionDetect output. SPACE={coordinate_system}")
    writer.SetFileName(str(path))
    if not writer.Write():
        raise LesionDetectError(f"Could not write STL file {path}.")


def read_stl(path: Path) -> tuple[Surface, str]:
    """A written STL back as a RAS surface (duplicate vertices merged), with the space its header names."""
    header = Path(path).read_bytes()[:80].decode("ascii", errors="replace")
    coordinate_system = "RAS" if "SPACE=RAS" in header else "LPS"
    reader = vtk.vtkSTLReader()
    reader.SetFileName(str(path))
    reader.Update()
    surface = surface_from_polydata(reader.GetOutput())
    if coordinate_system == "LPS":
        surface = Surface(surface.points_ras * np.array([-1.0, -1.0, 1.0]), surface.triangles)
    return surface, coordinate_system


def _file_stem(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", name).strip("_") or "surface"
