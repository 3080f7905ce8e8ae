"""The hemorrhage detector's options: the probability that calls a label, and the heatmap's hot level."""

from __future__ import annotations

from dataclasses import dataclass, field

from LesionDetectLib.detection.options import option


@dataclass
class HemorrhageOptions:
    threshold: float = field(
        default=0.5,
        metadata=option("probability at which a label is called positive", minimum=0.01, maximum=0.99),
    )
    heatmap: bool = field(default=True, metadata=option("Grad-CAM heatmap and boxes of the positive labels"))
    hot_level: float = field(
        default=0.5,
        metadata=option("heatmap level a box is drawn around (fraction of the hottest)", minimum=0.1, maximum=0.95),
    )
