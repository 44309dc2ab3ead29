"""Old import path of ``helu.hw.units.baselines``, kept while code that imports it moves over."""

from helu.hw.units.baselines import *  # noqa: F403
from helu.hw.units.baselines import __all__  # noqa: F401
