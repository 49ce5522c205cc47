"""Deblur your own videos with a trained VDD: load from a test option file, read/write frames or video files.

Used by ``scripts/deblur_video.py``. A video is a folder of frames (png/jpg, natural order), one
image file (a one-frame video) or a file PyAV can decode (mp4, mkv, avi, mpg, ...). Any length
(temporal windows with blended overlaps) and any size (padded to the network's multiple; ``vae:
tiling: true`` bounds the VAE's memory on large frames). Outputs are written by :class:`VideoSink`,
which never replaces what this tool did not write (:func:`check_output`).
"""
import hashlib
import json
import os
import os.path as osp
import shutil

import numpy as np
import torch

from basicsr_vdd import interrupts
from basicsr_vdd.data.video_io import IMAGE_EXTENSIONS, VideoDataError, list_frames, read_frame
from basicsr_vdd.file_io import atomic_write_text, read_options
from basicsr_vdd.models.stage_checkpoint import checkpoint_state, load_part_state_dict, read_checkpoint
from basicsr_vdd.pipelines.vdd_diffusion import VDDDiffusion

VIDEO_EXTENSIONS = ('.mp4', '.mkv', '.avi', '.mov', '.mpg', '.mpeg', '.webm')
WRITABLE_VIDEO = VIDEO_EXTENSIONS[:-1]  # webm takes neither mpeg4 nor libx264
MANIFEST = '.deblur_video.json'  # in a frame folder this tool wrote; next to a file: <file>.deblur_video.json


def load_vdd(opt, checkpoint=None, device='cpu', param_key=None):
    """``(net, diffusion, sampling)`` from a VDD test option file (its path, or its options as
    ``file_io.read_options`` reads them: network_g, diffusion, sampling, path)."""
    import basicsr_vdd  # noqa: F401  (registration)
    from basicsr.archs import build_network

    if isinstance(opt, str):
        opt = read_options(opt)
    net = build_network(opt['network_g'])
    path = checkpoint or (opt.get('path') or {}).get('pretrain_network_g')
    diffusion = VDDDiffusion(**opt.get('diffusion', {}))
    if path:
        ckpt = read_checkpoint(path)
        state, _ = checkpoint_state(ckpt, param_key or (opt.get('path') or {}).get('param_key_g', 'params'))
        load_part_state_dict(net, state, ckpt['parts'], path)
        diffusion.load_meta(ckpt.get('meta', {}), source=path)
    return net.to(device).eval(), diffusion, dict(opt.get('sampling', {}))


class VideoSource:
    """Frames of a folder, an image file or a video file, decoded one at a time: ``len()``, ``fps``
    (None for folders and images), ``size`` (W, H) and iteration over ``[3, H, W]`` float32 RGB in
    [0, 1]. Frame names (file stems of a folder or image) are kept in ``names`` for the output."""

    def __init__(self, path):
        self.path, self.fps = path, None
        if osp.isdir(path) or (osp.isfile(path) and path.lower().endswith(IMAGE_EXTENSIONS)):
            self.files = list_frames(path) if osp.isdir(path) else [path]
            self.names = [osp.splitext(osp.basename(p))[0] for p in self.files]
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


class OutputRefused(OSError):
    """Writing an output would replace or delete files this tool did not write; the message names them."""


def output_kind(path):
    """``'video'``, ``'image'`` or ``'folder'``, by the extension of ``path``."""
    ext = osp.splitext(path)[1].lower()
    return 'video' if ext in VIDEO_EXTENSIONS else 'image' if ext in IMAGE_EXTENSIONS else 'folder'


def partial_path(path):
    """The temporary name an output is written under: ``<path>.partial`` (+ the extension for files)."""
    return f'{path}.partial' if output_kind(path) == 'folder' else f'{path}.partial{osp.splitext(path)[1]}'


def manifest_path(path):
    """Where the manifest of output ``path`` lives: inside a folder, next to a file."""
    return osp.join(path, MANIFEST) if output_kind(path) == 'folder' else path + MANIFEST


def read_manifest(path):
    """``{file name: sha256}`` of the manifest file ``path``, or None when it is not one of this tool's."""
    try:
        with open(path) as f:
            manifest = json.load(f)
    except (OSError, ValueError):
        return None
    if not isinstance(manifest, dict) or manifest.get('written_by') != 'deblur_video':
        return None
    return manifest['files'] if isinstance(manifest.get('files'), dict) else None


def sha256(path):
    digest = hashlib.sha256()
    with open(path, 'rb') as f:
        for block in iter(lambda: f.read(1 << 20), b''):
            digest.update(block)
    return digest.hexdigest()


def foreign_content(path):
    """Why the existing output ``path`` is not exactly what this tool wrote there, or None: every file
    must be listed in its manifest with the same SHA-256 (a listed frame may be missing)."""
    files = read_manifest(manifest_path(path))
    if files is None:
        return f'has no manifest {manifest_path(path)} of deblur_video'
    folder = output_kind(path) == 'folder'
    for name in sorted(os.listdir(path)) if folder else [osp.basename(path)]:
        full = osp.join(path, name) if folder else path
        if name == MANIFEST and folder:
            continue
        if name not in files or osp.islink(full) or not osp.isfile(full):
            return f'holds {name}, which deblur_video did not write'
        if sha256(full) != files[name]:
            return f'{name} changed since deblur_video wrote it'
    return None


def check_replaceable(path, overwrite=False):
    """Raise :class:`OutputRefused` unless writing ``path`` replaces nothing, an empty folder or (with
    ``overwrite``) exactly an earlier output of this tool."""
    kind = output_kind(path)
    if not osp.lexists(path):
        return
    if osp.islink(path):
        raise OutputRefused(f'{path}: is a symbolic link; give the real path')
    if osp.isdir(path) != (kind == 'folder'):
        raise OutputRefused(f'{path}: exists and is {"a folder" if osp.isdir(path) else "a file"}; the output '
                            f'is {"a frame folder" if kind == "folder" else f"a {kind} file"}')
    if kind == 'folder' and not os.listdir(path):
        return
    if not overwrite:
        raise OutputRefused(f'{path}: exists{" and is not empty" if kind == "folder" else ""}; give --overwrite '
                            'to replace an earlier output of deblur_video, or another --output')
    reason = foreign_content(path)
    if reason:
        raise OutputRefused(f'{path}: {reason}; never replaced, even with --overwrite')


def check_output(path, overwrite=False):
    """Everything :class:`VideoSink` checks before writing ``path``; raises :class:`OutputRefused`."""
    tmp = partial_path(path)
    if osp.lexists(tmp):
        raise OutputRefused(f'{tmp}: exists: left by an interrupted run, or another deblur_video is writing '
                            f'{path} now; delete it if none is')
    side = manifest_path(path)
    if output_kind(path) != 'folder' and osp.lexists(side) and read_manifest(side) is None:
        raise OutputRefused(f'{side}: exists and is not a manifest of deblur_video; it would be replaced')
    check_replaceable(path, overwrite)


class VideoSink:
    """Write frames ``[3, H, W]`` in [0, 1] one at a time to a frame folder (PNG, ``names``), one image
    file or a video file (by extension; ``fps``, ``crf``: libx264 quality, 0 = lossless; None: mpeg4 at
    20 Mb/s; any size, odd ones too). Use as a context manager: everything goes to :func:`partial_path`,
    created exclusively, renamed on success, removed on any error or interruption. The manifest
    (``files``: name -> SHA-256) marks the output as this tool's, so that ``overwrite`` may replace it."""

    def __init__(self, path, fps=None, names=None, crf=None, overwrite=False):
        self.path = osp.normpath(path)
        self.fps, self.names, self.crf, self.overwrite = fps, names, crf, overwrite
        self.kind, self.tmp = output_kind(self.path), partial_path(self.path)
        self.count, self.container, self.stream, self.files = 0, None, None, {}

    def __enter__(self):
        check_output(self.path, self.overwrite)
        os.makedirs(osp.dirname(osp.abspath(self.tmp)), exist_ok=True)
        created = False
        try:  # a signal right after the creation must still remove it: __exit__ runs only once this returns
            with interrupts.deferred():
                self._create_tmp()
                created = True
        except BaseException:
            if created:
                self._remove_tmp()
            raise
        return self

    def _create_tmp(self):
        """Make the temporary output exclusively: never write into another run's."""
        try:
            if self.kind == 'folder':
                os.mkdir(self.tmp)
            else:
                os.close(os.open(self.tmp, os.O_CREAT | os.O_EXCL | os.O_WRONLY))
        except FileExistsError:
            raise OutputRefused(f'{self.tmp}: another deblur_video is writing {self.path} now') from None

    def write(self, frame):
        img = (frame.clamp(0, 1) * 255).round().byte().permute(1, 2, 0).cpu().numpy()
        if self.kind == 'video':
            if self.container is None:
                self._open(img.shape[1], img.shape[0])
            self.container.mux(self.stream.encode(av_frame(np.ascontiguousarray(img))))
        else:
            import cv2
            if self.kind == 'image' and self.count:
                raise ValueError(f'{self.path}: an image file holds one frame')
            name = osp.basename(self.path) if self.kind == 'image' else \
                f'{self.names[self.count] if self.names else f"{self.count:06d}"}.png'
            ok, data = cv2.imencode(osp.splitext(name)[1], cv2.cvtColor(img, cv2.COLOR_RGB2BGR))
            if not ok:
                raise OSError(f'{self.path}: could not encode frame {name}')
            with open(self.tmp if self.kind == 'image' else osp.join(self.tmp, name), 'wb') as f:
                f.write(data.tobytes())
            self.files[name] = hashlib.sha256(data.tobytes()).hexdigest()
        self.count += 1

    def _open(self, width, height):
        import av
        from fractions import Fraction
        self.container = av.open(self.tmp, 'w')
        rate = Fraction(self.fps or 24).limit_denominator(1001)
        if self.crf is None:  # FFmpeg's mpeg4 takes odd sizes in 4:2:0 (measured, PyAV 18.1: 1x1, 31x17)
            self.stream = self.container.add_stream('mpeg4', rate=rate)
            self.stream.pix_fmt, self.stream.bit_rate = 'yuv420p', 20_000_000
        else:
            lossless = int(self.crf) == 0
            self.stream = self.container.add_stream('libx264rgb' if lossless else 'libx264', rate=rate)
            # x264 takes 4:2:0 at even sizes only: odd sizes keep every pixel in 4:4:4
            self.stream.pix_fmt = 'rgb24' if lossless else 'yuv420p' if width % 2 == height % 2 == 0 else 'yuv444p'
            self.stream.options = {'crf': str(int(self.crf)), 'preset': 'medium'}
        self.stream.width, self.stream.height = width, height

    def __exit__(self, kind, value, traceback):
        try:
            if self.container is not None:
                if kind is None:
                    self.container.mux(self.stream.encode())
                self.container.close()
            if kind is None:
                self._install()
        finally:
            self._remove_tmp()
        return False

    def _remove_tmp(self):
        """Remove the temporary output whole: a Ctrl-C or SIGTERM meanwhile (often the user's second) is
        delivered once it is gone."""
        with interrupts.deferred():
            if osp.isdir(self.tmp):
                shutil.rmtree(self.tmp)
            elif osp.exists(self.tmp):
                os.remove(self.tmp)

    def _install(self):
        """Move the finished output to its name, with its manifest; checked again (the run may have taken hours)."""
        if self.kind == 'video':
            self.files[osp.basename(self.path)] = sha256(self.tmp)
        manifest = json.dumps({'written_by': 'deblur_video', 'files': self.files}, indent=1)
        check_replaceable(self.path, self.overwrite)
        if self.kind != 'folder':
            atomic_write_text(manifest, manifest_path(self.path))
            os.replace(self.tmp, self.path)
            return
        atomic_write_text(manifest, osp.join(self.tmp, MANIFEST))
        if osp.isdir(self.path) and os.listdir(self.path):  # an earlier output of this tool (checked)
            old = f'{self.path}.old-{os.getpid()}'
            os.rename(self.path, old)
            os.rename(self.tmp, self.path)
            shutil.rmtree(old)
        else:
            os.replace(self.tmp, self.path)  # over an empty folder or none


def av_frame(rgb):
    import av
    return av.VideoFrame.from_ndarray(rgb, format='rgb24')
