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
    :class:`AMASAM`), counts correct primary/auxiliary decisions
    (``logit > 0`` means "primary") and pushes them to the message hub as
    ``train/disc_acc_<domain>``, weighted by sample count, so the logged
    value is the accuracy over the logger's window. Accuracy near 50% on
    auxiliary domains means their features became indistinguishable from
    the primary ones.

    Args:
        attr (str): Model attribute holding the discriminator outputs.
    """

    priority = 'LOW'

    def __init__(self, attr: str = 'last_domain_logits') -> None:
        self.attr = attr

    def after_train_iter(self, runner, batch_idx: int, data_batch=None,
                         outputs=None) -> None:
        model = runner.model.module if is_model_wrapper(
            runner.model) else runner.model
        record = getattr(model, self.attr, None)
        if not record:
            return
        correct = ((record['logits'] > 0) == record['is_primary']).tolist()
        per_domain = {}
        for name, ok in zip(record['domain'], correct):
            hit, total = per_domain.get(name, (0, 0))
            per_domain[name] = (hit + int(ok), total + 1)
        for name, (hit, total) in per_domain.items():
            # Value/count pairs: the window mean is hits / samples.
            runner.message_hub.update_scalar(
                f'train/disc_acc_{name}', 100.0 * hit, count=total)
        setattr(model, self.attr, None)
