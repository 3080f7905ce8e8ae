"""Readers of labelled cerebral microbleeds into one record, `MicrobleedScan`, in the layout of `synthetic_swi`.

VALDO 2021 task 2 (a label map per scan):

    sub-101/sub-101_space-T2S_desc-masked_T2S.nii.gz    the SWI or T2*-GRE: a NIfTI whose name ends in _T2S or _SWI
    sub-101/sub-101_space-T2S_CMB.nii.gz                the label: a NIfTI with CMB in its name, on the image's grid

Every non-zero voxel of the label is microbleed; its 26-connected components are the microbleeds.

Point lists (a CSV `subject,x,y,z[,diameter_mm]`, one row per microbleed): a subject's image is the file or folder
of that name beside the CSV (a folder as in VALDO), or the volume file named subject + .nii.gz, .nrrd, ...; points
are RAS mm unless `coordinates` says "lps" or "ijk" (0-based voxel indices i, j, k). A point stands for a sphere of
its diameter (DEFAULT_DIAMETER_MM where none is given), boxed by a square of that side on every slice whose slab
the sphere reaches.

Slice images with boxes (a CSV `image,x0,y0,x1,y1`, paths beside the CSV, pixel edges with x along columns): each
image, read by SimpleITK, is a one-slice record with its boxes; a row without box values lists an image without one.

Microbleed records hold id, center_ijk, center_ras_mm, diameter_mm (equivalent sphere of the labelled voxels, the
point's diameter, or a box's larger side), voxels (None for points and boxes) and slices [k0, k1]; slice boxes hold
microbleed (the id), slice and box_xyxy [x0, y0, x1, y1] (x along i, y along j, x1 and y1 exclusive), as
`synthetic_swi.slice_boxes` writes them.
"""

from __future__ import annotations

import csv
import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import SimpleITK as sitk
from scipy import ndimage
from synthetic_swi import slice_boxes

from LesionDetectLib.errors import LesionDetectError
from LesionDetectLib.io.grey_pixels import to_grey
from LesionDetectLib.io.itk_image import error_reason, ijk_to_ras_of
from LesionDetectLib.io.volume import LPS_TO_RAS, Volume
from LesionDetectLib.io.volume_files import VOLUME_SUFFIXES
from LesionDetectLib.io.volume_io import read_volume

IMAGE_NAME_ENDINGS = ("T2S", "SWI")  # the BIDS suffix of the image, after the name's last "_"
LABEL_NAME_PART = "CMB"
DEFAULT_DIAMETER_MM = 5.0
GRID_TOLERANCE_MM = 1e-3
COORDINATES = ("ras", "lps", "ijk")
BOX_COLUMNS = ("x0", "y0", "x1", "y1")
CONNECTIVITY_26 = ndimage.generate_binary_structure(3, 3)


@dataclass
class MicrobleedScan:
    volume: Volume
    microbleeds: list[dict] = field(default_factory=list)  # id, center_ijk, center_ras_mm, diameter_mm, voxels, slices
    slice_boxes: list[dict] = field(default_factory=list)  # microbleed, slice, box_xyxy [x0, y0, x1, y1] px
    source: str = ""


def read_valdo(root) -> list[MicrobleedScan]:
    """Every sub-* folder of a VALDO task-2 folder, in name order."""
    folders = sorted(path for path in Path(root).glob("sub-*") if path.is_dir())
    if not folders:
        raise FileNotFoundError(f"'{root}' holds no sub-* folders of the VALDO task-2 layout")
    return [read_valdo_subject(folder) for folder in folders]


def read_valdo_subject(folder) -> MicrobleedScan:
    """One subject folder: its T2S/SWI image and CMB label map, a microbleed per 26-connected component."""
    folder = Path(folder)
    image_path, label_path = find_image(folder), _one_file(folder, _is_label, f"a NIfTI label with {LABEL_NAME_PART}")
    volume, label = read_volume(image_path), read_volume(label_path)
    if label.array.shape != volume.array.shape or not np.allclose(
        label.ijk_to_ras, volume.ijk_to_ras, atol=GRID_TOLERANCE_MM
    ):
        raise LesionDetectError(
            f"'{label_path}' ({_grid_text(label)}) is not on the grid of '{image_path}' ({_grid_text(volume)}); "
            "resample the label onto the image."
        )
    components, count = ndimage.label(label.array != 0, structure=CONNECTIVITY_26)
    ids = range(1, count + 1)
    voxel_counts = np.bincount(components.ravel(), minlength=count + 1)
    centers_kji = ndimage.center_of_mass(components > 0, components, ids)
    voxel_mm3 = float(np.prod(volume.spacing))
    microbleeds, boxes = [], []
    for microbleed_id, crop, center_kji in zip(ids, ndimage.find_objects(components), centers_kji):
        voxels = int(voxel_counts[microbleed_id])
        diameter_mm = (6.0 * voxels * voxel_mm3 / math.pi) ** (1.0 / 3.0)
        slices = [crop[0].start, crop[0].stop - 1]
        microbleeds.append(_record(volume, microbleed_id, center_kji[::-1], diameter_mm, voxels, slices))
        boxes += slice_boxes(components[crop], crop, microbleed_id)
    return MicrobleedScan(volume, microbleeds, boxes, str(folder))


def find_image(folder: Path) -> Path:
    """The one NIfTI of `folder` whose name ends in _T2S or _SWI."""
    return _one_file(folder, _is_image, f"a NIfTI image named *_{' or *_'.join(IMAGE_NAME_ENDINGS)}")


def read_point_list(
    csv_path, coordinates: str = "ras", default_diameter_mm: float = DEFAULT_DIAMETER_MM
) -> list[MicrobleedScan]:
    """One record per subject of a `subject,x,y,z[,diameter_mm]` CSV, in order of first appearance."""
    csv_path = Path(csv_path)
    if coordinates not in COORDINATES:
        raise ValueError(f"coordinates must be one of {', '.join(COORDINATES)}, not {coordinates!r}")
    rows_of: dict[str, list[tuple[int, dict]]] = {}
    for line, row in _csv_rows(csv_path, ("subject", "x", "y", "z")):
        rows_of.setdefault(row["subject"], []).append((line, row))
    scans = []
    for subject, rows in rows_of.items():
        image_path = _subject_image(csv_path.parent, subject)
        volume = read_volume(image_path)
        scan = MicrobleedScan(volume, source=str(image_path))
        for microbleed_id, (line, row) in enumerate(rows, start=1):
            center_ijk = _point_ijk(volume, _numbers(csv_path, line, row, ("x", "y", "z")), coordinates)
            if np.any(center_ijk < -0.5) or np.any(center_ijk > np.array(volume.shape_ijk) - 0.5):
                raise LesionDetectError(
                    f"'{csv_path}' line {line}: the point ({row['x']}, {row['y']}, {row['z']}) lies outside "
                    f"'{image_path}' ({_grid_text(volume)}) read as {coordinates} coordinates; check the coordinates."
                )
            diameter_mm = (
                _numbers(csv_path, line, row, ("diameter_mm",))[0] if row.get("diameter_mm") else default_diameter_mm
            )
            if diameter_mm <= 0:
                raise LesionDetectError(f"'{csv_path}' line {line}: diameter_mm is {diameter_mm:g}, not positive")
            boxes = _sphere_boxes(volume, center_ijk, diameter_mm, microbleed_id)
            slices = [boxes[0]["slice"], boxes[-1]["slice"]]
            scan.microbleeds.append(_record(volume, microbleed_id, center_ijk, diameter_mm, None, slices))
            scan.slice_boxes += boxes
        scans.append(scan)
    return scans


def read_box_list(csv_path) -> list[MicrobleedScan]:
    """One single-slice record per image of an `image,x0,y0,x1,y1` CSV, in order of first appearance."""
    csv_path = Path(csv_path)
    scans: dict[str, MicrobleedScan] = {}
    for line, row in _csv_rows(csv_path, ("image", *BOX_COLUMNS)):
        if row["image"] not in scans:
            scans[row["image"]] = MicrobleedScan(_read_slice_image(csv_path.parent / row["image"]), source=row["image"])
        scan = scans[row["image"]]
        if not any(row[name] for name in BOX_COLUMNS):
            continue
        box = _numbers(csv_path, line, row, BOX_COLUMNS)
        microbleed_id = len(scan.microbleeds) + 1
        center_ijk = [(box[0] + box[2]) / 2.0 - 0.5, (box[1] + box[3]) / 2.0 - 0.5, 0.0]
        side_mm = float(max((box[2] - box[0]) * scan.volume.spacing[0], (box[3] - box[1]) * scan.volume.spacing[1]))
        scan.microbleeds.append(_record(scan.volume, microbleed_id, center_ijk, side_mm, None, [0, 0]))
        scan.slice_boxes.append({"microbleed": microbleed_id, "slice": 0, "box_xyxy": box})
    return list(scans.values())


def _record(volume: Volume, microbleed_id: int, center_ijk, diameter_mm: float, voxels, slices) -> dict:
    center_ijk = np.asarray(center_ijk, dtype=float)
    return {
        "id": microbleed_id,
        "center_ijk": center_ijk.tolist(),
        "center_ras_mm": volume.ijk_to_ras_points(center_ijk[None])[0].tolist(),
        "diameter_mm": float(diameter_mm),
        "voxels": voxels,
        "slices": [int(k) for k in slices],
    }


def _point_ijk(volume: Volume, point, coordinates: str) -> np.ndarray:
    if coordinates == "ijk":
        return np.asarray(point, dtype=float)
    ras = np.asarray(point, dtype=float) * (LPS_TO_RAS.diagonal()[:3] if coordinates == "lps" else 1.0)
    return volume.ras_to_ijk_points(ras[None])[0]


def _sphere_boxes(volume: Volume, center_ijk: np.ndarray, diameter_mm: float, microbleed_id: int) -> list[dict]:
    """A square of side diameter_mm round the point on each slice whose slab [k - 0.5, k + 0.5] the sphere reaches,
    clipped to the slice."""
    radius_ijk = diameter_mm / 2.0 / volume.spacing
    k_low = max(math.floor(center_ijk[2] - radius_ijk[2] - 0.5) + 1, 0)
    k_high = min(math.ceil(center_ijk[2] + radius_ijk[2] + 0.5) - 1, volume.shape_ijk[2] - 1)
    edges = center_ijk[:2] + 0.5  # the point as pixel edge coordinates
    low = np.maximum(edges - radius_ijk[:2], 0.0)
    high = np.minimum(edges + radius_ijk[:2], volume.shape_ijk[:2])
    box = [float(low[0]), float(low[1]), float(high[0]), float(high[1])]
    return [{"microbleed": microbleed_id, "slice": k, "box_xyxy": list(box)} for k in range(k_low, k_high + 1)]


def _read_slice_image(path: Path) -> Volume:
    """A 2D image as a one-slice Volume (k spacing 1 mm), colour made grey as the platform reads frames."""
    if not path.is_file():
        raise FileNotFoundError(f"'{path}' (listed in the box CSV) does not exist")
    try:
        image = sitk.ReadImage(str(path))
    except RuntimeError as error:
        raise LesionDetectError(f"'{path}' could not be read as an image ({error_reason(error)})") from error
    if image.GetDimension() != 2:
        raise LesionDetectError(f"'{path}' is a {image.GetDimension()}D image, not one 2D slice")
    stacked = sitk.JoinSeries(image)
    pixels = sitk.GetArrayFromImage(stacked)
    grey, notes = to_grey(pixels.reshape(*pixels.shape[:3], -1))
    return Volume(grey, ijk_to_ras_of(stacked), path.stem, notes=notes)


def _csv_rows(path: Path, required: tuple[str, ...]) -> list[tuple[int, dict]]:
    """(line number, row) of a CSV with the `required` columns, names and values stripped of spaces."""
    if not path.is_file():
        raise FileNotFoundError(f"'{path}' does not exist")
    with open(path, newline="") as stream:
        reader = csv.DictReader(stream)
        columns = [name.strip() for name in reader.fieldnames or []]
        missing = [name for name in required if name not in columns]
        if missing:
            raise LesionDetectError(
                f"'{path}' lacks the column(s) {', '.join(missing)}: it needs {', '.join(required)} "
                f"(its header is {', '.join(columns) or 'empty'})"
            )
        return [
            (reader.line_num, {key.strip(): (value or "").strip() for key, value in row.items() if key})
            for row in reader
        ]


def _numbers(path: Path, line: int, row: dict, columns: tuple[str, ...]) -> list[float]:
    """The values of `columns` in a CSV row as finite numbers, or an error naming the file, line and column."""
    numbers = []
    for column in columns:
        try:
            numbers.append(float(row[column]))
        except ValueError:
            numbers.append(math.nan)
        if not math.isfinite(numbers[-1]):
            raise LesionDetectError(f"'{path}' line {line}: {column} is {row[column]!r}, not a number")
    return numbers


def _subject_image(folder: Path, subject: str) -> Path:
    """The image of `subject` beside a point CSV: a file or folder of that name, or subject + a volume suffix."""
    path = folder / subject
    if path.is_file():
        return path
    if path.is_dir():
        return find_image(path)
    candidates = [
        folder / f"{subject}{suffix}" for suffix in VOLUME_SUFFIXES if (folder / f"{subject}{suffix}").is_file()
    ]
    if len(candidates) != 1:
        found = f"{len(candidates)} files: {', '.join(p.name for p in candidates)}" if candidates else "none"
        raise FileNotFoundError(
            f"'{folder}' needs one image of subject {subject}: a file or folder '{subject}' or '{subject}' with "
            f"one of {', '.join(VOLUME_SUFFIXES)}; found {found}"
        )
    return candidates[0]


def _one_file(folder: Path, matches, what: str) -> Path:
    """The one file of `folder` that `matches`, or an error saying what is missing or ambiguous."""
    found = sorted(path for path in folder.iterdir() if path.is_file() and matches(path.name))
    if len(found) != 1:
        listed = f"{len(found)}: {', '.join(path.name for path in found)}" if found else "none"
        raise FileNotFoundError(f"'{folder}' needs {what}; found {listed}")
    return found[0]


def _is_image(name: str) -> bool:
    stem = _nifti_stem(name)
    return stem is not None and stem.rsplit("_", 1)[-1].upper() in IMAGE_NAME_ENDINGS


def _is_label(name: str) -> bool:
    stem = _nifti_stem(name)
    return stem is not None and LABEL_NAME_PART in stem.upper()


def _nifti_stem(name: str) -> str | None:
    """The name without .nii or .nii.gz, or None for other files."""
    for suffix in (".nii.gz", ".nii"):
        if name.lower().endswith(suffix):
            return name[: -len(suffix)]
    return None


def _grid_text(volume: Volume) -> str:
    size = "×".join(str(n) for n in volume.shape_ijk)
    spacing = "×".join(f"{s:.3g}" for s in volume.spacing)
    origin = ", ".join(f"{x:.4g}" for x in volume.ijk_to_ras[:3, 3])
    return f"{size} voxels of {spacing} mm at RAS ({origin})"
