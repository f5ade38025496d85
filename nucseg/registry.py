"""nucseg registries: children of MMSegmentation's, in scope ``nucseg``.

Every registry below has mmseg's registry of the same kind as parent, so a
config with ``default_scope='nucseg'`` finds nucseg modules first and falls
back to mmseg's (and then mmengine's) modules. ``locations`` lets mmengine
import the modules lazily the first time a registry is searched.

Every class registered in a nucseg registry rejects unknown config keys
with the key's name and the accepted ones
(:func:`nucseg.utils.config_check.guard_init_kwargs`).
"""
from mmseg.registry import DATA_SAMPLERS as MMSEG_DATA_SAMPLERS
from mmseg.registry import DATASETS as MMSEG_DATASETS
from mmseg.registry import EVALUATOR as MMSEG_EVALUATOR
from mmseg.registry import HOOKS as MMSEG_HOOKS
from mmseg.registry import INFERENCERS as MMSEG_INFERENCERS
from mmseg.registry import LOG_PROCESSORS as MMSEG_LOG_PROCESSORS
from mmseg.registry import LOOPS as MMSEG_LOOPS
from mmseg.registry import METRICS as MMSEG_METRICS
from mmseg.registry import MODEL_WRAPPERS as MMSEG_MODEL_WRAPPERS
from mmseg.registry import MODELS as MMSEG_MODELS
from mmseg.registry import \
    OPTIM_WRAPPER_CONSTRUCTORS as MMSEG_OPTIM_WRAPPER_CONSTRUCTORS
from mmseg.registry import OPTIM_WRAPPERS as MMSEG_OPTIM_WRAPPERS
from mmseg.registry import OPTIMIZERS as MMSEG_OPTIMIZERS
from mmseg.registry import PARAM_SCHEDULERS as MMSEG_PARAM_SCHEDULERS
from mmseg.registry import RUNNER_CONSTRUCTORS as MMSEG_RUNNER_CONSTRUCTORS
from mmseg.registry import RUNNERS as MMSEG_RUNNERS
from mmseg.registry import TASK_UTILS as MMSEG_TASK_UTILS
from mmseg.registry import TRANSFORMS as MMSEG_TRANSFORMS
from mmseg.registry import VISBACKENDS as MMSEG_VISBACKENDS
from mmseg.registry import VISUALIZERS as MMSEG_VISUALIZERS
from mmseg.registry import \
    WEIGHT_INITIALIZERS as MMSEG_WEIGHT_INITIALIZERS
from mmengine.registry import Registry

from nucseg.utils.config_check import guard_init_kwargs

__all__ = [
    'RUNNERS', 'RUNNER_CONSTRUCTORS', 'LOOPS', 'HOOKS', 'DATASETS',
    'DATA_SAMPLERS', 'TRANSFORMS', 'MODELS', 'MODEL_WRAPPERS',
    'WEIGHT_INITIALIZERS', 'OPTIMIZERS', 'OPTIM_WRAPPERS',
    'OPTIM_WRAPPER_CONSTRUCTORS', 'PARAM_SCHEDULERS', 'METRICS', 'EVALUATOR',
    'TASK_UTILS', 'VISUALIZERS', 'VISBACKENDS', 'LOG_PROCESSORS',
    'INFERENCERS'
]


class NucsegRegistry(Registry):
    """A registry whose classes reject misspelt config keys.

    Registering a class guards its ``__init__`` (see
    :func:`~nucseg.utils.config_check.guard_init_kwargs`), however it is
    built later (by this registry, by a parent registry in the ``nucseg``
    scope, or directly).
    """

    def _register_module(self, module, module_name=None,
                         force: bool = False) -> None:
        super()._register_module(module, module_name, force)
        if isinstance(module, type):
            guard_init_kwargs(module)


def _child(name: str, parent: Registry, locations: list) -> Registry:
    """A ``nucseg`` registry below ``parent``.

    mmengine imports a registry's ``locations`` lazily, but when a key is
    missing it only looks into the parents' already-imported modules, so
    the parent's locations (e.g. ``mmseg.visualization``) are imported too.
    """
    return NucsegRegistry(
        name,
        parent=parent,
        scope='nucseg',
        locations=list(locations) + list(getattr(parent, '_locations', [])))


RUNNERS = _child('runner', MMSEG_RUNNERS, ['nucseg.engine'])
RUNNER_CONSTRUCTORS = _child('runner constructor', MMSEG_RUNNER_CONSTRUCTORS,
                             ['nucseg.engine'])
LOOPS = _child('loop', MMSEG_LOOPS, ['nucseg.engine'])
HOOKS = _child('hook', MMSEG_HOOKS, ['nucseg.engine.hooks'])
DATASETS = _child('dataset', MMSEG_DATASETS, ['nucseg.datasets'])
DATA_SAMPLERS = _child('data sampler', MMSEG_DATA_SAMPLERS,
                       ['nucseg.datasets'])
TRANSFORMS = _child('transform', MMSEG_TRANSFORMS,
                    ['nucseg.datasets.transforms'])
MODELS = _child('model', MMSEG_MODELS, ['nucseg.models'])
MODEL_WRAPPERS = _child('model_wrapper', MMSEG_MODEL_WRAPPERS,
                        ['nucseg.models'])
WEIGHT_INITIALIZERS = _child('weight initializer', MMSEG_WEIGHT_INITIALIZERS,
                             ['nucseg.models'])
OPTIMIZERS = _child('optimizer', MMSEG_OPTIMIZERS, ['nucseg.engine'])
OPTIM_WRAPPERS = _child('optim_wrapper', MMSEG_OPTIM_WRAPPERS,
                        ['nucseg.engine'])
OPTIM_WRAPPER_CONSTRUCTORS = _child('optimizer wrapper constructor',
                                    MMSEG_OPTIM_WRAPPER_CONSTRUCTORS,
                                    ['nucseg.engine'])
PARAM_SCHEDULERS = _child('parameter scheduler', MMSEG_PARAM_SCHEDULERS,
                          ['nucseg.engine'])
METRICS = _child('metric', MMSEG_METRICS, ['nucseg.evaluation'])
EVALUATOR = _child('evaluator', MMSEG_EVALUATOR, ['nucseg.evaluation'])
TASK_UTILS = _child('task util', MMSEG_TASK_UTILS, ['nucseg.models'])
VISUALIZERS = _child('visualizer', MMSEG_VISUALIZERS,
                     ['nucseg.visualization'])
VISBACKENDS = _child('vis_backend', MMSEG_VISBACKENDS,
                     ['nucseg.visualization'])
LOG_PROCESSORS = _child('log_processor', MMSEG_LOG_PROCESSORS,
                        ['nucseg.visualization'])
INFERENCERS = _child('inferencer', MMSEG_INFERENCERS, ['nucseg.apis'])
