"""When vtome's own operators stand in for traced code under torch.compile.

Inductor generates a kernel for every fused group of traced operations, specialised to its sizes. An unmerged
model's layers all have the same sizes and share their kernels; a merged model's layers each hold a different
number of tokens, so each layer gets kernels of its own and compile time grows with every traced operation.
Matching and merging are small, index-heavy steps that compiling does not speed up, so under torch.compile they
run as single operators with their eager code (`vtome::match`, `vtome::merge`), and Motionformer's spatial step
too (`vtome::slot_attention`, whose SDPA inductor would otherwise copy queries for).

The operators have no backward and an exported graph should hold plain aten operators (ONNX, AOTInductor), so with
gradients and under torch.export everything is traced as usual.
"""

from __future__ import annotations

import torch


def opaque() -> bool:
    """Whether vtome's operators replace the traced code: under torch.compile, without gradients, not exporting."""
    return torch.compiler.is_compiling() and not torch.compiler.is_exporting() and not torch.is_grad_enabled()
