"""The clip vote over key frames."""

import pytest

from LesionDetectLib.detectors.stenosis.vote import NORMAL, STENOSIS, clip_verdict


@pytest.mark.parametrize(
    "probabilities, verdict, votes",
    [
        ([0.9, 0.8, 0.7, 0.2, 0.1], STENOSIS, 3),  # 3 of 5
        ([0.9, 0.95, 0.4, 0.3, 0.2], NORMAL, 2),  # 2 of 5, however sure the two are
        ([0.5, 0.5, 0.5, 0.49, 0.0], STENOSIS, 3),  # the threshold itself votes stenosis
    ],
)
def test_the_majority_of_key_frames_decides(probabilities, verdict, votes):
    result = clip_verdict(probabilities)
    assert (result.verdict, result.votes, result.frames) == (verdict, votes, len(probabilities))
    assert result.probability == pytest.approx(sum(probabilities) / len(probabilities))


def test_a_tie_goes_to_the_mean_probability():
    assert clip_verdict([0.9, 0.8, 0.3, 0.2]).verdict == STENOSIS  # mean 0.55
    assert clip_verdict([0.6, 0.55, 0.3, 0.1]).verdict == NORMAL  # mean 0.39


def test_a_clip_without_frame_probabilities_is_refused():
    with pytest.raises(ValueError, match="one probability per key frame"):
        clip_verdict([])
