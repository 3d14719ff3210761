"""Camera images of MuJoCo Playground (dmc/*) envs by MJX ray casting, in pure JAX.

One ray per pixel from a model camera (`mujoco.mjx.ray`: nearest geom hit and its distance),
coloured by the geom's material (or geom) RGBA with simple shading: an analytic surface normal
per geom type, a light from above plus a headlight, a checker on planes (the DM Control floor
grid), and a sky gradient where nothing is hit.

Limits (what `mjx.ray` intersects): planes, spheres, capsules, ellipsoids, boxes and convex
meshes. Cylinders and height fields are not hit, so they are invisible; textures other than the
floor checker are not drawn; no shadows. Geoms in groups 3-5 (collision-only in DM Control, hidden
by MuJoCo's viewer by default) and fully transparent geoms are skipped. Cost: H * W rays, each
tested against every visible geom, so frames/s falls with the geom count (meshes are the
slowest); see `mbjax/render/__init__.py` for measured numbers.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import mujoco
import numpy as np

SKY_TOP = np.array([0.35, 0.5, 0.75], np.float32)
SKY_HORIZON = np.array([0.75, 0.82, 0.9], np.float32)
# MuJoCo's default visible geom groups (mjvOption.geomgroup): 0, 1, 2 on; 3, 4, 5 off.
VISIBLE_GROUPS = (1, 1, 1, 0, 0, 0)
CHECKER = 0.5  # floor checker square size in metres (DM Control's grid is about this size)


def _camera_id(mj_model: Any, camera: int | str) -> int:
    if isinstance(camera, str):
        cam = mujoco.mj_name2id(mj_model, mujoco.mjtObj.mjOBJ_CAMERA, camera)
        if cam < 0:
            raise ValueError(f"mbjax.render: the model has no camera named {camera!r}")
        return cam
    if not 0 <= int(camera) < mj_model.ncam:
        raise ValueError(
            f"mbjax.render: camera={camera!r} is invalid; the model has {mj_model.ncam} camera(s)"
        )
    return int(camera)


def _camera_rays(fovy_deg: float, size: int) -> np.ndarray:
    """Ray directions in the camera frame (x right, y up, looking along -z): [size * size, 3]."""
    half = np.tan(np.deg2rad(fovy_deg) / 2.0)
    t = ((np.arange(size, dtype=np.float32) + 0.5) / size * 2.0 - 1.0) * half
    u, v = np.meshgrid(t, -t, indexing="xy")  # row 0 = top of the image
    dirs = np.stack([u, v, -np.ones_like(u)], axis=-1).reshape(-1, 3)
    return (dirs / np.linalg.norm(dirs, axis=-1, keepdims=True)).astype(np.float32)


def _local_normal(gtype: jax.Array, size: jax.Array, p: jax.Array, vec: jax.Array) -> jax.Array:
    """Outward surface normal at hit point p, all in the geom's frame (types: mjtGeom)."""
    # int(): comparing a traced array with the mjtGeom enum itself is always False.
    plane, sphere, capsule_t, ellipsoid_t, box_t = (int(t) for t in (
        mujoco.mjtGeom.mjGEOM_PLANE, mujoco.mjtGeom.mjGEOM_SPHERE, mujoco.mjtGeom.mjGEOM_CAPSULE,
        mujoco.mjtGeom.mjGEOM_ELLIPSOID, mujoco.mjtGeom.mjGEOM_BOX))
    z = jnp.array([0.0, 0.0, 1.0])
    capsule = p - z * jnp.clip(p[2], -size[1], size[1])
    ellipsoid = p / jnp.maximum(size**2, 1e-9)
    scaled = jnp.abs(p) / jnp.maximum(size, 1e-9)
    box = jax.nn.one_hot(jnp.argmax(scaled), 3) * jnp.sign(p)
    normal = jnp.select(
        [gtype == plane, gtype == sphere, gtype == capsule_t, gtype == ellipsoid_t,
         gtype == box_t],
        [z, p, capsule, ellipsoid, box],
        -vec,  # meshes: flat, facing the camera
    )
    return normal / jnp.maximum(jnp.linalg.norm(normal), 1e-9)


def _shade(geoms: dict, d: Any, vec: jax.Array, dist: jax.Array, gid: jax.Array,
           origin: jax.Array) -> jax.Array:
    """RGB in [0, 1] of one ray: [3]. geoms: per-geom 'type' [G], 'size' [G, 3], 'rgba' [G, 4]."""
    hit = gid >= 0
    g = jnp.maximum(gid, 0)
    rot = d.geom_xmat[g]
    point = origin + dist * vec
    local = rot.T @ (point - d.geom_xpos[g])
    gtype = geoms["type"][g]
    normal = rot @ _local_normal(gtype, geoms["size"][g], local, rot.T @ vec)
    normal = jnp.where(jnp.dot(normal, vec) > 0, -normal, normal)  # face the camera
    light = 0.35 + 0.45 * jnp.maximum(normal[2], 0.0) + 0.3 * jnp.maximum(-jnp.dot(normal, vec), 0)
    checker = (jnp.floor(local[0] / CHECKER) + jnp.floor(local[1] / CHECKER)) % 2
    is_plane = gtype == int(mujoco.mjtGeom.mjGEOM_PLANE)
    light = light * jnp.where(is_plane, 0.75 + 0.5 * checker, 1.0)
    color = jnp.clip(geoms["rgba"][g, :3] * light, 0.0, 1.0)
    sky = SKY_HORIZON + (SKY_TOP - SKY_HORIZON) * jnp.clip(vec[2], 0.0, 1.0)
    return jnp.where(hit, color, sky)


def _texture_mean(mj_model: Any, tex: int) -> np.ndarray:
    """Mean RGB in [0, 1] of texture `tex` (stands in for the texture: we do not map it)."""
    n = mj_model.tex_width[tex] * mj_model.tex_height[tex] * mj_model.tex_nchannel[tex]
    adr = mj_model.tex_adr[tex]
    data = np.asarray(mj_model.tex_data[adr:adr + n], np.float32)
    data = data.reshape(-1, mj_model.tex_nchannel[tex])[:, :3]
    return data.mean(axis=0) / 255.0


def _geom_colors(mj_model: Any) -> np.ndarray:
    """[ngeom, 4] RGBA per geom, as MuJoCo would tint it: the material's rgba where the geom has a
    material (times its RGB texture's mean colour, e.g. DM Control's dark-blue floor grid), else
    the geom's own rgba."""
    matid = np.asarray(mj_model.geom_matid)
    mat_rgba = np.asarray(mj_model.mat_rgba, np.float32).copy()
    rgb_role = int(mujoco.mjtTextureRole.mjTEXROLE_RGB)
    for mat in range(mj_model.nmat):
        tex = int(np.asarray(mj_model.mat_texid)[mat, rgb_role])
        if tex >= 0 and mj_model.tex_type[tex] == int(mujoco.mjtTexture.mjTEXTURE_2D):
            mat_rgba[mat, :3] *= _texture_mean(mj_model, tex)
    rgba = np.where((matid >= 0)[:, None], mat_rgba[np.maximum(matid, 0)],
                    np.asarray(mj_model.geom_rgba, np.float32))
    return rgba.astype(np.float32)


def make_mjx_renderer(task: Any, size: int = 64, camera: int | str = 0):
    """render_fn(data: mjx.Data) -> uint8 [size, size, 3] for a Playground env `task`.

    camera: a camera id or name of the model (default 0, DM Control's usual pixel camera).
    The camera pose is read from `data.cam_xpos / cam_xmat`, so tracking cameras follow.
    """
    from mujoco import mjx

    mj_model = task.mj_model
    m = task.mjx_model
    cam = _camera_id(mj_model, camera)
    rays_cam = jnp.asarray(_camera_rays(float(mj_model.cam_fovy[cam]), size))
    rgba = _geom_colors(mj_model)
    geoms = {
        "type": jnp.asarray(np.asarray(mj_model.geom_type), jnp.int32),
        "size": jnp.asarray(np.asarray(mj_model.geom_size), jnp.float32),
        "rgba": jnp.asarray(rgba),
    }

    def render_fn(d: Any) -> jax.Array:
        origin = d.cam_xpos[cam]
        vecs = rays_cam @ d.cam_xmat[cam].T  # camera frame -> world: [size * size, 3]

        def one(vec):
            dist, gid = mjx.ray(m, d, origin, vec, geomgroup=VISIBLE_GROUPS)
            return _shade(geoms, d, vec, dist, gid, origin)

        image = jax.vmap(one)(vecs).reshape(size, size, 3)
        return jnp.round(image * 255.0).astype(jnp.uint8)

    return render_fn
