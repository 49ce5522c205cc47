"""Frozen open_clip image tower ("image encoder 1"): central blurry frame -> embedding ``[B, 1, D]``.

TF-T2V preprocessing (VGen ``vit_transforms``): resize to the tower's size (224 x 224), CLIP mean/std. Only the
visual tower is built (``open_clip``'s own builder with the named model's config), so the 1 B
parameter text tower of ViT-H-14 is never instantiated. Weights come from the full open_clip
file (``open_clip_pytorch_model.bin``, keys ``visual.*``) or a visual-only file; nothing is
downloaded. ``vision_cfg`` builds a custom (e.g. tiny) tower: with ``pretrained: ~`` its weights
are random but fixed by ``seed`` — the CPU demo uses that, and says so.
"""
import torch
import torch.nn.functional as F
from torch import nn

from .checkpoint_io import load_strict, read_state_dict

CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)


class CLIPImageEncoder(nn.Module):
    """Frozen open_clip visual tower; ``forward(frames [B, 3, H, W] in [-1, 1]) -> [B, 1, embed_dim]``."""

    def __init__(self, model='ViT-H-14', pretrained=None, embed_dim=None, vision_cfg=None, seed=0):
        super().__init__()
        import open_clip
        from open_clip.model import _build_vision_tower

        cfg = open_clip.get_model_config(model) if vision_cfg is None else None
        if vision_cfg is None and cfg is None:
            raise ValueError(f'open_clip has no model config named {model!r}')
        self.embed_dim = embed_dim or cfg['embed_dim']
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            self.visual = _build_vision_tower(self.embed_dim, vision_cfg or cfg['vision_cfg'])
        self.image_size = (vision_cfg or cfg['vision_cfg'])['image_size']  # 224 for ViT-H-14
        self.register_buffer('mean', torch.tensor(CLIP_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer('std', torch.tensor(CLIP_STD).view(1, 3, 1, 1), persistent=False)
        if pretrained:
            state = read_state_dict(pretrained)
            visual = {k[len('visual.'):]: v for k, v in state.items() if k.startswith('visual.')}
            load_strict(self.visual, visual or state, pretrained)
        self.requires_grad_(False)
        self.eval()

    def train(self, mode=True):  # frozen: always in eval mode
        return super().train(False)

    @torch.no_grad()
    def forward(self, frames):
        x = (frames.float() + 1) / 2
        x = F.interpolate(x, size=(self.image_size, self.image_size), mode='bilinear', align_corners=False,
                          antialias=True)
        x = (x - self.mean.float()) / self.std.float()
        return self.visual(x.to(self.mean.dtype)).float().unsqueeze(1)
