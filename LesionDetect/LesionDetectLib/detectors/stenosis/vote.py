"""The clip's verdict from its key frames: the majority vote of the frame calls, and their mean probability."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

NORMAL, STENOSIS = "normal", "stenosis"


@dataclass
class ClipVerdict:
    verdict: str  # NORMAL or STENOSIS, by majority vote of the key frames
    probability: float  # mean stenosis probability of the key frames
    votes: int  # key frames called stenosis
    frames: int  # key frames that voted


def clip_verdict(frame_probabilities, threshold: float = 0.5) -> ClipVerdict:
    """Each key frame votes stenosis at `threshold` or above; more than half the votes make the clip's verdict. An
    even split goes to the mean probability, so a tie is never decided by frame order."""
    probabilities = np.asarray(frame_probabilities, dtype=float)
    if probabilities.ndim != 1 or probabilities.size == 0:
        raise ValueError(
            f"a clip verdict needs one probability per key frame, not an array of shape {probabilities.shape}"
        )
    votes = int((probabilities >= threshold).sum())
    mean = float(probabilities.mean())
    majority = votes * 2 > probabilities.size or (votes * 2 == probabilities.size and mean >= threshold)
    return ClipVerdict(STENOSIS if majority else NORMAL, mean, votes, int(probabilities.size))
