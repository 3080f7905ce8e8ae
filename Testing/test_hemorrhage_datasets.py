"""The real head-CT PNG reader: own ids only (reserved files never opened, their labels dropped), the split."""

import imageio.v3 as iio
import numpy as np
import pytest
from hemorrhage_datasets import HELD_OUT_IDS, OWN_IDS, TRAIN_IDS, read_png_labels, read_png_set

RESERVED = [*range(70, 100), *range(170, 200)]


@pytest.fixture
def png_folder(tmp_path):
    folder = tmp_path / "head_ct"
    folder.mkdir()
    rows = ["id, hemorrhage"] + [f"{n:03d},{int(n < 100)}" for n in range(200)]
    (folder / "labels.csv").write_text("\n".join(rows) + "\n")
    for n in range(200):
        if n in OWN_IDS:
            image = np.full((20 + n % 7, 16, 3), n % 256, dtype=np.uint8)
            iio.imwrite(folder / f"{n:03d}.png", image)
        else:
            (folder / f"{n:03d}.png").write_bytes(b"reserved: opening this is a bug")
    return tmp_path


def test_the_split_covers_the_own_ids_once_and_no_reserved_id():
    assert TRAIN_IDS | HELD_OUT_IDS == OWN_IDS and not TRAIN_IDS & HELD_OUT_IDS
    assert not OWN_IDS & set(RESERVED) and len(OWN_IDS) == 140
    assert {n < 100 for n in HELD_OUT_IDS} == {True, False}  # both classes held out


def test_labels_of_reserved_ids_are_dropped(png_folder):
    labels = read_png_labels(png_folder)
    assert set(labels) == OWN_IDS
    assert labels[0] == 1 and labels[169] == 0


@pytest.mark.parametrize("split", ["train", "held_out", "own"])
def test_reading_a_split_never_opens_a_reserved_file(png_folder, split):
    slices = read_png_set(png_folder, split)
    assert [s.image_id for s in slices] == sorted({"train": TRAIN_IDS, "held_out": HELD_OUT_IDS, "own": OWN_IDS}[split])
    first = slices[0]
    assert first.grey.ndim == 2 and first.grey.dtype == np.uint8 and first.grey[0, 0] == first.image_id % 256
    assert all(s.hemorrhage == int(s.image_id < 100) for s in slices)


def test_a_foreign_csv_is_refused(png_folder):
    (png_folder / "head_ct" / "labels.csv").write_text("filename,label\n000.png,1\n")
    with pytest.raises(ValueError, match="not the head-CT labels file"):
        read_png_labels(png_folder)
