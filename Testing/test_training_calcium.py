"""training/: a tiny end-to-end run of train_calcium.py (seeded, resumable) and evaluate_calcium.py on its model."""

import json

import yaml
from evaluate_calcium import main as evaluate_main
from train_calcium import main as train_main

from LesionDetectLib.detectors.calcium.model import load_calcium_model

TINY_CONFIG = {
    "version": "tiny-training-test",
    "seed": 7,
    "data": {
        "layout": "synthetic",
        "root": None,
        "matrix": 256,
        "train_seeds": [1000, 1003],
        "val_seeds": [5000, 5001],
    },
    "acf": {"max_iter": 20},
    "crops": {"per_object": 1, "max_candidate_windows": 20},
    "model": {"width": 0.125, "blocks": [1, 1, 1, 1]},
    "optim": {"lr": 1.0e-3, "betas": [0.9, 0.999], "eps": 1.0e-8, "batch": 16, "epochs": 1},
    "loss": {"alpha": 1.12, "beta": 0.05, "loc_weight": 0.2, "negative_ratio": 3},
}


def test_training_resumes_and_its_model_evaluates(tmp_path):
    config = tmp_path / "tiny.yaml"
    config.write_text(yaml.safe_dump(TINY_CONFIG))
    out = tmp_path / "run"
    assert train_main(["--config", str(config), "--out", str(out), "--threads", "1"]) == 0
    first_epochs = [json.loads(line) for line in (out / "train_log.jsonl").read_text().splitlines()]
    assert [entry.get("epoch") for entry in first_epochs if "epoch" in entry] == [0]
    TINY_CONFIG["optim"]["epochs"] = 2
    config.write_text(yaml.safe_dump(TINY_CONFIG))
    assert train_main(["--config", str(config), "--out", str(out), "--resume", "--threads", "1"]) == 0
    log = [json.loads(line) for line in (out / "train_log.jsonl").read_text().splitlines()]
    assert [entry["epoch"] for entry in log if "epoch" in entry] == [0, 1]  # resumed after epoch 0, not restarted
    acf = next(entry for entry in log if entry.get("stage") == "acf")
    assert acf["train_positives"] > 0 and 0 < acf["threshold"] < 1
    model = load_calcium_model(out / "model" / "calcium_deep.json")
    assert model.version == "tiny-training-test" and model.ssd.config.width == 0.125
    assert (
        evaluate_main(
            [
                "--model",
                str(out / "model" / "calcium_deep.json"),
                "--first-seed",
                "9000",
                "--count",
                "1",
                "--matrix",
                "256",
                "--out",
                str(tmp_path / "eval"),
            ]
        )
        == 0
    )
    metrics = json.loads((tmp_path / "eval" / "metrics.json").read_text())["summary"]
    assert metrics["scans"] == 1 and 0.0 <= metrics["det_rate_at_fppi_1"] <= 1.0
    assert (tmp_path / "eval" / "det_curve.png").stat().st_size > 1000
    fine_config = tmp_path / "fine.yaml"
    fine_config.write_text(
        yaml.safe_dump(
            {**TINY_CONFIG, "version": "tiny-fine-tuned", "init_from": str(out / "model" / "calcium_deep.json")}
        )
    )
    assert train_main(["--config", str(fine_config), "--out", str(tmp_path / "fine"), "--threads", "1"]) == 0
    fine_log = [json.loads(line) for line in (tmp_path / "fine" / "train_log.jsonl").read_text().splitlines()]
    assert next(e for e in fine_log if e.get("stage") == "acf")["reused_from"] == "tiny-training-test"
    fine = load_calcium_model(tmp_path / "fine" / "model" / "calcium_deep.json")
    assert fine.manifest["fine_tuned_from"] == "tiny-training-test" and fine.acf_threshold == model.acf_threshold
