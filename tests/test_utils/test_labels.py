import numpy as np

from nucseg.utils import relabel_sequential


def test_relabel_sequential_keeps_order_and_background():
    m = np.array([[0, 5, 5], [9, 0, 2]])
    out = relabel_sequential(m)
    assert out.dtype == np.int32
    np.testing.assert_array_equal(out, [[0, 2, 2], [3, 0, 1]])
    # No background present: ids still start at 1.
    np.testing.assert_array_equal(
        relabel_sequential(np.array([[4, 4], [7, 4]])), [[1, 1], [2, 1]])
    assert relabel_sequential(np.zeros((2, 2), np.uint16)).max() == 0
