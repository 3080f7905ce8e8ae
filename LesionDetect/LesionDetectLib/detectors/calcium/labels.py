"""What each high-density structure is: the label codes of calcium training data and the detector's classes."""

from __future__ import annotations

# Codes of a calcium label map (one per voxel ≥ 130 HU that belongs to a known structure; 0 elsewhere).
STRUCTURES = {
    0: "background",
    1: "LM",
    2: "LAD",
    3: "LCX",
    4: "RCA",
    5: "coronary, artery not given",
    6: "aortic calcium",
    7: "valve calcium",
    8: "bone",
    9: "stent or metal",
}
ARTERIES = ("LM", "LAD", "LCX", "RCA")
CORONARY_CODES = frozenset({1, 2, 3, 4, 5})

# The deep detector's classes: only the four coronary classes count towards the Agatston score.
DETECTOR_CLASSES = ("background", "LM", "LAD", "LCX", "RCA", "other")
OTHER_CLASS = DETECTOR_CLASSES.index("other")


def detector_class(structure_code: int) -> int | None:
    """The detector class a labelled structure trains as; None where the artery is not given (ignored)."""
    if structure_code in (1, 2, 3, 4):
        return structure_code
    if structure_code == 5:
        return None
    return OTHER_CLASS if structure_code else 0
