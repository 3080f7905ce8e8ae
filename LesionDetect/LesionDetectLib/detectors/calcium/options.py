"""The calcium detector's settings: the user's options and the bone rules, importable without the heavy stages."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from LesionDetectLib.detection.options import REGION, option

AGATSTON_THRESHOLD_HU = 130.0


@dataclass
class BoneRules:
    """Limits beyond which a bright component is bone, not a calcified plaque."""

    max_lesion_volume_mm3: float = 1500.0
    max_lesion_extent_mm: float = 60.0
    bone_margin_mm: float = 3.0


@dataclass
class CalciumParams:
    """Settings of the calcium detector; defaults are the clinical Agatston rules. Fields with `option`
    metadata are the user's options (CLI flags, panel, report params); the others are for code and tests."""

    region: np.ndarray | None = field(
        default=None,
        metadata=option("heart/coronary region: a label map on the input's grid or a box ROI", kind=REGION),
    )
    threshold_hu: float = field(
        default=AGATSTON_THRESHOLD_HU,
        metadata=option("calcium threshold", minimum=100.0, maximum=1000.0, unit="HU"),
    )
    mass_calibration: float = field(
        default=1.0,
        metadata=option(
            "c_HA, mg hydroxyapatite per cm³ per HU, from the site's calibration phantom",
            minimum=0.01,
            maximum=10.0,
            unit="mg/cm³ per HU",
        ),
    )
    slice_thickness_mm: float | None = None  # None: the slice spacing
    bone: BoneRules = field(default_factory=BoneRules)
    surfaces: bool = True
