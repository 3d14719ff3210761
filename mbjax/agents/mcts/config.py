"""MCTS agent configuration: mctx search over the true env or a learned ensemble (issue 17)."""

from __future__ import annotations

import dataclasses

from mbjax import validation
from mbjax.agents.program import ON_NONFINITE
from mbjax.models import EnsembleConfig
from mbjax.planners.mcts import MCTSConfig

MODELS = ("true", "learned")


@dataclasses.dataclass(frozen=True)
class Config:
    """MPC by tree search on a discrete-action env.

    env: a discrete env of `mbjax.envs.names()` (e.g. `cartpole_discrete`); episode_length:
      steps per episode (None: the env's).
    model: "true" (search with the env itself: the planner's upper bound, nothing is learned)
      or "learned" (search with an ensemble fitted to the episodes collected so far; the int
      action enters it one-hot).
    num_episodes: iterations (one episode each). num_seed_episodes: learned model only: the
      first episodes act uniformly at random (the ensemble needs data before it can plan);
      every later episode refits the ensemble on all data, then searches.
    search: the mctx search (`MCTSConfig`); its `discount` is a leaf of the run state.
    ensemble: the learned model (`EnsembleConfig`; its learning rate is a leaf).
    learned_reward / learned_termination: use the ensemble's heads instead of the task's
      functions (`mbjax.envs.task_fns`).
    on_nonfinite: "raise" or "rollback" (see `mbjax.agents.program`).
    """

    env: str = "cartpole_discrete"
    episode_length: int | None = None
    model: str = "true"
    num_episodes: int = 10
    num_seed_episodes: int = 1
    search: MCTSConfig = MCTSConfig()
    ensemble: EnsembleConfig = EnsembleConfig()
    learned_reward: bool = False
    learned_termination: bool = False
    on_nonfinite: str = "raise"

    def __post_init__(self) -> None:
        validation.field_optional_int(self, "episode_length")
        validation.field_choice(self, "model", MODELS)
        validation.field_int(self, "num_episodes")
        validation.field_int(self, "num_seed_episodes", lo=0)
        if self.model == "learned" and not 1 <= self.num_seed_episodes < self.num_episodes:
            raise validation.field_error(
                self, "num_seed_episodes",
                f"at least 1 and fewer than num_episodes={self.num_episodes} with model='learned'")
        if not isinstance(self.search, MCTSConfig):
            raise validation.field_error(self, "search", "an MCTSConfig")
        if not isinstance(self.ensemble, EnsembleConfig):
            raise validation.field_error(self, "ensemble", "an EnsembleConfig")
        for name in ("learned_reward", "learned_termination"):
            validation.field_bool(self, name)
        if self.learned_reward and not self.ensemble.predict_reward:
            raise validation.field_error(self, "learned_reward",
                                         "True only with ensemble.predict_reward=True")
        if self.learned_termination and not self.ensemble.predict_termination:
            raise validation.field_error(self, "learned_termination",
                                         "True only with ensemble.predict_termination=True")
        validation.field_choice(self, "on_nonfinite", ON_NONFINITE)

    @property
    def seed_episodes(self) -> int:
        """Uniform-random episodes actually run (none with the true model)."""
        return self.num_seed_episodes if self.model == "learned" else 0
