"""Registry and environment set-up."""
import datetime
import warnings


def register_all_modules(init_default_scope: bool = True) -> None:
    """Import every nucseg module so that it registers itself.

    Also allow-lists mmengine's checkpoint classes for ``weights_only``
    loading (see :mod:`nucseg.utils.checkpoint`) so ``--resume`` works
    under torch >= 2.6.

    Args:
        init_default_scope (bool): Set the default scope to ``nucseg`` (as
            ``default_scope='nucseg'`` in configs does). If another scope
            is current, a new ``nucseg`` scope instance is created.
    """
    from mmengine import DefaultScope

    import nucseg.datasets  # noqa: F401,F811
    import nucseg.engine  # noqa: F401,F811
    import nucseg.evaluation  # noqa: F401,F811
    import nucseg.models  # noqa: F401,F811
    import nucseg.structures  # noqa: F401,F811
    import nucseg.visualization  # noqa: F401,F811
    from .checkpoint import register_safe_globals
    register_safe_globals()

    if not init_default_scope:
        return
    current = DefaultScope.get_current_instance()
    if current is None or not DefaultScope.check_instance_created('nucseg'):
        if current is not None and current.scope_name != 'nucseg':
            warnings.warn('The current default scope '
                          f'"{current.scope_name}" is not "nucseg"; '
                          '`register_all_modules` creates a new default '
                          'scope named "nucseg".')
        name = 'nucseg' if current is None else (
            f'nucseg-{datetime.datetime.now()}')
        DefaultScope.get_instance(name, scope_name='nucseg')
