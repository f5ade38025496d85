"""Misspelt config keys are rejected with the key and the accepted ones."""
import pytest

from nucseg.utils.config_check import (UnknownKeyError, accepted_kwargs,
                                       check_keys, guard_init_kwargs)


def test_check_keys_names_the_key_and_the_accepted_ones():
    check_keys(dict(sigma=1), ('sigma', 'radius'), 'X.points')
    check_keys(None, ('sigma', ), 'X.points')
    with pytest.raises(UnknownKeyError) as err:
        check_keys(dict(sigmma=8.0), ('sigma', 'radius'), 'SPROUT.points')
    msg = str(err.value)
    assert "SPROUT.points: unknown config key 'sigmma'" in msg
    assert 'accepted keys: radius, sigma' in msg
    assert "did you mean 'sigmma' -> 'sigma'" in msg
    with pytest.raises(TypeError, match='expected a dict'):
        check_keys([1], ('a', ), 'X')


def test_guard_rejects_unknown_kwargs_before_the_constructor():

    class A:
        ran = False

        def __init__(self, size: int = 1, *, mode: str = 'a') -> None:
            A.ran = True

    guard_init_kwargs(A)
    A(size=2, mode='b')
    A.ran = False
    with pytest.raises(UnknownKeyError, match=r"'sise'.*mode, size"):
        A(sise=2)
    assert not A.ran
    assert accepted_kwargs(A.__init__) == ('size', 'mode')

    class B:

        def __init__(self, **kwargs) -> None:
            pass

    guard_init_kwargs(B)  # **kwargs: left alone (must check itself)
    B(anything=1)
