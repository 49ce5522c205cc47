"""Several processes training one network (``torchrun ... --launcher pytorch``): what the ranks gather and
compare. Without ``torch.distributed`` every function works on the single process."""
import torch


def close(wait=True):
    """End this rank's part in a distributed run (nothing without one): with ``wait`` the ranks first meet
    (a run that ended well on every rank), then the process group is destroyed. A rank that leaves its
    process group to the interpreter's exit can abort there (``terminate called without an active
    exception``, SIGABRT) while another rank still finishes its last save."""
    import torch.distributed as dist
    if not (dist.is_available() and dist.is_initialized()):
        return
    if wait:
        dist.barrier()
    dist.destroy_process_group()


def rank_states(obj):
    """``[obj of rank 0, obj of rank 1, ...]`` gathered on every rank (``[obj]`` when not distributed)."""
    import torch.distributed as dist
    if not (dist.is_available() and dist.is_initialized()):
        return [obj]
    out = [None] * dist.get_world_size()
    dist.all_gather_object(out, obj)
    return out


def parameter_fingerprint(net):
    """``{part: sum of squares of its trainable parameters (float64)}`` over the top-level parts of ``net``
    (``''``: parameters of ``net`` itself); equal on every rank of a healthy run."""
    net = getattr(net, 'module', net)  # DDP / DataParallel
    parts = [('', list(net.parameters(recurse=False)))] + [(n, list(m.parameters())) for n, m in net.named_children()]
    with torch.no_grad():
        return {name: float(sum(p.detach().double().pow(2).sum() for p in params if p.requires_grad))
                for name, params in parts if any(p.requires_grad for p in params)}


def rank_fingerprints(net):
    """Every rank's :func:`parameter_fingerprint`, gathered on every rank. Raises RuntimeError (on every
    rank alike) naming the parts whose parameters differ between ranks: a part that trains without its
    gradients being averaged (it was frozen when DistributedDataParallel was built)."""
    prints = rank_states(parameter_fingerprint(net))
    differ = sorted(k for k in prints[0] if len({p.get(k) for p in prints}) > 1)
    if differ:
        raise RuntimeError(f'the ranks trained different parameters in {differ} (fingerprints '
                           f'{[[p.get(k) for p in prints] for k in differ]}): they were not synchronised')
    return prints
