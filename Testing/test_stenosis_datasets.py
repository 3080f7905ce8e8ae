"""Angiography training readers: clip labels CSV (frames read through the platform), Pascal VOC XML, COCO JSON."""

import json

import imageio.v3 as iio
import numpy as np
import pytest
from stenosis_datasets import read_clip, read_clip_labels, read_coco_boxes, read_voc_boxes

VOC = """<annotation>
  <filename>14_001_5_0016.bmp</filename>
  <size><width>512</width><height>512</height><depth>1</depth></size>
  <object><name>stenosis</name><bndbox><xmin>101</xmin><ymin>51</ymin><xmax>130</xmax><ymax>70</ymax></bndbox></object>
  <object><name>stenosis</name><bndbox><xmin>1</xmin><ymin>1</ymin><xmax>10</xmax><ymax>12</ymax></bndbox></object>
</annotation>
"""


def test_voc_corners_become_zero_based_pixel_edges(tmp_path):
    path = tmp_path / "frame.xml"
    path.write_text(VOC)
    frame = read_voc_boxes(path)
    assert (frame.file_name, frame.width, frame.height) == ("14_001_5_0016.bmp", 512, 512)
    assert frame.boxes == [[100.0, 50.0, 130.0, 70.0], [0.0, 0.0, 10.0, 12.0]]  # 30 × 20 and 10 × 12 pixels
    assert frame.classes == ["stenosis", "stenosis"]


def test_coco_boxes_per_image_with_a_category_filter_and_empty_images_kept(tmp_path):
    data = {
        "images": [
            {"id": 1, "file_name": "1.png", "width": 512, "height": 512},
            {"id": 2, "file_name": "2.png", "width": 512, "height": 512},
        ],
        "categories": [{"id": 26, "name": "stenosis"}, {"id": 1, "name": "1"}],
        "annotations": [
            {"id": 1, "image_id": 1, "category_id": 26, "bbox": [10, 20, 30, 40]},
            {"id": 2, "image_id": 1, "category_id": 1, "bbox": [0, 0, 5, 5]},
        ],
    }
    path = tmp_path / "set.json"
    path.write_text(json.dumps(data))
    frames = read_coco_boxes(path, categories={"stenosis"})
    assert [f.file_name for f in frames] == ["1.png", "2.png"]
    assert frames[0].boxes == [[10, 20, 40, 60]] and frames[0].classes == ["stenosis"] and frames[1].boxes == []
    assert len(read_coco_boxes(path)[0].boxes) == 2


def test_clip_labels_resolve_next_to_the_csv_and_clips_read_in_frame_order(tmp_path):
    clip = tmp_path / "clips" / "a"
    clip.mkdir(parents=True)
    for n in (1, 2, 10):
        iio.imwrite(clip / f"frame{n}.png", np.full((16, 16), n * 20, dtype=np.uint8))
    (tmp_path / "clips.csv").write_text("clip,label,fold\nclips/a,1,3\nclips/b,normal,\n")
    clips = read_clip_labels(tmp_path / "clips.csv")
    assert [(c.path, c.label, c.fold) for c in clips] == [(clip, 1, 3), (tmp_path / "clips" / "b", 0, None)]
    frames = read_clip(clips[0]).frames
    assert frames.shape == (3, 16, 16) and [int(f[0, 0]) for f in frames] == [20, 40, 200]  # frame2 before frame10


@pytest.mark.parametrize("text, problem", [("name,label\na,1\n", "columns"), ("clip,label\na,maybe\n", "not 0/1")])
def test_a_clip_file_of_the_wrong_shape_is_refused(tmp_path, text, problem):
    (tmp_path / "clips.csv").write_text(text)
    with pytest.raises(ValueError, match=problem):
        read_clip_labels(tmp_path / "clips.csv")


def test_patches_load_as_arrays_and_a_pickle_that_names_anything_else_is_refused(tmp_path):
    import os
    import pickle

    from stenosis_patches import read_patches

    patches = np.random.default_rng(0).random((5, 32, 32, 1))
    (tmp_path / "ok.pickle").write_bytes(pickle.dumps(patches))
    loaded = read_patches(tmp_path / "ok.pickle")
    assert loaded.shape == (5, 32, 32) and np.allclose(loaded, patches[..., 0])

    class Payload:
        def __reduce__(self):
            return (os.system, ("echo never",))

    (tmp_path / "bad.pickle").write_bytes(pickle.dumps(Payload()))
    with pytest.raises(pickle.UnpicklingError, match="refused"):
        read_patches(tmp_path / "bad.pickle")
