"""The offline testbed: two synthetic video datasets and tiny trained models that ship with vtome.

clips.py     the datasets, generated clip by clip from (seed, dataset, split, index): appearance and temporal
draw.py      drawing one textured, anti-aliased object on a frame
models.py    the tiny ViViT / VideoMAE / TimeSformer configs, the shipped checkpoints, clips -> model input
evaluate.py  every reduction of the paper's Table 1 on one model, interleaved batch by batch
run.py       the demo's work: all models on both sets, and the merged-token pictures
table.py     results -> Table 1 rows (markdown); findings.py: do the paper's findings hold; plot.py: the figure

Train the checkpoints with scripts/train_testbed.py; see them at work with `vtome demo`.
"""
