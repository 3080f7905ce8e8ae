"""The Slicer self-test bodies of every registered detector, run on a real slicer-core scene."""

import pytest

from LesionDetectLib.scenarios import all_scenarios

SCENARIOS = dict(all_scenarios())


def test_every_detector_brings_scenarios():
    from LesionDetectLib.detection.registry import detectors

    with_scenarios = {name.split(".")[0] for name in SCENARIOS}
    assert with_scenarios == {detector_id for detector_id, d in detectors().items() if d.scenarios()}
    assert "calcium" in with_scenarios


@pytest.mark.parametrize("name", sorted(SCENARIOS))
def test_scenario(name, mrml_scene, tmp_path):
    SCENARIOS[name](mrml_scene, tmp_path)
