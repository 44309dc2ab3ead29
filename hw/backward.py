"""Old import path of ``helu.hw.units.backward``, kept while code that imports it moves over."""

from helu.hw.units.backward import *  # noqa: F403
from helu.hw.units.backward import __all__  # noqa: F401
