"""Evaluation on real datasets (paper Table 1): the loop, its files and the report.

loop.py         the evaluation loop: model over a dataset's clips, resumable, sharded over torchrun processes
dist.py         torch.distributed for torchrun: rank, world size, gathering objects
predictions.py  classifier outputs -> per-clip records (top-5, EPIC verb / noun / action)
accuracy.py     accuracy from the records (unreadable clips count as wrong)
results.py      the files of a run: predictions.jsonl and metrics.json
report.py       the paper's Table 1 from metrics.json files
"""
