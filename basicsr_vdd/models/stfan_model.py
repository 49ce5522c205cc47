"""STFAN in BasicSR: recurrent training on clips, recurrent test over whole videos.

As the original: every frame of a training clip is one optimisation step (``step_per_frame``,
default true), the restored frame and features fed forward are detached, the first frame uses
itself as previous frame. Loss: ``pixel_opt`` (MSE in the original) plus optional
``perceptual_opt`` (the original adds 0.01 x VGG19 perceptual; BasicSR's ``PerceptualLoss`` needs
torchvision's VGG19 weights). Data: ``lq``/``gt`` ``[B, T, 3, H, W]``; test with ``mode: video``.
"""
from collections import OrderedDict

import torch

from basicsr.models.video_base_model import VideoBaseModel
from basicsr.utils.registry import MODEL_REGISTRY


@MODEL_REGISTRY.register()
class STFANModel(VideoBaseModel):

    def optimize_parameters(self, current_iter):
        net = self.net_g
        step_per_frame = self.opt['train'].get('step_per_frame', True)
        frames = self.lq.shape[1]
        blur_prev, restored_prev, state = self.lq[:, 0], self.lq[:, 0], None
        totals = OrderedDict()
        if not step_per_frame:
            self.optimizer_g.zero_grad()
        for t in range(frames):
            if step_per_frame:
                self.optimizer_g.zero_grad()
            out, state = net(self.lq[:, t], blur_prev, restored_prev, state)
            losses = self._frame_losses(out, self.gt[:, t])
            loss = sum(losses.values())
            (loss if step_per_frame else loss / frames).backward()
            if step_per_frame:
                self.optimizer_g.step()
            for k, v in losses.items():
                totals[k] = totals.get(k, 0) + v.detach() / frames
            blur_prev, restored_prev, state = self.lq[:, t], out.detach().clamp(0, 1), state.detach()
        if not step_per_frame:
            self.optimizer_g.step()
        self.log_dict = self.reduce_loss_dict(totals)
        if self.ema_decay > 0:
            self.model_ema(decay=self.ema_decay)

    def _frame_losses(self, out, gt):
        losses = OrderedDict()
        if self.cri_pix:
            losses['l_pix'] = self.cri_pix(out, gt)
        if self.cri_perceptual:
            percep, style = self.cri_perceptual(out, gt)
            if percep is not None:
                losses['l_percep'] = percep
            if style is not None:
                losses['l_style'] = style
        return losses

    def test(self):
        net = self.net_g_ema if hasattr(self, 'net_g_ema') else self.net_g
        net.eval()
        with torch.no_grad():
            self.output = self.get_bare_model(net).forward_video(self.lq)
        self.net_g.train()
