"""Temporal coherence loss of the paper (eq. 5): frame differences of prediction and target agree."""
from torch import nn

from basicsr.utils.registry import LOSS_REGISTRY


@LOSS_REGISTRY.register()
class TemporalCoherenceLoss(nn.Module):
    """``loss_weight * reduce_j ||(v_{j+1} - v_j) - (v̂_{j+1} - v̂_j)||²`` over frames (dim 2).

    Inputs ``pred``, ``target``: ``[B, C, F, H, W]`` with F >= 2. ``reduction='mean'`` averages
    the squared differences over all ``B*C*(F-1)*H*W`` elements (the scale of an MSE term);
    ``'sum'`` is the paper's sum over frame pairs and elements, averaged over nothing.
    """

    def __init__(self, loss_weight=0.1, reduction='mean'):
        super().__init__()
        if reduction not in ('mean', 'sum'):
            raise ValueError(f"reduction must be 'mean' or 'sum', got {reduction!r}")
        self.loss_weight = loss_weight
        self.reduction = reduction

    def forward(self, pred, target):
        if pred.shape != target.shape or pred.dim() != 5 or pred.shape[2] < 2:
            raise ValueError(f'TemporalCoherenceLoss needs two [B, C, F>=2, H, W] tensors, got '
                             f'{tuple(pred.shape)} and {tuple(target.shape)}')
        diff = (target[:, :, 1:] - target[:, :, :-1]) - (pred[:, :, 1:] - pred[:, :, :-1])
        squared = diff.pow(2)
        return self.loss_weight * (squared.mean() if self.reduction == 'mean' else squared.sum())
