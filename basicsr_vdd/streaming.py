"""Every demo method over a stream of frames, for ``scripts/deblur_video.py``: bounded memory.

A *deblurrer* is built from any test option file of this project (``model_type``: VDDModel,
EDVRModel, STFANModel, SRNModel) and turns an iterator of frames ``[1, 3, H, W]`` in [0, 1] into
an iterator of deblurred frames, holding only what the method needs:

* VDD: one temporal window and its overlap (:meth:`VDDDiffusion.deblur_stream`);
* EDVR: the ``num_frame`` neighbours of the current frame (BasicSR's ``generate_frame_indices``
  padding at the ends, as in the frame-mode test dataset);
* STFAN: the previous blurry and restored frame and the recurrent state;
* SRN: the current frame.
"""
import collections

import torch
import torch.nn.functional as F
import yaml

from basicsr_vdd.archs.checkpoint_io import load_strict, read_state_dict


def _pad4(frame, multiple=4):
    h, w = frame.shape[-2:]
    return F.pad(frame, (0, (-w) % multiple, 0, (-h) % multiple), mode='replicate'), (h, w)


def _load_network(opt, checkpoint, device):
    import basicsr_vdd  # noqa: F401  (registration)
    from basicsr.archs import build_network

    net = build_network(dict(opt['network_g']))
    path = checkpoint or (opt.get('path') or {}).get('pretrain_network_g')
    if not path:
        raise ValueError('no checkpoint: give --checkpoint or path: pretrain_network_g in the option file')
    key = (opt.get('path') or {}).get('param_key_g', 'params')
    load_strict(net, read_state_dict(path, unwrap=(key, 'params', 'state_dict')), path)
    return net.to(device).eval()


def edvr_frames(net, frames, num_frames, num_frame, padding='reflection_circle', device='cpu'):
    """EDVR on a stream: output frame i from the ``num_frame`` neighbours BasicSR's test uses."""
    from basicsr.data.data_util import generate_frame_indices
    buffer, source, read = {}, iter(frames), 0
    for i in range(num_frames):
        # clamped like the frame-mode test dataset (BasicSR's padding can point past short videos' ends)
        needed = [min(max(k, 0), num_frames - 1) for k in generate_frame_indices(i, num_frames, num_frame, padding)]
        while read <= max(needed):
            buffer[read] = next(source).to(device)
            read += 1
        # EDVR needs multiples of 16 (hr_in) or 4: replicate-padded, cropped back
        clip, (h, w) = _pad4(torch.stack([buffer[j] for j in needed], 1).flatten(0, 1), 16 if net.hr_in else 4)
        yield net(clip.unsqueeze(0))[..., :h, :w]
        for j in [j for j in buffer if j < i - num_frame]:  # the padding never looks further back
            del buffer[j]


def stfan_frames(net, frames, device='cpu'):
    """STFAN on a stream, step for step as ``forward_video``: state carried across frames."""
    blur_prev = restored_prev = state = None
    for frame in frames:
        blur, (h, w) = _pad4(frame.to(device))
        if blur_prev is None:
            blur_prev = restored_prev = blur
        out, state = net(blur, blur_prev, restored_prev, state)
        blur_prev, restored_prev = blur, out.clamp(0, 1)
        yield out[..., :h, :w]


def srn_frames(net, frames, device='cpu'):
    """SRN on a stream: one frame at a time."""
    for frame in frames:
        yield net(frame.to(device))


Deblurrer = collections.namedtuple('Deblurrer', 'name run')  # run(frames, num_frames, video_name) -> frames


def build_deblurrer(option_file, checkpoint=None, device='cpu', sampling_overrides=None):
    """A :class:`Deblurrer` for any test option file of this project."""
    with open(option_file) as f:
        opt = yaml.safe_load(f)
    kind = opt.get('model_type')
    device = torch.device(device)
    if kind == 'VDDModel':
        from basicsr_vdd.inference import load_vdd
        if not (checkpoint or (opt.get('path') or {}).get('pretrain_network_g')):  # a random network: noise
            raise ValueError('no checkpoint: give --checkpoint or path: pretrain_network_g in the option file')
        from basicsr_vdd.vdd_diffusion import check_sampling
        net, diffusion, sampling = load_vdd(option_file, checkpoint, device)
        sampling.update(sampling_overrides or {})
        check_sampling(sampling)
        return Deblurrer('VDD', lambda frames, n, name: diffusion.deblur_stream(net, frames, n, sampling, name,
                                                                              device))
    if sampling_overrides:
        raise ValueError(f'sampling options {sorted(sampling_overrides)} apply to VDD only ({option_file} tests '
                         f'{kind})')
    net = _load_network(opt, checkpoint, device)
    if kind == 'EDVRModel':
        datasets = opt.get('datasets') or {}
        test = datasets.get('test') or next(iter(datasets.values()), {})
        num_frame = int(opt['network_g'].get('num_frame', test.get('num_frame', 5)))
        padding = test.get('padding', 'reflection_circle')
        return Deblurrer('EDVR', lambda frames, n, name: edvr_frames(net, frames, n, num_frame, padding, device))
    if kind == 'STFANModel':
        return Deblurrer('STFAN', lambda frames, n, name: stfan_frames(net, frames, device))
    if kind == 'SRNModel':
        return Deblurrer('SRN', lambda frames, n, name: srn_frames(net, frames, device))
    raise ValueError(f'{option_file}: model_type {kind!r} has no streaming deblurrer '
                     '(VDDModel, EDVRModel, STFANModel, SRNModel)')
