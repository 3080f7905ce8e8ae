"""Readers of labelled angiography: clips with a clip label, and stenosis boxes in the public datasets' layouts.

    clips.csv                 "clip,label[,fold]": a clip folder (frames in name order) or a multi-frame DICOM,
                              label 0 normal / 1 stenosis, relative to the CSV's folder
    Pascal VOC XML            one file per frame (the Danilov set): <filename>, <size>, <object><name>
                              <bndbox><xmin>…</bndbox></object>, pixel corners 1-based and inclusive
    COCO JSON                 one file per set (ARCADE): images, annotations with bbox [x, y, width, height],
                              categories

Boxes come back as [x0, y0, x1, y1] in 0-based pixel edges (x along columns), the layout of the detector's
`box_px`. Clips are read through the platform's readers, as the detector reads them.
"""

from __future__ import annotations

import csv
import json
import xml.etree.ElementTree as ElementTree
from dataclasses import dataclass, field
from pathlib import Path

LABELS = {"0": 0, "1": 1, "normal": 0, "stenosis": 1}


@dataclass
class FrameBoxes:
    """The stenosis boxes of one annotated frame."""

    file_name: str
    width: int
    height: int
    boxes: list[list[float]] = field(default_factory=list)  # [x0, y0, x1, y1], 0-based pixel edges
    classes: list[str] = field(default_factory=list)


@dataclass
class LabelledClip:
    path: Path
    label: int
    fold: int | None = None


def read_clip_labels(csv_path) -> list[LabelledClip]:
    """The clips a CSV lists, with their labels (and folds when given), paths resolved next to the CSV."""
    csv_path = Path(csv_path)
    clips = []
    with open(csv_path, newline="") as stream:
        rows = csv.DictReader(stream)
        if not rows.fieldnames or not {"clip", "label"} <= {name.strip() for name in rows.fieldnames}:
            raise ValueError(f"'{csv_path}' is not a clip label file: it needs the columns clip and label")
        for row in rows:
            row = {key.strip(): value.strip() for key, value in row.items()}
            if row["label"].lower() not in LABELS:
                raise ValueError(f"'{csv_path}': clip {row['clip']} has label {row['label']!r}, not 0/1")
            fold = int(row["fold"]) if row.get("fold") else None
            clips.append(LabelledClip(csv_path.parent / row["clip"], LABELS[row["label"].lower()], fold))
    return clips


def read_clip(clip: LabelledClip):
    """The clip's frames as an `ImageSequence`, through the platform's reader."""
    from LesionDetectLib.io.read_input import read_input

    return read_input(clip.path)


def read_voc_boxes(xml_path) -> FrameBoxes:
    """One Pascal VOC annotation file (VOC corners are 1-based and inclusive: xmin 1 is the first pixel)."""
    root = ElementTree.parse(xml_path).getroot()
    size = root.find("size")
    frame = FrameBoxes(root.findtext("filename", ""), int(size.findtext("width")), int(size.findtext("height")))
    for item in root.iter("object"):
        box = item.find("bndbox")
        xmin, ymin, xmax, ymax = (float(box.findtext(name)) for name in ("xmin", "ymin", "xmax", "ymax"))
        frame.boxes.append([xmin - 1.0, ymin - 1.0, xmax, ymax])
        frame.classes.append(item.findtext("name", ""))
    return frame


def read_coco_boxes(json_path, categories: set[str] | None = None) -> list[FrameBoxes]:
    """Every image of a COCO file with its boxes (bbox [x, y, w, h] from the top-left pixel edge), optionally
    only those of the named categories; images without a box are kept, with none."""
    data = json.loads(Path(json_path).read_text())
    names = {category["id"]: category["name"] for category in data.get("categories", [])}
    frames = {image["id"]: FrameBoxes(image["file_name"], image["width"], image["height"]) for image in data["images"]}
    for annotation in data.get("annotations", []):
        name = names.get(annotation["category_id"], str(annotation["category_id"]))
        if categories is not None and name not in categories:
            continue
        x, y, width, height = annotation["bbox"]
        frame = frames[annotation["image_id"]]
        frame.boxes.append([x, y, x + width, y + height])
        frame.classes.append(name)
    return list(frames.values())
