"""Saliency heads of learnable VTM (Lee et al., NeurIPS 2024, eq. 9): one bias-free vector u per patched layer,
s = tanh(K u), K the layer's keys aggregated as for the matching metric.

    heads = SaliencyHeads.for_model(model)                 # zeros: s = 0, a uniform random partition at first
    vtome.patch(model, r=0.5, partition="saliency", saliency=heads)
    heads.save("heads.safetensors"); heads.load("heads.safetensors")

The heads are an nn.Module of their own, never attached to the model: the model's state_dict keeps its keys, and
the heads are saved on their own (safetensors, with their shape in the metadata).
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

FORMAT = "vtome-saliency-heads"


class SaliencyHeads(nn.Module):
    """weight: (layers, width) float32, zero-initialised; width is the metric's (head_dim for keys averaged over
    heads, the hidden size for heads concatenated)."""

    def __init__(self, layers: int, width: int) -> None:
        super().__init__()
        if layers < 1 or width < 1:
            raise ValueError(f"saliency heads need at least one layer and a width >= 1; got {layers} x {width}")
        self.weight = nn.Parameter(torch.zeros(layers, width))

    @property
    def layers(self) -> int:
        return self.weight.shape[0]

    @property
    def width(self) -> int:
        return self.weight.shape[1]

    @classmethod
    def for_model(cls, model: nn.Module, head_aggregation: str = "mean") -> SaliencyHeads:
        """Zero heads for a model vtome can patch: one per layer, as wide as its metric."""
        from vtome.flops import arch

        a = arch(model)
        return cls(a.layers, a.dim // a.heads if head_aggregation == "mean" else a.dim)

    def scores(self, layer: int, keys: torch.Tensor) -> torch.Tensor:
        """keys (batch, N, width) -> s (batch, N) in (-1, 1), differentiable in the heads."""
        if not 0 <= layer < self.layers or keys.shape[-1] != self.width:
            raise ValueError(f"saliency heads are {self.layers} layers x {self.width} wide; layer {layer} has keys "
                             f"of width {keys.shape[-1]} (heads made for another model?)")
        weight = self.weight[layer]
        return torch.tanh(keys.to(weight.dtype) @ weight.to(keys.device))

    def save(self, path: str | Path) -> Path:
        """Write the heads to a safetensors file (written whole, then moved into place)."""
        from safetensors.torch import save_file

        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        partial = path.with_name(path.name + ".partial")
        save_file({"weight": self.weight.detach().float().cpu().contiguous()}, str(partial),
                  metadata={"format": FORMAT, "layers": str(self.layers), "width": str(self.width)})
        partial.replace(path)
        return path

    def load(self, path: str | Path) -> SaliencyHeads:
        """Read heads saved by `save` into these (in place, so an optimizer holding them keeps working); a file of
        another shape (another model's layer count or width) is refused."""
        weight = read(path)
        if weight.shape != self.weight.shape:
            raise ValueError(f"{path}: saliency heads of {weight.shape[0]} layers x {weight.shape[1]} wide; these "
                             f"heads are {self.layers} x {self.width} (a heads file for another model)")
        with torch.no_grad():
            self.weight.copy_(weight)
        return self

    @classmethod
    def from_file(cls, path: str | Path) -> SaliencyHeads:
        weight = read(path)
        heads = cls(*weight.shape)
        with torch.no_grad():
            heads.weight.copy_(weight)
        return heads


def read(path: str | Path) -> torch.Tensor:
    """The (layers, width) weight of a heads file, with a clear error for anything else."""
    from safetensors import SafetensorError, safe_open

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no saliency heads file at {path}")
    try:
        with safe_open(str(path), "pt") as f:
            metadata, names = f.metadata() or {}, list(f.keys())
            weight = f.get_tensor("weight") if names == ["weight"] else None
    except SafetensorError as err:
        raise ValueError(f"{path}: not a safetensors file ({err})") from err
    if metadata.get("format") != FORMAT or weight is None or weight.dim() != 2:
        raise ValueError(f"{path}: not a vtome saliency heads file (written by SaliencyHeads.save)")
    return weight
