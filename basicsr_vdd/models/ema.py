"""Exponential moving average of the parameters a stage trains (not a full copy of the network).

BasicSR's ``model_ema`` keeps a second copy of the whole network; for VDD that would double 1.4 B
frozen parameters. This keeps shadows only of ``requires_grad`` parameters, by name.
"""
import torch


class ParameterEMA:
    """EMA shadows ``{name: tensor}`` of the trainable parameters of ``net``."""

    def __init__(self, net, decay):
        self.decay = float(decay)
        self.shadow = {n: p.detach().clone().float() for n, p in net.named_parameters() if p.requires_grad}

    @torch.no_grad()
    def update(self, net):
        for name, p in net.named_parameters():
            if name in self.shadow:
                self.shadow[name].lerp_(p.detach().float(), 1.0 - self.decay)

    @torch.no_grad()
    def swap(self, net):
        """Exchange the network's trainable weights with the shadows (call twice to undo)."""
        for name, p in net.named_parameters():
            if name in self.shadow:
                tmp = p.detach().clone()
                p.copy_(self.shadow[name].to(p.dtype))
                self.shadow[name].copy_(tmp.float())

    def state_dict(self):
        return {'decay': self.decay, 'shadow': {n: t.cpu() for n, t in self.shadow.items()}}

    def load_state_dict(self, state):
        missing = set(self.shadow) - set(state['shadow'])
        if missing:
            raise KeyError(f'EMA state lacks {len(missing)} trainable parameters, e.g. {sorted(missing)[:3]}')
        self.decay = state['decay']
        for name in self.shadow:
            self.shadow[name].copy_(state['shadow'][name])
