"""The stenosis detector end to end: a toy network whose evidence is a dark blob (boxes, heatmap and vote follow it),
the CLI on a multi-frame XA DICOM, a PNG folder and one frame, a slicer-core scene, and bad input.

The toy cine: a vessel tree filling with contrast (wash-in, filled phase, wash-out) on a bright background, and on
chosen frames a dark blob of 3 mm radius. `DarkBlobNet` has the frame classifier's interface; its logit rises with
the darkest 16-pixel cell, so it calls a frame stenosis exactly when the blob is on it. The CLI runs a real
`FrameAttentionNet` (random weights, batch-norm statistics set on the toy frames so that its output depends on
them) saved with `save_stenosis_model`, given as `--weights`.
"""

import csv
import json

import imageio.v3 as iio
import numpy as np
import pytest
import SimpleITK as sitk
import slicer
import slicer.util
import torch
from dicom_series import save_cine
from torch import nn

from LesionDetectLib.app.cli import EXIT_BAD_INPUT, main
from LesionDetectLib.detection.registry import get_detector
from LesionDetectLib.detectors.stenosis.boxes import MIN_BOX_MM, frame_boxes, widened
from LesionDetectLib.detectors.stenosis.detect import FRAME_MODE_WARNING, LABEL, detect_stenosis
from LesionDetectLib.detectors.stenosis.heatmaps import frame_heatmaps
from LesionDetectLib.detectors.stenosis.model import StenosisModel, load_stenosis_model, save_stenosis_model
from LesionDetectLib.detectors.stenosis.options import StenosisOptions
from LesionDetectLib.detectors.stenosis.preprocess import network_input
from LesionDetectLib.detectors.stenosis.sample import SAMPLE_PATH, read_sample
from LesionDetectLib.detectors.stenosis.vote import clip_verdict
from LesionDetectLib.errors import LesionDetectError
from LesionDetectLib.io.image_sequence import ImageSequence
from LesionDetectLib.io.volume import Volume, ijk_to_ras_matrix
from LesionDetectLib.nets.frame_attention import FrameAttentionConfig, FrameAttentionNet
from LesionDetectLib.results.report import validate_report
from LesionDetectLib.scene import show_findings

FRAMES, SIZE, PIXEL_MM = 12, 128, 0.3
CONTRAST = (0.0, 0.0, 0.2, 0.6, 1.0, 1.0, 1.0, 1.0, 1.0, 0.6, 0.3, 0.1)  # wash-in, filled phase, wash-out
BLOB_XY = (88.0, 56.0)  # the blob's centre in pixel-edge coordinates: the middle of one 16-pixel cell
BLOB_RADIUS_PX = 10.0
CELL = 16
MIN_BOX_PX = int(np.ceil(MIN_BOX_MM / PIXEL_MM))
LOW = 0.05  # the random network's frames all vote stenosis, so every output path runs


def toy_frames(blob_frames=range(FRAMES), size=SIZE) -> np.ndarray:
    """(FRAMES, size, size) uint8: a background brightening to the right, a two-branch vessel 1.5 mm wide darkening
    with CONTRAST, a dark blob on `blob_frames`, quantum-like noise."""
    rng = np.random.default_rng(3)
    rows, columns = np.mgrid[0:size, 0:size] + 0.5
    trunk = np.abs(rows - (100 - 0.15 * columns))  # distance (px) to a line across the lower frame
    branch = np.abs(columns - (20 + 0.3 * rows))  # and to one down the left
    vessel = np.sqrt(np.clip(1 - (np.minimum(trunk, branch) / 2.5) ** 2, 0, None))  # a tube's projected thickness
    blob = np.clip(BLOB_RADIUS_PX + 0.5 - np.hypot(columns - BLOB_XY[0], rows - BLOB_XY[1]), 0, 1)
    background = 170 + 40 * columns / size
    frames = np.empty((FRAMES, size, size), dtype=np.uint8)
    for frame, contrast in enumerate(CONTRAST):
        grey = background - 120 * contrast * vessel - (150 * blob if frame in blob_frames else 0)
        frames[frame] = np.clip(np.rint(grey + rng.normal(0, 3, grey.shape)), 0, 255)
    return frames


def toy_cine(blob_frames=range(FRAMES), spacing=(PIXEL_MM, PIXEL_MM)) -> ImageSequence:
    return ImageSequence(toy_frames(blob_frames), "toy run", "XA", np.arange(FRAMES) / 15.0, spacing)


class DarkBlobNet(nn.Module):
    """The frame classifier's interface (config, cam_layer, forward, evidence_map) with a toy's evidence: each
    16-pixel cell's darkness (1 − its mean grey) is the feature Grad-CAM reads; the logit rises with the darkest cell
    above 0.6 (a thin vessel darkens a cell less); attention is a softmax over the cells' darkness."""

    cam_layer = "darkness"

    def __init__(self, attention: bool = True) -> None:
        super().__init__()
        self.config = FrameAttentionConfig(attention=attention)
        self.darkness = nn.Conv2d(1, 1, CELL, stride=CELL)
        nn.init.constant_(self.darkness.weight, -1.0 / CELL**2)
        nn.init.constant_(self.darkness.bias, 1.0)
        self._attention = None

    def forward(self, frames: torch.Tensor) -> torch.Tensor:
        darkness = self.darkness(frames)
        self._attention = torch.softmax(10 * darkness.flatten(1), dim=1).view(-1, *darkness.shape[2:])
        return 40 * (darkness - 0.6).clamp_min(0).flatten(1).amax(dim=1) - 4

    def evidence_map(self) -> torch.Tensor | None:
        return self._attention if self.config.attention else None


def toy_model(attention: bool = True, **card) -> StenosisModel:
    return StenosisModel(DarkBlobNet(attention).eval(), SIZE, {"version": "toy", **card}, "0" * 64)


@pytest.fixture(scope="module")
def tiny_manifest(tmp_path_factory):
    """A real FrameAttentionNet, random weights, batch norm calibrated on the toy frames, saved as a model bundle."""
    torch.manual_seed(0)
    network = FrameAttentionNet(FrameAttentionConfig(attention_dim=32, heads=2, dropout=0.0))
    for layer in network.modules():
        if isinstance(layer, nn.BatchNorm2d):
            layer.momentum = None  # a cumulative average over the calibration batch
            layer.reset_running_stats()
    frames = toy_frames(blob_frames=range(0, FRAMES, 2))
    with torch.no_grad():
        network.train()(network_input(frames, np.zeros(frames.shape[1:], dtype=bool), SIZE))
    return save_stenosis_model(network.eval(), SIZE, tmp_path_factory.mktemp("model"), {"version": "tiny-test"})


def _run(args, tmp_path, name="out"):
    out = tmp_path / name
    assert main(["stenosis", *args, "-o", str(out), "--progress", "none"]) == 0
    return out, json.loads((out / "report.json").read_text())


def _key_frames(summary) -> tuple[list[int], list[float]]:
    """The key frames of a report's or findings' summary, and their probabilities."""
    rows = summary["key_frames"]
    return [row["frame"] for row in rows], [row["probability"] for row in rows]


# ---------------------------------------------------------------- what the toy network shows


def test_boxes_and_heat_peak_lie_on_the_dark_blob_of_each_key_frame():
    sequence = toy_cine()
    findings = detect_stenosis(sequence, toy_model(), StenosisOptions())
    frames, probabilities = _key_frames(findings.summary)
    assert findings.summary["mode"] == "clip" and len(frames) == 5
    assert findings.summary["verdict"] == "stenosis" and findings.summary["votes"] == 5 and min(probabilities) > 0.9
    first, last = findings.summary["filled_span"]
    assert all(first <= frame <= last and CONTRAST[frame] >= 0.6 for frame in frames)
    assert sorted(lesion.frame for lesion in findings.lesions) == frames  # one box per key frame
    for lesion in findings.lesions:
        x0, y0, x1, y1 = lesion.box_px
        assert x0 < BLOB_XY[0] < x1 and y0 < BLOB_XY[1] < y1
        assert abs((x0 + x1) / 2 - BLOB_XY[0]) <= 4 and abs((y0 + y1) / 2 - BLOB_XY[1]) <= 4
        assert x1 - x0 >= MIN_BOX_PX and y1 - y0 >= MIN_BOX_PX and min(lesion.size_mm) >= MIN_BOX_MM
        assert lesion.label == LABEL and 0.5 < lesion.score <= lesion.measurements["frame_probability"]
    heatmap = findings.heatmap
    assert heatmap.shape == sequence.frames.shape and heatmap.dtype == np.uint8
    others = [frame for frame in range(FRAMES) if frame not in frames]
    assert not heatmap[others].any()  # the network never saw the other frames
    for frame in frames:
        row, column = np.unravel_index(heatmap[frame].argmax(), heatmap[frame].shape)
        assert np.hypot(column + 0.5 - BLOB_XY[0], row + 0.5 - BLOB_XY[1]) <= 6
        assert heatmap[frame, 110:, :].max() < 10  # the vessel, dark but thin, is cold


def test_the_vote_follows_the_frame_probabilities():
    on_even_frames = detect_stenosis(toy_cine(blob_frames=range(0, FRAMES, 2)), toy_model(), StenosisOptions())
    frames, probabilities = _key_frames(on_even_frames.summary)
    with_blob = [frame % 2 == 0 for frame in frames]
    assert [p > 0.9 for p in probabilities] == with_blob
    assert all(p < 0.1 for p, blob in zip(probabilities, with_blob) if not blob)
    votes = sum(with_blob)
    assert on_even_frames.summary["votes"] == votes
    assert on_even_frames.summary["verdict"] == ("stenosis" if 2 * votes > len(frames) else "normal")
    assert on_even_frames.probabilities["stenosis"] == pytest.approx(np.mean(probabilities), abs=1e-4)
    assert {lesion.frame for lesion in on_even_frames.lesions} == {f for f, b in zip(frames, with_blob) if b}

    without = detect_stenosis(toy_cine(blob_frames=()), toy_model(), StenosisOptions())
    assert without.summary["verdict"] == "normal" and without.summary["votes"] == 0 and not without.lesions
    assert without.summary["probability"] < 0.1
    assert without.heatmap.max() <= 10  # frames called normal glow faintly at most
    lowered = detect_stenosis(toy_cine(blob_frames=range(0, FRAMES, 2)), toy_model(), StenosisOptions(threshold=0.01))
    assert lowered.summary["votes"] == 5 and lowered.summary["verdict"] == "stenosis"
    # every key frame votes now, but a box needs evidence: where no cell is dark enough, Grad-CAM is flat (zero)
    assert {lesion.frame for lesion in lowered.lesions} == {f for f, b in zip(frames, with_blob) if b}


def test_the_model_cards_caution_is_a_warning_of_every_run():
    plain = detect_stenosis(toy_cine(), toy_model(), StenosisOptions())
    assert not any(warning.startswith("Model toy") for warning in plain.warnings)
    model = toy_model(caution="trained on synthetic cines only.")
    findings = detect_stenosis(toy_cine(), model, StenosisOptions())
    assert findings.warnings == [*plain.warnings, "Model toy: trained on synthetic cines only."]


def test_without_the_attention_module_grad_cam_alone_finds_the_blob():
    frames = toy_frames()[4:6]
    inputs = network_input(frames, np.zeros(frames.shape[1:], dtype=bool), SIZE)
    heat = frame_heatmaps(DarkBlobNet(attention=False).eval(), inputs, (2 * SIZE, 2 * SIZE))  # onto a larger frame
    assert heat.shape == (2, 2 * SIZE, 2 * SIZE) and heat.dtype == np.float32 and 0.9 < heat.max() <= 1.0
    for one in heat:
        row, column = np.unravel_index(one.argmax(), one.shape)
        assert np.hypot(column + 0.5 - 2 * BLOB_XY[0], row + 0.5 - 2 * BLOB_XY[1]) <= 12


def test_boxes_grow_to_the_minimum_size_stay_in_the_frame_and_keep_the_hottest():
    heat = np.zeros((256, 256), dtype=np.float32)
    heat[100:112, 50:62] = 0.8  # a region 3 mm across
    heat[2:14, 240:252] = 1.0  # hotter, by the corner
    heat[200:203, 200:203] = 0.9  # 0.7 mm²: a fringe, not a region
    boxes = frame_boxes(heat, (0.3, 0.25), 0.5, max_boxes=5)  # rows 0.3 mm, columns 0.25 mm
    assert [box.score for box in boxes] == pytest.approx([1.0, 0.8])
    width_px, height_px = (int(np.ceil(MIN_BOX_MM / mm)) for mm in (0.25, 0.3))
    corner, small = (box.box_px for box in boxes)
    assert corner == [256 - width_px, 0, 256, height_px]
    assert small[2] - small[0] == width_px and small[3] - small[1] == height_px
    assert small[0] < 50 and small[2] > 62 and small[1] < 100 and small[3] > 112
    assert len(frame_boxes(heat, (0.3, 0.25), 0.5, max_boxes=1)) == 1
    unknown = frame_boxes(heat, None, 0.5, max_boxes=1)[0].box_px  # a 256-pixel frame over a cardiac field: 0.6 mm
    assert unknown[2] - unknown[0] == int(np.ceil(MIN_BOX_MM / 0.6))
    assert widened(10, 60, 20, 100) == (10, 60) and widened(0, 2, 10, 8) == (0, 8)


# ---------------------------------------------------------------- the CLI


def test_a_multiframe_xa_dicom_runs_end_to_end_with_frames_table_heatmap_and_mm_boxes(tiny_manifest, tmp_path):
    frames = toy_frames()
    save_cine(tmp_path / "run.dcm", frames, frame_time_ms=1000 / 15, imager_pixel_spacing=[PIXEL_MM, PIXEL_MM])
    out, report = _run([str(tmp_path / "run.dcm"), "--weights", str(tiny_manifest), "--threshold", str(LOW)], tmp_path)
    validate_report(report)
    assert report["input"]["kind"] == "sequence" and report["input"]["frames"] == FRAMES
    assert report["input"]["frame_times_s"][1] == pytest.approx(1 / 15, abs=1e-6)
    summary = report["summary"]
    key, probabilities = _key_frames(report["summary"])
    assert summary["mode"] == "clip" and len(key) == 5 and key == sorted(key)
    assert summary["filled_span"][0] <= key[0] and key[-1] <= summary["filled_span"][1]
    verdict = clip_verdict(probabilities, LOW)
    assert (summary["verdict"], summary["votes"]) == (verdict.verdict, verdict.votes) == ("stenosis", 5)
    assert summary["probability"] == pytest.approx(verdict.probability, abs=1e-4) == report["probabilities"]["stenosis"]

    with open(out / report["outputs"]["frame_table"]) as stream:
        rows = list(csv.DictReader(stream))
    assert len(rows) == FRAMES and list(rows[0]) == ["frame", "filling", "stenosis"]
    for row in rows:
        frame = int(row["frame"])
        if frame in key:
            assert float(row["stenosis"]) == pytest.approx(probabilities[key.index(frame)], abs=1e-4)
        else:
            assert np.isnan(float(row["stenosis"]))
    filling = [float(row["filling"]) for row in rows]
    assert max(filling[:2] + filling[-2:]) < min(filling[k] for k in key)  # no contrast yet, washed out

    heatmap = sitk.ReadImage(str(out / "heatmap.nrrd"))
    heat = sitk.GetArrayFromImage(heatmap)
    assert heat.shape == frames.shape and np.allclose(heatmap.GetSpacing()[:2], (PIXEL_MM, PIXEL_MM))
    assert all(heat[k].max() > 0 for k in key) and not np.delete(heat, key, axis=0).any()
    assert report["lesions"]
    for lesion in report["lesions"]:
        assert lesion["label"] == LABEL and lesion["frame"] in key
        x0, y0, x1, y1 = lesion["box_px"]
        assert 0 <= x0 < x1 <= SIZE and 0 <= y0 < y1 <= SIZE and min(x1 - x0, y1 - y0) >= MIN_BOX_PX
        assert min(lesion["size_mm"]) >= MIN_BOX_MM - 1e-9
        assert lesion["score"] <= probabilities[key.index(lesion["frame"])] + 1e-4
    markups = json.loads((out / "boxes.mrk.json").read_text())["markups"]
    assert len(markups) == len(report["lesions"])


def test_a_png_folder_in_name_order_and_one_frame_alone(tiny_manifest, tmp_path):
    frames = toy_frames()
    save_cine(tmp_path / "run.dcm", frames, frame_time_ms=1000 / 15)
    _, from_dicom = _run([str(tmp_path / "run.dcm"), "--weights", str(tiny_manifest)], tmp_path, "dicom")
    folder = tmp_path / "frames"
    folder.mkdir()
    for index, frame in enumerate(frames):
        iio.imwrite(folder / f"frame{index + 1}.png", frame)  # frame2 before frame10: natural order
    _, from_pngs = _run([str(folder), "--weights", str(tiny_manifest)], tmp_path, "pngs")
    validate_report(from_pngs)
    assert from_pngs["input"]["kind"] == "sequence" and from_pngs["input"]["pixel_spacing_mm"] is None
    assert _key_frames(from_pngs["summary"])[0] == _key_frames(from_dicom["summary"])[0]
    assert _key_frames(from_pngs["summary"])[1] == pytest.approx(_key_frames(from_dicom["summary"])[1], abs=1e-4)
    assert from_pngs["summary"]["verdict"] == from_dicom["summary"]["verdict"]

    iio.imwrite(tmp_path / "one.png", frames[5])
    out, one = _run([str(tmp_path / "one.png"), "--weights", str(tiny_manifest), "--threshold", str(LOW)], tmp_path)
    validate_report(one)
    summary = one["summary"]
    assert one["input"]["kind"] == "image" and summary["mode"] == "frame" and summary["votes"] == 1
    assert [row["frame"] for row in summary["key_frames"]] == [0] and summary["verdict"] == "stenosis"
    assert FRAME_MODE_WARNING in one["warnings"]
    assert one["lesions"] and all(lesion["frame"] == 0 and "size_mm" not in lesion for lesion in one["lesions"])
    assert sitk.GetArrayFromImage(sitk.ReadImage(str(out / "heatmap.nrrd"))).shape == (1, SIZE, SIZE)


def test_the_bundled_sample_runs_and_its_key_frames_lie_in_its_true_filled_phase(tiny_manifest, tmp_path):
    sample = read_sample()
    truth = json.loads(SAMPLE_PATH.with_suffix(".json").read_text())
    assert sample.frame_count == len(truth["frame_times_s"]) and sample.pixel_spacing_mm is not None
    assert SAMPLE_PATH.stat().st_size < 1_000_000 and truth["label"] == "stenosis"
    _, report = _run(["--sample", "--weights", str(tiny_manifest), "--no-heatmap"], tmp_path)
    validate_report(report)
    assert set(_key_frames(report["summary"])[0]) <= set(truth["filled_phase"]) and not report["lesions"]


def test_a_model_bundle_loads_and_a_wrong_hash_is_refused(tiny_manifest, tmp_path):
    model = load_stenosis_model(tiny_manifest)
    assert model.version == "tiny-test" and model.threshold == 0.5 and model.input_size == SIZE
    manifest = json.loads(tiny_manifest.read_text())
    manifest["sha256"] = "0" * 64
    (tmp_path / "stenosis.json").write_text(json.dumps(manifest))
    with pytest.raises(LesionDetectError, match="sha256"):
        load_stenosis_model(tmp_path / "stenosis.json", tiny_manifest.parent / manifest["weights"])


# ---------------------------------------------------------------- the scene


def test_the_scene_plays_the_cine_with_its_heatmap_boxes_and_frame_scores(mrml_scene):
    sequence = toy_cine()
    findings = detect_stenosis(sequence, toy_model(), StenosisOptions())
    run = show_findings(mrml_scene, None, findings)
    browser = run.browser_node
    assert browser is not None and run.sequence_nodes["frames"].GetNumberOfDataNodes() == FRAMES
    assert run.sequence_nodes["heatmap"].GetNumberOfDataNodes() == FRAMES
    assert run.score_table_node.GetNumberOfRows() == FRAMES
    names = [run.score_table_node.GetColumnName(c) for c in range(run.score_table_node.GetNumberOfColumns())]
    assert names == ["frame", "time", "filling", "stenosis"]
    key = [row["frame"] for row in findings.summary["key_frames"]]
    roi = run.roi_nodes[0]
    assert roi.GetName().startswith(LABEL)
    for frame in range(FRAMES):
        browser.SetSelectedItemNumber(frame)
        heat = slicer.util.arrayFromVolume(run.heatmap_node)[0]
        np.testing.assert_array_equal(slicer.util.arrayFromVolume(run.image_node)[0], sequence.frames[frame])
        if frame not in key:
            assert not heat.any() and all(node.GetNumberOfControlPoints() == 0 for node in run.roi_nodes)
            continue
        row, column = np.unravel_index(heat.argmax(), heat.shape)
        assert np.hypot(column + 0.5 - BLOB_XY[0], row + 0.5 - BLOB_XY[1]) <= 6
        center = np.zeros(3)
        roi.GetCenterWorld(center)
        lesion = next(lesion for lesion in findings.lesions if lesion.frame == frame)
        np.testing.assert_allclose(center, sequence.box_px_to_ras(lesion.box_px)[0], atol=1e-9)
        # on the blob: column × 0.3 mm along −R, row × 0.3 mm along −A
        np.testing.assert_allclose(center[:2], -(np.array(BLOB_XY) - 0.5) * PIXEL_MM, atol=5 * PIXEL_MM)


# ---------------------------------------------------------------- bad input


def _hu_slices() -> np.ndarray:
    """Two CT-like slices: air around a water disc."""
    rows, columns = np.mgrid[0:SIZE, 0:SIZE]
    disc = np.hypot(rows - SIZE / 2, columns - SIZE / 2) < SIZE / 3
    return np.stack([np.where(disc, 40, -1000)] * 2).astype(np.int16)


@pytest.mark.parametrize(
    "make, message",
    [
        (
            lambda: Volume(_hu_slices(), ijk_to_ras_matrix((0.7, 0.7, 2.0), (0.0, 0.0, 0.0)), "chest CT", "CT"),
            "is a 3D volume \\(CT\\)",
        ),
        (lambda: ImageSequence(_hu_slices(), "XA claim", "XA"), "Hounsfield"),
        (lambda: ImageSequence(toy_frames(), "MR cine", "MR"), "is MR"),
        (lambda: ImageSequence(np.full((3, SIZE, SIZE), 7, np.uint8), "black run", "XA"), "blank"),
        (lambda: ImageSequence(toy_frames()[:, :32, :32], "icon", "XA"), "too small"),
    ],
)
def test_bad_input_is_refused_naming_the_problem(make, message):
    with pytest.raises(LesionDetectError, match=message):
        get_detector("stenosis").check(make(), StenosisOptions())


def test_a_colour_photo_and_frames_of_different_sizes_are_refused_by_the_cli(tiny_manifest, tmp_path, capsys):
    rng = np.random.default_rng(0)
    photo = np.stack([np.full((SIZE, SIZE), 200), rng.integers(0, 255, (SIZE, SIZE)), np.full((SIZE, SIZE), 40)], -1)
    iio.imwrite(tmp_path / "photo.png", photo.astype(np.uint8))
    folder = tmp_path / "mixed"
    folder.mkdir()
    iio.imwrite(folder / "frame1.png", toy_frames()[0])
    iio.imwrite(folder / "frame2.png", toy_frames(size=SIZE + 16)[1])
    for source, message in ((tmp_path / "photo.png", "is a colour image"), (folder, "must have the same size")):
        out = tmp_path / f"out-{source.stem}"
        code = main(["stenosis", str(source), "-o", str(out), "--weights", str(tiny_manifest)])
        err = capsys.readouterr().err
        assert code == EXIT_BAD_INPUT and message in err and "Internal error" not in err
        assert not out.exists()


def test_one_frame_given_as_a_clip_runs_with_a_warning(tiny_manifest, tmp_path):
    save_cine(tmp_path / "one-frame run.dcm", toy_frames()[5:6], frame_time_ms=1000 / 15)
    _, report = _run([str(tmp_path / "one-frame run.dcm"), "--weights", str(tiny_manifest)], tmp_path)
    assert report["input"]["frames"] == 1 and report["summary"]["mode"] == "frame"
    assert any("One frame was given, not a cine run" in warning for warning in report["warnings"])
