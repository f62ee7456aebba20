"""The partition options (Video Token Merging) that eval, bench, sweep and vis share; checked by
`checks.merge_settings`."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

Partition = Annotated[str, typer.Option(help="Which tokens are targets (stay and receive merges): alternate (ToMe's) "
                                             "| stride | center | boundary | motion | saliency (Video Token "
                                             "Merging; see the README).")]
Gamma = Annotated[int | None, typer.Option(help="Partition factor, a whole number >= 2: about one target in gamma "
                                                "tokens (default: 2 for alternate and stride, 6 for the others).")]
MergeWeighting = Annotated[str, typer.Option(help="size (ToMe's size-weighted average) | uniform (VTM's plain "
                                                  "average).")]
Sample = Annotated[bool, typer.Option("--sample/--no-sample", help="motion / saliency: draw the targets with "
                                                                    "probability softmax (seeded); --no-sample takes "
                                                                    "the top ones.")]
Tau = Annotated[float, typer.Option(help="motion: the temperature of softmax(prior / tau).")]
Saliency = Annotated[Path | None, typer.Option(help="--partition saliency: a .pt / .safetensors file holding the "
                                                    "vectors u (layers, C'): s = tanh(K u) per layer.")]
