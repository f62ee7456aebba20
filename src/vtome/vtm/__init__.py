"""Learnable Video Token Merging (Lee et al., NeurIPS 2024): saliency heads and their auxiliary-path training on
any patched model, and the paper's long-video network.

heads.py      SaliencyHeads: one vector u per patched layer, s = tanh(K u); saved on their own
auxiliary.py  the auxiliary path (saliency-guided attention) in a doubled batch; task(main) + lam * task(aux)
train.py      train_saliency: the training loop, with progress and a resumable checkpoint
"""

from vtome.vtm.auxiliary import disable_auxiliary, enable_auxiliary, split_rows, task_loss
from vtome.vtm.heads import SaliencyHeads

__all__ = ["SaliencyHeads", "enable_auxiliary", "disable_auxiliary", "split_rows", "task_loss"]
