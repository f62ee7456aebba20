"""Dataset readers: K400 lists, SSv2 jsons and frame lists, EPIC-KITCHENS-100 csv, class folders."""

from __future__ import annotations

import json

import pytest
import torch

from clipdata import gray_frames, write_frames
from vtome.data.epic import action_index
from vtome.data.registry import load_samples
from vtome.data.samples import load_frames

EPIC_HEADER = ("narration_id,participant_id,video_id,narration_timestamp,start_timestamp,stop_timestamp,"
               "start_frame,stop_frame,narration,verb,verb_class,noun,noun_class,all_nouns,all_noun_classes")


def test_k400_list(tmp_path):
    split = tmp_path / "val.csv"
    split.write_text("path label\nabseiling/a b.mp4 0\n\nzumba/c.mp4\t399\nyoga/d e.mp4,12\n")
    samples = load_samples("k400", tmp_path / "videos", split)
    assert [(s.id, s.label) for s in samples] == [("abseiling/a b.mp4", 0), ("zumba/c.mp4", 399), ("yoga/d e.mp4", 12)]
    assert samples[0].path == str(tmp_path / "videos" / "abseiling" / "a b.mp4")
    named = tmp_path / "named.csv"
    named.write_text("x.mp4,riding_a_bike\n")
    assert load_samples("k400", "", named, class_to_index={"riding a bike": 7})[0].label == 7
    with pytest.raises(ValueError, match="neither a class index"):
        load_samples("k400", "", named)


def test_missing_dataset_files_are_clear(tmp_path):
    with pytest.raises(FileNotFoundError, match="Kinetics-400 split file not found: .*nope.csv"):
        load_samples("k400", tmp_path, tmp_path / "nope.csv")
    with pytest.raises(FileNotFoundError, match="EPIC-KITCHENS-100 annotation csv"):
        load_samples("epic", tmp_path, tmp_path / "EPIC_100_validation.csv")
    with pytest.raises(FileNotFoundError, match="no Kinetics-400 split file given"):
        load_samples("k400", tmp_path, None)
    (tmp_path / "val.json").write_text("[]")
    with pytest.raises(FileNotFoundError, match="SSv2 labels json"):
        load_samples("ssv2", tmp_path, tmp_path / "val.json")
    with pytest.raises(FileNotFoundError, match="dataset folder not found"):
        load_samples("folder", tmp_path / "absent")
    with pytest.raises(ValueError, match="unknown dataset"):
        load_samples("ucf101", tmp_path, None)


def _ssv2_jsons(tmp_path):
    (tmp_path / "something-something-v2-labels.json").write_text(json.dumps(
        {"Pushing something from left to right": "0", "Putting something in front of something": "1"}))
    (tmp_path / "something-something-v2-validation.json").write_text(json.dumps([
        {"id": "74225", "label": "putting a cup in front of a pen", "template":
         "Putting [something] in front of [something]", "placeholders": ["a cup", "a pen"]},
        {"id": "116154", "label": "pushing a box from left to right",
         "template": "Pushing [something] from left to right", "placeholders": ["a box"]},
    ]))


def test_ssv2_json(tmp_path):
    _ssv2_jsons(tmp_path)
    (tmp_path / "videos" / "116154").mkdir(parents=True)  # this one as extracted frames
    samples = load_samples("ssv2", tmp_path / "videos", tmp_path / "something-something-v2-validation.json")
    assert [(s.id, s.label) for s in samples] == [("74225", 1), ("116154", 0)]
    assert samples[0].path.endswith("videos/74225.webm") and samples[1].path.endswith("videos/116154")


def test_ssv2_frame_list(tmp_path):
    _ssv2_jsons(tmp_path)
    write_frames(tmp_path / "frames" / "74225", gray_frames(3, 8, 8), pattern="74225_{:06d}.jpg")
    lines = ["original_vido_id video_id frame_id path labels"]
    lines += [f"74225 0 {i} 74225/74225_{i + 1:06d}.jpg \"\"" for i in (2, 0, 1)]  # rows out of order
    (tmp_path / "val.csv").write_text("\n".join(lines) + "\n")
    (sample,) = load_samples("ssv2", tmp_path / "frames", tmp_path / "val.csv")
    assert sample.id == "74225" and sample.label == 1 and len(sample.frames) == 3
    levels = load_frames(sample).float().mean(dim=(1, 2, 3)).round().tolist()
    assert [round(v / 20) for v in levels] == [0, 1, 2]
    labelled = tmp_path / "labelled" / "val.csv"
    labelled.parent.mkdir()
    labelled.write_text("original_vido_id video_id frame_id path labels\n9 0 0 9/1.jpg 4\n")
    assert load_samples("ssv2", tmp_path, labelled)[0].label == 4  # integer labels column, no json needed


def test_epic_csv_and_layouts(tmp_path):
    rows = [EPIC_HEADER, "P01_11_0,P01,P01_11,00:00:00.00,00:00:00.14,00:00:03.37,3,8,take plate,take,0,plate,2,"
            "['plate'],[2]", "P02_01_5,P02,P02_01,00:00:01.00,00:00:01.00,00:00:02.00,1,2,put bowl,put,1,bowl,"
            "299,['bowl'],[299]"]
    (tmp_path / "EPIC_100_validation.csv").write_text("\n".join(rows) + "\n")
    root = tmp_path / "frames"
    write_frames(root / "P01" / "P01_11" / "rgb_frames", gray_frames(10, 8, 8))  # frame_0000000001.jpg ...
    samples = load_samples("epic", root, tmp_path / "EPIC_100_validation.csv")
    first = samples[0]
    assert (first.id, first.labels, first.label) == ("P01_11_0", {"verb": 0, "noun": 2}, action_index(0, 2))
    assert samples[1].label == 1 * 300 + 299 and first.count == 6
    levels = load_frames(first, [0, 5]).float().mean(dim=(1, 2, 3)).round().tolist()
    assert [round(v / 20) for v in levels] == [2, 7]  # frames 3 and 8 (numbered from 1) hold levels 2 and 7
    with pytest.raises(FileNotFoundError, match="P02/P02_01/rgb_frames/frame_0000000001.jpg"):
        load_frames(samples[1], [0])
    video_first = load_samples("epic", root, tmp_path / "EPIC_100_validation.csv", participant_first=False)
    assert video_first[0].template.endswith("frames/P01_11/rgb_frames/frame_{frame:010d}.jpg")
    custom = load_samples("epic", root, tmp_path / "EPIC_100_validation.csv",
                          template="{participant}/rgb_frames/{video}/img_{frame:05d}.jpg")
    assert custom[0].template.endswith("P01/rgb_frames/P01_11/img_{frame:05d}.jpg")


def test_folder_per_class(tmp_path):
    for name in ("b_class", "a_class"):
        (tmp_path / name).mkdir()
    (tmp_path / "a_class" / "x.mp4").write_bytes(b"")
    (tmp_path / "a_class" / "notes.txt").write_text("not a video")
    write_frames(tmp_path / "b_class" / "clip1", gray_frames(2, 8, 8))
    samples = load_samples("folder", tmp_path)
    assert [(s.id, s.label) for s in samples] == [("a_class/x.mp4", 0), ("b_class/clip1", 1)]
    assert load_samples("folder", tmp_path, class_to_index={"a_class": 5, "b_class": 2})[1].label == 2
    assert load_frames(samples[1]).dtype == torch.uint8
