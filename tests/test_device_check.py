"""benchmarks/device_check.py --quick end to end: every section recorded, the device named."""

import json
import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_quick_device_check_writes_every_section(tmp_path):
    out = tmp_path / "device_check.json"
    env = dict(os.environ, JAX_PLATFORMS="cpu", PYTHONUNBUFFERED="1")
    proc = subprocess.run(
        [sys.executable, "-m", "benchmarks.device_check", "--quick", f"--out={out}"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    payload = json.loads(out.read_text())
    assert payload["benchmark"] == "device_check" and payload["complete"] is True
    assert payload["device"]["device_kind"] and payload["device"]["platform"] == "cpu"
    assert payload["matmul_peak_flops"] > 0
    sections = payload["sections"]
    assert set(sections) == {"matmul_peak", "planner", "pets", "pets_envs", "env", "dreamer"}
    for name in ("matmul_peak", "planner", "pets", "pets_envs", "env", "dreamer"):  # untimed
        assert sections[name]["status"] in ("ok", "partial"), sections[name]
        assert not sections[name]["errors"] and sections[name]["rows"], sections[name]
    assert {r["seeds"] for r in sections["pets"]["rows"]} <= {1, 4}
    assert {r["num_envs"] for r in sections["pets_envs"]["rows"]} <= {1, 2}
    assert {r["batch"] for r in sections["planner"]["rows"]} <= {1, 8}
    (dreamer,) = sections["dreamer"]["rows"]
    assert dreamer["seeds"] == 1 and dreamer["seconds_per_update"] > 0
    assert sections["dreamer"]["updates_per_iteration"] >= 1
    assert not os.path.exists(f"{out}.tmp")
