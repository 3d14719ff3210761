"""The RSSM world model (PlaNet, Dreamer v1, DreamerV3): see `model` for the time convention and
how an agent keeps the filter, `losses` for the DreamerV3 losses, `config` for the settings."""

from mbjax.models.rssm.config import RSSMConfig
from mbjax.models.rssm.latent import Latent
from mbjax.models.rssm.losses import KLTerms, LossTerms, kl_balance
from mbjax.models.rssm.model import (
    Functions,
    Observed,
    RSSMModel,
    RSSMState,
    SeqBatch,
    make_functions,
    make_rssm,
    sequences_to_batch,
    set_learning_rate,
)
from mbjax.models.rssm.transforms import symexp, symlog, twohot, twohot_decode, twohot_mean

__all__ = [
    "Functions", "KLTerms", "Latent", "LossTerms", "Observed", "RSSMConfig", "RSSMModel",
    "RSSMState", "SeqBatch", "kl_balance", "make_functions", "make_rssm", "sequences_to_batch",
    "set_learning_rate", "symexp", "symlog", "twohot", "twohot_decode", "twohot_mean",
]
