"""SRN-DeblurNet in BasicSR: frames of a clip are a batch of images; multi-scale loss as the original.

Loss: ``pixel_opt`` (MSE in the original) between the estimate of every scale and the ground
truth resized to it, summed over scales with equal weights. Test: frame by frame (``test_chunk``
frames at a time) over whole videos. Data: ``lq``/``gt`` ``[B, T, 3, H, W]``.
"""
from collections import OrderedDict

import torch
import torch.nn.functional as F

from basicsr.models.video_base_model import VideoBaseModel
from basicsr.utils.registry import MODEL_REGISTRY


@MODEL_REGISTRY.register()
class SRNModel(VideoBaseModel):

    def optimize_parameters(self, current_iter):
        self.optimizer_g.zero_grad()
        lq, gt = self.lq.flatten(0, 1), self.gt.flatten(0, 1)
        scales = self.net_g(lq, all_scales=True)
        losses = OrderedDict()
        losses['l_pix'] = sum(
            self.cri_pix(out, gt if out.shape[-2:] == gt.shape[-2:] else
                         F.interpolate(gt, size=out.shape[-2:], mode='bilinear', align_corners=False))
            for out in scales)
        losses['l_pix'].backward()
        self.optimizer_g.step()
        self.log_dict = self.reduce_loss_dict(losses)
        if self.ema_decay > 0:
            self.model_ema(decay=self.ema_decay)

    def test(self):
        net = self.net_g_ema if hasattr(self, 'net_g_ema') else self.net_g
        net.eval()
        chunk = self.opt['val'].get('test_chunk', 4)
        with torch.no_grad():
            frames = self.lq.flatten(0, 1)
            out = torch.cat([net(frames[i:i + chunk]) for i in range(0, frames.shape[0], chunk)])
            self.output = out.view(self.lq.shape)
        self.net_g.train()
