"""DAgger policy distillation as one compiled Program (Ross, Gordon and Bagnell 2011).

The teacher is any trained run's policy (`mbjax.load_policy`: PETS's MPC, SAC's actor, ...), a
pure carry-based `act(carry, obs [S], key) -> (carry, action [A], extras)` closed over its
final state, so it runs inside the compiled iteration like any function. One iteration:

    collect: episodes_per_iteration episodes (vmapped); at each step the teacher labels the
             visited state, and the executed action is the teacher's with probability
             beta_i = beta_decay ** i, else the student's (i = 0: the teacher alone, which also
             measures its return)
    aggregate: (obs, teacher action) of every valid step into one dataset (a ring buffer sized
             for all iterations)
    train: train_steps Adam steps of mean squared error on uniform minibatches of the dataset
    evaluate: the student's deterministic return over num_eval_episodes episodes.

Shapes: E episodes per iteration, T agent steps per episode, S observation size, A actions.
"""

from __future__ import annotations

import functools
import math
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import optax

from mbjax import acting, replay, runs, validation
from mbjax import envs as mbjax_envs
from mbjax.agents.distill.config import Config
from mbjax.agents.program import Program, Segment
from mbjax.agents.sac.networks import MLP
from mbjax.envs.discrete import require_continuous
from mbjax.models import all_finite


class Labeled(NamedTuple):
    """One dataset item: obs [S] and the teacher's action [A] there."""

    obs: jax.Array
    action: jax.Array


class DistillState(NamedTuple):
    """params / opt_state: the student's (Adam, learning rate a leaf); data: the aggregated
    dataset; key; iteration, env_steps: [] int32."""

    params: Any
    opt_state: Any
    data: replay.ReplayBuffer
    key: jax.Array
    iteration: jax.Array
    env_steps: jax.Array


class IterationMetrics(NamedTuple):
    env_steps: jax.Array
    episode_return: jax.Array  # the student's mean evaluation return
    collect_return: jax.Array  # mean return of this iteration's (mixed) episodes
    beta: jax.Array
    imitation_loss: jax.Array  # mean squared error over the last train step's batch
    dataset_size: jax.Array
    nonfinite: jax.Array


class Parts(NamedTuple):
    """The static pieces: env, teacher (init_carry, act), student network, optimizer, steps."""

    env: Any
    teacher: Any
    student: MLP
    optimizer: optax.GradientTransformation
    num_steps: int


def make_env(config: Config) -> Any:
    """The env of `config` (continuous actions, vector observations)."""
    env = mbjax_envs.make(config.env, episode_length=config.episode_length,
                          action_repeat=config.action_repeat)
    return require_continuous(env, config.env, "distill")


def load_teacher(config: Config) -> Any:
    """The teacher's `Policy(init_carry, act)` from `config.teacher_run` (one-line errors for a
    missing run or one trained on another env)."""
    if not config.teacher_run:
        raise validation.invalid("Config.teacher_run", config.teacher_run,
                                 "the directory of a trained run (python -m experiments.train)")
    policy, info = runs.load_policy(config.teacher_run)
    if info["env"] != config.env:
        raise validation.invalid("Config.teacher_run", config.teacher_run,
                                 f"a run on env {config.env!r} (it was trained on {info['env']!r})")
    return policy


def student_action(parts: Parts, params: Any, obs: jax.Array) -> jax.Array:
    """The student's deterministic action tanh(MLP(obs)): obs [..., S] -> [..., A]."""
    return jnp.tanh(parts.student.apply(params, obs))


def collect_episode(parts: Parts, params: Any, beta: jax.Array, key: jax.Array):
    """One mixed episode: (Labeled [T], valid [T], return [])."""
    k_reset, k_carry, k_steps = jax.random.split(key, 3)
    init_carry, act = parts.teacher

    def body(carry, k):
        episode, teacher_carry = carry
        k_teacher, k_mix = jax.random.split(k)
        obs = episode.state.obs
        teacher_carry, teacher_a, _ = act(teacher_carry, obs, k_teacher)
        mine = student_action(parts, params, obs)
        executed = jnp.where(jax.random.uniform(k_mix) < beta, teacher_a, mine)
        episode, step = acting.episode_step(parts.env, episode, executed)
        return (episode, teacher_carry), (Labeled(obs, teacher_a), step.valid)

    start = (acting.start_episode(parts.env, k_reset), init_carry(k_carry))
    (episode, _), (labeled, valid) = jax.lax.scan(
        body, start, jax.random.split(k_steps, parts.num_steps))
    return labeled, valid, episode.episode_return


def train_student(parts: Parts, config: Config, params: Any, opt_state: Any,
                  data: replay.ReplayBuffer, key: jax.Array):
    """train_steps Adam steps of MSE on minibatches of `data`. -> (params, opt_state, loss)."""

    def loss_fn(p, batch: Labeled):
        return jnp.mean(jnp.sum((student_action(parts, p, batch.obs) - batch.action) ** 2, -1))

    def step(carry, k):
        p, s = carry
        loss, grads = jax.value_and_grad(loss_fn)(p, replay.sample(data, k, config.batch_size))
        updates, s = parts.optimizer.update(grads, s, p)
        return (optax.apply_updates(p, updates), s), loss

    (params, opt_state), losses = jax.lax.scan(step, (params, opt_state),
                                               jax.random.split(key, config.train_steps))
    return params, opt_state, losses[-1]


def make_parts(config: Config) -> Parts:
    env = make_env(config)
    teacher = load_teacher(config)
    return Parts(env=env, teacher=teacher,
                 student=MLP(tuple(config.hidden_sizes), int(env.action_size)),
                 optimizer=optax.inject_hyperparams(optax.adam)(
                     learning_rate=config.learning_rate),
                 num_steps=math.ceil(env.episode_length / config.action_repeat))


def make_iteration(parts: Parts, config: Config):
    """`iteration(state) -> (state, IterationMetrics)`: collect, aggregate, train, evaluate."""
    n_eps = config.episodes_per_iteration

    def iteration(state: DistillState) -> tuple[DistillState, IterationMetrics]:
        key, k_collect, k_train, k_eval = jax.random.split(state.key, 4)
        beta = jnp.asarray(config.beta_decay, jnp.float32) ** state.iteration
        labeled, valid, returns = jax.vmap(
            functools.partial(collect_episode, parts, state.params, beta))(
            jax.random.split(k_collect, n_eps))
        flat = jax.tree_util.tree_map(lambda x: x.reshape((-1,) + x.shape[2:]), labeled)
        data = replay.add_masked(state.data, flat, valid.reshape(-1))
        params, opt_state, loss = train_student(parts, config, state.params, state.opt_state,
                                                data, k_train)
        student = lambda p, obs, k: student_action(parts, p, obs)
        eval_returns = acting.evaluate(parts.env, student, params, k_eval,
                                       config.num_eval_episodes, parts.num_steps)
        env_steps = state.env_steps + jnp.sum(valid, dtype=jnp.int32) * config.action_repeat
        new = DistillState(params, opt_state, data, key, state.iteration + 1, env_steps)
        metrics = IterationMetrics(
            env_steps=env_steps, episode_return=jnp.mean(eval_returns),
            collect_return=jnp.mean(returns), beta=beta, imitation_loss=loss,
            dataset_size=data.size,
            nonfinite=~(all_finite(params) & all_finite(loss) & all_finite(eval_returns)))
        return new, metrics

    return iteration


def make_init(parts: Parts, config: Config):
    obs_size, action_size = int(parts.env.observation_size), int(parts.env.action_size)
    capacity = config.iterations * config.episodes_per_iteration * parts.num_steps

    def init(key: jax.Array) -> DistillState:
        k_params, k_run = jax.random.split(key)
        params = parts.student.init(k_params, jnp.zeros((1, obs_size)))
        example = Labeled(jnp.zeros((obs_size,)), jnp.zeros((action_size,)))
        return DistillState(params=params, opt_state=parts.optimizer.init(params),
                            data=replay.init(capacity, example), key=k_run,
                            iteration=jnp.zeros((), jnp.int32),
                            env_steps=jnp.zeros((), jnp.int32))

    return init


def record(i: int, m: IterationMetrics) -> dict[str, Any]:
    return {"iteration": i, "episode": i, "env_steps": int(m.env_steps),
            "episode_return": float(m.episode_return),
            "collect_return": float(m.collect_return), "beta": float(m.beta),
            "imitation_loss": float(m.imitation_loss), "dataset_size": int(m.dataset_size)}


def make_program(config: Config) -> Program:
    """The distillation run: `iterations` identical compiled DAgger iterations."""
    parts = make_parts(config)
    return Program(init=jax.jit(make_init(parts, config)),
                   segments=(Segment(make_iteration(parts, config), config.iterations),),
                   to_record=record, on_nonfinite=config.on_nonfinite)


def make_policy(config: Config, state: DistillState):
    """(init_carry, policy): the student, policy(carry, obs [S], key) -> ((), action [A], {})."""
    env = make_env(config)
    student = MLP(tuple(config.hidden_sizes), int(env.action_size))

    def init_carry(key: jax.Array):
        del key
        return ()

    def policy(carry, obs: jax.Array, key: jax.Array):
        del key
        return carry, jnp.tanh(student.apply(state.params, obs)), {}

    return init_carry, policy


def grid_leaves(config: Config) -> dict:
    """The student's learning rate (a leaf of its Adam state)."""
    from mbjax import optim

    del config
    return {"learning_rate": lambda state, v: state._replace(
        opt_state=optim.set_hyperparams(state.opt_state, learning_rate=v))}
