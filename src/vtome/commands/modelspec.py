"""What `--model` names, checked cheaply before any weights load: a preset, a local directory (HF
`save_pretrained`, timm `save_for_hf` or vtome's Motionformer), a HuggingFace hub id (HF models, and timm's
`timm/...` ids) or an official Motionformer checkpoint file (.pyth: its cfg and shapes are read, memory-mapped).

    spec = resolve("timm/vit_base_patch16_224.augreg_in21k")   # config only; UserError when it cannot be
    meta = spec.empty()        # the architecture on the meta device: frames, layers, classes, a patch check
    model = spec.load("cpu")   # the weights (eval mode)

Presets, HF and Motionformer checkpoints load through vtome.models.load_model; timm checkpoints through
timm.create_model ("local-dir:DIR" / "hf-hub:ID").
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import nn

from vtome.commands.checks import UserError, fail
from vtome.models import PRESETS, load_model

ALLOWED = ("a preset (see `vtome models`), a model directory (save_pretrained or timm save_for_hf), a hub id or a "
           "Motionformer .pyth file")


@dataclass
class ModelSpec:
    """name: as given; kind: "preset" | "hf" | "timm" | "motionformer"; config: the HF config, timm's config.json
    dict, or a MotionformerConfig."""

    name: str
    kind: str
    config: object = None
    _empty: nn.Module | None = field(default=None, repr=False)

    @property
    def timm_name(self) -> str:
        return f"local-dir:{self.name}" if Path(self.name).is_dir() else f"hf-hub:{self.name}"

    def empty(self) -> nn.Module:
        """The architecture without weights (meta device): for checks and FLOPs, never for a forward pass."""
        if self._empty is None:
            with torch.device("meta"):
                if self.kind == "preset":
                    model = PRESETS[self.name]()
                elif self.kind == "motionformer":
                    from vtome.models import Motionformer

                    model = Motionformer(self.config)
                elif self.kind == "timm":  # from the config in hand: no second look at the hub
                    import timm

                    args = dict(self.config.get("model_args") or {})
                    if "num_classes" in self.config:
                        args.setdefault("num_classes", self.config["num_classes"])
                    model = timm.create_model(self.config["architecture"], pretrained=False, **args)
                else:
                    from transformers import AutoModelForVideoClassification

                    model = AutoModelForVideoClassification.from_config(self.config)
            self._empty = model.eval()
        return self._empty

    def check_patch(self, settings: dict) -> None:
        """Refuse vtome.patch settings this model does not take (e.g. a schedule list longer than its layers),
        on the meta architecture: before any weights load."""
        import vtome

        model = self.empty()
        try:
            vtome.unpatch(vtome.patch(model, **settings))
        except ValueError as err:
            raise UserError(f"--model {self.name}: {err}") from err
        vectors = settings.get("saliency")
        if vectors is not None:  # one vector per layer, as wide as the matching metric (keys averaged over heads)
            from vtome.flops import arch

            a = arch(model)
            width = a.dim if settings.get("head_aggregation") == "concat" else a.dim // a.heads
            if vectors.shape[0] < a.layers or vectors.shape[1] != width:
                raise UserError(f"--saliency: vectors of shape {tuple(vectors.shape)} do not fit --model {self.name}"
                                f": it needs ({a.layers}, {width}), one vector per layer as wide as its keys "
                                "averaged over heads")

    def load(self, device: str = "cpu") -> nn.Module:
        """The model with its weights, in eval mode, on `device`."""
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()  # "Loading weights" bars would clutter vtome's own output
        try:
            if self.kind == "timm":
                import timm

                model = timm.create_model(self.timm_name, pretrained=True)
            else:
                model = load_model(self.name)
        except (OSError, ValueError, RuntimeError) as err:
            raise fail("--model", self.name, f"cannot load its weights ({type(err).__name__}: {_first_line(err)})"
                       ) from err
        return model.eval().to(device)


def _first_line(err: Exception) -> str:
    text = str(err).strip()
    return text.splitlines()[0] if text else ""


def _check_supported(spec: ModelSpec) -> ModelSpec:
    """Refuse what vtome cannot patch, with the patch registry's own list of what it can."""
    from vtome.patch.registry import SUPPORTED, find_family

    try:
        model = spec.empty()
    except ValueError as err:  # transformers has no video classifier for this config (e.g. a BERT)
        model_type = getattr(spec.config, "model_type", "?")
        raise fail("--model", spec.name, f"is a {model_type!r} model, not a video classifier; supported: "
                                         f"{SUPPORTED}") from err
    try:
        find_family(model)
    except TypeError as err:
        raise fail("--model", spec.name, f"vtome cannot patch a {type(model).__name__}; supported: {SUPPORTED}"
                   ) from err
    return spec


def _from_config_file(name: str, path: Path) -> ModelSpec:
    """A spec from a config.json (local, or downloaded from the hub into the cache)."""
    try:
        data = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as err:
        raise fail("--model", name, f"cannot read its config.json ({err})") from err
    if not isinstance(data, dict):
        raise fail("--model", name, "its config.json is not a model config")
    if "architecture" in data:  # timm's save_for_hf / push_to_hf_hub
        import timm

        if not timm.is_model(data["architecture"]):
            raise fail("--model", name, f"unknown timm architecture {data['architecture']!r}")
        return ModelSpec(name, "timm", data)
    model_type = data.get("model_type")
    if model_type is None:
        raise fail("--model", name, "its config.json names no model_type (HF) nor architecture (timm)")
    if model_type == "motionformer":
        from vtome.models import MotionformerConfig

        try:
            return ModelSpec(name, "motionformer", MotionformerConfig.from_dict(data))
        except (TypeError, ValueError) as err:
            raise fail("--model", name, f"its config.json: {err}") from err
    from transformers import AutoConfig

    try:
        config = AutoConfig.from_pretrained(path.parent)  # the directory (or cache snapshot) holding it: no network
    except (OSError, ValueError, KeyError) as err:
        raise fail("--model", name, f"transformers cannot read its config ({_first_line(err)})") from err
    return ModelSpec(name, "hf", config)


def _motionformer_file(name: str) -> ModelSpec:
    """A file is taken for an official Motionformer checkpoint: its architecture, read without the weights."""
    from vtome.models.pyth import pyth_config

    try:
        return ModelSpec(name, "motionformer", pyth_config(name))
    except ValueError as err:
        raise fail("--model", name, f"is a file but not a Motionformer checkpoint ({_first_line(err)}); give "
                                    f"{ALLOWED}") from err


def _hub_config(repo: str, local_only: bool) -> Path:
    """config.json of a hub repo: from the local cache, else downloaded. LookupError says why it cannot be had."""
    from huggingface_hub import hf_hub_download

    try:
        return Path(hf_hub_download(repo, "config.json", local_files_only=local_only))
    except Exception as err:  # offline, no such repo, no config.json, invalid id: huggingface_hub's many errors
        kind = type(err).__name__
        if "LocalEntryNotFound" in kind or "Connect" in kind or "Offline" in kind:
            why = "not in the local HuggingFace cache, and the hub cannot be reached (offline?)"
        elif "RepositoryNotFound" in kind or "Validation" in kind:
            why = "no such model on the HuggingFace hub"
        else:
            why = f"cannot get its config.json from the hub ({kind}: {_first_line(err)})"
        raise LookupError(why) from err


def resolve(name: str, local_only: bool = False) -> ModelSpec:
    """Check `name` without loading weights (a hub id reads only its config.json: cache, else download).
    local_only: never go to the network for a hub id."""
    if name in PRESETS:
        return ModelSpec(name, "preset")
    path = Path(name)
    if path.exists():
        if not path.is_dir():
            return _motionformer_file(name)
        if not (path / "config.json").is_file():
            raise fail("--model", name, "has no config.json: not a model saved with save_pretrained (HF) or "
                                        "save_for_hf (timm)")
        return _check_supported(_from_config_file(name, path / "config.json"))
    repo = name.removeprefix("hf-hub:")
    if repo.count("/") != 1 or name.startswith((".", "/", "~")):
        raise fail("--model", name, f"no such preset or directory, and not a hub id (owner/name); give {ALLOWED}")
    try:
        config = _hub_config(repo, local_only)
    except LookupError as err:
        where = "" if name.startswith("hf-hub:") else "no such directory here, and "
        raise fail("--model", name, f"{where}{err}; give {ALLOWED}") from err
    return _check_supported(_from_config_file(repo, config))


def is_video(model: nn.Module) -> bool:
    """Whether a model takes clips (batch, frames, 3, H, W) rather than images."""
    from vtome.models import input_shape

    return len(input_shape(model)) == 5


def label_names(spec: ModelSpec) -> dict[int, str]:
    """The checkpoint's class names (HF id2label, timm label_names); {} for placeholders (LABEL_i) or none."""
    if spec.kind == "hf":
        names = {int(i): str(n) for i, n in (getattr(spec.config, "id2label", None) or {}).items()}
        return {} if all(n == f"LABEL_{i}" for i, n in names.items()) else names
    if spec.kind == "motionformer":
        return dict(spec.config.id2label or {})
    if spec.kind == "timm":
        names = (spec.config.get("pretrained_cfg") or {}).get("label_names") or spec.config.get("label_names")
        return dict(enumerate(map(str, names))) if isinstance(names, list) else {}
    return {}

