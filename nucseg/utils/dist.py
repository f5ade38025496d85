"""Distributed launching on machines without a GPU."""
import warnings

__all__ = ['setup_cpu_distributed']


def setup_cpu_distributed(cfg) -> bool:
    """Prepare a ``--launcher pytorch`` run for CPU-only processes.

    mmengine 0.10.7's ``init_dist`` calls ``torch.cuda.set_device`` before
    creating the process group, and its default DDP wrapper passes
    ``device_ids=[LOCAL_RANK]``; both fail on CPU. When no GPU is visible
    this creates the (gloo) process group itself from torchrun's
    environment -- mmengine then skips ``init_dist`` -- and sets
    ``device_ids=None`` on the model wrapper. With a GPU it does nothing.

    Args:
        cfg (mmengine.Config): The full config; ``cfg.launcher`` must be
            set. Modified in place.

    Returns:
        bool: Whether a CPU process group was set up.
    """
    import torch
    import torch.distributed as dist

    from nucseg.registry import MODEL_WRAPPERS

    if cfg.get('launcher', 'none') == 'none' or torch.cuda.is_available():
        return False
    if cfg.launcher != 'pytorch':
        raise NotImplementedError(
            f'launcher {cfg.launcher!r} on a CPU-only machine: use '
            'tools/dist_train.sh (torchrun, --launcher pytorch)')
    env_cfg = cfg.setdefault('env_cfg', {})
    dist_cfg = dict(env_cfg.get('dist_cfg', {}))
    backend = dist_cfg.pop('backend', 'nccl')
    if backend != 'gloo':
        warnings.warn(f'no GPU visible: using the gloo backend instead of '
                      f'{backend!r}')
        env_cfg['dist_cfg'] = dict(env_cfg.get('dist_cfg', {}),
                                   backend='gloo')
    if not dist.is_initialized():
        dist.init_process_group(backend='gloo', **dist_cfg)
    wrapper = cfg.get('model_wrapper_cfg') or dict(
        type='MMDistributedDataParallel',
        broadcast_buffers=False,
        find_unused_parameters=cfg.get('find_unused_parameters', False))
    wrapper_type = MODEL_WRAPPERS.get(wrapper['type'])
    if wrapper_type is None:
        raise KeyError(f"unknown model wrapper {wrapper['type']!r}")
    if issubclass(wrapper_type, torch.nn.parallel.DistributedDataParallel):
        wrapper['device_ids'] = None
    cfg.model_wrapper_cfg = wrapper
    return True
