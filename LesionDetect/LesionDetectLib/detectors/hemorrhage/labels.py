"""The six hemorrhage labels (RSNA 2019) and the weights of the challenge's weighted log loss."""

from __future__ import annotations

LABELS = ("any", "epidural", "intraparenchymal", "intraventricular", "subarachnoid", "subdural")
SUBTYPES = LABELS[1:]
ANY = LABELS.index("any")
LOSS_WEIGHTS = (2.0, 1.0, 1.0, 1.0, 1.0, 1.0)  # RSNA: "any" counts twice
