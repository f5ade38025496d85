"""Base of the hooks that set a scheduled value on the model."""
from mmengine.hooks import Hook
from mmengine.model import is_model_wrapper


class ModelAttributeHook(Hook):
    """Before every training iteration, write :meth:`current_value` to the
    (unwrapped) model's ``self.attr`` and log it as ``train/<log_name>``.

    Subclasses set ``attr`` in ``__init__``, the class attribute
    ``log_name`` and implement :meth:`current_value`. Computed from the
    runner's counters, the value is restored on ``--resume``.
    """

    priority = 'NORMAL'
    #: Logged as ``train/<log_name>``.
    log_name = ''
    attr = ''

    def current_value(self, runner) -> float:
        """The value for the runner's current iteration."""
        raise NotImplementedError

    def before_train_iter(self, runner, batch_idx: int,
                          data_batch=None) -> None:
        model = runner.model.module if is_model_wrapper(
            runner.model) else runner.model
        if not hasattr(model, self.attr):
            raise AttributeError(
                f'{type(self).__name__}: {type(model).__name__} has no '
                f'attribute {self.attr!r}')
        value = self.current_value(runner)
        setattr(model, self.attr, value)
        runner.message_hub.update_scalar(f'train/{self.log_name}', value)
