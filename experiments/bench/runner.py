"""Bench plumbing shared by every suite: worker subprocesses, hang detection, medians, CPU time.

Every measurement runs in its own `python -m experiments.bench --_worker KIND ...` process (XLA
flags and the CPU thread pool are fixed when a process starts its backend); the worker prints
one JSON line, which `run_worker` returns (or `{"error": [...]}`).
"""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
import tempfile
import time


def proc_cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of a process (all its threads), from /proc."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def cpu_seconds(pids: list[int]) -> tuple[float, float]:
    """(CPU seconds of this process, of the worker processes `pids`) so far."""
    r = resource.getrusage(resource.RUSAGE_SELF)
    workers = 0.0
    for pid in pids:
        try:
            workers += proc_cpu_seconds(pid)
        except OSError:  # a restarted worker (none expected in a bench): its time is lost
            continue
    return r.ru_utime + r.ru_stime, workers


def watch(cmd: list[str], env: dict, timeout: float, hang_s: float) -> tuple[int, str, str]:
    """Run cmd; kill it if it uses no CPU for `hang_s` seconds (an XLA:CPU deadlock leaves
    every thread idle) or runs past `timeout`. Returns (returncode, stdout, stderr)."""
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        p = subprocess.Popen(cmd, stdout=out, stderr=err, text=True, env=env)
        start = last_change = time.time()
        last_cpu = -1.0
        while p.poll() is None:
            time.sleep(1.0)
            try:
                cpu = proc_cpu_seconds(p.pid)
            except OSError:
                continue
            now = time.time()
            if cpu > last_cpu + 0.05:
                last_cpu, last_change = cpu, now
            if now - last_change > hang_s or now - start > timeout:
                p.kill()  # our own child, by its handle
                p.wait()
                why = "deadlocked: no CPU progress" if now - start <= timeout else "timed out"
                return -9, "", f"{why} after {now - start:.0f}s"
        out.seek(0)
        err.seek(0)
        return p.returncode, out.read(), err.read()


def run_worker(
    args: list[str], env_extra: dict | None = None, timeout: float = 3600, hang_s: float = 60
) -> dict:
    """One bench worker in a fresh subprocess; its JSON answer or {"error": [last line]}."""
    env = dict(os.environ, **(env_extra or {}))
    cmd = [sys.executable, "-m", "experiments.bench", "--_worker", *args]
    code, out, err = watch(cmd, env, timeout, hang_s)
    if code != 0:
        return {"error": (err or out).strip().splitlines()[-1:]}
    return json.loads(out.strip().splitlines()[-1])


def median_run(results: list[dict]) -> dict:
    """The run with the median steps/s (all repeats' steps/s kept); errors win: a hang is news."""
    bad = [r for r in results if "error" in r]
    if bad:
        return bad[0]
    ordered = sorted(results, key=lambda r: r["steps_per_s"])
    med = dict(ordered[(len(ordered) - 1) // 2])
    med["repeats_steps_per_s"] = [r["steps_per_s"] for r in results]
    return med


def machine() -> dict:
    """This machine and software, for a bench JSON (CPU count, versions, devices, XLA flags)."""
    import platform

    from rl_aux.run_store import run_metadata

    meta = run_metadata()
    return {
        "cpus": os.cpu_count(),
        "platform": platform.platform(),
        "versions": meta["versions"],
        "devices": meta["devices"],
        "xla_flags": os.environ.get("XLA_FLAGS", ""),
    }


def write_json(path: str | None, result: dict) -> None:
    """Write a suite's result (with the machine) to `path` when one was given."""
    if path:
        with open(path, "w") as f:
            json.dump({**result, "machine": machine()}, f, indent=2)
        print(f"wrote {path}")
