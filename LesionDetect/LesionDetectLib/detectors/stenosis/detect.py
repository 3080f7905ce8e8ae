"""Coronary stenosis on an angiography cine (clip mode) or on one frame (frame mode) → `Findings`.

Clip mode: the burned-in text masked and the 5 key frames of the filled phase chosen by vessel filling → the
frame classifier's stenosis probability per key frame → the clip's verdict by their majority vote → on each key
frame the attention and Grad-CAM heatmap, and boxes on its hot regions where the frame votes stenosis. Frame mode:
the same on a single frame, which is its own (only) key frame: its call is the verdict, with a warning.
"""

from __future__ import annotations

import numpy as np
import torch

from LesionDetectLib.detection.detector import no_progress
from LesionDetectLib.detection.findings import Findings, Lesion, ScoreTable
from LesionDetectLib.detectors.stenosis.boxes import frame_boxes
from LesionDetectLib.detectors.stenosis.heatmaps import frame_heatmaps
from LesionDetectLib.detectors.stenosis.key_frames import KEY_FRAME_COUNT, KeyFrames, key_frames
from LesionDetectLib.detectors.stenosis.preprocess import network_input
from LesionDetectLib.detectors.stenosis.vote import STENOSIS, ClipVerdict, clip_verdict

LABEL = "suspected stenosis"
FRAME_MODE_WARNING = (
    "One frame was given, not a cine run: it was judged on its own. The verdict is this frame's call, without "
    f"the choice of the {KEY_FRAME_COUNT} best-filled frames and their vote; give the whole run for a clip verdict."
)


def detect_stenosis(sequence, model, options, device="cpu", progress=None) -> Findings:
    """The clip (or frame) verdict, the key frames' probabilities, the heatmap on every frame (zero off the key
    frames, uint8 percent) and the boxes."""
    progress = progress or no_progress
    frames = np.asarray(sequence.frames)
    single = sequence.is_single_image
    progress("key frames", 0.05, "one frame" if single else f"vessel filling of {len(frames)} frames")
    chosen = key_frames(frames, sequence.pixel_spacing_mm, count=1 if single else KEY_FRAME_COUNT)
    network = model.network.to(device)
    inputs = network_input(frames[chosen.indices], chosen.text_mask, model.input_size).to(device)
    progress("classify", 0.4, f"{len(inputs)} key frame{'' if len(inputs) == 1 else 's'}")
    with torch.no_grad():
        probabilities = torch.sigmoid(network(inputs)).cpu().numpy().astype(float)
    verdict = clip_verdict(probabilities, options.threshold)
    heatmap, lesions = None, []
    if options.heatmap:
        progress("heatmap", 0.6, "attention and Grad-CAM of the key frames")
        key_heat = frame_heatmaps(network, inputs, sequence.frame_shape)
        lesions = _lesions(sequence, chosen.indices, key_heat, probabilities, options)
        heatmap = np.zeros(frames.shape, dtype=np.uint8)
        heatmap[chosen.indices] = np.rint(key_heat * 100).astype(np.uint8)
    progress("done", 1.0, "")
    return Findings(
        detector="stenosis",
        method="deep",
        image=sequence,
        lesions=lesions,
        summary=summary(chosen, probabilities, verdict, options, model, "frame" if single else "clip"),
        model_version=model.version,
        weights_sha256=model.sha256,
        device=device,
        heatmap=heatmap,
        probabilities={STENOSIS: round(verdict.probability, 4)},
        score_tables=[frame_table(chosen, probabilities)],
        warnings=([FRAME_MODE_WARNING] if single else list(chosen.notes)) + model.caution_warnings,
    )


def _lesions(sequence, indices, key_heat, probabilities, options) -> list[Lesion]:
    """A box per hot region on each key frame that votes stenosis, scored by the region's peak heat."""
    lesions = []
    for frame, heat, probability in zip(indices, key_heat, probabilities):
        if probability < options.threshold:
            continue
        for box in frame_boxes(heat, sequence.pixel_spacing_mm, options.hot_level, options.max_boxes_per_frame):
            lesions.append(
                Lesion.on_frame(
                    sequence,
                    len(lesions) + 1,
                    LABEL,
                    int(frame),
                    box.box_px,
                    score=round(box.score, 4),
                    measurements={"frame_probability": round(float(probability), 4)},
                )
            )
    return lesions


def summary(chosen: KeyFrames, probabilities, verdict: ClipVerdict, options, model, mode: str) -> dict:
    return {
        "mode": mode,
        "verdict": verdict.verdict,
        "probability": round(verdict.probability, 4),
        "votes": verdict.votes,
        "key_frames": [
            {"frame": int(frame), "filling": round(float(chosen.filling[frame]), 5), "probability": round(p, 4)}
            for frame, p in zip(chosen.indices, map(float, probabilities))
        ],
        "filled_span": [int(chosen.filled_span[0]), int(chosen.filled_span[1])],
        "threshold": options.threshold,
        "model_threshold": model.threshold,
    }


def frame_table(chosen: KeyFrames, probabilities) -> ScoreTable:
    """One row per frame of the input: its vessel filling, and its stenosis probability (NaN off the key frames,
    which the network does not see)."""
    values = np.full((len(chosen.filling), 2), np.nan)
    values[:, 0] = chosen.filling
    values[chosen.indices, 1] = probabilities
    return ScoreTable("frame", ("filling", STENOSIS), values)
