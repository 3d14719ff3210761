"""Policy distillation by DAgger (`--algo=distill`): a trained run's policy (e.g. PETS's MPC)
taught to a small MLP that acts with one forward pass.

    python -m experiments.train --algo=pets --env=cartpole_swingup --output_dir=runs/teacher
    python -m experiments.train --algo=distill --env=cartpole_swingup \
        --config.teacher_run=runs/teacher
"""

from mbjax.agents import driver
from mbjax.agents.algorithm import Algorithm
from mbjax.agents.distill.config import Config
from mbjax.agents.distill.dagger import (
    DistillState,
    IterationMetrics,
    Labeled,
    grid_leaves,
    load_teacher,
    make_env,
    make_policy,
    make_program,
    student_action,
)
from mbjax.agents.distill.presets import PRESETS, preset

ALGORITHM = Algorithm(
    name="distill",
    config_class=Config,
    preset=preset,
    make_program=make_program,
    make_policy=make_policy,
    grid_leaves=grid_leaves,
    make_env=make_env,
    iteration_unit="iteration",
    description="DAgger distillation of a trained run's policy (e.g. PETS's MPC) into an MLP",
)

train = driver.bind(ALGORITHM)

__all__ = [
    "ALGORITHM", "PRESETS", "Config", "DistillState", "IterationMetrics", "Labeled",
    "grid_leaves", "load_teacher", "make_env", "make_policy", "make_program", "preset",
    "student_action", "train",
]
