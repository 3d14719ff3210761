"""`python -m <module> <args>` for the bad-input tests, without paying the interpreter start.

A bad-input case is ~0.1 s of mbjax and ~2 s of starting Python and importing JAX, flax, optax
and orbax; with ~150 such cases that start-up was minutes of the suite. So each test worker
starts ONE server process (this file run as a script) that imports those libraries once and then,
per request, forks a child that runs the module exactly as `python -m` does
(`runpy.run_module(..., run_name="__main__", alter_sys=True)`) with the request's argv, working
directory and environment, its stdin at /dev/null and its stdout/stderr in files; the child's
exit status (SystemExit code, 1 after an uncaught exception, as the interpreter does) and output
come back as a `subprocess.CompletedProcess`.

Forking is safe because the server never starts a JAX backend (checked before every fork): the
child creates its own, like a fresh process. Requests whose environment changes a `JAX_*`
variable (read by JAX at import) run as a real subprocess instead.
"""

from __future__ import annotations

import atexit
import json
import os
import subprocess
import sys
import tempfile
from typing import Any

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
_server: subprocess.Popen | None = None


def run(module: str, *args: str, env: dict[str, str] | None = None,
        timeout: float = 300) -> subprocess.CompletedProcess:
    """`python -m module *args` in the repository root; `env` defaults to os.environ."""
    env = dict(os.environ if env is None else env)
    jax_vars = {k: v for k, v in env.items() if k.startswith("JAX_")}
    if jax_vars != {k: v for k, v in os.environ.items() if k.startswith("JAX_")}:
        return subprocess.run([sys.executable, "-m", module, *args], cwd=ROOT, env=env,
                              capture_output=True, text=True, timeout=timeout)
    server = _start_server()
    server.stdin.write(json.dumps({"module": module, "args": list(args), "env": env,
                                   "timeout": timeout}) + "\n")
    server.stdin.flush()
    reply = json.loads(server.stdout.readline())
    if reply["returncode"] is None:
        raise subprocess.TimeoutExpired([module, *args], timeout, reply["stdout"], reply["stderr"])
    return subprocess.CompletedProcess([sys.executable, "-m", module, *args], reply["returncode"],
                                       reply["stdout"], reply["stderr"])


def _start_server() -> subprocess.Popen:
    global _server
    if _server is None or _server.poll() is not None:
        _server = subprocess.Popen([sys.executable, os.path.abspath(__file__)], cwd=ROOT,
                                   stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        atexit.register(_server.kill)
    return _server


# ------------------------------------------------------------------------------ the server side


def _child(request: dict[str, Any], out_path: str, err_path: str) -> None:
    """In the forked child: run the module as `python -m` would, then exit with its status."""
    import runpy
    import traceback

    code = 0
    try:
        devnull = os.open(os.devnull, os.O_RDONLY)
        os.dup2(devnull, 0)
        for fd, path in ((1, out_path), (2, err_path)):
            os.dup2(os.open(path, os.O_WRONLY | os.O_TRUNC), fd)
        os.chdir(ROOT)
        os.environ.clear()
        os.environ.update(request["env"])
        sys.argv = [request["module"], *request["args"]]
        runpy.run_module(request["module"], run_name="__main__", alter_sys=True)
    except SystemExit as exc:
        if exc.code is None or isinstance(exc.code, int):
            code = exc.code or 0
        else:
            print(exc.code, file=sys.stderr)
            code = 1
    except BaseException:  # noqa: BLE001 - reported as the interpreter would
        traceback.print_exc()
        code = 1
    finally:
        try:
            atexit._run_exitfuncs()
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(code)


def _wait(pid: int, timeout: float) -> int | None:
    """The child's exit status, or None (child killed) after `timeout` seconds."""
    import time

    deadline = time.monotonic() + timeout
    while True:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            return os.waitstatus_to_exitcode(status)
        if time.monotonic() > deadline:
            os.kill(pid, 9)
            os.waitpid(pid, 0)
            return None
        time.sleep(0.01)


def _serve() -> None:
    import flax.linen  # noqa: F401 - the libraries every CLI imports, imported once here
    import jax  # noqa: F401
    import optax  # noqa: F401
    import orbax.checkpoint  # noqa: F401
    from jax._src import xla_bridge

    import experiments.cli  # noqa: F401
    import mbjax.agents  # noqa: F401
    import mbjax.envs  # noqa: F401

    for line in sys.stdin:
        request = json.loads(line)
        assert not xla_bridge._backends, "the server must not start a JAX backend before fork"
        # Plain files, not a TemporaryDirectory: its exit hook would run in the child too.
        paths = []
        for _ in range(2):
            fd, path = tempfile.mkstemp(prefix="mbjax_cli_")
            os.close(fd)
            paths.append(path)
        sys.stdout.flush()
        pid = os.fork()
        if pid == 0:
            _child(request, *paths)
        code = _wait(pid, request["timeout"])
        with open(paths[0]) as f_out, open(paths[1]) as f_err:
            reply = {"returncode": code, "stdout": f_out.read(), "stderr": f_err.read()}
        for path in paths:
            os.remove(path)
        sys.stdout.write(json.dumps(reply) + "\n")
        sys.stdout.flush()


if __name__ == "__main__":
    sys.path.insert(0, ROOT)
    _serve()
