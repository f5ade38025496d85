from .postprocessors import *  # noqa: F401,F403
from .segmentors import *  # noqa: F401,F403
