"""GPU/TPU readiness: the XLA:CPU workarounds apply only on CPU, and the jitted chunks of plain
PPO/DQN runs hold no host callbacks and no float64 (checked on their lowered StableHLO)."""

from __future__ import annotations

import re

import pytest

from rl_aux import backend, cpu_rng, cpu_threads
from rl_aux.networks.network import NetworkConfig, effective_conv


@pytest.fixture(params=["gpu", "tpu"])
def off_cpu(request, monkeypatch):
    """Fake an accelerator backend for every rl_aux backend query."""
    monkeypatch.setattr(backend, "default_backend", lambda: request.param)
    return request.param


@pytest.fixture
def fresh_backend(monkeypatch):
    """No backend started yet and no user pool size: what configure_cpu_threads sees first."""
    from jax._src import xla_bridge

    monkeypatch.setattr(xla_bridge, "backends_are_initialized", lambda: False)
    monkeypatch.delenv(cpu_threads.ENV_VAR, raising=False)


def test_backend_is_predicted_without_starting_one():
    assert backend.platform_before_start("", [], []) == "cpu"
    assert backend.platform_before_start("cuda,cpu", [], []) == "gpu"
    assert backend.platform_before_start("", ["xla_cuda12"], ["nvidiactl", "null"]) == "gpu"
    # the plugin without the device: jax falls back to CPU, so do the workarounds
    assert backend.platform_before_start("", ["xla_cuda12"], ["null"]) == "cpu"
    assert backend.platform_before_start("", ["libtpu"], ["accel0"]) == "tpu"


def test_no_cpu_workaround_is_applied_off_cpu(off_cpu, fresh_backend, monkeypatch):
    env = {"XLA_FLAGS": "--xla_dump_to=/tmp/x"}
    assert backend.apply_cpu_xla_flags(env) is False
    assert env == {"XLA_FLAGS": "--xla_dump_to=/tmp/x"}
    registered = []
    from jax._src.interpreters import mlir

    monkeypatch.setattr(mlir, "register_lowering", lambda *a, **k: registered.append(a))
    assert cpu_rng.use_unrolled_threefry_on_cpu() is False and registered == []
    assert cpu_threads.configure_cpu_threads("auto", "mlp") is None
    assert cpu_threads.ENV_VAR not in __import__("os").environ
    assert effective_conv(NetworkConfig(torso="nature_cnn", conv="patches")) == "lax"
    assert effective_conv(NetworkConfig(conv="canonical", conv_off_cpu="same")) == "canonical"


def test_cpu_workarounds_still_apply_on_cpu(fresh_backend, monkeypatch):
    import os

    monkeypatch.setattr(backend, "default_backend", lambda: "cpu")
    env = {}
    assert backend.apply_cpu_xla_flags(env) is True
    assert env["XLA_FLAGS"] == f"{backend.CPU_SCHEDULER_FLAG}=false"
    assert backend.apply_cpu_xla_flags({"RL_AUX_XLA_CONCURRENT_SCHEDULER": "1"}) is False
    assert cpu_threads.configure_cpu_threads("auto", "mlp") == 1
    assert os.environ[cpu_threads.ENV_VAR] == "1"
    assert effective_conv(NetworkConfig(conv="patches")) == "patches"


def test_run_batching_defaults_to_vmap_everywhere():
    from experiments.compose import load_config

    assert load_config(["experiment=ppo_cartpole"]).run_batching == "vmap"


CALLBACK = re.compile(r"custom_call\s*@(\w*callback\w*)|call_target_name\s*=\s*\"(\w*callback\w*)")


@pytest.mark.parametrize("experiment", ["ppo_cartpole", "dqn_cartpole"])
def test_plain_chunk_has_no_host_callback_and_no_float64(experiment):
    from experiments.compose import load_config
    from experiments.train import build_agent
    from rl_aux.vectorize import init_seeds, vmapped_chunk

    _, agent = build_agent(load_config([f"experiment={experiment}", "agent.num_envs=2"]))
    state, axes = init_seeds(agent, 2)
    text = vmapped_chunk(agent, axes, 2, donate=False).lower(state).as_text()
    assert "custom_call" not in text or not CALLBACK.search(text), CALLBACK.findall(text)
    assert "f64" not in text
    if experiment != "dqn_cartpole":
        return
    # the check can see one: the same agent with a host callback inside is caught
    import jax

    def noisy(s):
        jax.debug.callback(lambda: None)
        return agent.train_chunk(s, 1)

    cb = jax.jit(jax.vmap(noisy, in_axes=(axes,), out_axes=(axes, 0))).lower(state).as_text()
    assert CALLBACK.search(cb)
