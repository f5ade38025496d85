"""Per-domain accuracy of a domain discriminator during training."""
from mmengine.hooks import Hook
from mmengine.model import is_model_wrapper

from nucseg.registry import HOOKS


@HOOKS.register_module()
class DiscriminatorAccuracyHook(Hook):
    """Log how often the domain discriminator is right, per domain.

    After each training iteration the hook reads the model's
    ``last_domain_logits`` (a dict with ``logits`` (B,), ``is_primary``
    (B,) bool and ``domain`` (list of B names), set by e.g.
    :class:`AMASAM`) and counts correct primary/auxiliary decisions
    (``logit > 0`` means "primary") per domain. It publishes
    ``train/disc_acc_<domain>`` (percent) as the accuracy over the samples
    seen since the start of the current ``interval``-iteration window, so
    with the logger's interval the logged value covers exactly the logged
    window. Accuracy near 50% on auxiliary domains means their features
    became indistinguishable from the primary ones.

    Args:
        interval (int): Window length in iterations; use the logger's.
        attr (str): Model attribute holding the discriminator outputs.
    """

    # Before LoggerHook (BELOW_NORMAL), so the current iteration is logged.
    priority = 'NORMAL'

    def __init__(self, interval: int = 10,
                 attr: str = 'last_domain_logits') -> None:
        if interval < 1:
            raise ValueError(f'interval must be >= 1, got {interval}')
        self.interval = interval
        self.attr = attr
        self._counts = {}

    def after_train_iter(self, runner, batch_idx: int, data_batch=None,
                         outputs=None) -> None:
        model = runner.model.module if is_model_wrapper(
            runner.model) else runner.model
        record = getattr(model, self.attr, None)
        if record:
            correct = ((record['logits'] > 0) ==
                       record['is_primary']).tolist()
            for name, ok in zip(record['domain'], correct):
                hit, total = self._counts.get(name, (0, 0))
                self._counts[name] = (hit + int(ok), total + 1)
            setattr(model, self.attr, None)
        for name, (hit, total) in self._counts.items():
            runner.message_hub.update_scalar(f'train/disc_acc_{name}',
                                             100.0 * hit / total)
        if (runner.iter + 1) % self.interval == 0:
            self._counts = {}
