"""The blur encoder ("image encoder 2"): a trainable copy of the VAE encoder + a zero-initialised projection.

Every blurry frame is encoded; the projection maps the encoder's output (8 posterior moments for
the KL VAE, the unshuffled pixels for the demo autoencoder) into TF-T2V's 8-channel concat slot.
Its last conv is zero-initialised, so at initialisation the VDD network is exactly the
pretrained text-to-video UNet whatever the blurry input.
"""
from torch import nn

from .autoencoder import per_frame


class BlurEncoder(nn.Module):
    """``forward(blur [B, 3, F, H, W] in [-1, 1]) -> concat features [B, out_channels, F, h, w]``.

    ``hidden``: widths of extra 3x3 conv + SiLU layers before the final (zero-initialised) conv.
    """

    def __init__(self, encoder, in_channels, out_channels=8, hidden=(), chunk_frames=8):
        super().__init__()
        self.encoder = encoder
        layers, ch = [], in_channels
        for width in hidden:
            layers += [nn.Conv2d(ch, width, 3, padding=1), nn.SiLU()]
            ch = width
        last = nn.Conv2d(ch, out_channels, 3, padding=1)
        nn.init.zeros_(last.weight)
        nn.init.zeros_(last.bias)
        self.proj = nn.Sequential(*layers, last)
        self.chunk_frames = chunk_frames

    def forward(self, blur):
        return per_frame(lambda x: self.proj(self.encoder(x)), blur, self.chunk_frames)
