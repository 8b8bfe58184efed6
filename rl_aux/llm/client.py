"""OpenAI-compatible chat client (vLLM, llama.cpp server, Ollama) over httpx.

Timeouts, bounded retries with exponential backoff, bounded concurrency, and JSON-constrained
output where the server supports it: `response_format` json_schema (OpenAI, vLLM), else
json_object with a `schema` (llama-cpp-python, Anyscale-style), else plain; a server that
rejects a form (HTTP 400/422, or a 500 naming response_format) is asked again with the
next one, and the client remembers.
The API key is read from an environment variable named in the config; it is never stored in
the config, repr'd, logged or cached.
"""

from __future__ import annotations

import dataclasses
import os
import threading
import time

import httpx

from rl_aux.llm.settings import LLMConfig, sampling_of
from rl_aux.typed_config import spec

JSON_FORMS = ("json_schema", "json_object", "none")


class EndpointError(RuntimeError):
    """The endpoint did not answer after the bounded retries (down, timing out, 5xx)."""


@dataclasses.dataclass(frozen=True)
class ClientConfig:
    base_url: str = "http://127.0.0.1:8080/v1"
    model: str = "gemma-3-270m-q4_k_m"
    api_key_env: str = "RL_AUX_LLM_API_KEY"  # the NAME of the variable, never the key
    timeout_s: float = spec(30.0, gt=0.0)
    connect_timeout_s: float = spec(2.0, gt=0.0)
    max_retries: int = spec(2, ge=0)
    backoff_s: float = spec(0.5, ge=0.0)
    concurrency: int = spec(4, ge=1)
    json_mode: str = spec("json_schema", choices=JSON_FORMS)  # the first form tried
    temperature: float = spec(0.0, ge=0.0)
    max_tokens: int = spec(128, ge=1)
    seed: int = 0

    @classmethod
    def from_llm(cls, lcfg: LLMConfig) -> ClientConfig:
        """The client settings of an `llm.*` config (the fields both have, by name)."""
        names = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in dataclasses.asdict(lcfg).items() if k in names})


class ChatClient:
    """`chat(messages, schema) -> text`; raises EndpointError when the endpoint is down."""

    def __init__(self, cfg: ClientConfig):
        self.cfg = cfg
        self._slots = threading.BoundedSemaphore(cfg.concurrency)
        timeout = httpx.Timeout(cfg.timeout_s, connect=cfg.connect_timeout_s)
        self._http = httpx.Client(base_url=cfg.base_url.rstrip("/"), timeout=timeout)
        self._json_forms = JSON_FORMS[JSON_FORMS.index(cfg.json_mode) :]
        self._forms_lock = threading.Lock()
        self.requests = 0
        self.failures = 0

    def __repr__(self) -> str:  # never show headers or the key
        return f"ChatClient(base_url={self.cfg.base_url!r}, model={self.cfg.model!r})"

    def sampling(self) -> dict:
        """The sampling parameters (part of the cache key)."""
        return sampling_of(self.cfg)

    def _headers(self) -> dict:
        key = os.environ.get(self.cfg.api_key_env, "")
        return {"Authorization": f"Bearer {key}"} if key else {}

    def _body(self, messages: list, schema: dict | None, form: str) -> dict:
        body = {"model": self.cfg.model, "messages": messages, **self.sampling()}
        if schema is not None and form == "json_schema":
            body["response_format"] = {
                "type": "json_schema",
                "json_schema": {"name": "answer", "schema": schema, "strict": True},
            }
        elif schema is not None and form == "json_object":
            body["response_format"] = {"type": "json_object", "schema": schema}
        return body

    def chat(self, messages: list, schema: dict | None = None) -> str:
        """The assistant's text for `messages`, constrained to `schema` where supported."""
        last: Exception | None = None
        for attempt in range(self.cfg.max_retries + 1):
            if attempt:
                time.sleep(self.cfg.backoff_s * 2 ** (attempt - 1))
            form = self._json_forms[0]
            with self._slots:
                self.requests += 1
                try:
                    r = self._http.post(
                        "/chat/completions",
                        json=self._body(messages, schema, form),
                        headers=self._headers(),
                    )
                except httpx.HTTPError as e:
                    last = e
                    continue
            rejected = r.status_code in (400, 422) or (
                r.status_code == 500 and "response_format" in r.text  # llama-cpp-python's way
            )
            if rejected and schema is not None and form != JSON_FORMS[-1]:
                self._drop_form(form)  # rejected: try the next form at once
                return self.chat(messages, schema)
            if r.status_code >= 500 or r.status_code == 429:
                last = EndpointError(f"HTTP {r.status_code}")
                continue
            if r.status_code >= 400:
                self.failures += 1
                raise EndpointError(f"HTTP {r.status_code} from {self.cfg.base_url}")
            try:
                return r.json()["choices"][0]["message"]["content"] or ""
            except (ValueError, KeyError, IndexError, TypeError):
                return r.text  # malformed envelope: the caller's parser decides
        self.failures += 1
        raise EndpointError(
            f"LLM endpoint {self.cfg.base_url} failed after {self.cfg.max_retries + 1} "
            f"attempts: {type(last).__name__}: {str(last)[:200]}"
        )

    def _drop_form(self, form: str) -> None:
        """Stop using `form` (the server rejected it). Only the form that was sent is dropped:
        concurrent requests that all met the same rejection must not drop the next forms too
        (they did, and the judge then ran unconstrained and answered unreadable text)."""
        with self._forms_lock:
            if self._json_forms[0] == form and len(self._json_forms) > 1:
                self._json_forms = self._json_forms[1:]

    def close(self) -> None:
        self._http.close()
