"""The synthetic head-CT generator: each hemorrhage subtype where it occurs, with exact masks and slice labels;
mimics in negatives; the same head at any pixel size; padding outside the reconstruction circle."""

import functools

import numpy as np
import pytest
from scipy import ndimage
from synthetic_head_ct import BLOOD_HU, draw_head, draw_lesions, make_head_case, slice_labels

from LesionDetectLib.detectors.hemorrhage.labels import LABELS, SUBTYPES
from LesionDetectLib.detectors.hemorrhage.windows import window_channels

MATRIX = 128


def subtypes_of(seed: int) -> set[str]:
    """The subtypes a seed draws (cheap: no rendering)."""
    rng = np.random.default_rng([seed, 0])
    return {lesion["subtype"] for lesion in draw_lesions(rng, draw_head(rng))}


def first_seed(predicate) -> int:
    return next(seed for seed in range(200) if predicate(subtypes_of(seed)))


@functools.cache
def case(seed: int, matrix: int = MATRIX, fov_mm: float | None = None):
    return make_head_case(seed, matrix=matrix, slice_thickness_mm=3.0, fov_mm=fov_mm)


def millimetres_from_bone(c) -> np.ndarray:
    spacing = c.volume.spacing[::-1]  # (k, j, i)
    return ndimage.distance_transform_edt(~c.anatomy["bone"], sampling=spacing)


def test_the_same_seed_gives_the_same_scan_and_seeds_differ():
    seed = first_seed(bool)
    again = make_head_case(seed, matrix=MATRIX, slice_thickness_mm=3.0)
    assert np.array_equal(again.volume.array, case(seed).volume.array)
    assert not np.array_equal(case(seed + 1).volume.array[:5], case(seed).volume.array[:5])


@pytest.mark.parametrize("subtype", ["epidural", "subdural"])
def test_extra_axial_blood_lies_against_the_inner_table(subtype):
    c = case(first_seed(lambda s: subtype in s))
    mask = c.masks[subtype]
    assert mask.any()
    from_bone = millimetres_from_bone(c)[mask]
    thickness = next(o["thickness_mm"] for o in c.objects if o.get("subtype") == subtype)
    assert from_bone.min() <= max(c.volume.spacing) + 0.1  # touches the skull
    assert np.percentile(from_bone, 95) <= thickness + 3.0  # and stays within its thickness of it


def test_an_epidural_lens_is_thicker_for_its_extent_than_a_subdural_crescent():
    ratios = {}
    for subtype in ("epidural", "subdural"):
        c = case(first_seed(lambda s, t=subtype: t in s))
        thickness = millimetres_from_bone(c)[c.masks[subtype]].max()
        extent = c.masks[subtype].sum() * np.prod(c.volume.spacing) / thickness  # mm² of skull covered
        ratios[subtype] = thickness / np.sqrt(extent)
    assert ratios["epidural"] > 1.3 * ratios["subdural"]


def test_intraparenchymal_blood_is_inside_the_brain_with_an_oedema_rim():
    c = case(first_seed(lambda s: "intraparenchymal" in s))
    mask = c.masks["intraparenchymal"]
    assert mask.any() and not (mask & c.anatomy["ventricles"]).any()
    assert np.median(millimetres_from_bone(c)[mask]) > 10.0
    shell = ndimage.binary_dilation(mask, iterations=2) & ~mask
    rim = shell & c.anatomy["white"] & ~np.any(list(c.masks.values()), axis=0)
    assert rim.sum() > 10
    white_hu = c.settings["tissue_hu"]["white"]
    assert np.median(c.volume.array[rim]) < white_hu - 3.0  # darker oedema around the clot


def test_intraventricular_and_subarachnoid_blood_fill_csf_spaces():
    seed = first_seed(lambda s: {"intraventricular", "subarachnoid"} <= s)
    c = case(seed)
    assert c.masks["intraventricular"].any() and c.masks["subarachnoid"].any()
    assert not (c.masks["intraventricular"] & ~c.anatomy["ventricles"]).any()
    assert not (c.masks["subarachnoid"] & ~c.anatomy["csf"]).any()
    assert not (c.masks["subarachnoid"] & c.anatomy["ventricles"]).any()


def test_blood_is_40_to_90_hu_and_several_subtypes_occur_at_once():
    seed = first_seed(lambda s: len(s) >= 3)
    c = case(seed)
    present = [s for s in SUBTYPES if c.slice_labels[:, LABELS.index(s)].any()]
    assert len(present) >= 2
    for subtype in present:
        core = ndimage.binary_erosion(c.masks[subtype], iterations=1)
        if core.sum() > 20:
            assert BLOOD_HU[0] - 8 <= np.median(c.volume.array[core]) <= BLOOD_HU[1] + 8, subtype


def test_slice_labels_follow_the_masks_and_any_is_their_union():
    c = case(first_seed(lambda s: len(s) >= 2))
    labels = slice_labels(c.masks, float(c.volume.spacing[0]))
    assert np.array_equal(labels, c.slice_labels)
    assert np.array_equal(labels[:, 0], labels[:, 1:].max(axis=1))
    for n, subtype in enumerate(SUBTYPES, start=1):
        assert not labels[~c.masks[subtype].any(axis=(1, 2)), n].any()


def test_a_negative_scan_has_no_labels_but_can_hold_calcification():
    seed = next(s for s in range(200) if not subtypes_of(s) and s % 3 == 0)
    c = case(seed)
    assert not c.slice_labels.any() and not any(m.any() for m in c.masks.values())
    kinds = {o["kind"] for o in c.objects}
    if kinds & {"pineal", "choroid plexus", "falx"}:
        inner = c.anatomy["brain"] & (millimetres_from_bone(c) > 5.0)
        assert (c.volume.array[inner] > 120).any()


def test_padding_outside_the_circle_and_windows_map_it_to_zero():
    c = case(first_seed(bool))
    corner = c.volume.array[:, 0, 0]
    assert (corner == c.settings["padding_hu"]).all()
    assert (window_channels(c.volume.array[:, :2, :2]) == 0).all()


def test_the_same_head_at_two_pixel_sizes_holds_the_same_blood():
    seed = first_seed(lambda s: "intraparenchymal" in s)
    volumes = []
    for matrix in (96, 160):
        c = case(seed, matrix=matrix, fov_mm=230.0)
        volumes.append({s: m.sum() * np.prod(c.volume.spacing) for s, m in c.masks.items() if m.any()})
    assert volumes[0].keys() == volumes[1].keys()
    for subtype, volume in volumes[0].items():
        assert volume == pytest.approx(volumes[1][subtype], rel=0.15), subtype
