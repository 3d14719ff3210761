"""Times one model fit in mbrl-lib (PyPI `mbrl` 0.2.0, CPU torch); runs INSIDE .mbrl_venv/.

    .mbrl_venv/bin/python benchmarks/mbrl_lib_model_training.py '{"obs_size": 18, ...}'

Prints one JSON object on the last line of stdout. Not part of mbjax: it imports only torch,
omegaconf, hydra and mbrl (installed by benchmarks/setup_mbrl_lib.sh), and is launched as a
subprocess by `python -m benchmarks.model_training --compare-mbrl-lib`.

One timed fit is what mbrl-lib's PETS/MBPO do per refit (mbrl/util/common.py
`train_model_and_save_model_and_data`, without saving to disk): split the replay buffer into
train/validation iterators (`get_basic_buffer_iterators`: a shuffled copy, `val_ratio` held out,
a `BootstrapIterator` over the training rows: one index set per member, a permutation of the
training rows with `bootstrap_permutes` (= mbjax's bootstrap=False) or a resample with
replacement (= bootstrap=True), visited in a new shuffled order each epoch),
refit the input normalizer on all stored rows, then `ModelTrainer.train(num_epochs=...)`: an
evaluation of the validation set before the first epoch, and per epoch one Adam step per
minibatch on all members plus one validation pass (per-member MSE, best-weights snapshot).
The model is built as in mbrl-lib's PETS example (`create_one_dim_tr_model`: a `GaussianMLP`
ensemble in a `OneDTransitionRewardModel`, SiLU, fixed log-variance bounds, normalized inputs in
double precision, delta targets, no reward head). The data are random transitions shaped like
the mbjax side's (values do not change the work). A warm-up fit runs first (allocator and lazy
initialisation), then `fits` timed fits on the same trainer (as a PETS run reuses it).

Config keys: obs_size, action_size, ensemble_size, hidden (equal widths: GaussianMLP has one
hid_size), rows (stored transitions), capacity, batch_size, epochs, val_ratio, learning_rate,
weight_decay (one value: mbrl-lib's ModelTrainer has one), bootstrap_permutes (default true),
fits (timed fits, default 3),
seed (default 0), threads (torch intra-op threads; default: torch's own choice).
"""

from __future__ import annotations

import json
import statistics
import sys
import time


def _model(cfg: dict):
    import mbrl.util.common
    import omegaconf
    from mbrl_lib_common import ensemble_conf

    obs_size, action_size = int(cfg["obs_size"]), int(cfg["action_size"])
    conf = omegaconf.OmegaConf.create(
        {**ensemble_conf(cfg, "fixed_model"), "overrides": {"num_elites": None}})
    return mbrl.util.common.create_one_dim_tr_model(conf, (obs_size,), (action_size,))


def _buffer(cfg: dict):
    """A ReplayBuffer holding `rows` random transitions (shaped like benchmarks.model_training)."""
    import mbrl.util.replay_buffer
    import numpy as np

    n, o, a = int(cfg["rows"]), int(cfg["obs_size"]), int(cfg["action_size"])
    rng = np.random.default_rng(int(cfg.get("seed", 0)))
    obs = rng.standard_normal((n, o)).astype(np.float32)
    act = rng.uniform(-1.0, 1.0, (n, a)).astype(np.float32)
    nxt = obs + 0.1 * np.tanh(obs + act.sum(-1, keepdims=True)) + 0.01 * rng.standard_normal(
        (n, o)).astype(np.float32)
    buf = mbrl.util.replay_buffer.ReplayBuffer(int(cfg["capacity"]), (o,), (a,), rng=rng)
    zeros = np.zeros(n, np.float32)
    buf.add_batch(obs, act, nxt.astype(np.float32), zeros, zeros.astype(bool), zeros.astype(bool))
    return buf


def _fit(cfg: dict, model, trainer, buf) -> None:
    """One refit, as mbrl.util.common.train_model_and_save_model_and_data does it."""
    import mbrl.util.common

    train, val = mbrl.util.common.get_basic_buffer_iterators(
        buf, int(cfg["batch_size"]), float(cfg["val_ratio"]), ensemble_size=len(model),
        shuffle_each_epoch=True, bootstrap_permutes=bool(cfg.get("bootstrap_permutes", True)),
    )
    model.update_normalizer(buf.get_all())
    trainer.train(train, dataset_val=val, num_epochs=int(cfg["epochs"]), patience=None,
                  improvement_threshold=0.01, silent=True)


def main(cfg: dict) -> dict:
    t_import = time.perf_counter()
    import mbrl
    import mbrl.models
    import torch

    import_s = time.perf_counter() - t_import
    if cfg.get("threads"):
        torch.set_num_threads(int(cfg["threads"]))
    torch.manual_seed(int(cfg.get("seed", 0)))
    model = _model(cfg)
    trainer = mbrl.models.ModelTrainer(model, optim_lr=float(cfg["learning_rate"]),
                                       weight_decay=float(cfg["weight_decay"]))
    buf = _buffer(cfg)
    t0 = time.perf_counter()
    _fit(cfg, model, trainer, buf)
    first_fit_s = time.perf_counter() - t0
    times, cpu = [], []
    for _ in range(int(cfg.get("fits", 3))):
        t, c = time.perf_counter(), time.process_time()
        _fit(cfg, model, trainer, buf)
        times.append(time.perf_counter() - t)
        cpu.append(time.process_time() - c)
    n_val = int(int(cfg["rows"]) * float(cfg["val_ratio"]))
    n_train = int(cfg["rows"]) - n_val
    sec = statistics.median(times)
    return {
        "mbrl_version": mbrl.__version__,
        "torch_version": torch.__version__,
        "torch_threads": torch.get_num_threads(),
        "import_s": import_s,
        "first_fit_s": first_fit_s,
        "seconds_per_fit": sec,
        "seconds_per_fit_min": min(times),
        "fit_times_s": times,
        "cpu_seconds_per_fit": statistics.median(cpu),
        "n_train": n_train,
        "n_val": n_val,
        "samples_per_s": int(cfg["epochs"]) * n_train / sec,
    }


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: mbrl_lib_model_training.py '<json config>'")
    result = main(json.loads(sys.argv[1]))
    print(json.dumps(result))
