import pytest
import torch

from nucseg.models.utils.sam import build_sam


@pytest.fixture(scope='module', autouse=True)
def one_thread(torch_one_thread):
    """The tiny decoder's small ops are much slower with contended threads.
    """
    yield


@pytest.fixture(scope='module')
def tiny_sam():
    torch.manual_seed(0)
    return build_sam('tiny', image_size=256)
