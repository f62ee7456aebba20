"""The LVU-shape benchmark of VTMNet on a GPU (`vtome vtm bench` without the CLI's dependencies), as JSON.

    PYTHONPATH=src python scripts/vtm_lvu_gpu.py OUT.json [--quick]
"""

import json
import platform
import sys
import time

import torch

from vtome.vtm.lvu import bench_lvu

quick = "--quick" in sys.argv
started = time.perf_counter()
device = "cuda" if torch.cuda.is_available() else "cpu"
rows = bench_lvu(batches=(1,) if quick else (1, 4), eager_batches=() if quick else (1, 4), device=device,
                 runs=1 if quick else 10, warmup=0 if quick else 3, step=lambda text: print(text, flush=True))
result = {"rows": rows, "device": torch.cuda.get_device_name() if device == "cuda" else platform.processor(),
          "torch": torch.__version__, "seconds": time.perf_counter() - started}
with open(sys.argv[1], "w") as out:
    json.dump(result, out, indent=2)
for row in rows:
    if "skipped" in row:
        print(row["batch_size"], row["attn_impl"], row["variant"], row["skipped"])
    else:
        print(f"{row['batch_size']} {row['attn_impl']:5} {row['variant']:9} {row['clips_per_s']:8.2f} clips/s "
              f"x{row['throughput_ratio']:.2f}  {row['peak_mib']:8.0f} MiB ({100 * -row['memory_reduction']:+.0f}%)"
              f"  FLOPs x{row['flop_ratio']:.2f}")
print(f"took {result['seconds']:.0f} s")
