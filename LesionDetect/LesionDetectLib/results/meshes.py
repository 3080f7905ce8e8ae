"""`Surface` ↔ `vtkPolyData` without Python loops over points, for MRML models, STL and rendering."""

from __future__ import annotations

import numpy as np
import vtk
from vtk.util import numpy_support
from vtkmodules.vtkCommonDataModel import vtkImageData
from vtkmodules.vtkFiltersCore import vtkFlyingEdges3D

from LesionDetectLib.detection.findings import Surface


def polydata_from_surface(surface: Surface, normals: bool = True) -> vtk.vtkPolyData:
    """A triangle `vtkPolyData` with the surface's points (RAS mm); smooth point normals if `normals`."""
    points_ras = np.ascontiguousarray(surface.points_ras, dtype=np.float64)
    triangles = np.ascontiguousarray(surface.triangles, dtype=np.int64)
    points = vtk.vtkPoints()
    points.SetData(numpy_support.numpy_to_vtk(points_ras, deep=True))
    offsets = np.arange(0, 3 * len(triangles) + 1, 3, dtype=np.int64)
    cells = vtk.vtkCellArray()
    cells.SetData(
        numpy_support.numpy_to_vtkIdTypeArray(offsets, deep=True),
        numpy_support.numpy_to_vtkIdTypeArray(triangles.ravel(), deep=True),
    )
    polydata = vtk.vtkPolyData()
    polydata.SetPoints(points)
    polydata.SetPolys(cells)
    if not normals or len(triangles) == 0:
        return polydata
    normals_filter = vtk.vtkPolyDataNormals()
    normals_filter.SetInputData(polydata)
    normals_filter.SplittingOff()
    normals_filter.ConsistencyOff()
    normals_filter.ComputePointNormalsOn()
    normals_filter.Update()
    return normals_filter.GetOutput()


def surface_from_polydata(polydata: vtk.vtkPolyData) -> Surface:
    """The triangles of `polydata` as a `Surface` (points in the polydata's frame, RAS for our models)."""
    if polydata is None or polydata.GetNumberOfPoints() == 0:
        return Surface(np.zeros((0, 3)), np.zeros((0, 3), dtype=np.int64))
    points_ras = numpy_support.vtk_to_numpy(polydata.GetPoints().GetData()).astype(np.float64)
    polys = polydata.GetPolys()
    offsets = numpy_support.vtk_to_numpy(polys.GetOffsetsArray())
    connectivity = numpy_support.vtk_to_numpy(polys.GetConnectivityArray())
    if np.any(np.diff(offsets) != 3):
        triangulate = vtk.vtkTriangleFilter()
        triangulate.SetInputData(polydata)
        triangulate.Update()
        return surface_from_polydata(triangulate.GetOutput())
    return Surface(points_ras, connectivity.reshape(-1, 3).astype(np.int64))


def merge_surfaces(surfaces: list[Surface]) -> Surface:
    """One surface holding all of `surfaces`, points in order, triangles re-indexed."""
    if not surfaces:
        return Surface(np.zeros((0, 3)), np.zeros((0, 3), dtype=np.int64))
    first_points = np.cumsum([0] + [len(surface.points_ras) for surface in surfaces[:-1]])
    return Surface(
        np.concatenate([surface.points_ras for surface in surfaces]),
        np.concatenate([surface.triangles + first for surface, first in zip(surfaces, first_points)]),
    )


def iso_surface_ijk(grey_kji: np.ndarray, level: float) -> tuple[np.ndarray, np.ndarray]:
    """Iso-surface of a (k, j, i) array with VTK flying edges; points in the array's (i, j, k) indices."""
    image = vtkImageData()
    image.SetDimensions(*grey_kji.shape[::-1])
    image.GetPointData().SetScalars(numpy_support.numpy_to_vtk(np.ascontiguousarray(grey_kji).ravel(), deep=True))
    flying_edges = vtkFlyingEdges3D()
    flying_edges.SetInputData(image)
    flying_edges.SetValue(0, level)
    flying_edges.ComputeNormalsOff()
    flying_edges.ComputeGradientsOff()
    flying_edges.ComputeScalarsOff()
    flying_edges.Update()
    output = flying_edges.GetOutput()
    if output.GetNumberOfPolys() == 0:
        return np.zeros((0, 3)), np.zeros((0, 3), dtype=np.int64)
    surface = surface_from_polydata(output)
    return surface.points_ras, surface.triangles


def coarse_iso_surface(volume, level: float, blank_boxes_ijk=(), max_in_plane_voxels: int = 192) -> Surface:
    """Iso-surface of `volume` at `level` on an in-plane grid no finer than `max_in_plane_voxels`, RAS mm,
    with the voxel boxes `blank_boxes_ijk` ([[i0, j0, k0], [i1, j1, k1]]) cut out (context around findings)."""
    stride = max(1, int(np.ceil(max(volume.shape_ijk[:2]) / max_in_plane_voxels)))
    coarse_kji = volume.array[:, ::stride, ::stride].astype(np.float32)
    floor = float(coarse_kji.min())
    for (i0, j0, k0), (i1, j1, k1) in (np.asarray(box) for box in blank_boxes_ijk):
        coarse_kji[k0 : k1 + 1, j0 // stride : j1 // stride + 1, i0 // stride : i1 // stride + 1] = floor
    points_ijk, triangles = iso_surface_ijk(coarse_kji, level)
    coarse_ijk_to_ras = volume.ijk_to_ras @ np.diag([stride, stride, 1.0, 1.0])
    return Surface(points_ijk @ coarse_ijk_to_ras[:3, :3].T + coarse_ijk_to_ras[:3, 3], triangles)
