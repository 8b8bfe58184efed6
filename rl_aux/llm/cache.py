"""Persistent SQLite (WAL) cache of LLM answers and caption embeddings: the source of truth.

Keys are sha256(model | prompt version | canonical prompt | sampling params), so a new prompt
version or model never reads stale answers. A locked or corrupt file raises `CacheError` naming
the file. One connection guarded by a lock serves the annotator thread and the host loop.
"""

from __future__ import annotations

import hashlib
import json
import os
import sqlite3
import threading
import time
from typing import Any

import numpy as np

_SCHEMA = """
CREATE TABLE IF NOT EXISTS llm_cache (
    key TEXT PRIMARY KEY, model TEXT, prompt_version TEXT, request_json TEXT,
    response_text TEXT, parsed_json TEXT, created_at REAL);
CREATE TABLE IF NOT EXISTS embeddings (
    text TEXT, model_id TEXT, vec BLOB, PRIMARY KEY (text, model_id));
"""


class CacheError(RuntimeError):
    """The cache file cannot be used (locked by another writer, corrupt, not a database)."""


def cache_key(model: str, prompt_version: str, messages: list, sampling: dict) -> str:
    """sha256 of the model, the prompt version, the canonical prompt and the sampling params."""
    blob = json.dumps(
        {"model": model, "version": prompt_version, "messages": messages, "sampling": sampling},
        sort_keys=True,
        separators=(",", ":"),
    )
    return hashlib.sha256(blob.encode()).hexdigest()


class LLMCache:
    """`get/put` LLM answers by key; `get_vec/put_vec` embeddings by (text, model id)."""

    def __init__(self, path: str, timeout: float = 2.0):
        self.path = path
        self._lock = threading.Lock()
        d = os.path.dirname(os.path.abspath(path))
        os.makedirs(d, exist_ok=True)
        try:
            self._db = sqlite3.connect(path, timeout=timeout, check_same_thread=False)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.executescript(_SCHEMA)
            self._db.execute("SELECT count(*) FROM llm_cache").fetchone()
            self._db.commit()
        except sqlite3.OperationalError as e:
            raise CacheError(self._explain(e)) from None
        except sqlite3.DatabaseError as e:
            raise CacheError(f"LLM cache {path!r} is corrupt or not an SQLite file ({e})") from None

    def _explain(self, e: Exception) -> str:
        if "locked" in str(e) or "busy" in str(e):
            return (
                f"LLM cache {self.path!r} is locked by another process ({e}); "
                "stop the other writer or point llm.cache_path at another file"
            )
        return f"LLM cache {self.path!r} cannot be opened ({e})"

    def _run(self, sql: str, args: tuple = (), fetch: bool = False) -> Any:
        with self._lock:
            try:
                cur = self._db.execute(sql, args)
                if fetch:
                    return cur.fetchone()
                self._db.commit()
            except sqlite3.OperationalError as e:
                raise CacheError(self._explain(e)) from None
            except sqlite3.DatabaseError as e:
                raise CacheError(f"LLM cache {self.path!r} is corrupt ({e})") from None

    def get(self, key: str) -> dict | None:
        """The parsed answer stored under `key`, or None."""
        row = self._run("SELECT parsed_json FROM llm_cache WHERE key=?", (key,), fetch=True)
        return None if row is None else json.loads(row[0])

    def put(self, key: str, model: str, version: str, request: dict, text: str, parsed) -> None:
        self._run(
            "INSERT OR REPLACE INTO llm_cache VALUES (?,?,?,?,?,?,?)",
            (key, model, version, json.dumps(request), text, json.dumps(parsed), time.time()),
        )

    def get_vec(self, text: str, model_id: str) -> np.ndarray | None:
        row = self._run(
            "SELECT vec FROM embeddings WHERE text=? AND model_id=?", (text, model_id), fetch=True
        )
        return None if row is None else np.frombuffer(row[0], np.float32).copy()

    def put_vec(self, text: str, model_id: str, vec: np.ndarray) -> None:
        blob = np.asarray(vec, np.float32).tobytes()
        self._run("INSERT OR REPLACE INTO embeddings VALUES (?,?,?)", (text, model_id, blob))

    def db_mode(self) -> str:
        """The SQLite journal mode ('wal' when concurrent readers are safe)."""
        return str(self._run("PRAGMA journal_mode", fetch=True)[0]).lower()

    def count(self) -> int:
        return int(self._run("SELECT count(*) FROM llm_cache", fetch=True)[0])

    def close(self) -> None:
        with self._lock:
            self._db.close()
