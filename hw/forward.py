"""Old import path of ``helu.hw.units.forward``, kept while code that imports it moves over."""

from helu.hw.units.forward import *  # noqa: F403
from helu.hw.units.forward import __all__  # noqa: F401
