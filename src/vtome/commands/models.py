"""`vtome models`: the presets (tokens, frames, parameters) and the model types vtome can patch and load."""

from __future__ import annotations

import torch
from rich import box
from rich.table import Table

from vtome.commands.output import Json, JsonOut, check_json_out, console, emit
from vtome.models import PRESETS

LOADS = ("a preset name; a directory saved with HF save_pretrained (ViViT, VideoMAE, TimeSformer), timm save_for_hf "
         "(VisionTransformer) or vtome's Motionformer.save_pretrained; a HuggingFace hub id (e.g. "
         "google/vivit-b-16x2-kinetics400, timm/vit_base_patch16_224.augreg_in21k); an official Motionformer "
         "checkpoint file (facebookresearch/Motionformer .pyth)")


def preset_rows() -> list[dict]:
    """One dict per preset: the architecture built on the meta device (no weights, no memory)."""
    from vtome.flops import arch, unmerged_tokens
    from vtome.vis.layout import token_layout

    rows = []
    for name, build in PRESETS.items():
        with torch.device("meta"):
            model = build()
        a, layout = arch(model), token_layout(model)
        rows.append({
            "name": name, "family": a.family, "frames": layout.frames, "layers": a.layers, "dim": a.dim,
            "image_size": [layout.height, layout.width],
            "tokens": unmerged_tokens(a)[0],  # entering layer 1: per clip (class token included), per frame if divided
            "tokens_per": "frame" if a.divided else "clip",
            "merged_frames": a.frames if a.divided else 1,  # frames merging on their own (Motionformer: 2-frame slots)
            "parameters": sum(p.numel() for p in model.parameters()),
        })
    return rows


def models_command(as_json: Json = False, json_out: JsonOut = None) -> None:
    """List the presets (random weights, no download) and what else --model takes."""
    from vtome.patch.registry import SUPPORTED

    check_json_out(json_out)
    rows = preset_rows()
    text = console(as_json)
    table = Table(title="Presets: the paper's architectures, random weights, no download", box=box.SIMPLE_HEAD,
                  pad_edge=False,
                  caption="tokens entering layer 1, per clip (divided models: frames x tokens per frame; a "
                          "Motionformer frame is a slot of 2 video frames)")
    for column in ("preset", "family", "frames", "size", "layers", "tokens", "params"):
        table.add_column(column, justify="left" if column in ("preset", "family") else "right", no_wrap=True,
                         min_width=len(column))
    for row in rows:
        tokens = f"{row['merged_frames']}x{row['tokens']}" if row["tokens_per"] == "frame" else str(row["tokens"])
        table.add_row(row["name"], row["family"], str(row["frames"]), "x".join(map(str, row["image_size"])),
                      str(row["layers"]), tokens, f"{row['parameters'] / 1e6:.2f}M")
    text.print(table)
    text.print(f"--model also takes {LOADS}.")
    text.print(f"vtome.patch supports: {SUPPORTED}.")
    emit({"presets": rows, "loads": LOADS, "supported": SUPPORTED}, as_json, json_out, text)
