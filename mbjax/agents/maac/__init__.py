"""MAAC: model-augmented actor-critic (Clavera et al. 2020), backpropagating through paths.

    from mbjax.agents import maac
    config = maac.preset("brax/inverted_pendulum", "cpu")
    make_policy, final_state, records = maac.train("brax/inverted_pendulum", config, seed=0)
    init_carry, policy = make_policy(final_state)                      # the SAC actor

MBPO's loop and state (`mbjax.agents.mbpo`: refits, model rollouts, critics on real and model
data) with SAC's networks and losses (`mbjax.agents.sac`), and an actor trained by the pathwise
gradient of H imagined steps plus a terminal soft Q (`mbjax.agents.pathwise`, shared with BPTT).
One iteration is an epoch; `maac.ALGORITHM` is its record for the CLI and sweeps.
"""

from mbjax.agents import driver
from mbjax.agents.algorithm import Algorithm
from mbjax.agents.maac.config import Config
from mbjax.agents.maac.presets import HORIZONS, preset
from mbjax.agents.maac.train import make_maac, make_program, make_train
from mbjax.agents.maac.update import ImaginationSetup, actor_objective, update
from mbjax.agents.mbpo import grid_leaves  # SAC's numeric fields and the ensemble's rate
from mbjax.agents.sac import make_policy  # MAAC acts with its SAC actor

ALGORITHM = Algorithm(
    name="maac",
    config_class=Config,
    preset=preset,
    make_program=make_program,
    make_policy=make_policy,
    grid_leaves=grid_leaves,
    iteration_unit="epoch",
    description="MAAC: pathwise actor gradients through H model steps plus a terminal Q "
                "(Clavera et al. 2020)",
)

train = driver.bind(ALGORITHM)  # (env, config, *, seed, ...) -> (make_policy, state, records)

__all__ = [
    "ALGORITHM", "Config", "HORIZONS", "ImaginationSetup", "actor_objective", "grid_leaves",
    "make_maac", "make_policy", "make_program", "make_train", "preset",
    "train", "update",
]
