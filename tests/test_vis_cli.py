"""The picture and analysis commands run offline on tiny presets and say where they wrote."""

import json

import av
import numpy as np
from PIL import Image
from typer.testing import CliRunner

from test_vis_analysis import write_results
from vtome.cli import app

runner = CliRunner()


def run(*args):
    result = runner.invoke(app, [str(a) for a in args])
    assert result.exit_code == 0, result.output + repr(result.exception)
    return result.output


def test_vis_writes_png_and_gif(tmp_path):
    out = tmp_path / "v.png"
    text = run("vis", "--model", "vivit-tiny", "--r", 20, "--scale", 1, "--out", out)
    assert f"wrote {out}" in text.replace("\n", "") and out.with_suffix(".gif").is_file()
    with Image.open(out) as png:
        assert png.size == (8 * 66 - 2, 16 + 2 * 66 - 2)  # 8 frames of 64 px, clip above tokens, a title line
    summary = json.loads(run("vis", "--model", "timesformer-tiny", "--r", 8, "--layer", 2, "--scale", 1,
                             "--no-gif", "--json", "--out", tmp_path / "t.png"))
    assert summary["layer"] == 2 and summary["tokens"] == [64, 56, 48, 40, 32] and summary["groups"] == 4 * 48


def test_vis_decodes_a_video_file(tmp_path):
    path = tmp_path / "clip.mp4"
    with av.open(str(path), "w") as container:
        stream = container.add_stream("mpeg4", rate=8)
        stream.width, stream.height, stream.pix_fmt = 96, 80, "yuv420p"
        for t in range(20):
            frame = np.zeros((80, 96, 3), dtype=np.uint8)
            frame[:, : 4 * t + 8] = (220, 40, 40)
            container.mux(stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")))
        container.mux(stream.encode())
    summary = json.loads(run("vis", "--model", "videomae-tiny", "--video", path, "--r", 30, "--json", "--out",
                             tmp_path / "m.png"))
    assert summary["tokens"][0] == 256 and (tmp_path / "m.gif").is_file()


def test_vis_duplicate_and_splice(tmp_path):
    summary = json.loads(run("vis-duplicate", "--model", "vivit-tiny", "--copies", 6, "--r", 10, "--scale", 1,
                             "--json", "--out", tmp_path / "d.png"))
    assert set(summary["layers"]) == {"1", "4"} and summary["layers"]["4"]["tokens"][-1] == 257 - 60
    text = run("splice", "--model", "vivit-tiny", "--partner", "synthetic:halves", "--r", 20, "--scale", 1,
               "--out", tmp_path / "s.png")
    assert "spanning both clips" in text and (tmp_path / "s.png").is_file()
    # Partner from an eval run's predictions: the nearest clip by KL, among clips with logits.
    records = [{"id": "me", "path": "synthetic:shapes", "label": 0, "logits": [1.0, 0.0]},
               {"id": "far", "path": "synthetic:shapes", "label": 0, "logits": [-5.0, 5.0]},
               {"id": "near", "path": "synthetic:halves", "label": 0, "logits": [1.0, 0.1]}]
    (tmp_path / "p.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
    summary = json.loads(run("splice", "--model", "vivit-tiny", "--predictions", tmp_path / "p.jsonl", "--id", "me",
                             "--choose", "nearest", "--r", 20, "--json", "--out", tmp_path / "s2.png"))
    assert summary["partner"] == "near" and sum(summary["from_partner"]) == 4


def test_confusion_and_curves(tmp_path):
    base = [{"id": f"c{i}", "label": i % 3, "pred": i % 3} for i in range(12)]
    merged = [{"id": f"c{i}", "label": i % 3, "pred": 0} for i in range(12)]
    for name, rows in (("base.jsonl", base), ("merged.jsonl", merged)):
        (tmp_path / name).write_text("".join(json.dumps(r) + "\n" for r in rows))
    out = tmp_path / "c.png"
    summary = json.loads(run("confusion", tmp_path / "base.jsonl", tmp_path / "merged.jsonl", "--k", 3, "--json",
                             "--out", out))
    assert np.allclose(summary["heads"]["class"]["change"], [[0, 0, 0], [1, -1, 0], [1, 0, -1]])
    assert out.is_file()
    write_results(tmp_path)
    text = run("curves", tmp_path / "runs", tmp_path / "sweep.csv", "--out", tmp_path / "k.png")
    assert "wrote" in text and (tmp_path / "k.png").is_file()
