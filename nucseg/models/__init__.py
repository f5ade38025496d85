from .backbones import *  # noqa: F401,F403
from .discriminators import *  # noqa: F401,F403
from .heads import *  # noqa: F401,F403
from .layers import *  # noqa: F401,F403
from .losses import *  # noqa: F401,F403
from .postprocessors import *  # noqa: F401,F403
from .prompters import *  # noqa: F401,F403
from .segmentors import *  # noqa: F401,F403
