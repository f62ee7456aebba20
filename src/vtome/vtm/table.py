"""The paper's Table 1 for VTM on the testbed's long-video set: accuracy, throughput and peak memory per variant.

    rows = run_table(TableConfig())          # trains every variant (or loads the shipped nets), then measures
    print(to_markdown(rows)); plot_table(rows, "vtm_table.png")

Accuracy is top-1 on the test clips, also split into clips with a still camera and with camera motion.
Throughput (clips/s) is measured for all variants in one process on the same batch, interleaved; peak memory
(what one forward pass adds, MiB) of each variant in a fresh process on that batch (vtome.vtm.measure).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import torch

from vtome.vis.figure import save_figure
from vtome.vtm.fit import FitConfig, LongData, evaluate, load_net, saliency_margin, save_net, timed_fit
from vtome.vtm.measure import interleaved_seconds, isolated_memory_mib, median
from vtome.vtm.net import VARIANTS, VTMConfig, VTMNet, flops

NAMES = {"none": "baseline (no merging)", "naive": "naive", "boundary": "boundary", "center": "center",
         "motion": "motion", "learnable": "learnable"}


def shipped_dir() -> Path:
    from importlib import resources

    return Path(str(resources.files("vtome.testbed") / "checkpoints" / "vtm-long"))


@dataclass
class TableConfig:
    variants: tuple[str, ...] = VARIANTS
    fit: FitConfig = field(default_factory=FitConfig)
    train_clips: int = 1000
    test_clips: int = 400
    speed_batch: int = 16
    runs: int = 5
    warmup: int = 1
    attn_impl: str = "sdpa"  # attention of the speed and memory measurement
    shipped: Path | None = None  # a directory of trained nets (<variant>.safetensors) to load instead of training
    out: Path | None = None  # where to save the trained nets


def run_table(config: TableConfig, step: Callable[[str], None] | None = None) -> list[dict]:
    """One row per variant: accuracy (all / static / camera), train time, clips/s, peak MiB, FLOPs."""
    say = step or (lambda text: None)
    say("making the test clips")
    test = LongData.make("test", config.test_clips)
    train = None
    if config.shipped is None:
        say("making the training clips")
        train = LongData.make("train", config.train_clips)
    nets, rows = {}, []
    for variant in config.variants:
        if config.shipped is not None:
            nets[variant], trained = load_net(Path(config.shipped) / f"{variant}.safetensors"), {}
        else:
            nets[variant], trained = timed_fit(variant, train, config.fit,
                                               lambda i, loss, v=variant, n=config.fit.steps: say(
                                                   f"training {v}: step {i}/{n}, loss {loss:.3f}"))
            if config.out is not None:
                save_net(nets[variant], Path(config.out) / f"{variant}.safetensors",
                         {"fit": config.fit.__dict__, "train_clips": config.train_clips, **trained})
        say(f"evaluating {variant}")
        row = {"variant": variant, **evaluate(nets[variant], test), **trained,
               "gflops": flops(nets[variant].config) / 1e9, "tokens": None}
        if variant == "learnable":
            row["saliency"] = saliency_margin(nets[variant], test)
        rows.append(row)
    speed = measure_speed(nets, test, config, say)
    base = speed.get("none")
    for row in rows:
        row.update(speed[row["variant"]])
        row["tokens"] = nets[row["variant"]].tokens
        if base is not None:
            row["throughput_ratio"] = row["clips_per_s"] / base["clips_per_s"]
            row["memory_ratio"] = row["peak_mib"] / base["peak_mib"] if base["peak_mib"] > 0 else None
    return rows


def forward_call(config: VTMConfig, state: dict, features: torch.Tensor, motion: torch.Tensor,
                 attn_impl: str) -> Callable[[], None]:
    """One inference pass of a VTMNet of `config` with weights `state` (a copy) on features and motion."""
    net = VTMNet(config)
    net.load_state_dict(state)
    net.eval().attn_impl = attn_impl

    def run() -> None:
        with torch.inference_mode():
            net(features, motion)
    return run


def measure_speed(nets: dict, data: LongData, config: TableConfig, say: Callable[[str], None]) -> dict:
    features = data.features[:config.speed_batch].float()
    motion = data.motion[:config.speed_batch]
    memory = {}
    for name, net in nets.items():
        say(f"peak memory of {name} (a fresh process)")
        memory[name] = isolated_memory_mib(forward_call, net.config, net.state_dict(), features, motion,
                                           config.attn_impl)
    fns = {name: forward_call(net.config, net.state_dict(), features, motion, config.attn_impl)
           for name, net in nets.items()}
    timed = interleaved_seconds(fns, torch.device("cpu"), config.runs, config.warmup,
                                lambda text: say(f"throughput {text}"))
    return {name: {"clips_per_s": len(features) / median(timed[name]), "peak_mib": memory[name],
                   "speed_batch": len(features), "threads": torch.get_num_threads(),
                   "attn_impl": config.attn_impl} for name in nets}


def best(rows: list[dict], key: str) -> float:
    return max(row[key] for row in rows)


def to_markdown(rows: list[dict]) -> str:
    """The table (bold: the best accuracy of a column)."""
    lines = ["| VTM | top-1 | still camera | camera motion | clips/s | x | peak MiB | memory | GFLOPs |",
             "| --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
    for row in rows:
        cells = [NAMES[row["variant"]]]
        for key in ("accuracy", "static", "camera"):
            text = f"{row[key]:.2f}"
            cells.append(f"**{text}**" if row[key] == best(rows, key) else text)
        ratio = row.get("throughput_ratio")
        memory = row.get("memory_ratio")
        cells += [f"{row['clips_per_s']:.1f}", "-" if ratio is None else f"{ratio:.2f}x", f"{row['peak_mib']:.0f}",
                  "-" if memory is None else f"{100 * (memory - 1):+.0f}%", f"{row['gflops']:.3f}"]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def plot_table(rows: list[dict], path: str | Path) -> Path:
    """Accuracy against throughput, one marker per variant; hollow: the camera-motion clips alone."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4.2))
    for i, row in enumerate(rows):
        ax.scatter(row["clips_per_s"], row["accuracy"], color=f"C{i}", s=60, label=NAMES[row["variant"]])
        ax.scatter(row["clips_per_s"], row["camera"], color=f"C{i}", s=50, facecolors="none")
    ax.set_xlabel("throughput (clips/s, CPU)")
    ax.set_ylabel("top-1 (%)  (hollow: camera-motion clips)")
    ax.set_title("VTMNet on the long-video testbed", fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    return save_figure(fig, path)
