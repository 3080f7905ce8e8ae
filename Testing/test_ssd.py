"""The calcium SSD: default boxes, box coding, ATSS matching, loss, decoding, shapes, size; overfits a tiny batch."""

import math

import pytest
import torch
import torch.nn.functional as F
from monai.data.box_utils import batched_nms, box_iou

from LesionDetectLib.nets.clipped_resnet import ClippedResNet50
from LesionDetectLib.nets.ssd import (
    BOX_CODER,
    SSD,
    SSDConfig,
    anchor_layout,
    decode,
    default_box_scales,
    default_boxes,
    nms_iou,
)
from LesionDetectLib.nets.ssd_loss import match_anchors, ssd_loss

TINY = {"width": 0.125, "blocks": (1, 1, 1, 1)}
LEVELS_64 = [(16, 4), (8, 8), (4, 16), (2, 32), (1, 64)]  # (map side, stride) for a 64-pixel crop
SUBPIXEL = {"rtol": 1e-4, "atol": 0}  # default boxes are exact to 1/4096 px


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def boxes_by_level(config):
    """Default boxes as [(side, stride, boxes [side, side, per_location, 4])] per map."""
    anchors, start, levels = default_boxes(config), 0, []
    for side, stride in LEVELS_64:
        count = side * side * 6
        levels.append((side, stride, anchors[start : start + count].view(side, side, 6, 4)))
        start += count
    return levels


def extents(boxes):
    """(height along dim 0, width along dim 1)."""
    return boxes[..., 2] - boxes[..., 0], boxes[..., 3] - boxes[..., 1]


def test_default_box_counts():
    assert default_boxes(SSDConfig(image_size=64)).shape == (6 * (256 + 64 + 16 + 4 + 1), 4)
    assert default_boxes(SSDConfig(image_size=96)).shape == (6 * (576 + 144 + 36 + 9 + 1), 4)
    assert anchor_layout(default_boxes(SSDConfig(image_size=96))) == ([576, 144, 36, 9, 1], 6)


def test_default_box_scales_follow_ssd_formula():
    config = SSDConfig()
    assert default_box_scales(config) == pytest.approx([0.15, 0.35, 0.55, 0.75, 0.95, 1.0])
    for k, (_, _, boxes) in enumerate(boxes_by_level(config)):
        height, width = extents(boxes[..., 0, :])  # ratio 1
        torch.testing.assert_close(height, torch.full_like(height, 64 * (0.15 + 0.2 * k)), **SUBPIXEL)
        torch.testing.assert_close(width, height, **SUBPIXEL)


def test_aspect_ratio_is_width_over_height_with_ssd_area():
    """SSD: w = s*sqrt(r) along dim 1 (columns), h = s/sqrt(r) along dim 0 (rows), so w/h = r and w*h = s^2."""
    config = SSDConfig()
    scales = default_box_scales(config)
    for k, (_, _, boxes) in enumerate(boxes_by_level(config)):
        size = scales[k] * 64
        for index, ratio in enumerate(config.aspect_ratios):
            height, width = extents(boxes[..., index, :])
            torch.testing.assert_close(width / height, torch.full_like(width, ratio), **SUBPIXEL)
            torch.testing.assert_close(width * height, torch.full_like(width, size**2), **SUBPIXEL)
            torch.testing.assert_close(width, torch.full_like(width, size * math.sqrt(ratio)), **SUBPIXEL)


def test_extra_square_box_has_geometric_mean_scale():
    scales = default_box_scales(SSDConfig())
    for k, (_, _, boxes) in enumerate(boxes_by_level(SSDConfig())):
        height, width = extents(boxes[..., 5, :])
        expected = torch.full_like(height, 64 * math.sqrt(scales[k] * scales[k + 1]))
        torch.testing.assert_close(height, expected, **SUBPIXEL)
        torch.testing.assert_close(width, expected, **SUBPIXEL)


def test_default_boxes_are_centred_on_the_feature_map_grid():
    for side, stride, boxes in boxes_by_level(SSDConfig()):
        centres = (boxes[..., :2] + boxes[..., 2:]) / 2
        grid = (torch.arange(side, dtype=torch.float32) + 0.5) * stride
        torch.testing.assert_close(centres[..., 0], grid.view(side, 1, 1).expand(side, side, 6))
        torch.testing.assert_close(centres[..., 1], grid.view(1, side, 1).expand(side, side, 6))


def test_box_coding_round_trip():
    anchors = default_boxes(SSDConfig())
    generator = torch.Generator().manual_seed(0)
    start = torch.rand(len(anchors), 2, generator=generator) * 60
    gt = torch.cat([start, start + 1 + torch.rand(len(anchors), 2, generator=generator) * 40], dim=1)
    decoded = BOX_CODER.decode_single(BOX_CODER.encode_single(gt, anchors), anchors)
    torch.testing.assert_close(decoded, gt, atol=1e-4, rtol=0)


@pytest.mark.parametrize("box", [[30.0, 40.0, 33.0, 43.0], [9.0, 10.0, 12.0, 13.0], [20.0, 8.0, 41.0, 27.0]])
def test_every_ground_truth_box_matches_and_background_stays_background(box):
    anchors = default_boxes(SSDConfig())
    boxes = torch.tensor([box, [50.0, 50.0, 56.0, 58.0]])
    labels, targets = match_anchors(anchors, boxes, torch.tensor([5, 1]))
    for index, label in enumerate((5, 1)):
        positive = labels == label
        assert positive.any()
        assert box_iou(boxes[index : index + 1], anchors[positive]).min() > 0
        decoded = BOX_CODER.decode_single(targets[positive], anchors[positive])
        torch.testing.assert_close(decoded, boxes[index].expand_as(decoded), atol=1e-4, rtol=0)
    untouched = box_iou(boxes, anchors).amax(dim=0) == 0
    assert (labels[untouched] == 0).all() and (targets[untouched] == 0).all()
    assert untouched.sum() > len(anchors) // 2


def test_crops_without_calcium_give_hard_negatives_only():
    config = SSDConfig(**TINY)
    model = SSD(config)
    logits, deltas = model(torch.randn(2, 5, 64, 64))
    empty = {"boxes": torch.zeros(0, 4), "labels": torch.zeros(0, dtype=torch.int64)}
    out = ssd_loss(logits, deltas, model.anchors, [empty, empty])
    assert out["matched"] == 0 and out["loc"] == 0 and out["conf"] > 0
    out["loss"].backward()
    assert model.class_heads[0].bias.grad.abs().sum() > 0


def test_min_negatives_is_how_many_hardest_boxes_an_empty_crop_teaches():
    model = SSD(SSDConfig(**TINY)).eval()
    logits, deltas = model(torch.randn(1, 5, 64, 64))
    empty = {"boxes": torch.zeros(0, 4), "labels": torch.zeros(0, dtype=torch.int64)}
    background_loss = F.cross_entropy(logits[0], torch.zeros(len(logits[0]), dtype=torch.int64), reduction="none")
    hardest = logits[0].softmax(dim=-1)[:, 1:].amax(dim=-1).argsort(descending=True)
    for count, expected in ((1, 3), (40, 40)):
        conf = ssd_loss(logits, deltas, model.anchors, [empty], min_negatives=count)["conf"]
        assert torch.allclose(conf, background_loss[hardest[:expected]].sum())


@pytest.mark.parametrize("image_size", [64, 96])
def test_output_shapes(image_size):
    model = SSD(SSDConfig(image_size=image_size, **TINY))
    logits, deltas = model(torch.randn(2, 5, image_size, image_size))
    count = 6 * sum(side * side for side in (image_size // 4, image_size // 8, image_size // 16, image_size // 32, 1))
    assert logits.shape == (2, count, 6) and deltas.shape == (2, count, 4) and model.anchors.shape == (count, 4)


def test_decode_scores_labels_and_clips_to_the_crop():
    model = SSD(SSDConfig(**TINY))
    logits = torch.zeros(1, len(model.anchors), 6)
    logits[..., 0] = 10
    wide = len(model.anchors) - 2  # the 1x1 map's ratio-1/3 box: taller than the crop
    logits[0, wide] = torch.tensor([0.0, 0, 0, 8, 0, 0])
    detections = decode(model, logits, torch.zeros(1, len(model.anchors), 4))
    assert len(detections) == 1 and detections[0]["labels"].tolist() == [3]
    assert detections[0]["labels"].dtype == torch.int64 and detections[0]["scores"][0] > 0.9
    expected = model.anchors[wide].clamp(0, 64)
    torch.testing.assert_close(detections[0]["boxes"][0], expected)
    assert decode(model.anchors, logits, torch.zeros(1, len(model.anchors), 4), image_size=64)[0][
        "labels"
    ].tolist() == [3]


@pytest.mark.parametrize("dims", [2, 3])
def test_nms_overlap_is_monais_iou_and_keeps_the_same_boxes(dims):
    generator = torch.Generator().manual_seed(dims)
    corners = torch.rand(300, dims, generator=generator) * (60 if dims == 2 else 12)  # many overlaps in both
    boxes = torch.cat([corners, corners + 1 + torch.rand(300, dims, generator=generator) * 20], dim=1)
    boxes[7] = boxes[3]  # identical boxes and a touching pair
    boxes[8, :dims], boxes[8, dims:] = boxes[3, dims:], boxes[3, dims:] + 2
    torch.testing.assert_close(nms_iou(boxes, boxes[:40]), box_iou(boxes, boxes[:40]), rtol=1e-5, atol=1e-6)
    scores = torch.rand(300, generator=generator)
    labels = torch.randint(0, 3, (300,), generator=generator)
    kept = batched_nms(boxes, scores, labels, 0.45, box_overlap_metric=nms_iou)
    assert 10 < len(kept) < 300
    assert kept.tolist() == batched_nms(boxes, scores, labels, 0.45).tolist()


def test_backbone_parameter_counts():
    """Width 1: torchvision ResNet-50's conv2..conv5 stages (23,498,496) plus a 3x3x5x64 stem; width 0.25: ~1/16."""
    full = ClippedResNet50(5, 1.0)
    stages = sum(p.numel() for name, p in full.named_parameters() if name.startswith("layer"))
    assert stages == 23_498_496
    assert sum(p.numel() for p in full.parameters()) == 23_501_504
    quarter = sum(p.numel() for p in ClippedResNet50(5, 0.25).parameters())
    assert quarter == 1_479_344 and 15 < 23_501_504 / quarter < 17


def disc_batch():
    """Four noisy 64-pixel crops with 1-2 bright discs of radius 2-8 (labels 1 and 5) and their boxes."""
    generator = torch.Generator().manual_seed(0)
    images = 0.1 * torch.randn(4, 5, 64, 64, generator=generator)
    rows, cols = torch.meshgrid(torch.arange(64), torch.arange(64), indexing="ij")
    discs = [[(20, 24, 2, 1)], [(40, 16, 8, 5), (14, 44, 3, 1)], [(32, 32, 5, 5)], [(10, 12, 4, 1), (48, 50, 6, 5)]]
    targets = []
    for image, crop_discs in zip(images, discs):
        for row, col, radius, _ in crop_discs:
            image[:, (rows - row) ** 2 + (cols - col) ** 2 <= radius**2] += 1
        boxes = [[r - radius, c - radius, r + radius + 1, c + radius + 1] for r, c, radius, _ in crop_discs]
        labels = [label for *_, label in crop_discs]
        targets.append({"boxes": torch.tensor(boxes, dtype=torch.float32), "labels": torch.tensor(labels)})
    return images, targets


def test_tiny_model_overfits_a_tiny_batch():
    torch.manual_seed(0)
    images, targets = disc_batch()
    model = SSD(SSDConfig(**TINY))
    optimiser = torch.optim.Adam(model.parameters(), lr=1e-3, betas=(0.9, 0.999), eps=1e-8)
    losses = []
    for _ in range(80):
        loss = ssd_loss(*model(images), model.anchors, targets)["loss"]
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
        losses.append(loss.item())
    assert losses[-1] < 0.2 * losses[0]

    model.eval()
    for found, target in zip(decode(model, *model(images)), targets):
        for box, label in zip(target["boxes"], target["labels"]):
            same = (found["labels"] == label) & (found["scores"] >= 0.5)
            assert same.any() and box_iou(box[None], found["boxes"][same]).max() >= 0.5
