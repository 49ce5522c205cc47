"""VDD in BasicSR: stage-aware training of the video deblurring diffusion model, windowed sampling.

Options (beyond BasicSR's usual ``network_g``, ``path``, ``train``, ``val``, ``logger``)::

    diffusion:
      num_timesteps: 1000          # linear_sd schedule, zero terminal SNR (TF-T2V)
      offset_noise: 0.1
      target: sharp | residual     # residual: (z_sharp - z_blur) / residual_scale
      residual_scale: auto | float # auto: std of the first training batch's residual, kept in checkpoints
      p_uncond: 0.1                # CLIP image tokens dropped for classifier-free guidance
      timestep_sampling: ~         # ~ = {type: uniform}; {type: logit_normal, mean: 2.0, std: 1.0}
                                   # trains more on noisy steps (what few-step sampling uses);
                                   # + uniform_fraction: p, uniform_max: m: with probability p a
                                   # uniform U{0..m-1} step instead (m defaults to num_timesteps)
    sampling:
      sampler: ddim | dpmpp_2m | unipc
      spacing: leading | trailing  # leading: TF-T2V's timesteps; trailing: start at T - 1 (pure noise)
      steps: 50
      eta: 0.0
      guidance_scale: 1.0
      guidance_batched: true       # cond and uncond in one forward
      strength: 1.0                # < 1: start from the noised blur (target residual: zero residual)
      start_from: blur             # with strength < 1: noise the blur | mean (the one-step estimate)
      window: 16                   # frames per temporal window
      overlap: 4                   # frames shared by consecutive windows (blended)
      tile: 0                      # > 0: spatial tiles of this many pixels (multiple of the network's)
      tile_overlap: 0              # pixels shared by neighbouring tiles (blended)
      seed: 0
      autocast: ~                  # bf16 | fp16: the network calls of sampling in mixed precision
    train:
      stage: 0 | 1 | 2             # 0: video prior (UNet only, no blur path; demo stand-in for TF-T2V)
                                   # 1: blur encoder + projection; 2: also UNet and image projection
      optim_g: {type: AdamW, lr: 5e-5, betas: [0.9, 0.999], weight_decay: 0}
      v_opt: {type: MSELoss, loss_weight: 1.0}
      coherence_opt: {type: TemporalCoherenceLoss, loss_weight: 0.1}
      ema_decay: 0                 # > 0: EMA of the trained parameters, saved as params_ema
      ema_warmup: true             # decay min(ema_decay, (1 + n) / (10 + n)) at update n (diffusers' EMAModel)
      grad_clip: ~                 # max grad norm
      autocast: ~ | bf16 | fp16    # mixed precision (fp16 uses a GradScaler)
      frozen_dtype: ~ | bf16 | fp16  # hold the parts this stage neither trains nor saves in this dtype
                                   # (VAE, CLIP; stage 1 also UNet): less memory, same loss to ~1e-2
      gradient_checkpointing: false
      max_nonfinite_steps: 5       # steps with NaN/inf gradients are skipped; this many in a row stop training

Checkpoints: see :mod:`basicsr_vdd.models.stage_checkpoint` (only the parts training changed).
"""
import os.path as osp
from collections import OrderedDict
from contextlib import nullcontext

import torch

from basicsr.archs import build_network
from basicsr.losses import build_loss
from basicsr.models.base_model import BaseModel
from basicsr.utils import get_root_logger
from basicsr.utils.dist_util import get_dist_info
from basicsr.utils.registry import MODEL_REGISTRY

from basicsr_vdd.distributed import rank_states
from basicsr_vdd.file_io import atomic_torch_save
from basicsr_vdd.pipelines.vdd_diffusion import VDDDiffusion, check_sampling, low_precision_dtype, to_model_video
from .ema import ParameterEMA
from .stage_checkpoint import checkpoint_state, load_part_state_dict, part_state_dict, read_checkpoint

STAGE_PARTS = {0: ('unet', 'image_proj'), 1: ('blur_encoder',), 2: ('blur_encoder', 'unet', 'image_proj')}
TRAINABLE_PARTS = ('blur_encoder', 'unet', 'image_proj')


@MODEL_REGISTRY.register()
class VDDModel(BaseModel):
    """BasicSR wrapper of the VDD network: training step, stages, checkpoints, video test."""

    def __init__(self, opt):
        super().__init__(opt)
        net = build_network(opt['network_g'])
        if self.is_train:  # before DistributedDataParallel, which registers the parameters that train then
            self.select_trained_parts(net)
        self.net_g = self.model_to_device(net)
        self.diffusion = VDDDiffusion(**opt.get('diffusion', {}))
        self.sampling = dict(opt.get('sampling', {}))
        check_sampling(self.sampling)
        self.loaded_parts = ()
        self.ema = None
        load_path = opt['path'].get('pretrain_network_g')
        if load_path is not None:
            self.load_network(self.net_g, load_path, opt['path'].get('strict_load_g', True),
                              opt['path'].get('param_key_g', 'params'))
        if self.is_train:
            self.init_training_settings()
        else:
            self._set_modes(training=False)
        self.print_network(self.net_g)

    # ------------------------------------------------------------------ setup
    @property
    def bare(self):
        return self.get_bare_model(self.net_g)

    def select_trained_parts(self, net):
        """The stage's parts train (``requires_grad``), every other part is frozen. The image projection
        does not train without a CLIP tower (nothing feeds it: DDP would find it unused)."""
        self.stage = int(self.opt['train']['stage'])
        if self.stage not in STAGE_PARTS:
            raise ValueError(f'train: stage must be one of {sorted(STAGE_PARTS)}, got {self.stage}')
        if self.opt['num_gpu'] > 1 and not self.opt['dist']:
            raise ValueError(f'num_gpu: {self.opt["num_gpu"]} without a launcher would train VDD with DataParallel, '
                             f'which it does not support: run one process per GPU, torchrun --nproc_per_node='
                             f'{self.opt["num_gpu"]} basicsr_vdd/train.py -opt ... --launcher pytorch')
        self.trained_parts = tuple(p for p in STAGE_PARTS[self.stage]
                                   if not (p == 'image_proj' and net.clip_image is None))
        for name, module in net.named_children():
            module.requires_grad_(name in self.trained_parts)

    def init_training_settings(self):
        train_opt = self.opt['train']
        self._set_modes(training=True)
        if train_opt.get('gradient_checkpointing'):
            self.bare.set_gradient_checkpointing(True)
        self.cri_v = build_loss(train_opt.get('v_opt', {'type': 'MSELoss', 'loss_weight': 1.0})).to(self.device)
        coherence = train_opt.get('coherence_opt')
        self.cri_coherence = build_loss(coherence).to(self.device) if coherence else None
        self.setup_optimizers()
        self.setup_schedulers()
        if train_opt.get('ema_decay', 0) > 0:
            self.ema = ParameterEMA(self.bare, train_opt['ema_decay'], train_opt.get('ema_warmup', True))
        self.autocast_dtype = low_precision_dtype(train_opt.get('autocast'), 'train: autocast')
        self.hold_frozen_parts(low_precision_dtype(train_opt.get('frozen_dtype'), 'train: frozen_dtype'))
        use_scaler = self.autocast_dtype == torch.float16 and self.device.type == 'cuda'
        self.grad_scaler = torch.amp.GradScaler('cuda') if use_scaler else None
        self.generator = torch.Generator(self.device).manual_seed(self.opt['manual_seed'] + self.opt['rank'])

    def hold_frozen_parts(self, dtype):
        """Keep the parts this stage neither trains nor saves in ``dtype`` (None: as they are). They only
        run forward (the VAE and CLIP tower; in stage 1 also the UNet and image projection), so their
        fp32 weights and autocast's low-precision copies of them are replaced by one low-precision copy."""
        if dtype is None:
            return
        kept = set(self.trained_parts) | set(self.saved_parts())
        held = [name for name, _ in self.bare.named_children() if name not in kept]
        for name in held:  # nn.Module.to: diffusers' ModelMixin.to warns even when nothing must stay float32
            torch.nn.Module.to(getattr(self.bare, name), dtype)
        get_root_logger().info(f'Stage {self.stage}: {held} held in {dtype} (train: frozen_dtype)')

    def trainable_parameters(self):
        return [p for p in self.bare.parameters() if p.requires_grad]

    def setup_optimizers(self):
        optim_opt = dict(self.opt['train']['optim_g'])
        params = self.trainable_parameters()
        total = sum(p.numel() for p in self.bare.parameters())
        get_root_logger().info(f'Stage {self.stage}: training {list(self.trained_parts)}, '
                               f'{sum(p.numel() for p in params):,} of {total:,} parameters')
        self.optimizer_g = self.get_optimizer(optim_opt.pop('type'), params, **optim_opt)
        self.optimizers = [self.optimizer_g]

    def _set_modes(self, training):
        """Trained parts follow ``training``; frozen parts stay in eval mode (no dropout)."""
        self.net_g.train(training)
        trained = getattr(self, 'trained_parts', ()) if training else ()
        for name, module in self.bare.named_children():
            module.train(name in trained)

    # ------------------------------------------------------------------ data
    def feed_data(self, data):
        self.lq = data['lq'].to(self.device)
        if 'gt' in data:
            self.gt = data['gt'].to(self.device)
        self.folder = data.get('folder', '')
        if isinstance(self.folder, (list, tuple)):
            self.folder = self.folder[0]

    # ------------------------------------------------------------------ training
    def optimize_parameters(self, current_iter):
        blur, sharp = to_model_video(self.lq), to_model_video(self.gt)
        use_blur = self.stage >= 1
        with torch.no_grad():
            batch = self.diffusion.training_batch(self.bare, sharp, blur, self.generator, use_blur=use_blur)
        self.optimizer_g.zero_grad(set_to_none=True)
        autocast = (torch.autocast(self.device.type, dtype=self.autocast_dtype)
                    if self.autocast_dtype is not None else nullcontext())
        # dropout draws from the global RNG: seed it from our generator for this step only, so that a
        # resumed run repeats the same masks whatever else consumed global random numbers meanwhile
        dropout_seed = int(torch.randint(0, 2 ** 62, (1,), generator=self.generator, device=self.device))
        devices = [self.device] if self.device.type == 'cuda' else []
        with torch.random.fork_rng(devices=devices, device_type=self.device.type):
            torch.manual_seed(dropout_seed)
            with autocast:
                v_pred = self.net_g(batch['x_t'], batch['t'], blur=blur if use_blur else None,
                                    image_embedding=batch['image_embedding'], image_keep=batch['image_keep'])
            v_pred = v_pred.float()
            losses = OrderedDict(l_v=self.cri_v(v_pred, batch['v']))
            if self.cri_coherence is not None:
                losses['l_coherence'] = self.cri_coherence(v_pred, batch['v'])
            loss = sum(losses.values())
            if self.grad_scaler is not None:
                self.grad_scaler.scale(loss).backward()
                self.grad_scaler.unscale_(self.optimizer_g)
            else:
                loss.backward()
        if self.opt['train'].get('grad_clip'):
            torch.nn.utils.clip_grad_norm_(self.trainable_parameters(), self.opt['train']['grad_clip'])
        if self.grad_scaler is not None:
            scale = self.grad_scaler.get_scale()
            self.grad_scaler.step(self.optimizer_g)  # skips the optimizer on inf/NaN gradients
            self.grad_scaler.update()
            skipped = self.grad_scaler.get_scale() < scale  # it lowered the scale: the step was skipped
        else:
            self.optimizer_g.step()
            skipped = getattr(self.optimizer_g, 'last_step_skipped', False)
        if self.ema is not None and not skipped:
            self.ema.update(self.bare)
        losses['l_total'] = loss
        self.log_dict = self.reduce_loss_dict(losses)

    # ------------------------------------------------------------------ test
    @torch.no_grad()
    def test(self):
        """Deblur ``self.lq`` ``[1, N, C, H, W]`` in [0, 1] window by window into ``self.output``."""
        self._set_modes(training=False)
        if self.ema is not None:
            self.ema.swap(self.bare)
        try:
            self.output = self.diffusion.deblur_video(self.bare, self.lq, self.sampling, self.folder)
        finally:
            if self.ema is not None:
                self.ema.swap(self.bare)
            if self.is_train:
                self._set_modes(training=True)

    def get_current_visuals(self):
        out = OrderedDict(lq=self.lq.detach().cpu(), result=self.output.detach().cpu())
        if hasattr(self, 'gt'):
            out['gt'] = self.gt.detach().cpu()
        return out

    def validation(self, dataloader, current_iter, tb_logger, save_img):
        from .video_validation import video_validation
        video_validation(self, dataloader, current_iter, tb_logger, save_img)

    # ------------------------------------------------------------------ checkpoints
    def saved_parts(self):
        """What a checkpoint holds: the parts trained now plus those loaded from earlier stages."""
        trained = getattr(self, 'trained_parts', ())
        return tuple(p for p in TRAINABLE_PARTS if p in trained or p in self.loaded_parts)

    def checkpoint(self):
        parts = self.saved_parts()
        ckpt = {'params': part_state_dict(self.bare, parts), 'parts': list(parts),
                'meta': {'stage': getattr(self, 'stage', None), **self.diffusion.meta()}}
        if self.ema is not None:
            self.ema.swap(self.bare)
            ckpt['params_ema'] = part_state_dict(self.bare, parts)
            self.ema.swap(self.bare)
        return ckpt

    def save(self, epoch, current_iter):
        if get_dist_info()[0] == 0:
            label = 'latest' if current_iter == -1 else current_iter
            atomic_torch_save(self.checkpoint(), osp.join(self.opt['path']['models'], f'net_g_{label}.pth'))
        self.save_training_state(epoch, current_iter)

    def load_network(self, net, load_path, strict=True, param_key='params'):
        """Load a VDD stage checkpoint (the parts it lists) into ``net``; see stage_checkpoint."""
        ckpt = read_checkpoint(load_path)
        state, key = checkpoint_state(ckpt, param_key)
        load_part_state_dict(self.get_bare_model(net), state, ckpt['parts'], load_path)
        self.loaded_parts = tuple(ckpt['parts'])
        self.diffusion.load_meta(ckpt.get('meta', {}), source=load_path)
        get_root_logger().info(f'Loaded {ckpt["parts"]} ({key}) from {load_path}')

    def extra_training_state(self):
        """What an exact resume needs beyond BasicSR's state (saved by ``compat.save_training_state``,
        which also compares the ranks' parameters per part): every rank's generator, which draws every
        random number of a training step (timesteps, noise, token dropout, dropout); every rank's
        residual scale (training stops if they disagree); the EMA shadows and fp16's GradScaler."""
        generators = rank_states(self.generator.get_state())
        scales = rank_states(self.diffusion.residual_scale)
        if len(set(scales)) > 1:
            raise RuntimeError(f'the ranks train against different residual scales {scales}')
        state = {'generator': generators[0], 'generators': generators, 'residual_scales': scales}
        if self.ema is not None:
            state['ema'] = self.ema.state_dict()
        if self.grad_scaler is not None:
            state['grad_scaler'] = self.grad_scaler.state_dict()
        return state

    def resume_training(self, resume_state):
        super().resume_training(resume_state)
        rank, world_size = get_dist_info()
        generators = resume_state.get('generators', [resume_state['generator']] if 'generator' in resume_state else [])
        own = self.generator.get_state()
        if len(generators) == world_size and generators[rank].shape == own.shape:
            self.generator.set_state(generators[rank].cpu())
        else:  # fresh, distinct noise per rank
            other = 'number of ranks' if len(generators) != world_size else 'kind of device (CPU / GPU)'
            get_root_logger().warning(f'The resumed state was saved with another {other}: training goes on with '
                                      'new noise, not bit for bit as the interrupted run would have.')
            self.generator.manual_seed(self.opt['manual_seed'] * 1000003 + rank + resume_state['iter'])
        if self.ema is not None and 'ema' in resume_state:
            self.ema.load_state_dict(resume_state['ema'])
        if self.grad_scaler is not None and 'grad_scaler' in resume_state:
            self.grad_scaler.load_state_dict(resume_state['grad_scaler'])
