"""Classifier outputs -> the per-clip records of predictions.jsonl (keys documented in vtome.evaluation.results)."""

from __future__ import annotations

import torch


def topk(logits: torch.Tensor, k: int = 5) -> torch.Tensor:
    """(B, K) -> (B, min(k, K)) class indices, best first."""
    return logits.topk(min(k, logits.shape[-1]), dim=-1).indices


def action_topk(verb_logits: torch.Tensor, noun_logits: torch.Tensor, k: int = 5) -> torch.Tensor:
    """(B, V), (B, N) -> (B, min(k, V*N)) action indices (verb * N + noun) ranked by p(verb) * p(noun).

    The k best pairs always lie among the k best verbs x the k best nouns, so only those are scored."""
    verb_p, noun_p = verb_logits.softmax(-1), noun_logits.softmax(-1)
    verbs, nouns = topk(verb_p, k), topk(noun_p, k)  # (B, kv), (B, kn)
    scores = verb_p.gather(1, verbs)[:, :, None] * noun_p.gather(1, nouns)[:, None, :]  # (B, kv, kn)
    best = topk(scores.flatten(1), k)  # positions in the kv x kn grid
    num_nouns = noun_logits.shape[-1]
    return verbs.gather(1, best // nouns.shape[1]) * num_nouns + nouns.gather(1, best % nouns.shape[1])


def records(batch: dict, logits: torch.Tensor | None, heads: tuple[int, int] | None = None,
            save_logits: bool = False) -> list[dict]:
    """One record per clip of a collated batch (see vtome.data.clips.collate).

    logits: (B_ok, K) for the readable clips of the batch, in order (None if none). heads: (verbs, nouns) for
    EPIC models, whose K = verbs + nouns outputs are verb logits then noun logits."""
    logits = None if logits is None else logits.float().cpu()
    if logits is not None and heads is not None:
        verbs, nouns = heads
        if logits.shape[-1] != verbs + nouns:
            raise ValueError(f"the model has {logits.shape[-1]} outputs, not {verbs} verbs + {nouns} nouns")
        verb_logits, noun_logits = logits[:, :verbs], logits[:, verbs:]
        heads_top = {"verb": topk(verb_logits), "noun": topk(noun_logits)}
        main_top = action_topk(verb_logits, noun_logits)
    elif logits is not None:
        heads_top = {}
        main_top = topk(logits)
    out, row = [], 0
    for i, sample_id in enumerate(batch["id"]):
        record = {"id": sample_id, "path": batch["path"][i], "label": int(batch["label"][i])}
        readable = bool(batch["ok"][i])
        record["pred"] = int(main_top[row, 0]) if readable else None
        record["top5"] = main_top[row].tolist() if readable else []
        if heads is not None:
            for head in ("verb", "noun"):
                record[f"{head}_label"] = int(batch[f"{head}_label"][i])
                record[f"{head}_pred"] = int(heads_top[head][row, 0]) if readable else None
                record[f"{head}_top5"] = heads_top[head][row].tolist() if readable else []
        if batch.get("padded") is not None and bool(batch["padded"][i]):
            record["padded"] = True
        if readable:
            if batch.get("prior_source") and batch["prior_source"][i]:
                record["prior_source"] = batch["prior_source"][i]  # where the motion prior came from
            if save_logits:
                record["logits"] = logits[row].tolist()
            row += 1
        else:
            record["error"] = batch["error"][i]
        out.append(record)
    return out
