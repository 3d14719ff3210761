"""MAAC presets: MBPO's presets (same loop, ensemble, model rollouts and SAC sizes) with the
pathwise actor's horizon.

`preset(env, name)`: "paper" (Clavera et al. 2020 build on MBPO's setup; their pathwise
horizons are short, 3-5 steps), "cpu", "test" (MBPO's, with H = 3 / 3 / 2).
"""

from __future__ import annotations

import dataclasses

from mbjax.agents import mbpo
from mbjax.agents.maac.config import Config

HORIZONS = {"paper": 3, "cpu": 3, "test": 2}


def preset(env: str, name: str = "cpu") -> Config:
    """MBPO's preset `name` for `env` as a MAAC Config with horizon HORIZONS[name]."""
    base = mbpo.preset(env, name)  # refuses unknown names with the allowed ones
    fields = {f.name: getattr(base, f.name) for f in dataclasses.fields(mbpo.Config)}
    return Config(**fields, horizon=HORIZONS[name])
