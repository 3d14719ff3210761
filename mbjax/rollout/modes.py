"""Propagation modes: how N candidates x P particles are laid out on a model's member axis.

Each mode is one small function `layout(obs, actions, M, P, key) -> Layout` in the table
`MODES`; `propagation.propagate` runs the same horizon scan for all of them:

    x = layout.x0
    for t in range(H):                                # a lax.scan
        x, returns = layout.reorder((x, returns), aux_t)     # ts1 only: one gather
        xm, am = layout.to_members(x, actions_t, aux_t)      # [M, R, S], [M, R, A]
        step = transition(xm, am)                            # one batched model call
        x, reward, done = layout.from_members(step, aux_t)   # back to the mode's layout

Rows that ride the same member sit in the same slice, so every step is one stacked-member
matmul per layer (`[M, R, in] x [M, in, out]`), never M separate calls, and the layouts are
chosen so that to/from_members are free reshapes. A new mode is a new function and one table
entry (`moment_matching` is tsinf plus a refit-and-resample before each model call).
"""

from __future__ import annotations

from typing import Any, Callable, NamedTuple

import jax
import jax.numpy as jnp


class Layout(NamedTuple):
    """A mode's arrangement of particles (see the module docstring).

    x0: initial particle states [..., S] in the mode's layout.
    actions: per-step actions in the mode's layout, leading axis H.
    aux: per-step extras scanned along with the actions (leading axis H), or None.
    to_members(x, a_t, aux_t) -> (x [M, R, S], a [M, R, A]).
    from_members(tree of [M, R, ...], aux_t) -> the same tree in the mode's layout.
    particle_returns(returns in layout) -> [N, P'] (P' = 1 for expectation).
    trajectories(states [H, layout..., S]) -> [N, P', H, S].
    members(member_ids [M]) -> [N, P', H] model index used by each particle at each step.
    samples_noise: False where the mode propagates mean predictions (no aleatoric sample).
    reorder(tree, aux_t) -> tree: moves the particles (every leaf in the mode's layout; 0-d
      leaves are kept) at the start of a step; None: particles never move (all modes but ts1).
    """

    x0: jax.Array
    actions: jax.Array
    aux: Any
    to_members: Callable[..., tuple[jax.Array, jax.Array]]
    from_members: Callable[[Any, Any], Any]
    particle_returns: Callable[[jax.Array], jax.Array]
    trajectories: Callable[[jax.Array], jax.Array]
    members: Callable[[jax.Array], jax.Array]
    samples_noise: bool = True
    reorder: Callable[[Any, Any], Any] | None = None


def _tree(fn: Callable[[jax.Array], jax.Array]) -> Callable[[Any], Any]:
    return lambda tree: jax.tree_util.tree_map(fn, tree)


def expectation(obs: jax.Array, actions: jax.Array, m: int, p: int, key: jax.Array) -> Layout:
    """One particle per candidate through the members' mean prediction (no sampling)."""
    del p, key
    n, h, _ = actions.shape

    def to_members(x, a, aux):  # x [N, S], a [N, A]: every member sees every row
        return jnp.broadcast_to(x, (m,) + x.shape), jnp.broadcast_to(a, (m,) + a.shape)

    return Layout(
        x0=jnp.broadcast_to(obs, (n, obs.shape[-1])),
        actions=jnp.swapaxes(actions, 0, 1),
        aux=None,
        to_members=to_members,
        from_members=lambda tree, aux: _tree(lambda v: v.mean(0))(tree),
        particle_returns=lambda ret: ret[:, None],
        trajectories=lambda traj: jnp.swapaxes(traj, 0, 1)[:, None],
        members=lambda ids: jnp.full((n, 1, h), -1, jnp.int32),
        samples_noise=False,
    )


def _fixed_groups(n: int, m: int, g: int, size: int):
    """to/from members for a layout [M, N, G, ...] whose slice e rides member e."""

    def to_members(x, a, aux):  # x [M, N, G, S], a [N, A]
        ab = jnp.broadcast_to(a[None, :, None], (m, n, g, a.shape[-1]))
        return x.reshape(m, n * g, size), ab.reshape(m, n * g, -1)

    def from_members(tree, aux):
        return _tree(lambda v: v.reshape((m, n, g) + v.shape[2:]))(tree)

    return to_members, from_members


def tsinf(obs: jax.Array, actions: jax.Array, m: int, p: int, key: jax.Array) -> Layout:
    """TS-inf: particle e * G + g of every candidate rides member e for the whole horizon."""
    del key
    n, h, _ = actions.shape
    g, size = p // m, obs.shape[-1]
    to_members, from_members = _fixed_groups(n, m, g, size)

    def members(ids):
        return jnp.broadcast_to(jnp.repeat(ids, g)[None, :, None], (n, p, h))

    return Layout(
        x0=jnp.broadcast_to(obs, (m, n, g, size)),
        actions=jnp.swapaxes(actions, 0, 1),
        aux=None,
        to_members=to_members,
        from_members=from_members,
        particle_returns=lambda ret: jnp.transpose(ret, (1, 0, 2)).reshape(n, p),
        trajectories=lambda t: jnp.transpose(t, (2, 1, 3, 0, 4)).reshape(n, p, h, size),
        members=members,
    )


def ts1(obs: jax.Array, actions: jax.Array, m: int, p: int, key: jax.Array) -> Layout:
    """TS1: every step a uniform per-candidate permutation deals the P particles to the slots
    (slot j = e * G + g rides member e), so each particle redraws its member every step.

    Particles live in tsinf's slot layout [M, N, G, S]. perm_t[n, j] is the particle dealt to
    slot j at step t; it sat in slot inv_{t-1}[n, perm_t[n, j]] after step t-1, so a step moves
    the particles (and their running returns) with ONE gather of precomputed flat indices:
    no sort, scatter or transpose inside the horizon loop. Canonical particle order (particle
    i of candidate n) is restored once, at the end, from the last step's inverse.
    """
    n, h, _ = actions.shape
    g, size = p // m, obs.shape[-1]
    to_members, from_members = _fixed_groups(n, m, g, size)
    # All H permutations and their inverses in batched sorts, outside the horizon loop (they
    # depend only on the key, so XLA also hoists them out of a planner's iteration loop).
    perms = jnp.argsort(jax.random.uniform(key, (h, n, p)), axis=-1)  # [H, N, P]: particle
    inv = jnp.argsort(perms, axis=-1)  # [H, N, P]: slot of each particle
    # Before step 0 every particle is the same obs: any source order is right; identity.
    prev_inv = jnp.concatenate([jnp.broadcast_to(jnp.arange(p), (1, n, p)), inv[:-1]])
    src = jnp.take_along_axis(prev_inv, perms, axis=-1)  # [H, N, P]: source slot of slot j
    # Flat position in [M, N, G] of (candidate n, slot j), arranged in the target layout.
    flat = (src // g) * (n * g) + jnp.arange(n)[None, :, None] * g + src % g
    gather_idx = jnp.transpose(flat.reshape(h, n, m, g), (0, 2, 1, 3)).reshape(h, m * n * g)

    def reorder(tree, idx):
        def move(v):  # [M, N, G, ...] -> the same, particles moved to this step's slots
            if v.ndim == 0:
                return v
            return v.reshape((m * n * g,) + v.shape[3:])[idx].reshape(v.shape)

        return _tree(move)(tree)

    def canonical(v, inv_t):  # [M, N, G, ...] slots -> [N, P, ...] particles (inv_t [N, P])
        rest = v.shape[3:]
        v = jnp.swapaxes(v, 0, 1).reshape((n, p) + rest)
        return jnp.take_along_axis(v, inv_t.reshape(inv_t.shape + (1,) * len(rest)), axis=1)

    def trajectories(t):  # [H, M, N, G, S] -> [N, P, H, S]
        return jnp.transpose(jax.vmap(canonical)(t, inv), (1, 2, 0, 3))

    def members(ids):
        return jnp.transpose(ids[inv // g], (1, 2, 0))

    return Layout(
        x0=jnp.broadcast_to(obs, (m, n, g, size)),
        actions=jnp.swapaxes(actions, 0, 1),
        aux=gather_idx,
        to_members=to_members,
        from_members=from_members,
        particle_returns=lambda ret: canonical(ret, inv[-1]),
        trajectories=trajectories,
        members=members,
        reorder=reorder,
    )


def random_model(obs: jax.Array, actions: jax.Array, m: int, p: int, key: jax.Array) -> Layout:
    """Each candidate draws one member for the whole horizon and all its P particles use it.
    Balanced: a random permutation assigns ceil(N / M) candidates (padded) to each member."""
    n, h, a_size = actions.shape
    c = -(-n // m)  # candidates per member (padded)
    n_pad, size = c * m, obs.shape[-1]
    order = jax.random.permutation(key, n_pad)  # slot s = e * c + j holds candidate order[s]
    inv = jnp.argsort(order)
    padded = jnp.concatenate([actions, jnp.zeros((n_pad - n, h, a_size), actions.dtype)])
    acts = jnp.transpose(padded[order].reshape(m, c, h, a_size), (2, 0, 1, 3))  # [H, M, c, A]

    def to_members(x, a, aux):  # x [M, c, P, S], a [M, c, A]
        ab = jnp.broadcast_to(a[:, :, None], (m, c, p, a_size))
        return x.reshape(m, c * p, size), ab.reshape(m, c * p, a_size)

    def trajectories(t):  # [H, M, c, P, S] -> [N, P, H, S]
        t = t.reshape(h, n_pad, p, size)[:, inv][:, :n]
        return jnp.transpose(t, (1, 2, 0, 3))

    return Layout(
        x0=jnp.broadcast_to(obs, (m, c, p, size)),
        actions=acts,
        aux=None,
        to_members=to_members,
        from_members=lambda tree, aux: _tree(lambda v: v.reshape((m, c, p) + v.shape[2:]))(tree),
        particle_returns=lambda ret: ret.reshape(n_pad, p)[inv][:n],
        trajectories=trajectories,
        members=lambda ids: jnp.broadcast_to(ids[inv[:n] // c][:, None, None], (n, p, h)),
    )


def refit_and_resample(x: jax.Array, noise: jax.Array) -> jax.Array:
    """x [M, N, G, S] (tsinf's layout, P = M * G particles per candidate) -> P fresh draws per
    candidate from the Gaussian fitted to its particles (mean and unbiased covariance).

    noise [N, P, S]: standard normals. Draw = mean + noise @ C^1/2 with the symmetric square
    root from `eigh` (eigenvalues clipped at 0), so a singular covariance (at step 0 every
    particle is the same obs) is handled exactly, with no jitter.
    """
    m, n, g, size = x.shape
    p = m * g
    particles = jnp.swapaxes(x, 0, 1).reshape(n, p, size)
    mean = particles.mean(axis=1, keepdims=True)
    centred = particles - mean
    cov = jnp.einsum("npi,npj->nij", centred, centred) / max(p - 1, 1)
    eigval, eigvec = jnp.linalg.eigh(cov)
    root = jnp.einsum("nij,nj,nkj->nik", eigvec, jnp.sqrt(jnp.maximum(eigval, 0.0)), eigvec)
    draws = mean + noise @ root
    return jnp.swapaxes(draws.reshape(n, m, g, size), 0, 1)


def moment_matching(obs: jax.Array, actions: jax.Array, m: int, p: int, key: jax.Array) -> Layout:
    """MM (Chua et al. 2018, PETS, sec. 5): tsinf's member assignment, and after every step the P
    particles of each candidate are refitted to a Gaussian and resampled from it
    (`refit_and_resample`, done just before the next model call, so the returned trajectories
    are the model's outputs). The resampling normals [H, N, P, S] are drawn once, up front."""
    layout = tsinf(obs, actions, m, p, key)
    n, h, _ = actions.shape
    noise = jax.random.normal(key, (h, n, p, obs.shape[-1]), obs.dtype)

    def to_members(x, a, noise_t):
        return layout.to_members(refit_and_resample(x, noise_t), a, None)

    return layout._replace(aux=noise, to_members=to_members)


# mode name -> layout builder (obs [S], actions [N, H, A], members M, particles P, key)
MODES: dict[str, Callable[..., Layout]] = {
    "ts1": ts1,
    "tsinf": tsinf,
    "expectation": expectation,
    "random_model": random_model,
    "moment_matching": moment_matching,
}
# Modes whose P particles are split evenly over the M members.
GROUPED_MODES = ("ts1", "tsinf", "moment_matching")
