"""Every method over a stream of frames, for ``scripts/deblur_video.py``: bounded memory.

A *deblurrer* is built from any test option file of this project and turns an iterator of frames
``[1, 3, H, W]`` in [0, 1] into an iterator of deblurred frames, holding only what the method needs.
Which code streams a method is looked up by the option file's ``model_type`` in :data:`STREAMERS`
(filled by :func:`streams`):

* ``VDDModel``: one temporal window and its overlap (:meth:`VDDDiffusion.deblur_stream`);
* ``EDVRModel``: the ``num_frame`` neighbours of the current frame (BasicSR's ``generate_frame_indices``
  padding at the ends, as in the frame-mode test dataset);
* ``STFANModel``: the previous blurry and restored frame and the recurrent state;
* ``PVDNetModel``: the previous, current and next blurry frame and the previous deblurred one;
* ``SRNModel``, and ``VideoBaseModel`` tested frame by frame (``num_frame: 1``, e.g. NAFNet): the
  current frame.
"""
import collections

import torch

from basicsr_vdd.archs.checkpoint_io import load_strict, read_state_dict
from basicsr_vdd.file_io import read_options
from basicsr_vdd.pipelines.video_windows import pad_to_multiple

Deblurrer = collections.namedtuple('Deblurrer', 'name run')  # run(frames, num_frames, video_name) -> frames
STREAMERS = {}  # model_type -> build(opt, checkpoint, device, sampling_overrides) -> Deblurrer


def streams(*model_types):
    """Register ``build(opt, checkpoint, device, sampling_overrides) -> Deblurrer`` for ``model_types``."""
    def register(build):
        for kind in model_types:
            STREAMERS[kind] = build
        return build
    return register


def network_streamer(*model_types):
    """Register ``stream(net, opt, device) -> run`` for methods without sampling options: the network is
    built from ``network_g`` and loaded strictly from the checkpoint first."""
    def register(stream):
        def build(opt, checkpoint, device, sampling_overrides):
            if sampling_overrides:
                raise ValueError(f'sampling options {sorted(sampling_overrides)} apply to VDD only (the option '
                                 f'file tests {opt.get("model_type")})')
            net = load_network(opt, checkpoint, device)
            return Deblurrer(opt['network_g']['type'], stream(net, opt, device))
        streams(*model_types)(build)
        return stream
    return register


def checkpoint_path(opt, checkpoint):
    """``checkpoint``, else ``path: pretrain_network_g``; ValueError when neither is given (a random
    network would only write noise)."""
    path = checkpoint or (opt.get('path') or {}).get('pretrain_network_g')
    if not path:
        raise ValueError('no checkpoint: give --checkpoint or path: pretrain_network_g in the option file')
    return path


def load_network(opt, checkpoint, device):
    """``network_g`` of ``opt`` with the weights of ``checkpoint`` (else ``path: pretrain_network_g``), eval."""
    import basicsr_vdd  # noqa: F401  (registration)
    from basicsr.archs import build_network

    net = build_network(dict(opt['network_g']))
    path = checkpoint_path(opt, checkpoint)
    key = (opt.get('path') or {}).get('param_key_g', 'params')
    load_strict(net, read_state_dict(path, unwrap=(key, 'params', 'state_dict')), path)
    return net.to(device).eval()


def _test_dataset(opt):
    datasets = opt.get('datasets') or {}
    return datasets.get('test') or next(iter(datasets.values()), None) or {}


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
        clip, (h, w) = pad_to_multiple(torch.stack([buffer[j] for j in needed], 1), 16 if net.hr_in else 4,
                                       mode='replicate')
        yield net(clip)[..., :h, :w]
        for j in [j for j in buffer if j < i - num_frame]:  # the padding never looks further back
            del buffer[j]


def stfan_frames(net, frames, device='cpu'):
    """STFAN on a stream, step for step as ``forward_video``: state carried across frames."""
    blur_prev = restored_prev = state = None
    for frame in frames:
        blur, (h, w) = pad_to_multiple(frame.to(device), 4, mode='replicate')
        if blur_prev is None:
            blur_prev = restored_prev = blur
        out, state = net(blur, blur_prev, restored_prev, state)
        blur_prev, restored_prev = blur, out.clamp(0, 1)
        yield out[..., :h, :w]


def pvdnet_frames(net, frames, device='cpu'):
    """PVDNet on a stream, step for step as ``forward_video``: neighbours clamped at the ends, the first
    frame's previous deblurred frame is the first blurry frame."""
    padded = (pad_to_multiple(frame.to(device), 4, mode='replicate') for frame in frames)  # each frame once
    current, previous, deblurred = next(padded, None), None, None
    while current is not None:
        (frame, (h, w)), upcoming = current, next(padded, None)
        following = frame if upcoming is None else upcoming[0]
        if deblurred is None:
            previous = deblurred = frame
        deblurred = net(previous, frame, following, deblurred)
        yield deblurred[..., :h, :w]
        previous, current = frame, upcoming


def single_frames(net, frames, device='cpu'):
    """An image network on a stream: one frame at a time (it pads to its own multiple)."""
    for frame in frames:
        yield net(frame.to(device))


@network_streamer('EDVRModel')
def _edvr(net, opt, device):
    test = _test_dataset(opt)
    num_frame = int(opt['network_g'].get('num_frame', test.get('num_frame', 5)))
    padding = test.get('padding', 'reflection_circle')
    return lambda frames, n, name: edvr_frames(net, frames, n, num_frame, padding, device)


@network_streamer('STFANModel')
def _stfan(net, opt, device):
    return lambda frames, n, name: stfan_frames(net, frames, device)


@network_streamer('PVDNetModel')
def _pvdnet(net, opt, device):
    return lambda frames, n, name: pvdnet_frames(net, frames, device)


@network_streamer('SRNModel', 'VideoBaseModel')
def _single(net, opt, device):
    num_frame = _test_dataset(opt).get('num_frame', 1)
    if opt['model_type'] == 'VideoBaseModel' and num_frame != 1:
        raise ValueError(f'VideoBaseModel streams image networks tested frame by frame (datasets: test: '
                         f'num_frame: 1), this option file has num_frame: {num_frame}')
    return lambda frames, n, name: single_frames(net, frames, device)


@streams('VDDModel')
def _vdd(opt, checkpoint, device, sampling_overrides):
    from basicsr_vdd.pipelines.inference import load_vdd
    from basicsr_vdd.pipelines.vdd_diffusion import check_sampling
    net, diffusion, sampling = load_vdd(opt, checkpoint_path(opt, checkpoint), device)
    sampling.update(sampling_overrides or {})
    check_sampling(sampling)
    return Deblurrer('VDD', lambda frames, n, name: diffusion.deblur_stream(net, frames, n, sampling, name, device))


def build_deblurrer(opt, checkpoint=None, device='cpu', sampling_overrides=None):
    """A :class:`Deblurrer` for a test option file (a path or its options read by ``file_io.read_options``)."""
    if isinstance(opt, str):
        opt = read_options(opt)
    kind = opt.get('model_type')
    if kind not in STREAMERS:
        raise ValueError(f'model_type {kind!r} has no streaming deblurrer ({", ".join(sorted(STREAMERS))})')
    return STREAMERS[kind](opt, checkpoint, torch.device(device), sampling_overrides)
