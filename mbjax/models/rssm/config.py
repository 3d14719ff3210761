"""Static configuration of the RSSM world model (PlaNet / Dreamer v1 / DreamerV3)."""

from __future__ import annotations

import dataclasses

from mbjax import validation

ENCODERS = ("mlp", "conv")


@dataclasses.dataclass(frozen=True)
class RSSMConfig:
    """A recurrent state-space model: structure, losses and its fit.

    Structure (static): a deterministic GRU state of `deter` units; a stochastic latent of
    `stoch` dims, Gaussian when `classes` == 0 (PlaNet, Dreamer v1: std = softplus + `min_std`)
    or `stoch` categoricals of `classes` classes each (DreamerV2/V3) mixed with a uniform
    distribution by `unimix` (DreamerV3: 1%, so no class probability drops below
    unimix / classes and the KL stays bounded). `hidden` units in every MLP layer
    (LayerNorm + SiLU, as DreamerV3), `layers` per head. Encoder "mlp" for state vectors
    (symlog inputs), "conv" for uint8 images [image_size, image_size, image_channels] (a 4x4
    stride-2 conv stack of `depth`, 2*depth, ... channels down to 4x4, mirrored by the decoder).
    Reward: a twohot head over `bins` bins evenly spaced in symlog space in
    [-bin_range, bin_range] (DreamerV3: 255 bins in [-20, 20]).

    Losses (see `losses.py`): reconstruction + reward + continue, each scaled by `pred_scale`,
    plus `kl_dyn_scale` * max(free_bits, KL(sg(post) || prior)) + `kl_rep_scale` *
    max(free_bits, KL(post || sg(prior))). DreamerV3 defaults: free bits 1.0 nat, dyn 0.5,
    rep 0.1, pred 1.0.

    Fit: `fit_steps` Adam steps (learning_rate, eps `adam_eps`, global-norm clip `grad_clip`;
    DreamerV3 used 1e-4 (4e-5 in the first preprint) with clip 1000 and eps 1e-8) per `fit`
    call, each on `batch_size` sequences of `seq_len` consecutive transitions sampled with
    `replay.sample_sequences`. The learning rate is a float32 leaf of the optimizer state
    (`optax.inject_hyperparams`): changing it never recompiles.

    The defaults are a small DreamerV3-style model (DreamerV3's own sizes run from deter 2048 /
    hidden 256 to deter 8192 / hidden 1024; PlaNet: deter 200, stoch 30, classes 0).
    """

    deter: int = 512
    stoch: int = 32
    classes: int = 32
    hidden: int = 512
    layers: int = 2
    unimix: float = 0.01
    min_std: float = 0.1
    encoder: str = "mlp"
    image_size: int = 64
    image_channels: int = 3
    depth: int = 32
    bins: int = 255
    bin_range: float = 20.0
    free_bits: float = 1.0
    kl_dyn_scale: float = 0.5
    kl_rep_scale: float = 0.1
    pred_scale: float = 1.0
    learning_rate: float = 1e-4
    adam_eps: float = 1e-8
    grad_clip: float = 1000.0
    fit_steps: int = 100
    batch_size: int = 16
    seq_len: int = 64

    def __post_init__(self):
        for name in ("deter", "stoch", "hidden", "layers", "depth", "fit_steps", "batch_size",
                     "seq_len"):
            validation.field_int(self, name)
        validation.field_int(self, "classes", lo=0)
        if self.classes == 1:
            raise validation.field_error(self, "classes", "0 (Gaussian) or an int >= 2")
        validation.field_float(self, "unimix", 0.0, 1.0, hi_open=True)
        validation.field_float(self, "min_std", 0.0, lo_open=True)
        validation.field_choice(self, "encoder", ENCODERS)
        validation.field_int(self, "image_size", lo=8)
        size = self.image_size
        while size > 4 and size % 2 == 0:
            size //= 2
        if size != 4:
            raise validation.field_error(
                self, "image_size", "4 * 2**k with k >= 1 (8, 16, 32, 64...)")
        validation.field_int(self, "image_channels")
        validation.field_int(self, "bins", lo=3)
        validation.field_float(self, "bin_range", 0.0, lo_open=True)
        for name in ("free_bits", "kl_dyn_scale", "kl_rep_scale", "pred_scale"):
            validation.field_float(self, name, 0.0)
        for name in ("learning_rate", "adam_eps", "grad_clip"):
            validation.field_float(self, name, 0.0, lo_open=True)

    @property
    def stoch_size(self) -> int:
        """Size of the flattened stochastic latent: stoch * max(classes, 1)."""
        return self.stoch * max(self.classes, 1)

    @property
    def latent_size(self) -> int:
        """Size of the flat latent x = concat(deter, stoch flattened)."""
        return self.deter + self.stoch_size

    @property
    def conv_stages(self) -> int:
        """Stride-2 conv layers from image_size down to 4x4."""
        return (self.image_size // 4).bit_length() - 1
