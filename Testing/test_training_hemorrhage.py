"""train_hemorrhage.py end to end on a tiny config: three stages, a bundle that loads and is checked, resume."""

import json

import pytest
import torch
import yaml
from train_hemorrhage import main as train_main

from LesionDetectLib.detectors.hemorrhage.model import load_hemorrhage_model
from LesionDetectLib.errors import LesionDetectError

TINY = {
    "version": "hemorrhage-tiny-test",
    "seed": 3,
    "input_size": 32,
    "data": {
        "layout": "synthetic",
        "matrix": 64,
        "train_seeds": [2, 5],
        "val_seeds": [6, 8],
        "key_image_fraction": 0.3,
    },
    "model": {"width": 0.125, "blocks": [1, 1, 1, 1], "reduced": 8, "lstm_hidden": 8, "lstm_layers": 3, "dropout": 0.1},
    "cnn": {"epochs": 3, "lr": 1.0e-3, "batch": 16},
    "lstm": {"epochs": 1, "lr": 1.0e-3},
}


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    out = tmp_path_factory.mktemp("hemorrhage")
    config = out / "tiny.yaml"
    config.write_text(yaml.safe_dump(TINY))
    assert train_main(["--config", str(config), "--out", str(out / "run")]) == 0
    return config, out / "run"


def test_training_runs_its_three_stages_and_writes_a_bundle_that_loads(trained):
    _, run = trained
    stages = [json.loads(line)["stage"] for line in (run / "train_log.jsonl").read_text().splitlines()]
    assert stages == ["data", "backbone", "cnn", "cnn", "cnn", "cnn_best", "reduction", "lstm"]
    log = [json.loads(line) for line in (run / "train_log.jsonl").read_text().splitlines()]
    val = [entry["val"] for entry in log if entry["stage"] == "cnn"]
    kept = next(entry for entry in log if entry["stage"] == "cnn_best")
    assert kept["epoch"] == val.index(min(val)) and kept["val"] == min(val)
    model = load_hemorrhage_model(run / "model" / "hemorrhage.json")
    assert model.version == "hemorrhage-tiny-test" and model.input_size == 32
    manifest = json.loads((run / "model" / "hemorrhage.json").read_text())
    assert manifest["training_data"]["generator_version"] and "slice_auc_any" in manifest["validation"]
    assert not torch.equal(model.network.reduction.components, torch.eye(8, model.network.cnn.features))  # PCA fitted
    with torch.no_grad():
        logits, _ = model.network(torch.rand(1, 4, 3, 32, 32))
    assert logits.shape == (1, 4, 6)


def test_resume_after_the_last_stage_trains_nothing_more(trained):
    config, run = trained
    before = (run / "model" / "hemorrhage.safetensors").read_bytes()
    assert train_main(["--config", str(config), "--out", str(run), "--resume"]) == 0
    stages = [json.loads(line)["stage"] for line in (run / "train_log.jsonl").read_text().splitlines()]
    assert stages[-2:] == ["data", "backbone"] and stages.count("cnn") == 3  # nothing trained again
    assert (run / "model" / "hemorrhage.safetensors").read_bytes() == before


def test_a_changed_weights_file_is_refused(trained, tmp_path):
    _, run = trained
    for name in ("hemorrhage.json", "hemorrhage.safetensors"):
        (tmp_path / name).write_bytes((run / "model" / name).read_bytes())
    weights = tmp_path / "hemorrhage.safetensors"
    weights.write_bytes(weights.read_bytes()[:-8] + b"\0" * 8)
    with pytest.raises(LesionDetectError, match="is not the hemorrhage model's weights file"):
        load_hemorrhage_model(tmp_path / "hemorrhage.json")


def test_install_copies_the_bundle_where_detectors_load_it(trained, tmp_path, monkeypatch):
    from LesionDetectLib.detection import weights

    _, run = trained
    monkeypatch.setattr(weights, "MODELS_DIR", tmp_path)
    weights.install_bundle(run / "model" / "hemorrhage.json")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["hemorrhage.json", "hemorrhage.safetensors"]
    assert (
        load_hemorrhage_model(tmp_path / "hemorrhage.json").sha256
        == load_hemorrhage_model(run / "model" / "hemorrhage.json").sha256
    )


def test_an_imagenet_mobilenet_v2_backbone_trains_from_the_shipped_weights_and_cached_scans_are_reused(tmp_path):
    import pretrained_backbones
    from safetensors.torch import load_file

    from LesionDetectLib.nets.mobilenet_v2 import MobileNetV2Features

    config = dict(TINY, model={**TINY["model"], "backbone": "mobilenet_v2", "pretrained": "imagenet"})
    config["data"] = {**TINY["data"], "train_seeds": [2, 4], "val_seeds": [6, 7]}
    path = tmp_path / "mobilenet.yaml"
    path.write_text(yaml.safe_dump(config))
    cache = tmp_path / "cache"
    arguments = ["--config", str(path), "--cache", str(cache), "--workers", "2"]
    assert train_main([*arguments, "--out", str(tmp_path / "first")]) == 0
    cached = sorted(p.name for p in cache.iterdir())
    assert len(cached) == 3  # two training scans, one validation scan
    log = [json.loads(line) for line in (tmp_path / "first" / "train_log.jsonl").read_text().splitlines()]
    assert log[1]["backbone"] == "mobilenet_v2" and "ImageNet" in log[1]["weights"]
    model = load_hemorrhage_model(tmp_path / "first" / "model" / "hemorrhage.json")
    assert model.network.cnn.features == 1280 and model.network.cnn.cam_layer == "trunk.features.13"

    imagenet = MobileNetV2Features()
    pretrained_backbones.load_imagenet_mobilenet_v2(imagenet)
    trained = load_file(str(tmp_path / "first" / "model" / "hemorrhage.safetensors"))
    first_conv = trained["cnn.trunk.features.0.0.weight"]
    assert first_conv.shape == imagenet.features[0][0].weight.shape
    # one epoch of Adam at 1e-3 moves the ImageNet start only a little; a random start is nowhere near it
    start = imagenet.features[0][0].weight.detach()
    assert torch.nn.functional.cosine_similarity(first_conv.flatten(), start.flatten(), dim=0) > 0.9

    assert train_main([*arguments, "--out", str(tmp_path / "second")]) == 0
    assert sorted(p.name for p in cache.iterdir()) == cached
    second = [json.loads(line) for line in (tmp_path / "second" / "train_log.jsonl").read_text().splitlines()]
    assert (
        second[0]["train_slices"] == log[0]["train_slices"]
        and second[0]["key_image_slices"] == log[0]["key_image_slices"]
    )
