"""vtome: training-free token merging for video transformers.

    import vtome
    vtome.patch(model, r=0.1)        # merge 10% of the initial tokens in every layer
    logits = model(pixel_values).logits
    vtome.info(model)["tokens"]      # tokens entering layer 1, then after each layer
    vtome.unpatch(model)             # the original model again, bit for bit
"""

from vtome.motion import MotionPrior, motion_prior
from vtome.patch import info, patch, set_prior, unpatch

__version__ = "0.1.0"
__all__ = ["patch", "unpatch", "info", "set_prior", "motion_prior", "MotionPrior", "__version__"]
