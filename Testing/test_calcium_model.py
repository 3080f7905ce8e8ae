"""The calcium model bundle: safetensors round trip, hash and shape checks, and the deep path's plumbing."""

import json
import struct

import numpy as np
import pytest
import torch

from LesionDetectLib.app.cli import main as cli_main
from LesionDetectLib.detection.input_range import TOLERANCE
from LesionDetectLib.detectors.calcium.acf import BoostedTrees
from LesionDetectLib.detectors.calcium.deep import detect_calcium_deep
from LesionDetectLib.detectors.calcium.model import file_sha256, load_calcium_model, save_calcium_model
from LesionDetectLib.detectors.calcium.sample import make_sample
from LesionDetectLib.errors import LesionDetectError
from LesionDetectLib.io.volume import Volume
from LesionDetectLib.io.volume_io import read_volume, write_nrrd
from LesionDetectLib.nets.ssd import SSD, SSDConfig
from LesionDetectLib.results.report import validate_report
from LesionDetectLib.results.result_files import write_results

TINY = SSDConfig(width=0.125, blocks=(1, 1, 1, 1))


def constant_trees(log_odds: float) -> BoostedTrees:
    """One leaf: every scored block gets the same ACF score."""
    return BoostedTrees(
        features=np.array([-1]),
        thresholds=np.zeros(1),
        left=np.array([-1]),
        right=np.array([-1]),
        values=np.array([log_odds]),
        roots=np.array([0]),
        base_score=0.0,
    )


@pytest.fixture
def tiny_bundle(tmp_path):
    torch.manual_seed(0)
    network = SSD(TINY).eval()
    manifest = save_calcium_model(network, constant_trees(3.0), 0.5, 4, tmp_path / "model", {"version": "tiny-test"})
    return manifest, network


def test_bundle_round_trip_keeps_weights_trees_and_settings(tiny_bundle):
    manifest_path, network = tiny_bundle
    model = load_calcium_model(manifest_path)
    manifest = json.loads(manifest_path.read_text())
    assert model.version == "tiny-test" and model.sha256 == file_sha256(manifest_path.parent / manifest["weights"])
    assert model.acf_threshold == 0.5 and model.acf_shrink == 4
    for name, value in network.state_dict().items():
        loaded = model.ssd.state_dict()[name]
        if value.is_floating_point():
            torch.testing.assert_close(loaded, value.half().float(), rtol=0, atol=0)
        else:
            assert torch.equal(loaded, value)
    np.testing.assert_allclose(model.acf.score(np.zeros((3, 5))), 1 / (1 + np.exp(-3.0)))


def test_weights_file_is_safetensors_with_fp16_network_tensors(tiny_bundle):
    manifest_path, _ = tiny_bundle
    raw = (manifest_path.parent / "calcium_deep.safetensors").read_bytes()
    header_length = struct.unpack("<Q", raw[:8])[0]
    header = json.loads(raw[8 : 8 + header_length])
    dtypes = {entry["dtype"] for name, entry in header.items() if name.startswith("ssd.") and "running" in name}
    assert dtypes == {"F16"}
    assert any(name.startswith("acf.") for name in header)


def test_a_weights_file_with_another_hash_is_refused(tiny_bundle):
    manifest_path, _ = tiny_bundle
    weights = manifest_path.parent / "calcium_deep.safetensors"
    data = bytearray(weights.read_bytes())
    data[-1] ^= 0xFF
    weights.write_bytes(bytes(data))
    with pytest.raises(LesionDetectError, match=r"calcium_deep\.safetensors' is not the calcium model's weights"):
        load_calcium_model(manifest_path)


def test_weights_that_do_not_fit_the_network_are_refused(tiny_bundle):
    manifest_path, _ = tiny_bundle
    manifest = json.loads(manifest_path.read_text())
    manifest["ssd_config"]["width"] = 0.25
    manifest_path.write_text(json.dumps(manifest))
    with pytest.raises(LesionDetectError, match="does not fit the calcium network.*wrong shape"):
        load_calcium_model(manifest_path)


def test_a_missing_model_says_how_to_get_one(tmp_path):
    with pytest.raises(LesionDetectError, match="--method classical"):
        load_calcium_model(tmp_path / "calcium_deep.json")


def small_sample():
    volume, plaques, _ = make_sample(shape_ijk=(192, 192, 24))
    return volume, plaques


def test_deep_path_runs_end_to_end_and_writes_heatmap_and_region(tiny_bundle, tmp_path):
    volume, _ = small_sample()
    findings = detect_calcium_deep(volume, load_calcium_model(tiny_bundle[0]))
    assert findings.method == "deep" and findings.model_version == "tiny-test"
    assert findings.heatmap.shape == volume.array.shape and findings.heatmap.dtype == np.uint8
    assert findings.heatmap.max() <= 100
    assert findings.region.shape == volume.array.shape and findings.region.any()
    assert findings.summary["candidates"]["windows"] > 0
    reasons = " ".join(entry["reason"] for entry in findings.summary["excluded"])
    assert "not coronary" in reasons or findings.lesions  # every bright component is either scored or explained
    (tmp_path / "out").mkdir()
    report = write_results(findings, tmp_path / "out")
    validate_report(report)
    heatmap = read_volume(tmp_path / "out" / "heatmap.nrrd")
    np.testing.assert_array_equal(heatmap.array, findings.heatmap)
    np.testing.assert_allclose(heatmap.ijk_to_ras, volume.ijk_to_ras)


def test_cli_runs_the_deep_method_with_given_weights(tiny_bundle, tmp_path, capsys):
    volume, _ = small_sample()
    write_nrrd(volume, tmp_path / "ct.nrrd")
    out = tmp_path / "out"
    code = cli_main(
        [
            "calcium",
            str(tmp_path / "ct.nrrd"),
            "-o",
            str(out),
            "--method",
            "deep",
            "--weights",
            str(tiny_bundle[0]),
            "--progress",
            "json",
            "--no-snapshot",
        ]
    )
    assert code == 0
    report = json.loads((out / "report.json").read_text())
    assert report["method"] == "deep" and report["model"]["version"] == "tiny-test"
    assert report["outputs"]["heatmap"] == "heatmap.nrrd" and (out / "region.nrrd").is_file()
    events = [json.loads(line) for line in capsys.readouterr().out.splitlines() if line.startswith("{")]
    assert {"region", "candidates", "network"} <= {event.get("stage") for event in events}


def test_cli_refuses_a_wrong_weights_file_with_exit_2(tiny_bundle, tmp_path, capsys):
    manifest_path, _ = tiny_bundle
    weights = manifest_path.parent / "calcium_deep.safetensors"
    weights.write_bytes(weights.read_bytes()[:-1] + b"\0")
    volume, _ = small_sample()
    write_nrrd(volume, tmp_path / "ct.nrrd")
    code = cli_main(
        [
            "calcium",
            str(tmp_path / "ct.nrrd"),
            "-o",
            str(tmp_path / "out"),
            "--method",
            "deep",
            "--weights",
            str(manifest_path),
            "--progress",
            "json",
        ]
    )
    assert code == 2
    assert "sha256" in capsys.readouterr().out
    assert not (tmp_path / "out" / "report.json").exists()


def test_artery_classes_pool_into_one_coronary_score_and_the_likeliest_artery_labels_it():
    from LesionDetectLib.detectors.calcium.deep import decode_coronary

    network = SSD(TINY).eval()
    anchors = len(network.anchors)
    logits = torch.full((1, anchors, 6), -20.0)
    logits[..., 0] = 10.0
    chosen = anchors // 3
    split = torch.tensor([0.25, 0.10, 0.32, 0.20, 0.08, 0.05])  # no single artery reaches 0.5; together 0.70
    logits[0, chosen] = split.log()
    result = decode_coronary(network, logits, torch.zeros((1, anchors, 4)))[0]
    confident = result["scores"] > 0.5
    assert int(confident.sum()) == 1
    assert float(result["scores"][confident][0]) == pytest.approx(0.70, abs=1e-4)
    assert int(result["labels"][confident][0]) == 2  # LAD
    torch.testing.assert_close(result["boxes"][confident][0], network.anchors[chosen].clamp(0, 64))


def test_deep_path_searches_a_given_region_and_refuses_one_on_another_grid(tiny_bundle):
    from LesionDetectLib.detectors.calcium.classical import CalciumParams

    volume, _ = small_sample()
    model = load_calcium_model(tiny_bundle[0])
    with pytest.raises(LesionDetectError, match="heart region mask has shape"):
        detect_calcium_deep(volume, model, CalciumParams(region=np.ones((2, 2, 2), dtype=np.uint8)))
    region = np.zeros(volume.array.shape, dtype=np.uint8)
    region[:, 40:150, 40:150] = 1
    findings = detect_calcium_deep(volume, model, CalciumParams(region=region))
    np.testing.assert_array_equal(findings.region, region)
    assert "heart_region_s" not in findings.timings  # the given region replaces the search
    assert "given region" in findings.summary["scope_note"]


def coarse_pixel_sample(pixel_mm: float):
    """The sample on a coarser in-plane grid (same anatomy in mm): `pixel_mm` pixels."""
    from scipy import ndimage

    volume = make_sample()[0]
    factor = volume.spacing[0] / pixel_mm
    array = ndimage.zoom(volume.array, (1, factor, factor), order=1).astype(np.int16)
    ijk_to_ras = volume.ijk_to_ras @ np.diag([1 / factor, 1 / factor, 1, 1])
    return Volume(array, ijk_to_ras, volume.name, "CT")


def shipped_pixel_range() -> tuple[float, float]:
    return load_calcium_model().input_range.pixel_mm


def test_deep_refuses_pixels_far_outside_its_trained_range_and_classical_still_runs(tmp_path, capsys):
    pixel_mm = round(shipped_pixel_range()[1] * (1 + TOLERANCE) * 1.1, 2)
    write_nrrd(coarse_pixel_sample(pixel_mm), tmp_path / "coarse.nrrd")
    out = tmp_path / "deep"
    code = cli_main(["calcium", str(tmp_path / "coarse.nrrd"), "-o", str(out), "--progress", "json", "--no-snapshot"])
    error = json.loads(capsys.readouterr().out.splitlines()[-1])
    assert code == 2 and not out.exists()
    assert f"pixel size is {pixel_mm:.2f} mm" in error["message"] and "--method classical" in error["message"]
    classical = ["calcium", str(tmp_path / "coarse.nrrd"), "-o", str(tmp_path / "classical"), "--method", "classical"]
    assert cli_main([*classical, "--progress", "none", "--no-snapshot"]) == 0


def test_deep_warns_a_little_outside_its_trained_range(tmp_path):
    pixel_mm = round(shipped_pixel_range()[1] * 1.1, 2)
    write_nrrd(coarse_pixel_sample(pixel_mm), tmp_path / "wider.nrrd")
    out = tmp_path / "deep"
    assert (
        cli_main(["calcium", str(tmp_path / "wider.nrrd"), "-o", str(out), "--progress", "none", "--no-snapshot"]) == 0
    )
    warnings = json.loads((out / "report.json").read_text())["warnings"]
    assert any(f"pixel size is {pixel_mm:.2f} mm" in warning and "may miss lesions" in warning for warning in warnings)
