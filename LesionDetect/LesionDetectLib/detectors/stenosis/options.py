"""The stenosis detector's options: the key-frame vote's threshold, the heatmap, and how its boxes are drawn."""

from __future__ import annotations

from dataclasses import dataclass, field

from LesionDetectLib.detection.options import option


@dataclass
class StenosisOptions:
    threshold: float = field(
        default=0.5,
        metadata=option("probability at which a key frame votes stenosis", minimum=0.01, maximum=0.99),
    )
    heatmap: bool = field(default=True, metadata=option("attention and Grad-CAM heatmap, and boxes on its peaks"))
    max_boxes_per_frame: int = field(
        default=2, metadata=option("most boxes drawn on one key frame, hottest first", minimum=1, maximum=10)
    )
    hot_level: float = field(
        default=0.5,
        metadata=option(
            "heatmap level a box is drawn around (fraction of the frame's hottest)", minimum=0.1, maximum=0.95
        ),
    )
