"""train_stenosis.py end to end on tiny clips: cross-validation folds, a bundle that loads, resume, the ablation."""

import copy
import json

import numpy as np
import pytest
import torch
import yaml
from evaluate_stenosis import main as evaluate_main
from stenosis_patch_pretraining import patch_set
from train_stenosis import augmentation, cell_targets, epoch_order
from train_stenosis import main as train_main

from LesionDetectLib.detectors.stenosis.model import load_stenosis_model

# 128² × 12 frames: seeds 1–4 are normal, stenosis, normal, stenosis; 8 and 9 normal and stenosis
TINY = {
    "version": "stenosis-tiny-test",
    "seed": 5,
    "input_size": 64,
    "folds": 2,
    "data": {"matrix": 128, "frame_count": 12, "train_seeds": [1, 5], "val_seeds": [8, 10]},
    "augmentation": {"crop_fraction": 0.9765625, "intensity_shift": 0.0392, "flip_left_right": False},
    "model": {
        "pretrained": "imagenet",
        "attention": True,
        "attention_dim": 16,
        "heads": 2,
        "dropout": 0.1,
        "pooling": "max",
    },
    "patch_pretraining": {
        **{"epochs": 1, "lr": 1.0e-3, "batch": 16, "patch": 32, "jitter": 2, "clearance": 12},
        **{"negatives_per_frame": 2, "vessel_percentile": 8},
    },
    "train": {"epochs": 2, "lr": 1.0e-3, "batch": 8, "key_frames_per_clip": 3, "localisation_weight": 1.0},
}


def read_log(run):
    return [json.loads(line) for line in (run / "train_log.jsonl").read_text().splitlines()]


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    torch.set_num_threads(1)
    out = tmp_path_factory.mktemp("stenosis")
    config = out / "tiny.yaml"
    config.write_text(yaml.safe_dump(TINY))
    cache = out / "cache"
    assert train_main(["--config", str(config), "--out", str(out / "run"), "--cache", str(cache)]) == 0
    return config, cache, out / "run"


def test_training_scores_its_folds_and_writes_a_bundle_that_loads(trained):
    _, cache, run = trained
    log = read_log(run)
    assert [entry["stage"] for entry in log] == [
        "data",
        "backbone",
        "fold0_patch",
        *["fold0"] * 2,
        "fold1_patch",
        *["fold1"] * 2,
        "cross_validation",
        "final_patch",
        *["final"] * 2,
        "final_best",
    ]
    assert log[0]["train"] == {"clips": 4, "stenosis_clips": 2, "key_frames": 20, "positive_key_frames": 10}
    assert len(list(cache.iterdir())) == 6
    folds = log[8]
    assert len(folds["folds"]) == 2 and all(fold["epoch"] == 1 for fold in folds["folds"])
    assert set(folds["clip_accuracy"]) == {"mean", "sd"}
    final = [entry for entry in log if entry["stage"] == "final"]
    kept = log[-1]
    assert kept["loss"] == min(entry["val_loss"] for entry in final)

    model = load_stenosis_model(run / "model" / "stenosis.json")
    assert model.input_size == 64 and model.network.config.attention and model.network.config.pooling == "max"
    manifest = json.loads((run / "model" / "stenosis.json").read_text())
    assert manifest["version"] == "stenosis-tiny-test" and manifest["attention"] is True
    assert manifest["training_data"]["generator_version"] and manifest["training_data"]["train_seeds"] == [1, 5]
    assert manifest["augmentation"]["flip_left_right"] is False
    assert manifest["cross_validation"]["k"] == 2 and manifest["training"]["kept_epoch"] == kept["epoch"]
    patches = manifest["backbone_start"]["patch_pretraining"]
    assert patches["patch"] == 32 and 0 < patches["train_positive"] < patches["train_patches"]
    assert patches["auc"] == [e for e in log if e["stage"] == "final_patch"][0]["val_auc"]
    assert "max pooling" in manifest["architecture"]
    assert "synthetic" in model.caution and model.caution_warnings == [f"Model stenosis-tiny-test: {model.caution}"]
    with torch.no_grad():
        assert model.network(torch.rand(3, 1, 64, 64)).shape == (3,)


def test_the_trunk_starts_from_imagenet(trained):
    import pretrained_backbones
    from safetensors.torch import load_file

    from LesionDetectLib.nets.mobilenet_v2 import MobileNetV2Features

    _, _, run = trained
    assert "ImageNet" in read_log(run)[1]["weights"]
    imagenet = MobileNetV2Features()
    pretrained_backbones.load_imagenet_mobilenet_v2(imagenet)
    start = imagenet.features[0][0].weight.detach().flatten()
    trained_conv = load_file(str(run / "model" / "stenosis.safetensors"))["trunk.features.0.0.weight"].flatten()
    assert torch.nn.functional.cosine_similarity(trained_conv, start, dim=0) > 0.9


def test_a_run_broken_after_one_epoch_and_resumed_ends_as_an_unbroken_one(trained, tmp_path):
    config, cache, run = trained
    one_epoch = copy.deepcopy(TINY)
    one_epoch["train"]["epochs"] = 1
    (tmp_path / "one.yaml").write_text(yaml.safe_dump(one_epoch))
    broken = ["--out", str(tmp_path / "broken"), "--cache", str(cache)]
    assert train_main(["--config", str(tmp_path / "one.yaml"), *broken]) == 0
    assert train_main(["--config", str(config), *broken, "--resume"]) == 0
    weights = "model/stenosis.safetensors"
    assert (tmp_path / "broken" / weights).read_bytes() == (run / weights).read_bytes()


def test_resume_after_the_last_epoch_trains_nothing_more(trained):
    config, cache, run = trained
    before = (run / "model" / "stenosis.safetensors").read_bytes()
    assert train_main(["--config", str(config), "--out", str(run), "--cache", str(cache), "--resume"]) == 0
    stages = [entry["stage"] for entry in read_log(run)]
    assert stages[-4:] == ["data", "backbone", "cross_validation", "final_best"]
    assert stages.count("final") == 2 and stages.count("fold0") == 2
    assert (run / "model" / "stenosis.safetensors").read_bytes() == before


@pytest.fixture(scope="module")
def ablation(trained):
    config, cache, run = trained
    out = run.parent / "ablation"
    arguments = ["--config", str(config), "--out", str(out), "--cache", str(cache), "--attention", "off"]
    assert train_main([*arguments, "--folds", "0"]) == 0
    return out


def test_the_ablation_has_the_same_cnn_and_no_attention_weights(trained, ablation):
    _, _, run = trained
    model = load_stenosis_model(ablation / "model" / "stenosis.json")
    names = set(model.network.state_dict())
    assert not model.network.config.attention and not any(name.startswith("attention.") for name in names)
    with_attention = set(load_stenosis_model(run / "model" / "stenosis.json").network.state_dict())
    assert names == {name for name in with_attention if not name.startswith(("attention.", "norm."))}
    manifest = json.loads((ablation / "model" / "stenosis.json").read_text())
    assert manifest["version"] == "stenosis-tiny-test-no-attention" and manifest["attention"] is False
    assert manifest["cross_validation"] is None
    assert [entry["stage"] for entry in read_log(ablation)][:4] == ["data", "backbone", "final_patch", "final"]


def test_evaluation_runs_both_models_through_the_detector_side_by_side(trained, ablation, tmp_path):
    _, _, run = trained
    arguments = ["--manifest", str(run / "model" / "stenosis.json"), "--compare", str(ablation / "model/stenosis.json")]
    small = ["--seeds", "8", "12", "--matrix", "128", "--frame-count", "12", "--out", str(tmp_path)]
    assert evaluate_main([*arguments, *small]) == 0
    figures = json.loads((tmp_path / "figures.json").read_text())
    assert figures["model"]["attention"] and not figures["compare"]["attention"]
    for name in ("model", "compare"):
        assert (
            figures[name]["clips"] == 4 and figures[name]["stenosis_clips"] == 2 and figures[name]["key_frames"] == 20
        )
        assert 0.5 <= figures[name]["key_frames_in_filled_phase"] <= 1.0
        assert all(len(clip["key_frames"]) == 5 for clip in figures[name]["per_clip"])
    assert (tmp_path / "roc_clip.png").stat().st_size > 0 and (tmp_path / "roc_key_frame.png").stat().st_size > 0


def test_a_peak_or_box_hits_within_tolerance_of_a_shown_stenosis():
    from types import SimpleNamespace

    from evaluate_stenosis import clip_outcome

    centre = [50.0, 40.0]  # x, y on frame 1, where the stenosis is boxed
    clip = SimpleNamespace(
        settings={"seed": 0},
        label="stenosis",
        pixel_spacing_mm=(0.5, 0.5),
        filled_phase=np.array([False, True, True]),
        boxes_px=[[], [{"stenosis": 0, "box_px": [45, 35, 55, 45]}], []],
        stenoses=[{"centre_px": [[0.0, 0.0], centre, [0.0, 0.0]]}],
    )

    def outcome(peak_rc, box_px):
        heatmap = np.zeros((3, 100, 100), dtype=np.uint8)
        heatmap[1][peak_rc] = 100
        findings = SimpleNamespace(
            summary={
                "verdict": "stenosis",
                "probability": 0.8,
                "key_frames": [{"frame": 1, "probability": 0.9}, {"frame": 2, "probability": 0.7}],
            },
            heatmap=heatmap,
            lesions=[SimpleNamespace(frame=1, box_px=box_px, score=0.9)],
            image=SimpleNamespace(frame_shape=(100, 100)),
        )
        return clip_outcome(clip, findings, 0.5)

    near = outcome((40, 64), [58.0, 30.0, 70.0, 50.0])  # peak 14.5 px (7 mm) away: within 15 px; box 4 mm away
    assert near["peak_hit"] and near["box_hits"] == [True] and near["in_filled_phase"] == [True, True]
    far = outcome((40, 70), [62.0, 30.0, 70.0, 50.0])  # 20.5 px = 10 mm away; the box 6 mm away
    assert not far["peak_hit"] and far["box_hits"] == [False]
    assert near["key_frame_truth"] == [True, False] and near["box_frame_shares"] == [0.024]


def test_augmentation_crops_shifts_and_flips_only_when_asked():
    frame = torch.linspace(0, 1, 64).repeat(64, 1)[None]  # grey rising left to right
    shifted = augmentation({"intensity_shift": 10 / 255}, 64)
    shifted.set_random_state(seed=0)
    offsets = {round(float((shifted(frame) - frame).mean()), 6) for _ in range(20)}
    assert len(offsets) > 1 and max(abs(o) for o in offsets) <= 10 / 255 + 1e-6
    cropped = augmentation({"crop_fraction": 500 / 512}, 64)
    cropped.set_random_state(seed=0)
    out = cropped(frame)
    assert out.shape == (1, 64, 64) and type(out) is torch.Tensor and not torch.equal(out, frame)
    assert np.corrcoef(out.flatten(), frame.flatten())[0, 1] > 0.99  # a crop, never a flip
    flipped = augmentation({"flip_left_right": True}, 64)
    flipped.set_random_state(seed=0)
    assert any(torch.equal(flipped(frame), frame.flip(-1)) for _ in range(10))


def test_an_epoch_of_one_key_frame_per_clip_draws_one_of_each_clip_afresh():
    clip_index = np.repeat(np.arange(4), [5, 5, 3, 5])
    every = epoch_order(clip_index, None, np.random.default_rng(0))
    assert sorted(every) == list(range(len(clip_index)))
    draws = [epoch_order(clip_index, 1, np.random.default_rng(epoch)) for epoch in range(6)]
    for order in draws:
        assert sorted(clip_index[order]) == [0, 1, 2, 3]
    assert len({tuple(sorted(order)) for order in draws}) > 1  # other frames in other epochs
    assert sorted(clip_index[epoch_order(clip_index, 2, np.random.default_rng(1))]) == [0, 0, 1, 1, 2, 2, 3, 3]


def test_cell_targets_peak_on_the_cell_of_each_shown_stenosis_on_the_network_grid():
    # a 512² frame read at 256²: the centre (96, 32) px lands on network pixel (48, 16), the middle of cell (row 0,
    # column 1); the one at (48, 48) px on (24, 24), a quarter cell from four cell centres
    clip = {"matrix": 512, "centres_px": [[[96.0, 32.0]], [], [[48.0, 48.0], [96.0, 32.0]]]}
    targets = cell_targets(clip, 256)
    assert targets.shape == (3, 8, 8)
    assert targets[0, 0, 1] == pytest.approx(1.0) and targets[0].argmax() == 1
    assert targets[0, 0, 2] == pytest.approx(np.exp(-0.5 * 2**2))  # one cell on: 2 sigmas
    assert not targets[1].any()
    assert targets[2, 0, 0] == pytest.approx(np.exp(-(8**2 + 8**2) / (2 * 16**2)))
    assert targets[2, 0, 1] == pytest.approx(1.0)  # the maximum of the two blobs


def test_patches_centre_on_each_shown_stenosis_and_negatives_lie_on_vessels_away_from_every_stenosis():
    frames = torch.ones(2, 1, 64, 64)
    frames[:, 0, 30:34, :] = 0.0  # a dark horizontal vessel on both frames, rows 30–33
    frames[0, 0, 31:33, 40] = 0.5  # and a narrowing on the first at column 40
    clip = {"matrix": 128, "inputs": frames.half(), "centres_px": [[[80.0, 63.0]], []]}  # (40, 31.5) at 64²
    config = {"patch": 16, "jitter": 0, "clearance": 12, "negatives_per_frame": 3, "vessel_percentile": 5}
    patches, labels = patch_set([clip], 64, config, np.random.default_rng(0))
    assert patches.shape == (7, 1, 16, 16) and patches.dtype == torch.float16
    assert labels.tolist() == [1.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0]  # one stenosis, 3 vessel patches on each frame
    positive = patches[0, 0].float()
    assert positive[8, 8] == 0.5 and (positive[7:9, :] < 1).all()  # the narrowing at the patch centre
    for negative in patches[1:, 0].float():
        assert (negative[8] == 0).all() or (negative[7] == 0).all()  # centred on the vessel
        assert not (negative == 0.5).any()  # 12 px from the stenosis: its 16² patch cannot reach it


def test_with_max_pooling_the_network_s_own_cell_scores_learn_the_stenosis_targets_positives_weighted():
    from train_stenosis import localisation_head, train_epoch

    from LesionDetectLib.nets.frame_attention import FrameAttentionConfig, FrameAttentionNet

    torch.manual_seed(0)
    network = FrameAttentionNet(FrameAttentionConfig(attention_dim=16, heads=2, dropout=0.0, pooling="max"))
    assert localisation_head(network) is None  # no extra head: the cells it scores are supervised
    frames, labels = torch.rand(4, 1, 64, 64), torch.tensor([1.0, 0.0, 1.0, 0.0])
    targets = torch.zeros(4, 2, 2)
    targets[0, 1, 0] = targets[2, 0, 1] = 1.0
    config = {"batch": 4, "localisation_weight": 0.5, "cell_positive_weight": 8.0}

    def first_loss(settings):
        copy_ = copy.deepcopy(network)
        optimiser = torch.optim.SGD(copy_.parameters(), lr=0.0)
        return train_epoch(copy_, None, optimiser, (frames, labels, targets), np.arange(4), settings, lambda f: f)

    with torch.no_grad():
        network.train()
        logits = network(frames)
        expected = torch.nn.functional.binary_cross_entropy_with_logits(logits, labels).item()
        cells = torch.nn.functional.binary_cross_entropy_with_logits(
            network.cell_logits, targets, pos_weight=torch.tensor(8.0)
        ).item()
    assert network.cell_logits.shape == (4, 2, 2)
    assert first_loss({"batch": 4}) == pytest.approx(expected, rel=1e-4)
    assert first_loss(config) == pytest.approx(expected + 0.5 * cells, rel=1e-4)
