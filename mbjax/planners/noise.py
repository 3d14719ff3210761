"""Colored (power-law) noise along the horizon axis, for iCEM's temporally correlated samples."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np


def colored_noise(key: jax.Array, beta: float | jax.Array, shape: tuple[int, ...]) -> jax.Array:
    """Gaussian noise with power spectrum ~ 1/f^beta along axis -2 and unit variance per entry.

    shape: (..., H, A), e.g. [N, H, A]; each (..., a) series over H is independent.
    beta: [] exponent, a Python number or a (traced) array. beta = 0 is white noise; larger beta
    puts more power into low frequencies (smoother sequences; iCEM uses 2-3). Built in the
    frequency domain: random complex coefficients with amplitude f^(-beta/2), then an inverse
    real FFT. The zero frequency gets the amplitude of the lowest non-zero one (1/H), since 1/0
    has no meaning over a finite horizon.
    """
    horizon = shape[-2]
    batch = shape[:-2] + shape[-1:]  # the FFT runs over the last axis; H is moved there
    # Everything that depends only on H is static numpy; only the beta-dependent amplitudes
    # (F values, F = H // 2 + 1) are computed with jnp, so beta may be traced.
    freqs = np.fft.rfftfreq(horizon)  # [F]
    freqs[0] = 1.0 / horizon
    # DC (and Nyquist for even H) have no imaginary part; doubling their real variance keeps
    # beta = 0 exactly white.
    real_only = np.zeros(freqs.shape, bool)
    real_only[0] = True
    if horizon % 2 == 0:
        real_only[-1] = True
    beta = jnp.asarray(beta, jnp.float32)
    amp = jnp.power(jnp.asarray(freqs, jnp.float32), -beta / 2.0)  # [F]
    real_scale = jnp.asarray(np.where(real_only, np.sqrt(2.0), 1.0), jnp.float32) * amp
    imag_scale = jnp.asarray(np.where(real_only, 0.0, 1.0), jnp.float32) * amp
    if horizon == 1:
        # A single sample: irfft returns c_0 itself (no factor 1/H), already unit variance.
        real_scale, norm = jnp.ones((1,), jnp.float32), jnp.float32(1.0)
    else:
        # irfft: y_t = (1/H) [c_0 + 2 sum_k Re(c_k e^{2 pi i k t / H}) + c_{H/2} (-1)^t], so every
        # y_t has the same variance: (2 a_0^2 + 4 sum_k a_k^2 + [H even] 2 a_{H/2}^2) / H^2.
        weight = jnp.asarray(np.where(real_only, 2.0, 4.0), jnp.float32) * jnp.square(amp)
        norm = jnp.sqrt(weight.sum()) / horizon

    k_re, k_im = jax.random.split(key)
    f = len(freqs)
    re = jax.random.normal(k_re, batch + (f,)) * real_scale
    im = jax.random.normal(k_im, batch + (f,)) * imag_scale
    y = jnp.fft.irfft(re + 1j * im, n=horizon, axis=-1) / norm  # [..., A, H]
    return jnp.swapaxes(y, -1, -2)  # [..., H, A]
