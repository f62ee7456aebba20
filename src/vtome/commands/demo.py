"""`vtome demo`: ViViT-B (its real architecture, random weights, no download) with and without merging."""

from __future__ import annotations

import time

import torch
import typer
from rich.console import Console

import vtome
from vtome.models import load_model, random_input


def _seconds(model: torch.nn.Module, x: torch.Tensor) -> float:
    with torch.inference_mode():
        start = time.perf_counter()
        model(x)
        return time.perf_counter() - start


def demo(
    model: str = typer.Option("vivit-b", help="Preset, local directory or HF id."),
    r: float = typer.Option(300, help="Tokens merged per layer (a value below 1 is a fraction)."),
    schedule: str = typer.Option("constant", help="constant | decreasing | increasing"),
) -> None:
    """Merge tokens in ViViT-B and print the tokens per layer and the speedup of one forward pass."""
    console = Console()
    torch.manual_seed(0)
    with console.status(f"building {model}"):
        net = load_model(model)
        x = random_input(net)
    with console.status("unpatched forward (one warm-up, one timed)"):
        _seconds(net, x)
        baseline = _seconds(net, x)
    vtome.patch(net, r=r if r < 1 else int(r), schedule=schedule)
    with console.status(f"patched forward, r={r} {schedule}"):
        _seconds(net, x)
        patched = _seconds(net, x)
    tokens = vtome.info(net)["tokens"]
    console.print(f"[bold]{model}[/] input {tuple(x.shape)}, r={r}, schedule={schedule}")
    console.print(f"tokens per layer: {' -> '.join(map(str, tokens))}")
    console.print(f"unpatched {baseline:.2f} s, patched {patched:.2f} s: [bold green]{baseline / patched:.2f}x[/]")
