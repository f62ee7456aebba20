"""Official Motionformer checkpoints (`.pyth`, facebookresearch/Motionformer) into vtome's Motionformer.

    model = load_pyth("k400_motionformer_224_16x4.pyth")    # eval mode, weights loaded strictly

A .pyth file is a `torch.save`d dict: "model_state" (the state_dict), "cfg" (the training config as YAML text),
"epoch", "optimizer_state" and maybe "scaler". It is read with weights_only=True (plain tensors and data; no code
is unpickled). The architecture comes from the cfg's VIT / DATA / MODEL keys, so checkpoints of other sizes load
too; without a cfg, from the state_dict's shapes (the number of heads, which no shape shows, then defaults to
hidden_size // 64 as in ViT-B and ViT-L). Every key and shape is checked before loading, with one-line errors.
"""

from __future__ import annotations

import math
import re
from pathlib import Path

import torch

from vtome.models.motionformer import Motionformer
from vtome.models.motionformer_config import MotionformerConfig

EPIC_HEADS = [97, 300]  # upstream gives an Epickitchens model these two heads whatever MODEL.NUM_CLASSES says
_BLOCK = re.compile(r"blocks\.(\d+)\.")


def read_checkpoint(path: str | Path, mmap: bool = False) -> dict:
    """The checkpoint dict of a .pyth file (a bare state_dict is wrapped as {"model_state": ...}).
    Raises ValueError for a file that is not one. mmap: map the tensors instead of reading them (cheap checks)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no checkpoint file {path}")
    try:
        try:
            checkpoint = torch.load(path, map_location="cpu", weights_only=True, mmap=mmap)
        except RuntimeError:
            if not mmap:
                raise
            checkpoint = torch.load(path, map_location="cpu", weights_only=True)  # an old format: no mmap
    except Exception as err:  # pickle, zip and torch's own errors: the file is not a torch checkpoint
        first = (str(err).strip().splitlines() or [""])[0][:200]
        raise ValueError(f"{path} is not a PyTorch checkpoint that loads safely (torch.load with weights_only: "
                         f"{type(err).__name__}: {first})") from err
    if isinstance(checkpoint, dict) and "model_state" in checkpoint:
        state = checkpoint["model_state"]
    elif isinstance(checkpoint, dict) and any(isinstance(k, str) and k.endswith("patch_embed_3d.proj.weight")
                                                for k in checkpoint):
        state, checkpoint = checkpoint, {"model_state": checkpoint}
    else:
        keys = sorted(map(str, checkpoint))[:8] if isinstance(checkpoint, dict) else type(checkpoint).__name__
        raise ValueError(f"{path} is not a Motionformer checkpoint: no 'model_state' (found {keys})")
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise ValueError(f"{path}: 'model_state' is not a state_dict of tensors")
    checkpoint["model_state"] = {_strip(k): v for k, v in state.items()}
    return checkpoint


def _strip(key: str) -> str:
    return key[len("module."):] if key.startswith("module.") else key


def _cfg(text: str | None) -> dict:
    """The YAML cfg text as nested dicts ({} when there is none)."""
    if not text:
        return {}
    import yaml

    try:
        cfg = yaml.safe_load(text)
    except yaml.YAMLError as err:
        raise ValueError(f"the checkpoint's cfg is not YAML ({err})") from err
    if not isinstance(cfg, dict):
        raise ValueError("the checkpoint's cfg is not a YAML mapping")
    return cfg


def _heads(state: dict) -> tuple[int, list[int] | None]:
    """(num_labels, class_heads) from the classifier weights of a state_dict."""
    if "head.weight" in state:
        return state["head.weight"].shape[0], None
    heads = []
    while f"head{len(heads)}.weight" in state:
        heads.append(state[f"head{len(heads)}.weight"].shape[0])
    if len(heads) < 2:
        raise ValueError("the state_dict has no classifier: neither 'head.weight' nor 'head0.weight' + "
                         "'head1.weight'")
    return sum(heads), heads


def config_from_state(state: dict) -> dict:
    """What the state_dict's shapes say about the architecture (and upstream's defaults for the rest)."""
    for key in ("cls_token", "pos_embed", "temp_embed", "patch_embed_3d.proj.weight", "blocks.0.mlp.fc1.weight"):
        if key not in state:
            raise ValueError(f"the state_dict has no {key!r}: not a Motionformer")
    dim, channels, tubelet, patch, _ = state["patch_embed_3d.proj.weight"].shape
    grid = math.isqrt(state["pos_embed"].shape[1] - 1)
    if grid * grid != state["pos_embed"].shape[1] - 1:
        raise ValueError(f"pos_embed has {state['pos_embed'].shape[1]} rows: not 1 + a square grid")
    num_labels, class_heads = _heads(state)
    depth = 1 + max(int(m.group(1)) for k in state if (m := _BLOCK.match(k)))
    return dict(
        image_size=grid * patch, patch_size=patch, tubelet_size=tubelet,
        temporal_resolution=state["temp_embed"].shape[1], num_channels=channels, hidden_size=dim,
        num_hidden_layers=depth,
        num_attention_heads=max(dim // 64, 1), mlp_ratio=state["blocks.0.mlp.fc1.weight"].shape[0] / dim,
        qkv_bias="blocks.0.attn.qkv.bias" in state, use_mlp="pre_logits.fc.weight" in state, pos_grid=grid,
        num_labels=num_labels, class_heads=class_heads,
    )


def config_from_cfg(cfg: dict, state: dict) -> dict:
    """The architecture from the official config's keys; the classifier's sizes from the state_dict."""
    vit, data, model = cfg.get("VIT") or {}, cfg.get("DATA") or {}, cfg.get("MODEL") or {}
    for key, allowed in (("ATTN_LAYER", "trajectory"), ("POS_EMBED", "separate"), ("APPROX_ATTN_TYPE", "none")):
        if vit.get(key, allowed) != allowed:
            raise ValueError(f"VIT.{key} is {vit[key]!r}: vtome's Motionformer is the {allowed!r} one")
    patch = int(vit.get("PATCH_SIZE", 16))
    config = dict(
        image_size=int(data.get("TRAIN_CROP_SIZE", 224)), patch_size=patch,
        tubelet_size=int(vit.get("PATCH_SIZE_TEMP", 2)), temporal_resolution=int(vit.get("TEMPORAL_RESOLUTION", 8)),
        num_channels=int(vit.get("CHANNELS", 3)), hidden_size=int(vit.get("EMBED_DIM", 768)),
        num_hidden_layers=int(vit.get("DEPTH", 12)), num_attention_heads=int(vit.get("NUM_HEADS", 12)),
        mlp_ratio=float(vit.get("MLP_RATIO", 4.0)), qkv_bias=bool(vit.get("QKV_BIAS", True)),
        use_mlp=bool(vit.get("USE_MLP", True)), head_act=str(vit.get("HEAD_ACT", "tanh")),
        use_original_code=bool(vit.get("USE_ORIGINAL_TRAJ_ATTN_CODE", True)),
        pos_grid=224 // patch,  # upstream's 2D stem is built for 224 px, and the position table with it
        num_labels=int(model.get("NUM_CLASSES", 400)),
    )
    if (cfg.get("TRAIN") or {}).get("DATASET") == "Epickitchens":
        config.update(class_heads=EPIC_HEADS)
    frames = data.get("NUM_FRAMES")
    if frames is not None and int(frames) != config["tubelet_size"] * config["temporal_resolution"]:
        raise ValueError(f"DATA.NUM_FRAMES is {frames}, but VIT.PATCH_SIZE_TEMP {config['tubelet_size']} x "
                         f"VIT.TEMPORAL_RESOLUTION {config['temporal_resolution']} slots make "
                         f"{config['tubelet_size'] * config['temporal_resolution']} frames")
    num_labels, class_heads = _heads(state)
    if class_heads != config.get("class_heads") or (class_heads is None and num_labels != config["num_labels"]):
        want = config.get("class_heads") or config["num_labels"]
        raise ValueError(f"the cfg asks for classifier(s) of {want} classes; the state_dict has "
                         f"{class_heads or num_labels}")
    return config


def check_state(model: Motionformer, state: dict, where: str) -> None:
    """One-line errors for a missing or unexpected key or a wrong shape (before load_state_dict)."""
    expected = model.state_dict()
    missing = [k for k in expected if k not in state]
    if missing:
        more = f" (and {len(missing) - 1} more)" if len(missing) > 1 else ""
        raise ValueError(f"{where}: missing key {missing[0]!r}{more}")
    unexpected = [k for k in state if k not in expected]
    if unexpected:
        more = f" (and {len(unexpected) - 1} more)" if len(unexpected) > 1 else ""
        raise ValueError(f"{where}: unexpected key {unexpected[0]!r}{more}")
    for key, tensor in expected.items():
        if tuple(state[key].shape) != tuple(tensor.shape):
            raise ValueError(f"{where}: {key!r} has shape {tuple(state[key].shape)}; the architecture needs "
                             f"{tuple(tensor.shape)}")


def pyth_config(path: str | Path, checkpoint: dict | None = None) -> MotionformerConfig:
    """The architecture of a .pyth checkpoint (from its cfg, else its shapes), without building the model."""
    checkpoint = read_checkpoint(path, mmap=True) if checkpoint is None else checkpoint
    state = checkpoint["model_state"]
    cfg = _cfg(checkpoint.get("cfg"))
    try:
        fields = config_from_cfg(cfg, state) if cfg else config_from_state(state)
        config = MotionformerConfig(**fields)
    except ValueError as err:
        raise ValueError(f"{path}: {err}") from err
    config.name_or_path = str(path)
    return config


def load_pyth(path: str | Path) -> Motionformer:
    """A Motionformer with the weights of an official .pyth checkpoint, loaded with strict=True. Eval mode."""
    checkpoint = read_checkpoint(path)
    config = pyth_config(path, checkpoint)
    with torch.device("meta"):
        skeleton = Motionformer(config)
    check_state(skeleton, checkpoint["model_state"], str(path))
    model = Motionformer(config)
    model.load_state_dict(checkpoint["model_state"], strict=True)
    return model.eval()
