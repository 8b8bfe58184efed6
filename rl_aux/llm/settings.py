"""`llm.*` settings: the endpoint, the cache and the mode (the API key is an env-var NAME).

Imports nothing from the `llm` extra, so every config can be composed without it.
"""

from __future__ import annotations

import dataclasses

from rl_aux.typed_config import spec

MODES = ("online", "record", "replay", "off")  # see rl_aux/llm/judge.py


def sampling_of(cfg) -> dict:
    """The sampling parameters of a config (part of every cache key, client or not)."""
    return {"temperature": cfg.temperature, "max_tokens": cfg.max_tokens, "seed": cfg.seed}


@dataclasses.dataclass(frozen=True)
class LLMConfig:
    mode: str = spec("replay", choices=MODES)  # online | record | replay | off
    cache_path: str = "llm_cache/llm.sqlite"
    base_url: str = "http://127.0.0.1:8080/v1"
    model: str = "gemma-3-270m-q4_k_m"
    api_key_env: str = "RL_AUX_LLM_API_KEY"  # name of the env var holding the key
    timeout_s: float = spec(30.0, gt=0.0)
    max_retries: int = spec(2, ge=0)
    backoff_s: float = spec(0.5, ge=0.0)
    concurrency: int = spec(4, ge=1)
    json_mode: str = spec("json_schema", choices=("json_schema", "json_object", "none"))
    temperature: float = spec(0.0, ge=0.0)
    max_tokens: int = spec(128, ge=1)
    seed: int = 0
