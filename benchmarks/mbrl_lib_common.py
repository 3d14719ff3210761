"""What mbrl-lib's side of the benchmarks shares: its PETS ensemble configuration.

Imported by benchmarks/mbrl_lib_cem.py and benchmarks/mbrl_lib_model_training.py, which run as
scripts inside mbrl-lib's own virtualenv (.mbrl_venv/, `bash benchmarks/setup_mbrl_lib.sh`), so
this module imports nothing of mbjax and nothing at module level.
"""

from __future__ import annotations


def ensemble_conf(cfg: dict, propagation_method: str) -> dict:
    """The `dynamics_model` and base `algorithm` entries of an mbrl-lib config for a Gaussian
    ensemble of cfg["ensemble_size"] x cfg["hidden"] (equal widths, SiLU) on obs
    cfg["obs_size"] + action cfg["action_size"], predicting normalized state deltas."""
    hidden = list(cfg["hidden"])
    if len(set(hidden)) != 1:
        raise ValueError(f"mbrl-lib's GaussianMLP needs equal hidden widths, got {hidden}")
    return {
        "device": "cpu",
        "dynamics_model": {
            "_target_": "mbrl.models.GaussianMLP",
            "_recursive_": False,
            "device": "cpu",
            "num_layers": len(hidden),
            "in_size": int(cfg["obs_size"]) + int(cfg["action_size"]),
            "out_size": int(cfg["obs_size"]),
            "ensemble_size": int(cfg["ensemble_size"]),
            "hid_size": hidden[0],
            "deterministic": False,
            "propagation_method": propagation_method,
            "learn_logvar_bounds": False,
            "activation_fn_cfg": {"_target_": "torch.nn.SiLU"},
        },
        "algorithm": {
            "learned_rewards": False,
            "target_is_delta": True,
            "normalize": True,
            "normalize_double_precision": True,
        },
    }
