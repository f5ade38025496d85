import io
import pickle

import numpy as np
import pytest
import torch
from mmengine.logging import HistoryBuffer, MessageHub

from nucseg.utils import register_safe_globals


class _Evil:

    def __reduce__(self):
        import os
        return (os.system, ('echo pwned',))


def _save(obj) -> io.BytesIO:
    buf = io.BytesIO()
    torch.save(obj, buf)
    buf.seek(0)
    return buf


def test_mmengine_state_loads_with_weights_only():
    register_safe_globals()
    hub = MessageHub.get_instance('nucseg-test-ckpt')
    hub.update_scalar('train/loss', 0.5)
    hub.update_scalar('train/loss', np.float64(0.25))
    hub.update_info('iter', 3)
    ckpt = dict(
        meta=dict(iter=3, seed=np.int64(7), hook_msgs=dict(best=np.float32(
            0.5))),
        message_hub=hub.state_dict(),
        state_dict={'w': torch.ones(2)})
    loaded = torch.load(_save(ckpt), weights_only=True)
    buf = loaded['message_hub']['log_scalars']['train/loss']
    assert isinstance(buf, HistoryBuffer)
    assert buf.mean() == pytest.approx(0.375)  # default statistics work
    assert loaded['meta']['seed'] == 7


def test_untrusted_pickles_are_still_refused():
    register_safe_globals()
    with pytest.raises(pickle.UnpicklingError):
        torch.load(_save({'x': _Evil()}), weights_only=True)
    # The builtin getattr (a gadget for reaching arbitrary code) is not
    # allow-listed.
    gadget = io.BytesIO()
    torch.save({'f': getattr(HistoryBuffer, 'mean')}, gadget)
    gadget.seek(0)
    with pytest.raises(pickle.UnpicklingError, match='getattr'):
        torch.load(gadget, weights_only=True)


def test_training_free_declaration_decides_if_a_checkpoint_is_needed():
    from torch import nn

    from nucseg.utils.checkpoint import (MissingCheckpointError,
                                         is_training_free,
                                         require_checkpoint)

    class Trained(nn.Module):
        pass

    class Free(nn.Module):
        training_free = True

    assert is_training_free(Free()) and not is_training_free(Trained())
    wrapped = nn.Module()
    wrapped.module = Free()  # DDP-style wrapper
    assert is_training_free(wrapped)
    require_checkpoint(Free(), None)
    require_checkpoint(Trained(), 'x.pth')
    require_checkpoint(Trained(), None, allow_random_weights=True)
    with pytest.raises(MissingCheckpointError,
                       match=r'cfg\.py \(Trained\), which must be trained'):
        require_checkpoint(Trained(), None, config='cfg.py')
