"""Exponential moving average of the parameters a stage trains (not a full copy of the network).

BasicSR's ``model_ema`` keeps a second copy of the whole network; for VDD that would double 1.4 B
frozen parameters. This keeps shadows only of ``requires_grad`` parameters, by name.

The decay warms up as diffusers' ``EMAModel`` does: update ``n`` (1, 2, ...) uses
``min(decay, (1 + n) / (10 + n))``, so the average forgets the starting weights within a few hundred
updates instead of ``1 / (1 - decay)`` (with a fixed 0.999, 37 % of the weights after 1000 updates
would still be the initial ones).
"""
import torch


class ParameterEMA:
    """EMA shadows ``{name: tensor}`` of the trainable parameters of ``net``."""

    def __init__(self, net, decay, warmup=True):
        self.decay, self.warmup, self.num_updates = float(decay), bool(warmup), 0
        self.shadow = {n: p.detach().clone().float() for n, p in net.named_parameters() if p.requires_grad}

    def current_decay(self):
        """The decay of the next update."""
        n = self.num_updates + 1
        return min(self.decay, (1 + n) / (10 + n)) if self.warmup else self.decay

    @torch.no_grad()
    def update(self, net):
        weight = 1.0 - self.current_decay()
        self.num_updates += 1
        pairs = [(self.shadow[name], p.detach().float()) for name, p in net.named_parameters() if name in self.shadow]
        if pairs:  # one fused kernel per dtype and device, not one per tensor
            shadows, params = zip(*pairs)
            torch._foreach_lerp_(list(shadows), list(params), weight)

    @torch.no_grad()
    def swap(self, net):
        """Exchange the network's trainable weights with the shadows (call twice to undo)."""
        for name, p in net.named_parameters():
            if name in self.shadow:
                tmp = p.detach().clone()
                p.copy_(self.shadow[name].to(p.dtype))
                self.shadow[name].copy_(tmp.float())

    def state_dict(self):
        return {'decay': self.decay, 'warmup': self.warmup, 'num_updates': self.num_updates,
                'shadow': {n: t.cpu() for n, t in self.shadow.items()}}

    def load_state_dict(self, state):
        missing = set(self.shadow) - set(state['shadow'])
        if missing:
            raise KeyError(f'EMA state lacks {len(missing)} trainable parameters, e.g. {sorted(missing)[:3]}')
        self.decay = state['decay']
        # states saved before the warmup existed: a fixed decay, as they were trained
        self.warmup, self.num_updates = state.get('warmup', False), state.get('num_updates', 0)
        for name in self.shadow:
            self.shadow[name].copy_(state['shadow'][name])
