"""Hand the training set's per-domain image counts to a loss."""
from mmengine.hooks import Hook
from mmengine.logging import print_log
from mmengine.model import is_model_wrapper

from nucseg.registry import HOOKS


@HOOKS.register_module()
class DomainSizesHook(Hook):
    """Set ``model.<loss_attr>`` domain weights from the data set sizes.

    AMA-SAM weights the CGRL loss (Eq. 3) inversely to the number of
    images of the primary and of the auxiliary data sets. The counts are
    known only once the training set is built, so before training this
    hook reads ``domain_sizes`` and ``primary_ids`` of
    ``runner.train_dataloader.dataset`` (a
    :class:`~nucseg.datasets.MultiDomainDataset`) and calls
    ``set_domain_sizes`` of the model's loss. A loss configured with
    explicit weights or sizes is left alone.

    Args:
        loss_attr (str): Attribute of the model holding the loss.
    """

    priority = 'NORMAL'

    def __init__(self, loss_attr: str = 'loss_align') -> None:
        self.loss_attr = loss_attr

    def before_train(self, runner) -> None:
        model = runner.model.module if is_model_wrapper(
            runner.model) else runner.model
        loss = getattr(model, self.loss_attr, None)
        if loss is None:  # alignment off (ablation): nothing to weight
            return
        dataset = runner.train_dataloader.dataset
        sizes = getattr(dataset, 'domain_sizes', None)
        if sizes is None:
            raise TypeError(
                'DomainSizesHook needs a training set with `domain_sizes` '
                f'(MultiDomainDataset), got {type(dataset).__name__}')
        if (getattr(loss, 'domain_sizes', None) is not None
                or getattr(loss, 'fixed_weights', False)):
            print_log(f'DomainSizesHook: {self.loss_attr} keeps its '
                      f'configured weights (data set sizes: {list(sizes)})',
                      logger='current')
            return
        primary = list(getattr(dataset, 'primary_ids', [0]))
        loss.set_domain_sizes(list(sizes), primary)
        names = list(getattr(dataset, 'domain_names', range(len(sizes))))
        counts = ', '.join(f'{n}={s}' for n, s in zip(names, sizes))
        if loss.per_domain_weights is not None:
            weights = ', '.join(f'{n}: w={w:.3f}' for n, w in zip(
                names, loss.per_domain_weights))
        else:
            weights = (f'w_main={loss.w_main:.3f} (primary '
                       f'{[names[i] for i in primary]}), '
                       f'w_aux={loss.w_aux:.3f}')
        print_log(f'DomainSizesHook: images {counts} -> {weights}',
                  logger='current')
