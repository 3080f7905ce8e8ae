"""The microbleed detector's options: the operating point, and the second volumes it can use."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from LesionDetectLib.detection.options import VOLUME, option


@dataclass
class MicrobleedOptions:
    sensitivity: float = field(
        default=0.9,
        metadata=option(
            "operating point: the fraction of microbleeds found on the validation set (lower: fewer false "
            "positives); changes the shown microbleeds without rerunning the network",
            minimum=0.5,
            maximum=0.99,
        ),
    )
    phase: np.ndarray | None = field(
        default=None,
        metadata=option(
            "GRE phase on the input's grid (radians, or raw values spanning one turn): SWI is computed from the "
            "input magnitude and this phase",
            kind=VOLUME,
        ),
    )
    parcellation: np.ndarray | None = field(
        default=None,
        metadata=option(
            "brain parcellation on the input's grid (FreeSurfer / SynthSeg labels) for lobar vs deep; without "
            "it the location is a position-based guess",
            kind=VOLUME,
        ),
    )
    bias_correction: bool = field(default=True, metadata=option("N4 bias-field correction before the network"))
