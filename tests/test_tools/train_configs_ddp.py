"""Run tools/train.py for several configs in the same torchrun ranks.

Tests use it to train more than one model under 2-rank CPU DDP without
paying for a fresh interpreter per model::

    python -m torch.distributed.run --nproc_per_node 2 \
        tests/test_tools/train_configs_ddp.py '[["CONFIG", "--work-dir", \
        "DIR", "--cfg-options", ...], ...]'

Each argument list is passed to ``tools/train.py``'s ``main`` with
``--launcher pytorch`` appended. The config the runner dumps and logs is
not formatted with yapf (seconds per config; the text stays valid Python).
"""
import json
import os.path as osp
import runpy
import sys

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))


def main() -> int:
    import mmengine.config.config as config_module
    config_module.FormatCode = lambda text, **kwargs: (text, False)
    runs = json.loads(sys.argv[1])
    train = runpy.run_path(osp.join(ROOT, 'tools', 'train.py'))
    for args in runs:
        sys.argv = ['tools/train.py'] + list(args) + ['--launcher',
                                                      'pytorch']
        rc = train['main']()
        if rc:
            return int(rc)
    return 0


if __name__ == '__main__':
    sys.exit(main())
