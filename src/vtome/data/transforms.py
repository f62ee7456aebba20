"""Frames to model input, as each checkpoint expects: short-side resize, centre crop, rescale, mean/std.

    transform = clip_transform(model)            # from the checkpoint's preprocessor config, else family defaults
    x = transform(frames)                        # uint8 (T, H, W, 3) -> float32 (T, 3, crop, crop)
    x = transform.spatial_views(frames, 3)       # -> (3, T, 3, crop, crop): crops along the long side
    model(x[None])                               # HF video models take (batch, T, 3, H, W)

The settings come from `preprocessor_config.json` (or `video_preprocessor_config.json`) next to a local
checkpoint or in the HuggingFace cache for a hub id, read with HF's meaning of the keys (ViViT's `offset`:
x * rescale - 1 before mean/std). Without one, per-family defaults equal to the public checkpoints' configs.
Resizing is bilinear with antialiasing (torch's interpolate), rounded back to 0..255 like a uint8 resize. The
crop always equals the model's `config.image_size` (V-JEPA 2: `crop_size`; what its positions need); a processor
config made for another size keeps its resize/crop ratio. Frames are decoded as RGB; channels="bgr" reverses them
for checkpoints trained on OpenCV's order (Motionformer's EPIC-KITCHENS model: see default_channels).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

PROCESSOR_FILES = ("preprocessor_config.json", "video_preprocessor_config.json")

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)

# Per model_type: (short side / crop, rescale factor, offset, mean, std), as in the public checkpoints' configs
# (google/vivit-b-16x2-kinetics400, MCG-NJU/videomae-base-finetuned-*, facebook/timesformer-base-finetuned-k400,
# facebookresearch/Motionformer's configs: the short side scaled to the test crop, mean = std = 0.5).
FAMILY_DEFAULTS: dict[str, tuple[float, float, bool, tuple[float, ...], tuple[float, ...]]] = {
    "vivit": (256 / 224, 1 / 127.5, True, (0.5, 0.5, 0.5), (0.5, 0.5, 0.5)),
    "videomae": (1.0, 1 / 255, False, IMAGENET_MEAN, IMAGENET_STD),
    "timesformer": (1.0, 1 / 255, False, (0.45, 0.45, 0.45), (0.225, 0.225, 0.225)),
    # VJEPA2VideoProcessor: short side int(crop * 256 / 224), 292 for a 256 crop (and 438 for 384)
    "vjepa2": (292 / 256, 1 / 255, False, IMAGENET_MEAN, IMAGENET_STD),
    "motionformer": (1.0, 1 / 255, False, (0.5, 0.5, 0.5), (0.5, 0.5, 0.5)),
}
_OTHER = (256 / 224, 1 / 255, False, IMAGENET_MEAN, IMAGENET_STD)

CHANNELS = ("rgb", "bgr")
# (model_type, dataset) whose checkpoints were trained on BGR frames. Motionformer's EPIC-KITCHENS config reads
# frames with OpenCV and does not reverse them (DATA.REVERSE_INPUT_CHANNEL False); its SSv2 config does (RGB), and
# its Kinetics frames are decoded as RGB.
BGR = {("motionformer", "epic")}


def default_channels(model_type: str, dataset: str) -> str:
    """The channel order a family's checkpoints for a dataset expect: "rgb", or "bgr" where they were trained so."""
    return "bgr" if (model_type, dataset) in BGR else "rgb"


@dataclass(frozen=True)
class ClipTransform:
    """uint8 frames (T, H, W, 3) -> float32 model input (T, 3, crop[0], crop[1])."""

    resize: int | None  # short side after resizing; None keeps the frames' size
    crop: tuple[int, int]  # (height, width)
    mean: tuple[float, ...]
    std: tuple[float, ...]
    rescale: float = 1 / 255
    offset: bool = False  # HF ViViT: x * rescale - 1
    normalize: bool = True
    channels: str = "rgb"  # "bgr": the channels reversed before rescaling (mean and std are in the model's order)

    def _resized(self, x: torch.Tensor, as_uint8: bool = True) -> torch.Tensor:
        """(T, C, H, W) float -> (T, C, H', W'), short side = self.resize; as_uint8: rounded back to 0..255 (pixels),
        else left as they come (maps of other values)."""
        if self.resize is not None:
            height, width = x.shape[-2:]
            short, long = min(height, width), max(height, width)
            new_long = int(self.resize * long / short)  # torchvision's / HF's rounding of the long side
            size = (self.resize, new_long) if height <= width else (new_long, self.resize)
            if size != (height, width):
                x = F.interpolate(x, size=size, mode="bilinear", align_corners=False, antialias=True)
                if as_uint8:
                    x = x.round().clamp(0, 255)  # as if resized in uint8, like the HF processors
        return x

    def _crops(self, x: torch.Tensor, views: int) -> list[torch.Tensor]:
        """(T, C, H, W) -> `views` crops (T, C, h, w) spread evenly along the long side (zero padding around a
        frame smaller than the crop)."""
        crop_h, crop_w = self.crop
        height, width = x.shape[-2:]
        if height < crop_h or width < crop_w:  # smaller than the crop: pad with zeros around, centred
            pad_h, pad_w = max(crop_h - height, 0), max(crop_w - width, 0)
            x = F.pad(x, (pad_w // 2, pad_w - pad_w // 2, pad_h // 2, pad_h - pad_h // 2))
            height, width = x.shape[-2:]
        out = []
        for view in range(views):
            frac = 0.5 if views == 1 else view / (views - 1)
            if width - crop_w >= height - crop_h:
                top, left = (height - crop_h) // 2, round(frac * (width - crop_w))
            else:
                top, left = round(frac * (height - crop_h)), (width - crop_w) // 2
            out.append(x[..., top:top + crop_h, left:left + crop_w])
        return out

    def _finish(self, x: torch.Tensor) -> torch.Tensor:
        if self.channels == "bgr":
            x = x.flip(-3)
        x = x * self.rescale
        if self.offset:
            x = x - 1
        if self.normalize:
            mean = torch.tensor(self.mean, dtype=x.dtype).view(-1, 1, 1)
            std = torch.tensor(self.std, dtype=x.dtype).view(-1, 1, 1)
            x = (x - mean) / std
        return x.contiguous()

    def __call__(self, frames: torch.Tensor) -> torch.Tensor:
        """(T, H, W, 3) uint8 -> (T, 3, h, w) float32, centre crop."""
        return self.spatial_views(frames, 1)[0]

    def spatial_views(self, frames: torch.Tensor, views: int) -> torch.Tensor:
        """(T, H, W, 3) uint8 -> (views, T, 3, h, w): crops spread evenly along the long side (3 = the usual
        left/centre/right). views=1 is the centre crop."""
        x = self._resized(frames.permute(0, 3, 1, 2).float())
        return torch.stack([self._finish(crop) for crop in self._crops(x, views)])

    def spatial_maps(self, maps: torch.Tensor, views: int = 1) -> torch.Tensor:
        """The same geometry (short-side resize, crops) for per-pixel maps of the frames: (T, C, H, W) float ->
        (views, T, C, h, w), values resized bilinearly (not rounded, not normalised)."""
        return torch.stack(self._crops(self._resized(maps.float(), as_uint8=False), views))

    def levels(self, x: torch.Tensor) -> torch.Tensor:
        """Model input (..., 3, h, w) made by this transform -> the pixel values it came from, 0..255 float."""
        if self.normalize:
            mean = torch.tensor(self.mean, dtype=x.dtype, device=x.device).view(-1, 1, 1)
            std = torch.tensor(self.std, dtype=x.dtype, device=x.device).view(-1, 1, 1)
            x = x * std + mean
        if self.offset:
            x = x + 1
        return x / self.rescale


def _pair(value, name: str) -> tuple[int, int] | None:
    if value is None:
        return None
    if isinstance(value, int):
        return (value, value)
    if isinstance(value, dict) and "height" in value and "width" in value:
        return (int(value["height"]), int(value["width"]))
    if isinstance(value, (list, tuple)) and len(value) == 2:
        return (int(value[0]), int(value[1]))
    raise ValueError(f"cannot read {name}={value!r} in the processor config")


def _triple(value) -> tuple[float, ...]:
    return tuple(float(v) for v in value) if isinstance(value, (list, tuple)) else (float(value),) * 3


def processor_config(spec: str | Path | None) -> dict:
    """The preprocessor config of a local checkpoint directory or a cached hub id, or {} when there is none."""
    if not spec:
        return {}
    for name in PROCESSOR_FILES:
        local = Path(spec, name)
        if local.is_file():
            return json.loads(local.read_text())
    if Path(spec).exists():
        return {}
    try:  # hub id: only what is already in the local cache, never a download
        from huggingface_hub import try_to_load_from_cache

        for name in PROCESSOR_FILES:
            cached = try_to_load_from_cache(str(spec), name)
            if isinstance(cached, str):
                return json.loads(Path(cached).read_text())
    except Exception:  # not a valid repo id, or no cache
        pass
    return {}


def _image_size(model: nn.Module) -> tuple[int, int]:
    config = getattr(model, "config", None)
    if config is not None and hasattr(config, "image_size"):
        return _pair(config.image_size, "image_size")
    if config is not None and hasattr(config, "crop_size"):  # V-JEPA 2
        return _pair(config.crop_size, "crop_size")
    return tuple(model.patch_embed.img_size)  # timm ViT


def clip_transform(model: nn.Module, spec: str | Path | None = None, processor: dict | None = None,
                   channels: str = "rgb") -> ClipTransform:
    """The input transform for `model`. spec: where it was loaded from (defaults to config.name_or_path);
    processor: a preprocessor config dict to use instead of looking one up; channels: "rgb" or "bgr"."""
    if channels not in CHANNELS:
        raise ValueError(f"channels must be one of {CHANNELS}; got {channels!r}")
    config = getattr(model, "config", None)
    if spec is None and config is not None:
        spec = getattr(config, "name_or_path", None) or getattr(config, "_name_or_path", None)
    processor = processor_config(spec) if processor is None else processor
    model_type = getattr(config, "model_type", "")
    ratio, rescale, offset, mean, std = FAMILY_DEFAULTS.get(model_type, _OTHER)
    crop = _image_size(model)
    if processor:
        pcrop = _pair(processor.get("crop_size"), "crop_size") or crop
        size = processor.get("size")
        short = size.get("shortest_edge") if isinstance(size, dict) else size if isinstance(size, int) else None
        if short is None:  # {"height", "width"}: resized to the crop directly
            short = min(pcrop)
        ratio = short / min(pcrop) if processor.get("do_resize", True) else None
        rescale = processor.get("rescale_factor", rescale) if processor.get("do_rescale", True) else 1.0
        offset = bool(processor.get("offset", offset if model_type == "vivit" else False))
        mean = _triple(processor.get("image_mean", mean))
        std = _triple(processor.get("image_std", std))
        normalize = processor.get("do_normalize", True)
    else:
        normalize = True
    resize = None if ratio is None else round(min(crop) * ratio)
    return ClipTransform(resize=resize, crop=crop, mean=mean, std=std, rescale=rescale, offset=offset,
                         normalize=normalize, channels=channels)
