"""The unit registry: every streaming unit the toolkit generates, verifies and synthesizes.

Each module of this package that defines a module-level ``UNITS`` dict (``{name: UnitInfo}``)
contributes its units; a new unit is one such file (see ``hw/units/clipped.py``). ``sim``,
``synth``, the flow, the CLI and the report read everything about a unit from its
:class:`~helu.hw.units.base.UnitInfo`: component, integer reference, parameters, corner cases,
study activation and limits. Modules are ordered by their ``ORDER`` (then name), which is the
order of tables and reports.

``UNITS`` maps every unit name to its ``UnitInfo``; ``HELU_UNITS`` holds the units whose expected
outputs are golden-vector fields. ``UnitParams``, ``UnitInfo`` and the shared parameter checks
are re-exported from :mod:`helu.hw.units.base`.
"""

import importlib
import pkgutil

from helu.hw.units.base import (
    COMMON_PARAMS,
    MAX_LANES,
    PARAMS,
    ElementwiseUnit,
    Param,
    UnitInfo,
    UnitParams,
    check_bool,
    check_lanes,
    check_threshold,
    check_width,
    pipeline,
    refusal,
    register_stage,
    unelaborated,
)

__all__ = [
    "UNITS",
    "HELU_UNITS",
    "UnitParams",
    "UnitInfo",
    "Param",
    "COMMON_PARAMS",
    "PARAMS",
    "check_width",
    "check_lanes",
    "MAX_LANES",
    "check_threshold",
    "check_bool",
    "refusal",
    "unelaborated",
    "pipeline",
    "register_stage",
    "ElementwiseUnit",
    "study_units",
    "unit_names",
]


def _discover() -> dict[str, UnitInfo]:
    modules = []
    for found in pkgutil.iter_modules(__path__):
        if found.name == "base" or found.name.startswith("_"):
            continue
        module = importlib.import_module(f"{__name__}.{found.name}")
        if hasattr(module, "UNITS"):
            modules.append((getattr(module, "ORDER", 100), found.name, module))
    units: dict[str, UnitInfo] = {}
    for _order, name, module in sorted(modules, key=lambda m: m[:2]):
        for unit, info in module.UNITS.items():
            if unit in units:
                raise RuntimeError(f"unit {unit!r} of hw/units/{name}.py is registered twice")
            if not isinstance(info, UnitInfo):
                raise TypeError(f"hw/units/{name}.py: UNITS[{unit!r}] is not a UnitInfo")
            units[unit] = info
    return units


UNITS: dict[str, UnitInfo] = _discover()
"""Every registered unit, by the name the CLI, the flow and the reports use."""

HELU_UNITS: dict[str, UnitInfo] = {name: info for name, info in UNITS.items() if info.golden}
"""The units whose expected outputs are fields of the golden vectors (the HeLU units)."""


def unit_names() -> str:
    """The registered unit names as a comma list, for help texts and error messages."""
    return ", ".join(UNITS)


def study_units() -> dict[str, str]:
    """Study activation -> the unit that computes it in hardware (``UnitInfo.study``)."""
    return {info.study: name for name, info in UNITS.items() if info.study}
