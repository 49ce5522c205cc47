"""PVDNet in BasicSR: recurrent training over clips with the original's two stages.

As the public ``trainer.py``: on a clip of T frames, steps t = 1 .. T-2 each deblur frame t from
frames t-1, t, t+1 and the previous step's (detached) output, the first step's previous
deblurred frame being blurry frame 0; every step is one optimisation step with gradient-norm
clipping (``grad_clip``, 1.0 in the original).

Stages (``network_g: fix_bimnet``):

* ``fix_bimnet: false`` (the original's ``config_joint``): BIMNet and the deblurring network
  train together; loss ``pixel_opt`` plus ``flow_loss_weight`` x the blur-invariant loss: the
  sharp previous frame warped by BIMNet's flows from each of (blurry, sharp) current frame to
  each of (blurry, sharp) previous frame must match the sharp current frame (squared error
  summed inside the warped frame's valid area, divided by that area, mean over the 4 pairs);
* ``fix_bimnet: true`` (``config_PVDNet``, the final model): BIMNet's weights are loaded from
  ``path: pretrain_network_bimnet`` (a stage-1 ``net_g`` checkpoint or a BIMNet state dict) and
  kept fixed; loss ``pixel_opt`` only.

Test: recurrent over whole videos (:meth:`PVDNet.forward_video`). Data: ``lq``/``gt`` ``[B, T, 3, H, W]``.
``path: pretrain_network_original`` loads a checkpoint of the public code (e.g. its released
``PVDNet_DVD.pytorch``), converted by :func:`convert_original_state_dict`, after ``pretrain_network_g``.
"""
from collections import OrderedDict

import torch

from basicsr.archs.arch_util import flow_warp
from basicsr.models.video_base_model import VideoBaseModel
from basicsr.utils import get_root_logger
from basicsr.utils.registry import MODEL_REGISTRY

from basicsr_vdd.archs.pvdnet_arch import convert_original_state_dict
from basicsr_vdd.file_io import safe_torch_load
from .stfan_model import STFANModel


def blur_invariant_loss(gt_prev, gt_curr, flows):
    """Mean over ``flows`` (each ``[B, 2, H, W]``, current -> previous) of the masked warping error.

    Per flow: ``sum((warp(gt_prev) - gt_curr * mask)^2) / sum(mask)`` with ``mask = warp(ones)``,
    frames in [0, 1], as the original.
    """
    losses = []
    for flow in flows:
        grid = flow.permute(0, 2, 3, 1)
        warped = flow_warp(gt_prev, grid)
        with torch.no_grad():
            mask = flow_warp(torch.ones_like(gt_prev), grid)
        losses.append((warped - gt_curr * mask).pow(2).sum() / mask.sum().clamp_min(1e-8))
    return sum(losses) / len(losses)


def _plain_state_dict(ckpt):
    """The state dict inside a checkpoint: BasicSR's ``params_ema``/``params``, or the file itself."""
    return ckpt.get('params_ema', ckpt.get('params', ckpt)) if isinstance(ckpt, dict) else ckpt


def load_bimnet(net, path):
    """Load BIMNet's weights into ``net.bimnet`` from a PVDNet ``net_g`` checkpoint or a BIMNet state dict."""
    state = _plain_state_dict(safe_torch_load(path))
    state = {k[len('module.'):] if k.startswith('module.') else k: v for k, v in state.items()}
    if any(k.startswith('bimnet.') for k in state):
        state = {k[len('bimnet.'):]: v for k, v in state.items() if k.startswith('bimnet.')}
    net.bimnet.load_state_dict(state, strict=True)


@MODEL_REGISTRY.register()
class PVDNetModel(VideoBaseModel):

    def __init__(self, opt):
        super().__init__(opt)
        if not self.is_train:
            self._load_original()

    def _load_original(self):
        path = self.opt['path'].get('pretrain_network_original')
        if path:
            state = convert_original_state_dict(_plain_state_dict(safe_torch_load(path)))
            self.get_bare_model(self.net_g).load_state_dict(state, strict=True)
            get_root_logger().info(f'Loaded the original PVDNet checkpoint {path}')

    def init_training_settings(self):
        train_opt = self.opt['train']
        bare = self.get_bare_model(self.net_g)
        self._load_original()
        load_path = self.opt['path'].get('pretrain_network_bimnet')
        logger = get_root_logger()
        if load_path:
            load_bimnet(bare, load_path)
            logger.info(f'Loaded BIMNet from {load_path}')
        self.joint = any(p.requires_grad for p in bare.bimnet.parameters())
        if not self.joint and not load_path and not self.opt['path'].get('pretrain_network_g'):
            logger.warning('BIMNet is fixed but no weights were loaded for it (path: pretrain_network_bimnet)')
        self.flow_loss_weight = train_opt.get('flow_loss_weight', 1.0)
        self.grad_clip = train_opt.get('grad_clip')
        super().init_training_settings()

    def optimize_parameters(self, current_iter):
        lq, gt = self.lq, self.gt
        frames = lq.shape[1]
        if frames < 3:
            raise ValueError(f'PVDNet trains on clips of at least 3 frames, got {frames} (num_frame)')
        deblurred, totals = lq[:, 0], OrderedDict()
        for t in range(1, frames - 1):
            self.optimizer_g.zero_grad()
            pairs = [(gt[:, t], lq[:, t - 1]), (lq[:, t], gt[:, t - 1]), (gt[:, t], gt[:, t - 1])] if self.joint else []
            out, flows = self.net_g(lq[:, t - 1], lq[:, t], lq[:, t + 1], deblurred, flow_pairs=pairs)
            losses = OrderedDict(l_pix=self.cri_pix(out, gt[:, t]))
            if self.joint:
                losses['l_flow'] = self.flow_loss_weight * blur_invariant_loss(gt[:, t - 1], gt[:, t], flows)
            sum(losses.values()).backward()
            if self.grad_clip:
                torch.nn.utils.clip_grad_norm_(self.net_g.parameters(), self.grad_clip)
            self.optimizer_g.step()
            for k, v in losses.items():
                totals[k] = totals.get(k, 0) + v.detach() / (frames - 2)
            deblurred = out.detach()
        self.log_dict = self.reduce_loss_dict(totals)
        if self.ema_decay > 0:
            self.model_ema(decay=self.ema_decay)

    test = STFANModel.test  # the same: the (EMA) network's forward_video over whole videos
