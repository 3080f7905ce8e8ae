"""Readers of calcium training data: Stanford COCA gated scans, image + label-map pairs, synthetic cases.

Every reader gives `CalciumCase`s whose `labels` hold `LesionDetectLib.detectors.calcium.labels` codes on the grid of
`volume`, on voxels ≥ 130 HU only (0 elsewhere).

Stanford COCA ("Coronary Calcium and chest CT's", Stanford AIMI), gated part, as downloaded::

    Gated_release_final/patient/<id>/<series folder>/*.dcm   one DICOM series per patient
    Gated_release_final/calcium_xml/<id>.xml                  the calcium ROIs (OsiriX export, Apple plist)

The plist is ``{"Images": [{"ImageIndex": int, "NumberOfROIs": int, "ROIs": [{"Name": str, "Point_px":
["(x, y)", ...], "Point_mm": ["(x, y, z)", ...], "NumberOfPoints", "Area", "Mean", "Total", ...}]}]}``.
``Point_px`` x is the pixel column and y the row; `skimage.draw.polygon` over them gives exactly the ROI's
pixel count (Total / Mean) in the released files. ``Point_mm`` is the DICOM patient position (LPS, mm).
In the released files ImageIndex grows with z (3.xml: 36, 42, 43 at z −227.75, −209.75, −206.75 mm,
3 mm slices), i.e. it is the slice's rank by position, `read_volume`'s k, not the InstanceNumber order.
Since that rests on a few files, a ROI's slice is taken from where its ``Point_mm`` lies (no sort order
involved), ImageIndex only for a ROI without ``Point_mm``; a disagreement is logged.

COCA non-gated part (`iter_nongated`): scans with reference scores but no lesion outlines, giving `ScoredCase`s::

    deidentified_nongated/<n>/**/*.dcm    one DICOM series per patient folder n = 1, 2, ... (any depth)
    deidentified_nongated/scores.xlsx     one sheet: "filename" | LCA | LAD | LCX | RCA | total, a row "<n>A" each

LCA is the left main (our LM); the values are Agatston scores, the total as the sheet gives it.
"""

from __future__ import annotations

import logging
import math
import plistlib
import re
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from xml.etree import ElementTree
from xml.parsers.expat import ExpatError

import numpy as np
from skimage.draw import polygon

from LesionDetectLib.detectors.calcium.labels import ARTERIES, STRUCTURES
from LesionDetectLib.detectors.calcium.options import AGATSTON_THRESHOLD_HU
from LesionDetectLib.errors import LesionDetectError
from LesionDetectLib.io.read_input import read_input
from LesionDetectLib.io.volume import LPS_TO_RAS, Volume
from LesionDetectLib.io.volume_io import IMAGE_SUFFIXES, read_volume

logger = logging.getLogger(__name__)

LAYOUTS = ("coca", "labelmap", "synthetic")
ARTERY_NOT_GIVEN = 5
# COCA ROI names (lower case) → codes. COCA calls the left main "Left Coronary Artery" (its score table: LCA).
COCA_ARTERY_CODES = {
    "left coronary artery": 1,
    "left main coronary artery": 1,
    "lca": 1,
    "lm": 1,
    "left anterior descending artery": 2,
    "lad": 2,
    "left circumflex artery": 3,
    "lcx": 3,
    "right coronary artery": 4,
    "rca": 4,
}
# orCaScore reference labels (orcascore.isi.uu.nl/data): 1 LAD (left main included), 2 LCX, 3 RCA.
ORCASCORE_CODE_MAP = {1: 2, 2: 3, 3: 4}
IDENTITY_CODE_MAP = {code: code for code in STRUCTURES if code}
LABEL_SUFFIXES = ("_label", "-label", "_labels")
SLICE_TOLERANCE = 0.25  # a ROI's Point_mm must lie within this fraction of a slice step of a slice centre
SPACING_RTOL, DIRECTION_ATOL, ORIGIN_VOXEL_FRACTION = 1e-4, 1e-4, 0.01
NONGATED_FOLDER, NONGATED_SCORES = "deidentified_nongated", "scores.xlsx"
# Score sheet headers (lower case, stripped) → our names; COCA's "LCA" is the left main.
NONGATED_COLUMNS = {"lca": "LM", "lm": "LM", "left main": "LM", "lad": "LAD", "lcx": "LCX", "rca": "RCA"}
NONGATED_TOTAL, NONGATED_ID_HEADER = "total", "filename"
NONGATED_ROW_SUFFIX = "A"  # patient folder 3 ↔ sheet row "3A"
TOTAL_MISMATCH_POINTS, TOTAL_MISMATCH_FRACTION = 1.0, 0.01  # sheet total vs its artery sum: beyond both, a warning


@dataclass
class CalciumCase:
    """One labelled scan: HU volume, calcium label codes (k, j, i) uint8, and the reader that made it."""

    case_id: str
    volume: Volume
    labels: np.ndarray
    source: str
    unknown_roi_names: tuple[str, ...] = ()  # COCA ROI names labelled 5 (coronary, artery not given)


@dataclass(frozen=True)
class ReferenceScores:
    """Reference Agatston scores of one scan: per artery (`ARTERIES`: LM, LAD, LCX, RCA) and the total."""

    total: float
    per_artery: dict[str, float]
    row: str = ""  # where they come from, e.g. the score sheet's row name "3A"


@dataclass
class ScoredCase:
    """One scan with reference scores but no lesion labels (COCA non-gated)."""

    case_id: str
    patient_id: str
    volume: Volume
    reference: ReferenceScores
    source: str = "coca-nongated"
    notes: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class CocaRoi:
    """One ROI of a COCA XML: its image, name, outline in pixels (x column, y row) and in LPS mm (or None)."""

    image_index: int
    name: str
    points_px: np.ndarray
    points_mm: np.ndarray | None


def iter_dataset(
    root, layout: str, *, code_map: dict[int, int] | None = None, no_xml_means_no_calcium: bool = False
) -> Iterator[CalciumCase]:
    """The cases under `root` in one of `LAYOUTS`, in natural name order.

    "coca": the COCA gated layout (root is ``Gated_release_final`` or its parent); a patient without XML is
    refused unless `no_xml_means_no_calcium`, which reads it with empty labels.
    "labelmap": image files side by side with their label maps ``<name><suffix>.<ext>``, suffix one of
    `LABEL_SUFFIXES`, any supported extension for either; `code_map` as in `read_labelled_volume`.
    "synthetic": ``case_*/image.nrrd`` + ``labels.nrrd`` already in calcium label codes.
    """
    root = Path(root)
    if layout not in LAYOUTS:
        raise LesionDetectError(f"Unknown dataset layout '{layout}'; choose one of {', '.join(LAYOUTS)}.")
    if not root.is_dir():
        raise LesionDetectError(f"The dataset folder '{root}' does not exist; check the path.")
    if layout == "coca":
        for patient_id in coca_patient_ids(coca_release_folder(root)):
            yield read_coca_case(root, patient_id, no_xml_means_no_calcium=no_xml_means_no_calcium)
    elif layout == "labelmap":
        for image_path, labels_path in labelmap_pairs(root):
            yield read_labelled_volume(image_path, labels_path, code_map)
    else:
        for folder in synthetic_case_folders(root):
            yield read_synthetic_case(folder)


# --- Stanford COCA -------------------------------------------------------------------------------------


def coca_release_folder(root: Path) -> Path:
    """The folder holding ``patient/`` and ``calcium_xml/``: `root` itself or its ``Gated_release_final``."""
    release = root / "Gated_release_final" if (root / "Gated_release_final").is_dir() else root
    if not (release / "patient").is_dir():
        raise LesionDetectError(
            f"'{root}' is not a COCA gated release: it has no 'patient' folder (nor 'Gated_release_final/patient')."
        )
    return release


def coca_patient_ids(release: Path) -> list[str]:
    """The patient folder names under ``patient/``, in natural order."""
    ids = sorted((path.name for path in (release / "patient").iterdir() if path.is_dir()), key=_natural_key)
    if not ids:
        raise LesionDetectError(f"'{release / 'patient'}' holds no patient folders.")
    return ids


def read_coca_case(root, patient_id: str, *, no_xml_means_no_calcium: bool = False) -> CalciumCase:
    """Read one COCA gated patient: its DICOM series and the ROIs of ``calcium_xml/<id>.xml`` as labels."""
    release = coca_release_folder(Path(root))
    volume = read_volume(_coca_series_folder(release / "patient" / patient_id))
    xml_path = release / "calcium_xml" / f"{patient_id}.xml"
    case_id = f"coca-{patient_id}"
    if not xml_path.is_file():
        if no_xml_means_no_calcium:
            return CalciumCase(case_id, volume, np.zeros(volume.array.shape, np.uint8), "coca")
        raise LesionDetectError(
            f"COCA patient {patient_id} has no calcium ROI file '{xml_path}'; "
            "download it again, or read such patients as calcium-free if that is what they are."
        )
    labels, unknown = coca_labels(read_coca_rois(xml_path), volume, xml_path)
    return CalciumCase(case_id, volume, labels, "coca", unknown)


def read_coca_rois(xml_path) -> list[CocaRoi]:
    """The ROIs of a COCA calcium XML (Apple plist written by OsiriX); ROIs without outline points are left out."""
    xml_path = Path(xml_path)
    try:
        with open(xml_path, "rb") as stream:
            images = plistlib.load(stream)["Images"]
        return [
            CocaRoi(
                int(image["ImageIndex"]),
                str(roi["Name"]),
                _points(roi["Point_px"], 2),
                _points(roi["Point_mm"], 3) if roi.get("Point_mm") else None,
            )
            for image in images
            for roi in image.get("ROIs", [])
            if roi.get("Point_px")
        ]
    except (plistlib.InvalidFileException, ExpatError) as error:
        raise LesionDetectError(f"'{xml_path}' is not a readable plist XML ({error}); download it again.") from error
    except (KeyError, TypeError, ValueError) as error:
        raise LesionDetectError(
            f"'{xml_path}' is not a COCA calcium ROI file (missing or malformed {error}); "
            "expected 'Images' with 'ImageIndex' and 'ROIs' holding 'Name' and 'Point_px'."
        ) from error


def coca_labels(rois: list[CocaRoi], volume: Volume, xml_path: Path) -> tuple[np.ndarray, tuple[str, ...]]:
    """Rasterise the ROIs into label codes (≥ 130 HU voxels only); also the ROI names that are no known artery."""
    labels = np.zeros(volume.array.shape, np.uint8)
    unknown, moved = set(), []
    for roi in rois:
        code = COCA_ARTERY_CODES.get(roi.name.strip().lower())
        if code is None:
            unknown.add(roi.name)
        k = _roi_slice(roi, volume, xml_path)
        if k != roi.image_index:
            moved.append((roi.image_index, k))
        rows, columns = polygon(roi.points_px[:, 1], roi.points_px[:, 0], shape=labels.shape[1:])
        labels[k, rows, columns] = code or ARTERY_NOT_GIVEN
    if unknown:
        logger.warning("%s: ROI names %s name no known artery; labelled 5.", xml_path, sorted(unknown))
    if moved:
        logger.warning(
            "%s: %d ROIs lie (by Point_mm) on another slice than their ImageIndex: %s", xml_path, len(moved), moved[:5]
        )
    return _calcium_only(labels, volume), tuple(sorted(unknown))


def _roi_slice(roi: CocaRoi, volume: Volume, xml_path: Path) -> int:
    """The slice k of a ROI: where its Point_mm lies, else its ImageIndex; refused when no such slice exists."""
    slice_count = volume.array.shape[0]
    if roi.points_mm is None:
        if not 0 <= roi.image_index < slice_count:
            raise LesionDetectError(
                f"'{xml_path}' has a ROI ('{roi.name}') on image {roi.image_index}, but the series has "
                f"{slice_count} slices (0–{slice_count - 1}); the XML does not belong to this series."
            )
        return roi.image_index
    centre_ras = LPS_TO_RAS[:3, :3] @ roi.points_mm.mean(axis=0)
    k = float(volume.ras_to_ijk_points(centre_ras[None])[0, 2])
    if abs(k - round(k)) > SLICE_TOLERANCE or not 0 <= round(k) < slice_count:
        raise LesionDetectError(
            f"'{xml_path}' has a ROI ('{roi.name}', image {roi.image_index}) at z {roi.points_mm[0, 2]:.2f} mm, "
            f"which is on no slice of the series ({slice_count} slices); the XML does not belong to this series."
        )
    return round(k)


def _coca_series_folder(patient_dir: Path) -> Path:
    """The one folder of a COCA patient that holds ``*.dcm`` files (the patient folder or one subfolder)."""
    if not patient_dir.is_dir():
        raise LesionDetectError(f"The COCA patient folder '{patient_dir}' does not exist.")
    folders = [patient_dir, *sorted(path for path in patient_dir.iterdir() if path.is_dir())]
    series = [folder for folder in folders if any(folder.glob("*.dcm"))]
    if len(series) != 1:
        found = ", ".join(f"'{folder.name}'" for folder in series) or "none"
        raise LesionDetectError(
            f"The COCA patient folder '{patient_dir}' must hold exactly one folder of .dcm files (found {found})."
        )
    return series[0]


def _points(texts, dimensions: int) -> np.ndarray:
    """Parse OsiriX point strings "(x, y[, z])" into an (n, dimensions) array."""
    rows = [[float(value) for value in text.strip().strip("()").split(",")] for text in texts]
    if any(len(row) != dimensions for row in rows):
        raise ValueError(f"points {texts[:2]!r}: expected {dimensions} numbers each")
    return np.array(rows, dtype=float).reshape(-1, dimensions)


# --- Stanford COCA non-gated ---------------------------------------------------------------------------


def iter_nongated(root, patient_ids: list[str] | None = None) -> Iterator[ScoredCase]:
    """The COCA non-gated cases under `root` (``deidentified_nongated`` or its parent), in natural order.

    `patient_ids` chooses some patient folders (default: all). The score sheet is read once, before any scan.
    """
    folder = nongated_folder(root)
    scores = read_nongated_scores(folder / NONGATED_SCORES)
    for patient_id in patient_ids or nongated_patient_ids(folder):
        yield read_nongated_case(folder, patient_id, scores)


def nongated_folder(root) -> Path:
    """The folder holding the patient folders and ``scores.xlsx``: `root` or its ``deidentified_nongated``."""
    root = Path(root)
    folder = root / NONGATED_FOLDER if (root / NONGATED_FOLDER).is_dir() else root
    if not folder.is_dir():
        raise LesionDetectError(f"The non-gated dataset folder '{root}' does not exist; check the path.")
    if not (folder / NONGATED_SCORES).is_file():
        raise LesionDetectError(
            f"'{root}' is not a COCA non-gated folder: it has no '{NONGATED_SCORES}' "
            f"(nor '{NONGATED_FOLDER}/{NONGATED_SCORES}') beside the numbered patient folders."
        )
    return folder


def nongated_patient_ids(folder: Path) -> list[str]:
    """The numbered patient folders (1, 2, ...) of a non-gated folder, in natural order; others are left out."""
    ids = sorted((path.name for path in Path(folder).iterdir() if path.is_dir() and path.name.isdigit()), key=int)
    if not ids:
        raise LesionDetectError(f"'{folder}' holds no numbered patient folders (1, 2, ...) beside '{NONGATED_SCORES}'.")
    return ids


def read_nongated_case(root, patient_id: str, scores: dict[str, dict] | None = None) -> ScoredCase:
    """One non-gated patient: the scan of folder `patient_id` (through `read_input`) and row "<id>A" of the sheet."""
    folder = nongated_folder(root)
    scores = read_nongated_scores(folder / NONGATED_SCORES) if scores is None else scores
    reference = nongated_reference(scores, patient_id, folder / NONGATED_SCORES)
    patient_dir = folder / str(patient_id)
    if not patient_dir.is_dir():
        raise LesionDetectError(f"The non-gated patient folder '{patient_dir}' does not exist.")
    volume = read_input(patient_dir)
    if not isinstance(volume, Volume):
        raise LesionDetectError(f"'{patient_dir}' holds 2D frames, not a CT series; the calcium scans are volumes.")
    notes = list(getattr(volume, "notes", []))
    return ScoredCase(f"nongated-{patient_id}", str(patient_id), volume, reference, notes=notes)


def nongated_reference(scores: dict[str, dict], patient_id: str, sheet: Path) -> ReferenceScores:
    """Row "<patient_id>A" of a parsed score sheet as `ReferenceScores`; refused when missing or incomplete."""
    row = f"{patient_id}{NONGATED_ROW_SUFFIX}"
    if row not in scores:
        raise LesionDetectError(
            f"'{sheet}' has no row '{row}' for patient folder {patient_id} "
            f"(it has {len(scores)} rows: {', '.join(list(scores)[:6])}{', ...' if len(scores) > 6 else ''})."
        )
    values = scores[row]
    if values is None:
        raise LesionDetectError(f"'{sheet}' has more than one row '{row}'; keep one.")
    missing = [name for name in (*ARTERIES, NONGATED_TOTAL) if values.get(name) is None]
    if missing:
        raise LesionDetectError(f"'{sheet}' row '{row}' has no number for {', '.join(missing)}.")
    per_artery = {artery: float(values[artery]) for artery in ARTERIES}
    total = float(values[NONGATED_TOTAL])
    if any(value < 0 for value in (*per_artery.values(), total)):
        raise LesionDetectError(f"'{sheet}' row '{row}' has a negative Agatston score: {values}.")
    summed = sum(per_artery.values())
    if abs(summed - total) > max(TOTAL_MISMATCH_POINTS, TOTAL_MISMATCH_FRACTION * total):
        logger.warning("%s row %s: the arteries sum to %.2f, the total says %.2f.", sheet, row, summed, total)
    return ReferenceScores(total, per_artery, row)


def read_nongated_scores(path) -> dict[str, dict[str, float | None] | None]:
    """The COCA score sheet: row name ("1A") → {"LM", "LAD", "LCX", "RCA", "total": float or None}.

    Columns are found by their header (LCA/LM, LAD, LCX, RCA, total; the row names under "filename" or
    else in the first column), so their order does not matter. A row name given twice maps to None.
    """
    path = Path(path)
    rows = read_xlsx_rows(path)
    header_index = next(
        (n for n, row in enumerate(rows) if any(_header(value) == NONGATED_TOTAL for value in row.values())), None
    )
    if header_index is None:
        raise LesionDetectError(f"'{path}' has no header row with a '{NONGATED_TOTAL}' column.")
    header = {column: _header(value) for column, value in rows[header_index].items()}
    columns: dict[str, int] = {}
    for column, name in sorted(header.items()):
        wanted = NONGATED_COLUMNS.get(name, name)
        if wanted in (*ARTERIES, NONGATED_TOTAL) and wanted in columns:
            raise LesionDetectError(f"'{path}' has two columns for {wanted}; keep one.")
        columns.setdefault(wanted, column)
    missing = [name for name in (*ARTERIES, NONGATED_TOTAL) if name not in columns]
    if missing:
        headers = ", ".join(name for name in header.values() if name)
        raise LesionDetectError(
            f"'{path}' has no column for {', '.join(missing)} (its headers: {headers}); "
            "expected LCA (left main), LAD, LCX, RCA and total."
        )
    id_column = columns.get(NONGATED_ID_HEADER, min(header))
    scores: dict[str, dict | None] = {}
    for row in rows[header_index + 1 :]:
        name = _cell_text(row.get(id_column))
        if not name:
            continue
        values = {wanted: _cell_number(row.get(columns[wanted]), path, name) for wanted in (*ARTERIES, NONGATED_TOTAL)}
        scores[name] = None if name in scores else values
    return scores


def read_xlsx_rows(path) -> list[dict[int, str | float]]:
    """The first worksheet of an .xlsx file as rows of {column index (A = 0): text or number}, standard library only.

    Shared, inline and formula strings are read; a formula cell gives its cached value; empty rows are kept.
    """
    path = Path(path)
    try:
        with zipfile.ZipFile(path) as book:
            strings = _shared_strings(book)
            sheet = ElementTree.fromstring(book.read(_first_sheet_part(book)))
    except (zipfile.BadZipFile, KeyError, ElementTree.ParseError, OSError) as error:
        raise LesionDetectError(f"'{path}' is not a readable .xlsx workbook ({error}).") from error
    rows: list[dict[int, str | float]] = []
    for row in sheet.iter(f"{_XLSX}row"):
        number = int(row.get("r", len(rows) + 1))
        rows.extend({} for _ in range(number - 1 - len(rows)))
        cells: dict[int, str | float] = {}
        for position, cell in enumerate(row.iter(f"{_XLSX}c")):
            reference = cell.get("r")
            column = _column_index(reference) if reference else max(cells, default=position - 1) + 1
            value = _xlsx_value(cell, strings)
            if value is not None:
                cells[column] = value
        rows.append(cells)
    return rows


_XLSX = "{http://schemas.openxmlformats.org/spreadsheetml/2006/main}"
_RELATIONSHIPS = "{http://schemas.openxmlformats.org/package/2006/relationships}"
_OFFICE_RELATIONSHIP_ID = "{http://schemas.openxmlformats.org/officeDocument/2006/relationships}id"


def _first_sheet_part(book: zipfile.ZipFile) -> str:
    """The zip member of the workbook's first sheet (through the workbook's relationships)."""
    workbook = ElementTree.fromstring(book.read("xl/workbook.xml"))
    first = next(workbook.iter(f"{_XLSX}sheet"), None)
    if first is None:
        raise KeyError("the workbook lists no sheet")
    relationships = ElementTree.fromstring(book.read("xl/_rels/workbook.xml.rels"))
    target = next(
        (
            rel.get("Target")
            for rel in relationships.iter(f"{_RELATIONSHIPS}Relationship")
            if rel.get("Id") == first.get(_OFFICE_RELATIONSHIP_ID)
        ),
        None,
    )
    if target is None:
        raise KeyError(f"no relationship for sheet '{first.get('name')}'")
    return target.lstrip("/") if target.startswith("/") else f"xl/{target}"


def _shared_strings(book: zipfile.ZipFile) -> list[str]:
    if "xl/sharedStrings.xml" not in book.namelist():
        return []
    table = ElementTree.fromstring(book.read("xl/sharedStrings.xml"))
    return ["".join(text.text or "" for text in item.iter(f"{_XLSX}t")) for item in table.iter(f"{_XLSX}si")]


def _xlsx_value(cell, strings: list[str]) -> str | float | None:
    kind = cell.get("t", "n")
    if kind == "inlineStr":
        inline = cell.find(f"{_XLSX}is")
        return None if inline is None else "".join(text.text or "" for text in inline.iter(f"{_XLSX}t"))
    value = cell.find(f"{_XLSX}v")
    if value is None or value.text is None:
        return None
    if kind == "s":
        return strings[int(value.text)]
    if kind in ("str", "e"):
        return value.text
    if kind == "b":
        return float(value.text == "1")
    return float(value.text)


def _column_index(reference: str) -> int:
    """ "B3" → 1 (A = 0)."""
    letters = re.match(r"[A-Z]+", reference.upper())
    if letters is None:
        raise KeyError(f"cell reference '{reference}'")
    index = 0
    for letter in letters.group():
        index = index * 26 + ord(letter) - ord("A") + 1
    return index - 1


def _header(value) -> str:
    return _cell_text(value).lower()


def _cell_text(value) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:g}"
    return str(value).strip()


def _cell_number(value, path: Path, row: str) -> float | None:
    """A score cell as a number; None when empty; refused when it holds text that is no number."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    try:
        number = float(value)
    except ValueError:
        raise LesionDetectError(f"'{path}' row '{row}' holds '{value}' where an Agatston score belongs.") from None
    if not math.isfinite(number):
        raise LesionDetectError(f"'{path}' row '{row}' holds '{value}' where an Agatston score belongs.")
    return number


# --- Image + label map ---------------------------------------------------------------------------------


def read_labelled_volume(image_path, labels_path, code_map: dict[int, int] | None = None) -> CalciumCase:
    """Read an image and its label map on the same grid; map label values to calcium codes.

    `code_map` maps each non-zero label value to a code of `calcium_labels.STRUCTURES`; None means
    `ORCASCORE_CODE_MAP` (orCaScore's 1 LAD with left main, 2 LCX, 3 RCA → 2, 3, 4). 0 is background.
    A label value the map does not name is refused. Labels below 130 HU are dropped.
    """
    image_path, labels_path = Path(image_path), Path(labels_path)
    image = read_volume(image_path)
    label_volume = read_volume(labels_path)
    _check_same_grid(image, label_volume, image_path, labels_path)
    code_map = ORCASCORE_CODE_MAP if code_map is None else code_map
    codes = _mapped_codes(label_volume.array, code_map, labels_path)
    return CalciumCase(_image_stem(image_path.name), image, _calcium_only(codes, image), "labelmap")


def labelmap_pairs(root: Path) -> list[tuple[Path, Path]]:
    """(image, label map) pairs of a folder: ``<name>.<ext>`` with ``<name><suffix>.<ext>``; unpaired files refused."""
    images: dict[str, Path] = {}
    label_maps: dict[str, Path] = {}
    for path in sorted(root.iterdir()):
        stem = _image_stem(path.name)
        if stem is None or not path.is_file():
            continue
        base = _without_label_suffix(stem)
        found = label_maps if base else images
        key = base or stem
        if key in found:
            raise LesionDetectError(f"'{found[key].name}' and '{path.name}' in '{root}' pair ambiguously; keep one.")
        found[key] = path
    unpaired = sorted({**images, **label_maps}[name].name for name in set(images) ^ set(label_maps))
    if unpaired:
        raise LesionDetectError(
            f"In '{root}' these files have no partner: {', '.join(unpaired)}; each image <name>.<ext> needs a "
            f"label map <name>{{{','.join(LABEL_SUFFIXES)}}}.<ext> beside it."
        )
    if not images:
        raise LesionDetectError(f"'{root}' holds no image and label map pairs ({', '.join(IMAGE_SUFFIXES)}).")
    return [(images[name], label_maps[name]) for name in sorted(images, key=_natural_key)]


def synthetic_case_folders(root: Path) -> list[Path]:
    """The ``case_*`` folders written by the synthetic generator, in natural order."""
    folders = sorted((path for path in root.glob("case_*") if path.is_dir()), key=lambda path: _natural_key(path.name))
    if not folders:
        raise LesionDetectError(f"'{root}' holds no synthetic case_* folders.")
    return folders


def read_synthetic_case(folder) -> CalciumCase:
    """A synthetic case: ``image.nrrd`` and ``labels.nrrd`` already in calcium label codes."""
    folder = Path(folder)
    case = read_labelled_volume(folder / "image.nrrd", folder / "labels.nrrd", IDENTITY_CODE_MAP)
    return replace(case, case_id=folder.name, source="synthetic")


def _check_same_grid(image: Volume, labels: Volume, image_path: Path, labels_path: Path) -> None:
    """Refuse a label map whose size, spacing, direction or origin differs from the image's."""
    problems = []
    if image.array.shape != labels.array.shape:
        problems.append(f"size {labels.shape_ijk} instead of {image.shape_ijk}")
    else:
        if not np.allclose(labels.spacing, image.spacing, rtol=SPACING_RTOL, atol=0):
            problems.append(f"spacing {_mm(labels.spacing)} instead of {_mm(image.spacing)} mm")
        if not np.allclose(labels.directions, image.directions, atol=DIRECTION_ATOL):
            problems.append("other axis directions")
        origin_shift = np.abs(labels.ijk_to_ras[:3, 3] - image.ijk_to_ras[:3, 3]).max()
        if origin_shift > ORIGIN_VOXEL_FRACTION * image.spacing.min():
            problems.append(f"origin {origin_shift:.3g} mm away")
    if problems:
        raise LesionDetectError(
            f"The label map '{labels_path}' is not on the grid of the image '{image_path}' ({'; '.join(problems)}); "
            "resample the label map onto the image (e.g. in 3D Slicer) or pair the right files."
        )


def _mapped_codes(values: np.ndarray, code_map: dict[int, int], labels_path: Path) -> np.ndarray:
    """Calcium codes (uint8) of a label array through `code_map`; unnamed or non-integer values refused."""
    bad_codes = sorted({code for code in code_map.values() if code not in STRUCTURES})
    if bad_codes:
        raise LesionDetectError(f"The code map gives {bad_codes}, which are not calcium label codes (0–9).")
    present = np.unique(values)
    unnamed = [value for value in present.tolist() if value != 0 and value not in code_map]
    if unnamed:
        raise LesionDetectError(
            f"'{labels_path}' holds label values {unnamed[:10]} that the code map {code_map} does not name; "
            "pass a code map from each label value to a calcium label code."
        )
    codes = np.zeros(values.shape, np.uint8)
    for value, code in code_map.items():
        if value in present:
            codes[values == value] = code
    return codes


# --- Shared --------------------------------------------------------------------------------------------


def _calcium_only(labels: np.ndarray, volume: Volume) -> np.ndarray:
    """`labels` with every voxel below 130 HU set to 0."""
    labels[np.asarray(volume.array) < AGATSTON_THRESHOLD_HU] = 0
    return labels


def _image_stem(name: str) -> str | None:
    """The name without its image suffix (".nii.gz" counts as one); None for other files."""
    lower = name.lower()
    suffix = next((suffix for suffix in IMAGE_SUFFIXES if lower.endswith(suffix)), None)
    return name[: -len(suffix)] if suffix else None


def _without_label_suffix(stem: str) -> str | None:
    """The image stem a label map stem belongs to, or None when `stem` is no label map's."""
    suffix = next((suffix for suffix in LABEL_SUFFIXES if stem.lower().endswith(suffix)), None)
    return stem[: -len(suffix)] if suffix and len(stem) > len(suffix) else None


def _natural_key(name: str) -> list:
    """Sort key putting "2" before "10"."""
    return [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", name)]


def _mm(values) -> str:
    return " × ".join(f"{value:g}" for value in values)
