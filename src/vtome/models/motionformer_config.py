"""The architecture of a Motionformer (Patrick et al., NeurIPS 2021): what its constructor needs, as plain data.

    config = MotionformerConfig()                        # Motionformer-B, K400 16x4 at 224 px (the defaults)
    config = MotionformerConfig(class_heads=[97, 300])   # EPIC-KITCHENS-100: verb and noun heads
    config.to_dict() / MotionformerConfig.from_dict(d)   # what config.json holds next to saved weights

Field names follow the official config keys where one exists (VIT.EMBED_DIM -> hidden_size, ...); the attribute
names vtome reads from every video model (num_frames, image_size, num_channels, num_labels, model_type) are here
too, so Motionformer plugs into `input_shape`, the evaluation and the reports like the HF models.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields

HEAD_ACTS = ("tanh", "gelu", "relu")
ATTN_IMPLEMENTATIONS = ("sdpa", "eager")


@dataclass
class MotionformerConfig:
    image_size: int = 224  # DATA.TRAIN_CROP_SIZE: the crop the model is built for
    patch_size: int = 16  # VIT.PATCH_SIZE
    tubelet_size: int = 2  # VIT.PATCH_SIZE_TEMP: frames per token
    temporal_resolution: int = 8  # VIT.TEMPORAL_RESOLUTION: token slots F (frames / tubelet_size)
    num_channels: int = 3  # VIT.CHANNELS
    hidden_size: int = 768  # VIT.EMBED_DIM
    num_hidden_layers: int = 12  # VIT.DEPTH
    num_attention_heads: int = 12  # VIT.NUM_HEADS
    mlp_ratio: float = 4.0  # VIT.MLP_RATIO
    qkv_bias: bool = True  # VIT.QKV_BIAS (qkv, proj_q and proj_kv)
    use_mlp: bool = True  # VIT.USE_MLP: a pre-logits Linear + activation before the classifier
    head_act: str = "tanh"  # VIT.HEAD_ACT
    use_original_code: bool = True  # VIT.USE_ORIGINAL_TRAJ_ATTN_CODE: the released checkpoints' numerics
    # Side of the stored spatial position table. Upstream builds it for 224 px whatever the crop (224 // patch) and
    # resizes it (bicubic) when the input grid differs; vtome's own small models store it at their crop's size.
    pos_grid: int = 14
    num_labels: int = 400  # MODEL.NUM_CLASSES; with class_heads, their sum
    class_heads: list[int] | None = None  # several classifiers (head0, head1, ...), logits concatenated: EK-100
    layer_norm_eps: float = 1e-6
    attention_dropout: float = 0.0  # VIT.ATTN_DROPOUT, on the spatial attention weights (training only)
    drop_path_rate: float = 0.0  # VIT.DROP_PATH, the last block's (linear from 0 in the first)
    attn_implementation: str = "sdpa"  # "eager": explicit softmax (attention maps)
    id2label: dict[int, str] | None = None
    name_or_path: str = field(default="", compare=False)  # where it was loaded from (preprocessor config lookup)

    model_type = "motionformer"  # a class attribute, not a field

    def __post_init__(self) -> None:
        if self.class_heads is not None:
            self.class_heads = [int(n) for n in self.class_heads]
            self.num_labels = sum(self.class_heads)
        if self.id2label is not None:
            self.id2label = {int(i): str(name) for i, name in self.id2label.items()}
        self.validate()

    def validate(self) -> None:
        """Raise ValueError naming the first field that cannot make a Motionformer."""
        positive = ("image_size", "patch_size", "tubelet_size", "temporal_resolution", "num_channels", "hidden_size",
                    "num_hidden_layers", "num_attention_heads", "pos_grid", "num_labels")
        for name in positive:
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"Motionformer config: {name} must be a positive int; got {value!r}")
        if self.hidden_size % self.num_attention_heads:
            raise ValueError(f"Motionformer config: hidden_size {self.hidden_size} is not a multiple of "
                             f"num_attention_heads {self.num_attention_heads}")
        if self.image_size < self.patch_size:
            raise ValueError(f"Motionformer config: image_size {self.image_size} is smaller than patch_size "
                             f"{self.patch_size}")
        if self.head_act not in HEAD_ACTS:
            raise ValueError(f"Motionformer config: head_act must be one of {HEAD_ACTS}; got {self.head_act!r}")
        if self.attn_implementation not in ATTN_IMPLEMENTATIONS:
            raise ValueError(f"Motionformer config: attn_implementation must be one of {ATTN_IMPLEMENTATIONS}; got "
                             f"{self.attn_implementation!r}")
        if self.class_heads is not None and (len(self.class_heads) < 2 or min(self.class_heads) < 1):
            raise ValueError(f"Motionformer config: class_heads must list two or more positive class counts (one "
                             f"per classifier); got {self.class_heads!r}")
        if self.mlp_ratio <= 0 or int(self.hidden_size * self.mlp_ratio) < 1:
            raise ValueError(f"Motionformer config: mlp_ratio must be positive; got {self.mlp_ratio!r}")

    # --- what the rest of vtome reads --------------------------------------------------------------------------

    @property
    def num_frames(self) -> int:
        """Input frames per clip: tubelet_size x temporal_resolution (16 for the released models)."""
        return self.tubelet_size * self.temporal_resolution

    @property
    def intermediate_size(self) -> int:
        return int(self.hidden_size * self.mlp_ratio)

    @property
    def num_verbs(self) -> int | None:
        """EPIC-KITCHENS: the first head's classes (verbs), when there are two heads."""
        return self.class_heads[0] if self.class_heads and len(self.class_heads) == 2 else None

    @property
    def num_nouns(self) -> int | None:
        return self.class_heads[1] if self.class_heads and len(self.class_heads) == 2 else None

    @property
    def label2id(self) -> dict[str, int]:
        return {name: i for i, name in (self.id2label or {}).items()}

    # --- config.json ------------------------------------------------------------------------------------------

    def to_dict(self) -> dict:
        data = {"model_type": self.model_type, **asdict(self)}
        data.pop("name_or_path")
        return data

    @classmethod
    def from_dict(cls, data: dict) -> MotionformerConfig:
        data = dict(data)
        model_type = data.pop("model_type", cls.model_type)
        if model_type != cls.model_type:
            raise ValueError(f"not a Motionformer config: model_type is {model_type!r}")
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(f"Motionformer config: unknown keys {unknown}; known: {sorted(known)}")
        return cls(**data)
