"""Deblur your own videos with a trained VDD: load from a test option file, read/write frames or video files.

Used by ``scripts/deblur_video.py``. A video is a folder of frames (png/jpg, natural order) or a
file PyAV can decode (mp4, mkv, avi, mpg, ...). Any length (temporal windows with blended
overlaps) and any size (padded to the network's multiple; ``vae: tiling: true`` bounds the VAE's
memory on large frames).
"""
import os
import os.path as osp
import shutil

import numpy as np
import torch
import yaml

from basicsr_vdd.data.video_io import VideoDataError, list_frames, read_frame
from basicsr_vdd.models.stage_checkpoint import checkpoint_state, load_part_state_dict, read_checkpoint
from basicsr_vdd.vdd_diffusion import VDDDiffusion

VIDEO_EXTENSIONS = ('.mp4', '.mkv', '.avi', '.mov', '.mpg', '.mpeg', '.webm')


def load_vdd(option_file, checkpoint=None, device='cpu', param_key=None):
    """``(net, diffusion, sampling)`` from a VDD test option file (network_g, diffusion, sampling, path)."""
    import basicsr_vdd  # noqa: F401  (registration)
    from basicsr.archs import build_network

    with open(option_file) as f:
        opt = yaml.safe_load(f)
    net = build_network(opt['network_g'])
    path = checkpoint or opt['path'].get('pretrain_network_g')
    diffusion = VDDDiffusion(**opt.get('diffusion', {}))
    if path:
        ckpt = read_checkpoint(path)
        state, _ = checkpoint_state(ckpt, param_key or opt['path'].get('param_key_g', 'params'))
        load_part_state_dict(net, state, ckpt['parts'], path)
        diffusion.load_meta(ckpt.get('meta', {}), source=path)
    return net.to(device).eval(), diffusion, dict(opt.get('sampling', {}))


def read_video(path):
    """Frames ``[N, 3, H, W]`` float32 RGB in [0, 1], plus the frame rate (None for folders)."""
    if osp.isdir(path):
        return torch.from_numpy(np.stack([read_frame(p) for p in list_frames(path)]).transpose(0, 3, 1, 2)), None
    if not osp.isfile(path):
        raise VideoDataError(f'{path}: no such video file or frame folder')
    import av
    try:
        with av.open(path) as container:
            stream = container.streams.video[0]
            fps = float(stream.average_rate) if stream.average_rate else None
            frames = [f.to_ndarray(format='rgb24') for f in container.decode(stream)]
    except (av.error.FFmpegError, IndexError) as err:
        raise VideoDataError(f'{path}: cannot decode video ({err})') from err
    if not frames:
        raise VideoDataError(f'{path}: no video frames')
    return torch.from_numpy(np.stack(frames).transpose(0, 3, 1, 2)).float() / 255, fps


class VideoSource:
    """Frames of a folder or a video file, decoded one at a time: ``len()``, ``fps`` (None for folders),
    ``size`` (W, H) and iteration over ``[3, H, W]`` float32 RGB in [0, 1]. Frame names (folders)
    are kept in ``names`` for the output."""

    def __init__(self, path):
        self.path = path
        if osp.isdir(path):
            self.files = list_frames(path)
            self.names = [osp.splitext(osp.basename(p))[0] for p in self.files]
            self.fps = None
            h, w = read_frame(self.files[0]).shape[:2]
            self.size = (w, h)
            return
        if not osp.isfile(path):
            raise VideoDataError(f'{path}: no such video file or frame folder')
        import av
        self.files = None
        try:
            with av.open(path) as container:
                stream = container.streams.video[0]
                self.fps = float(stream.average_rate) if stream.average_rate else None
                self.size = (stream.codec_context.width, stream.codec_context.height)
                count = sum(1 for _ in container.demux(stream) if _.size)  # packets, no decoding
        except (av.error.FFmpegError, IndexError) as err:
            raise VideoDataError(f'{path}: cannot decode video ({err})') from err
        if not count:
            raise VideoDataError(f'{path}: no video frames')
        self.names = [f'{i:06d}' for i in range(count)]

    def __len__(self):
        return len(self.names)

    def __iter__(self):
        if self.files is not None:
            for p in self.files:
                frame = read_frame(p)
                if frame.shape[1::-1] != self.size:
                    raise VideoDataError(f'{p}: {frame.shape[1]}x{frame.shape[0]}, the first frame is '
                                         f'{self.size[0]}x{self.size[1]}')
                yield torch.from_numpy(frame.transpose(2, 0, 1).copy())
            return
        import av
        n = 0
        try:
            with av.open(self.path) as container:
                for frame in container.decode(container.streams.video[0]):
                    if n == len(self):
                        break
                    n += 1
                    yield torch.from_numpy(frame.to_ndarray(format='rgb24').transpose(2, 0, 1).copy()).float() / 255
        except av.error.FFmpegError as err:
            raise VideoDataError(f'{self.path}: cannot decode frame {n} ({err})') from err
        if n != len(self):
            raise VideoDataError(f'{self.path}: {len(self)} packets but {n} decodable frames')


class VideoSink:
    """Write frames ``[3, H, W]`` in [0, 1] one at a time to a frame folder (PNG, ``names``) or a
    video file (by extension; ``fps``, ``crf``: libx264 quality, 0 = lossless; None: mpeg4 at 20 Mb/s).
    Use as a context manager: everything goes to a temporary name, renamed on success, removed on error."""

    def __init__(self, path, fps=None, names=None, crf=None):
        self.path, self.fps, self.names, self.crf = path, fps, names, crf
        self.folder = not path.lower().endswith(VIDEO_EXTENSIONS)
        self.tmp = f'{path}.partial' if self.folder else f'{path}.partial{osp.splitext(path)[1]}'
        self.count, self.container, self.stream = 0, None, None

    def __enter__(self):
        if self.folder:
            os.makedirs(self.tmp)
        return self

    def write(self, frame):
        img = (frame.clamp(0, 1) * 255).round().byte().permute(1, 2, 0).cpu().numpy()
        if self.folder:
            import cv2
            name = self.names[self.count] if self.names else f'{self.count:06d}'
            if not cv2.imwrite(osp.join(self.tmp, f'{name}.png'), cv2.cvtColor(img, cv2.COLOR_RGB2BGR)):
                raise OSError(f'{self.tmp}: could not write frame {name}')
        else:
            if self.container is None:
                self._open(img.shape[1], img.shape[0])
            frame = av_frame(np.ascontiguousarray(img[:self.stream.height, :self.stream.width]))
            self.container.mux(self.stream.encode(frame))
        self.count += 1

    def _open(self, width, height):
        import av
        from fractions import Fraction
        self.container = av.open(self.tmp, 'w')
        rate = Fraction(self.fps or 24).limit_denominator(1001)
        if self.crf is None:
            self.stream = self.container.add_stream('mpeg4', rate=rate)
            self.stream.pix_fmt, self.stream.bit_rate = 'yuv420p', 20_000_000
        else:
            lossless = int(self.crf) == 0
            self.stream = self.container.add_stream('libx264rgb' if lossless else 'libx264', rate=rate)
            self.stream.pix_fmt = 'rgb24' if lossless else 'yuv420p'
            self.stream.options = {'crf': str(int(self.crf)), 'preset': 'medium'}
        even = self.stream.pix_fmt == 'yuv420p'
        self.stream.width, self.stream.height = (width - width % 2, height - height % 2) if even else (width, height)

    def __exit__(self, kind, value, traceback):
        try:
            if self.container is not None:
                if kind is None:
                    self.container.mux(self.stream.encode())
                self.container.close()
            if kind is None:
                _replace(self.tmp, self.path)
        finally:
            if osp.isdir(self.tmp):
                shutil.rmtree(self.tmp)
            elif osp.exists(self.tmp):
                os.remove(self.tmp)
        return False


def av_frame(rgb):
    import av
    return av.VideoFrame.from_ndarray(rgb, format='rgb24')


def write_video(frames, path, fps=None):
    """Write ``[N, 3, H, W]`` in [0, 1] as PNG frames (a folder) or a video file (by extension),
    through :class:`VideoSink`: nothing partial under ``path``."""
    with VideoSink(path, fps) as sink:
        for frame in frames:
            sink.write(frame)


def _replace(tmp, path):
    """Move the finished ``tmp`` to ``path``; an existing ``path`` is replaced only once ``tmp`` is complete."""
    if osp.isdir(path) and os.listdir(path):
        old = f'{path}.old-{os.getpid()}'
        os.rename(path, old)
        os.rename(tmp, path)
        shutil.rmtree(old)
    else:
        if osp.isdir(path):
            os.rmdir(path)
        os.replace(tmp, path)
