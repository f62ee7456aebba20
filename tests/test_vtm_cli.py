"""`vtome vtm train | table | bench`: bad input refused in one line before any work; a tiny run end to end."""

import json

import pytest

from clirun import refused, vtome


@pytest.mark.parametrize(
    "args, fragments",
    [
        (["vtm", "train", "--variant", "random"], ["--variant random", "none, naive, boundary"]),
        (["vtm", "train", "--variant", "naive", "--steps", "0"], ["--steps 0", "at least 1"]),
        (["vtm", "train", "--variant", "naive", "--lr", "0"], ["--lr 0", "> 0"]),
        (["vtm", "table", "--variants", "naive,spiral"], ["--variants spiral"]),
        (["vtm", "table", "--variants", ","], ["--variants"]),
        (["vtm", "table", "--shipped", "--checkpoints", "."], ["--shipped and --checkpoints"]),
        (["vtm", "table", "--checkpoints", "NOPE"], ["--checkpoints NOPE", "no such directory"]),
        (["vtm", "table", "--attn-impl", "flash"], ["--attn-impl flash"]),
        (["vtm", "bench", "--batch-sizes", "0"], ["--batch-sizes 0", "out of range"]),
        (["vtm", "bench", "--variants", "none,best"], ["--variants best"]),
        (["vtm", "bench", "--device", "cuda:7"], ["--device cuda:7"]),
    ],
)
def test_bad_input_is_refused(capsys, args, fragments):
    refused(vtome(capsys, *args), *fragments)


def test_table_checkpoints_without_a_variant(capsys, tmp_path):
    refused(vtome(capsys, "vtm", "table", "--checkpoints", tmp_path), "no none.safetensors", "vtome vtm train")


def test_train_then_table_from_its_checkpoints(capsys, tmp_path):
    run = vtome(capsys, "vtm", "train", "--variant", "learnable", "--steps", "2", "--batch-size", "2",
                "--train-clips", "4", "--test-clips", "4", "--out", tmp_path, "--json")
    assert run.code == 0, run.err
    result = json.loads(run.out)
    assert result["variant"] == "learnable" and 0 <= result["accuracy"] <= 100
    assert (tmp_path / "learnable.safetensors").is_file() and (tmp_path / "learnable.json").is_file()
    run = vtome(capsys, "vtm", "table", "--checkpoints", tmp_path, "--variants", "learnable", "--test-clips", "4",
                "--runs", "1", "--out", tmp_path / "table", "--json")
    assert run.code == 0, run.err
    row = json.loads(run.out)["rows"][0]
    assert row["variant"] == "learnable" and row["clips_per_s"] > 0 and row["peak_mib"] > 0 and "saliency" in row
    assert (tmp_path / "table" / "table.md").read_text().startswith("| VTM | top-1")
    assert (tmp_path / "table" / "table.png").stat().st_size > 0
