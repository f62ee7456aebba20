"""`vtome bench`: unpatched vs patched speed of one model (A B alternating), with FLOPs and merge cost."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from vtome.bench import ATTN_IMPLS, DTYPES, BenchConfig, bench
from vtome.commands import partitionargs as p
from vtome.commands.checks import (
    UserError,
    at_least,
    fail,
    merge_settings,
    one_of,
    partition_label,
    resolve_device,
)
from vtome.commands.modelspec import resolve
from vtome.commands.output import Json, JsonOut, check_json_out, console, emit


def _gflops(value: float) -> str:
    return f"{value:.1f}" if value >= 100 else f"{value:.4g}"  # tiny models: enough digits to tell them apart


def _r_title(result: dict) -> str:
    used, asked = result["r_per_layer"], result["r_scheduled"]
    text = f"r={result['r']}"
    if used != asked:
        cap = "half the tokens" if result.get("gamma", 2) == 2 else "1 - 1/gamma of the tokens"
        text += f" (capped at {cap}: {' '.join(map(str, used))} per layer)"
    partition = partition_label(result)
    return text + (f" partition {partition}" if partition else "")



def result_table(result: dict) -> Table:
    """Rich table of a bench result: one column per variant, then the ratios."""
    table = Table(title=f"{result['model']}  {_r_title(result)} {result['schedule']} {result['mode']}  "
                        f"batch {result['batch_size']}, {result['attn_impl']}, {result['dtype']}, "
                        f"{result['device']} x{result['threads_used']} threads")
    for name in ("", "unpatched", "patched", "patched / unpatched"):
        table.add_column(name, justify="right" if name else "left")
    rows = [
        ("latency (s, median)", "baseline_s", "patched_s", "{:.3f}"),
        ("clips/s", "baseline_clips_per_s", "patched_clips_per_s", "{:.3f}"),
        ("frames/s", "baseline_frames_per_s", "patched_frames_per_s", "{:.2f}"),
        ("GFLOPs per clip", "gflops_baseline", "gflops_patched", _gflops),
        ("peak memory (MiB)", "peak_mem_baseline_mib", "peak_mem_patched_mib", "{:.0f}"),
    ]
    for label, a, b, fmt in rows:
        fmt = fmt.format if isinstance(fmt, str) else fmt
        table.add_row(label, fmt(result[a]), fmt(result[b]), f"{result[b] / result[a]:.3f}")
    table.add_section()
    table.add_row("speedup (median of pairs)", "", "", f"[bold green]{result['speedup']:.2f}x")
    table.add_row("speedup in CPU time", "", "", f"{result['cpu_speedup']:.2f}x")
    table.add_row("FLOP-ideal speedup", "", "", f"{result['flop_speedup']:.2f}x")
    table.add_row("efficiency (speedup / ideal)", "", "", f"{result['efficiency']:.2f}")
    table.add_row("matching + merging share", "", "", f"{100 * result['merge_share']:.1f}%")
    table.add_row("tokens per layer", "", " ".join(map(str, result["tokens"])), "")
    if result.get("compile"):
        table.add_section()
        first_a, first_b = result["compile_s_baseline"], result["compile_s_patched"]
        table.add_row("first call, compiling (s)", f"{first_a:.1f}", f"{first_b:.1f}", f"{first_b / first_a:.2f}")
        table.add_row("patched eager / compiled", "", f"{result['patched_eager_s']:.3f}",
                      f"{result['eager_over_compiled']:.2f}x")
    return table


def _prior(spec, video: str):
    """The motion prior of --prior-video at the model's token grid (read before the weights load)."""
    from vtome.data.video import VideoError
    from vtome.motion import motion_prior

    try:
        return motion_prior(video, spec.empty()).prior
    except FileNotFoundError as err:
        raise fail("--prior-video", video, "no such file or frame folder") from err
    except ValueError as err:
        raise UserError(f"--prior-video {video}: {err}") from err
    except (VideoError, IndexError, OSError, RuntimeError) as err:
        raise fail("--prior-video", video, f"cannot read it ({type(err).__name__}: {err})") from err


def bench_command(
    model: Annotated[str, typer.Option(help="Preset (see `vtome models`), local directory (save_pretrained or timm "
                                            "save_for_hf), hub id or Motionformer .pyth file.")] = "vivit-b",
    r: Annotated[float, typer.Option(help="Tokens merged per layer, a whole number (per frame for divided models); "
                                          "below 1: a fraction of the initial tokens.")] = 300,
    schedule: Annotated[str, typer.Option(help="constant | decreasing | increasing | r per layer, comma separated."
                                          )] = "constant",
    mode: Annotated[str, typer.Option(help="merge | drop | random_drop | random_merge | hybrid")] = "merge",
    threshold: Annotated[float | None, typer.Option(help="Similarity threshold in [-1, 1], for --mode hybrid only."
                                                    )] = None,
    batch_size: Annotated[int, typer.Option("--batch-size", "-b", help="Clips per forward pass.")] = 1,
    runs: Annotated[int, typer.Option(help="Timed pairs (unpatched, patched).")] = 5,
    warmup: Annotated[int, typer.Option(help="Untimed passes of each variant first.")] = 1,
    probe_runs: Annotated[int, typer.Option(help="Separate instrumented passes for the merge share.")] = 1,
    threads: Annotated[int | None, typer.Option(help="torch.set_num_threads (default: torch's choice).")] = None,
    dtype: Annotated[str, typer.Option(help=" | ".join(DTYPES))] = "float32",
    device: Annotated[str | None, typer.Option(help="cpu | cuda | cuda:N (default: cuda when available, else cpu)."
                                               )] = None,
    attn_impl: Annotated[str, typer.Option(help=f"{' | '.join(ATTN_IMPLS)}, for both variants.")] = "sdpa",
    seed: Annotated[int, typer.Option(help="Seed of the random input, of random modes and of sampled partitions."
                                      )] = 0,
    partition: p.Partition = "alternate",
    gamma: p.Gamma = None,
    merge_weighting: p.MergeWeighting = "size",
    sample: p.Sample = True,
    tau: p.Tau = 1.0,
    saliency: p.Saliency = None,
    prior_video: Annotated[str | None, typer.Option(help="--partition motion: a video file or frame folder whose "
                                                         "motion prior (vtome.motion_prior) every pass uses.")] = None,
    compile: Annotated[bool, typer.Option("--compile", help="torch.compile both variants; report compile "
                                                            "times and the patched eager time too.")] = False,
    dynamic: Annotated[bool, typer.Option("--dynamic", help="With --compile: torch.compile(dynamic=True) for both "
                                                            "variants (symbolic input sizes).")] = False,
    cpp_wrapper: Annotated[bool, typer.Option(
        "--cpp-wrapper", help="With --compile: inductor's cpp_wrapper for both variants, each graph's kernels built "
                              "as one C++ unit (CPU: a much shorter compile of a patched model, whose layers all "
                              "differ).")] = False,
    as_json: Json = False,
    json_out: JsonOut = None,
) -> None:
    """Time the model unpatched and patched (alternating, after warm-up) and compare with the FLOP-ideal."""
    settings = merge_settings(r, schedule, mode, threshold, seed, partition, gamma, merge_weighting, sample, tau,
                              saliency, prior=prior_video is not None)
    if prior_video is not None and partition != "motion":
        raise fail("--prior-video", prior_video, "applies only to --partition motion")
    for option, value, low in (("--batch-size", batch_size, 1), ("--runs", runs, 1), ("--warmup", warmup, 0),
                               ("--probe-runs", probe_runs, 1), ("--threads", threads, 1)):
        at_least(option, value, low)
    for option, value in (("--dynamic", dynamic), ("--cpp-wrapper", cpp_wrapper)):
        if value and not compile:
            raise UserError(f"{option} applies only with --compile")
    one_of("--dtype", dtype, DTYPES)
    one_of("--attn-impl", attn_impl, ATTN_IMPLS)
    device = resolve_device(device)
    check_json_out(json_out)
    spec = resolve(model)
    spec.check_patch(settings)
    prior = None if prior_video is None else _prior(spec, prior_video)

    config = BenchConfig(model=model, batch_size=batch_size, runs=runs, warmup=warmup, probe_runs=probe_runs,
                         threads=threads, dtype=dtype, device=device, attn_impl=attn_impl, compile=compile,
                         dynamic=dynamic, cpp_wrapper=cpp_wrapper,
                         prior_video=prior_video, prior=prior, **settings)
    with Console(stderr=True, quiet=as_json).status(f"building {model}") as status:
        result = bench(config, step=lambda text: status.update(f"{model}: {text}"), load=lambda _: spec.load())
    text = console(as_json)
    text.print(result_table(result))
    emit(result, as_json, json_out, text)
