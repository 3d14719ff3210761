"""A tiny anti-aliased 2-D rasterizer in pure JAX: signed distances evaluated on the pixel grid.

Every shape is one primitive, an oriented rounded box (a box of half-size `half`, rotated by
`angle`, inflated by `radius`), which covers what the 2-D task scenes need:
  * rectangle: radius 0;   * capsule (a pole): half = (length / 2, 0);   * disc: half = (0, 0);
  * ring (a target marker): any of these with `shell > 0` (the outline |d| - shell).

Rendering K shapes is a handful of array ops, with no loop over pixels or shapes: the signed
distance of every pixel centre to every shape ([K, H, W]), a one-pixel linear ramp from distance to
coverage (anti-aliasing: a pixel half inside an edge is half covered), and painter's-order
"over" compositing written as a reversed cumulative product (the light that reaches the eye from
shape k is its coverage times the transmittance of every shape drawn after it). So it jits, vmaps
over a batch of states, and differentiates (not needed here, but free).
"""

from __future__ import annotations

from typing import NamedTuple, Sequence

import jax
import jax.numpy as jnp
import numpy as np


class Shapes(NamedTuple):
    """K primitives, drawn in order (later ones on top). All float32.

    center: [K, 2] world (x, y); angle: [K] radians, counter-clockwise; half: [K, 2] box half-size
    before rounding; radius: [K] rounding (a capsule's / disc's radius); shell: [K] half-width of
    an outline (0 = filled); color: [K, 3] RGB in [0, 1]; alpha: [K] opacity in [0, 1] (0 hides
    a shape without changing K, so a scene's shape count stays static under jit).
    """

    center: jax.Array
    angle: jax.Array
    half: jax.Array
    radius: jax.Array
    shell: jax.Array
    color: jax.Array
    alpha: jax.Array


class View(NamedTuple):
    """The square world window an image shows: centre (x, y) and width, in world units."""

    x: float
    y: float
    width: float


def shape(
    center, color, *, half=(0.0, 0.0), radius=0.0, angle=0.0, shell=0.0, alpha=1.0
) -> Shapes:
    """One primitive (a K = 1 `Shapes`); arguments may be traced scalars / [2] arrays."""

    def f(x, n):
        return jnp.reshape(jnp.asarray(x, jnp.float32), (1, n) if n else (1,))

    return Shapes(
        center=f(center, 2), angle=f(angle, 0), half=f(half, 2), radius=f(radius, 0),
        shell=f(shell, 0), color=f(color, 3), alpha=f(alpha, 0),
    )


def capsule(p0, p1, radius, color, **kw) -> Shapes:
    """A segment p0 -> p1 ([2] each) thickened by `radius` (round ends)."""
    p0, p1 = jnp.asarray(p0, jnp.float32), jnp.asarray(p1, jnp.float32)
    d = p1 - p0
    length = jnp.sqrt(jnp.sum(d * d) + 1e-12)
    half = jnp.stack([0.5 * length, jnp.zeros_like(length)])
    return shape(0.5 * (p0 + p1), color, half=half, radius=radius,
                 angle=jnp.arctan2(d[1], d[0]), **kw)


def concat(parts: Sequence[Shapes]) -> Shapes:
    """Stacks shapes in drawing order."""
    return Shapes(*(jnp.concatenate(leaves, axis=0) for leaves in zip(*parts, strict=True)))


def pixel_grid(view: View, size: int) -> np.ndarray:
    """World coordinates of the pixel centres: [size, size, 2]; row 0 is the top of the image."""
    px = view.width / size
    offsets = (np.arange(size, dtype=np.float32) + 0.5) * px - 0.5 * view.width
    xs = view.x + offsets
    ys = view.y - offsets  # image rows grow downwards, world y upwards
    return np.stack(np.meshgrid(xs, ys, indexing="xy"), axis=-1).astype(np.float32)


def signed_distance(shapes: Shapes, grid: jax.Array) -> jax.Array:
    """Distance of every pixel to every shape's boundary, negative inside: [K, H, W]."""
    rel = grid[None] - shapes.center[:, None, None, :]  # [K, H, W, 2]
    cos = jnp.cos(shapes.angle)[:, None, None]
    sin = jnp.sin(shapes.angle)[:, None, None]
    # Rotate into each box's frame (by -angle), then the exact rounded-box distance.
    lx = cos * rel[..., 0] + sin * rel[..., 1]
    ly = -sin * rel[..., 0] + cos * rel[..., 1]
    qx = jnp.abs(lx) - shapes.half[:, 0, None, None]
    qy = jnp.abs(ly) - shapes.half[:, 1, None, None]
    outside = jnp.sqrt(jnp.maximum(qx, 0.0) ** 2 + jnp.maximum(qy, 0.0) ** 2)
    inside = jnp.minimum(jnp.maximum(qx, qy), 0.0)
    d = outside + inside - shapes.radius[:, None, None]
    shell = shapes.shell[:, None, None]
    return jnp.where(shell > 0.0, jnp.abs(d) - shell, d)


def rasterize(shapes: Shapes, view: View, size: int, background) -> jax.Array:
    """Anti-aliased RGB image of `shapes` over a flat `background` ([3] RGB in [0, 1]).

    Returns float32 [size, size, 3] in [0, 1]; `to_uint8` converts. `view` and `size` are static.
    """
    grid = jnp.asarray(pixel_grid(view, size))
    pixel = view.width / size
    d = signed_distance(shapes, grid)
    # Coverage ramps from 1 to 0 across one pixel centred on the edge (a box-filter estimate).
    cover = jnp.clip(0.5 - d / pixel, 0.0, 1.0) * shapes.alpha[:, None, None]  # [K, H, W]
    # after[k] = prod_{j > k} (1 - cover_j): how much of shape k stays visible.
    through = jnp.cumprod((1.0 - cover)[::-1], axis=0)[::-1]  # prod_{j >= k}
    after = jnp.concatenate([through[1:], jnp.ones_like(through[:1])], axis=0)
    weight = cover * after
    image = jnp.einsum("khw,kc->hwc", weight, shapes.color)
    return image + through[0][..., None] * jnp.asarray(background, jnp.float32)


def to_uint8(image: jax.Array) -> jax.Array:
    """float [..., 3] in [0, 1] -> uint8 (rounded)."""
    return jnp.round(jnp.clip(image, 0.0, 1.0) * 255.0).astype(jnp.uint8)
