"""Host side of the subgoal reward: captions -> ids -> async labels -> r_aux per rollout.

The host-stepped trainer calls `step_ids(prev_obs, actions, next_obs)` once per env step
(string work only, no LLM latency) and `rollout_rewards(ids, dones)` once per rollout (one
jitted table lookup). r_ext is untouched; r_aux goes to `extras["r_aux/subgoal"]`.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence

import jax.numpy as jnp
import numpy as np

from rl_aux.llm.annotator import Annotator
from rl_aux.llm.cache import LLMCache
from rl_aux.llm.caption import OBS_KEYS, CaptionConfig, captions
from rl_aux.llm.client import ChatClient, ClientConfig
from rl_aux.llm.embedder import Embedder
from rl_aux.llm.judge import LLMJudge
from rl_aux.llm.matcher import Matcher
from rl_aux.llm.prompts import Subgoal
from rl_aux.llm.registry import CaptionRegistry
from rl_aux.llm.settings import LLMConfig, sampling_of
from rl_aux.llm.table import rollout_aux_rewards
from rl_aux.typed_config import ConfigError


def subgoals_from_text(
    texts: Sequence[str], hints: Sequence[str] = (), ids: Sequence[str] = ()
) -> list[Subgoal]:
    """Subgoals given in the config as plain descriptions, each with an optional evidence hint
    (`reward.evidence_hints`) and id (`reward.subgoal_ids`; default: snake_case slugs) for the
    judge's prompt."""
    for field, vals in (("evidence_hints", hints), ("subgoal_ids", ids)):
        if vals and len(vals) != len(texts):
            raise ConfigError(
                f"reward.{field} has {len(vals)} entries but reward.subgoals has "
                f"{len(texts)}: give one per subgoal, or none ({field}=[])"
            )
    hints = list(hints) or [""] * len(texts)
    ids = list(ids) or [re.sub(r"\W+", "_", t.lower()).strip("_")[:40] for t in texts]
    if len(set(ids)) != len(ids):
        raise ConfigError(f"reward.subgoal_ids must be distinct, got {ids}")
    return [Subgoal(i, t, h) for i, t, h in zip(ids, texts, hints, strict=True)]


class SubgoalShaper:
    """Builds judge/matcher/annotator from `reward.*` (SubgoalRewardConfig) and `llm.*`.

    Also a host reward source for `agents.host_loop.HostPPO` (`name`, `host_keys`, `reset`).
    """

    name = "subgoal"  # rollouts get extras["r_aux/subgoal"]
    host_keys = OBS_KEYS  # the NLE arrays captions read

    def __init__(self, rcfg, lcfg: LLMConfig, action_names: Sequence[str], num_envs: int):
        self.rcfg, self.lcfg, self.action_names = rcfg, lcfg, list(action_names)
        self.kind = rcfg.kind
        self.cache = LLMCache(lcfg.cache_path)
        online = lcfg.mode in ("online", "record")
        client = ChatClient(ClientConfig.from_llm(lcfg)) if online else None
        mode = "off" if self.kind == "ellm" else lcfg.mode
        self.judge = LLMJudge(self.cache, client, mode, lcfg.model, sampling_of(lcfg))
        if (rcfg.evidence_hints or rcfg.subgoal_ids) and not rcfg.subgoals:
            raise ConfigError(
                "reward.evidence_hints and reward.subgoal_ids need reward.subgoals (one each)"
            )
        if rcfg.subgoals:
            self.subgoals = subgoals_from_text(rcfg.subgoals, rcfg.evidence_hints, rcfg.subgoal_ids)
        else:
            proposed = self.judge.propose(rcfg.task, rcfg.max_subgoals)
            if not proposed:
                raise ConfigError(
                    f"reward.subgoals is empty and no subgoals for reward.task={rcfg.task!r} "
                    f"could be had in llm.mode={lcfg.mode} (cache {lcfg.cache_path!r}); "
                    "list them in reward.subgoals or record them with llm.mode=record"
                )
            self.subgoals = proposed
        need_matcher = self.kind == "ellm" or rcfg.prefilter >= 0
        self.matcher = None
        if need_matcher:
            self.matcher = Matcher(Embedder(self.cache), self.subgoals, rcfg.threshold)
        self.registry = CaptionRegistry(rcfg.table_size)
        self.annotator = Annotator(
            "ellm" if self.kind == "ellm" else "judge",
            self.subgoals,
            rcfg.table_size,
            self.registry.text,
            judge=self.judge,
            matcher=self.matcher,
            prefilter=rcfg.prefilter if rcfg.prefilter >= 0 else None,
            workers=lcfg.concurrency,
        )
        self.caption_cfg = CaptionConfig(
            message=rcfg.caption_message, canonical_digits=rcfg.canonical_digits
        )
        self.frozen = False  # evaluation: no new labels, the table stays as it is
        self.num_envs = num_envs
        self.beta = jnp.asarray(rcfg.beta, jnp.float32)
        self.reset()

    def reset(self) -> None:
        """Forget per-episode completions (a new seed's envs start fresh episodes)."""
        self.achieved = jnp.zeros((self.num_envs, len(self.subgoals)), bool)

    def step_ids(
        self, prev_obs: Mapping, actions: Sequence[int] | np.ndarray, next_obs: Mapping
    ) -> np.ndarray:
        """[E] caption ids of one vector step.

        prev_obs/next_obs: [E, ...] arrays of the NLE keys in `caption.OBS_KEYS`, COPIED out of
        NLE's buffers (NLE overwrites them in place); next_obs holds the terminal observation
        (not the reset one) where an env ended.
        """
        names = [self.action_names[int(a)] for a in np.asarray(actions)]
        ids, new = [], []
        for text in captions(prev_obs, names, next_obs, self.caption_cfg):
            cid, is_new = self.registry.intern(text)
            ids.append(cid)
            if is_new:
                new.append(cid)
        if new and not self.frozen:
            self.annotator.submit(new)
        return np.asarray(ids, np.int32)

    def freeze(self, timeout: float | None = None) -> None:
        """Finish pending labels, then stop labelling (a fixed table for evaluation runs)."""
        self.annotator.drain(timeout)
        self.frozen = True

    def rollout_rewards(self, ids: np.ndarray, dones: np.ndarray) -> np.ndarray:
        """[T, E] r_aux for a rollout from the current table (per-episode first completions)."""
        r, self.achieved = rollout_aux_rewards(
            self.annotator.table(), jnp.asarray(ids), jnp.asarray(dones), self.achieved, self.beta
        )
        return np.asarray(r)

    def current_table(self) -> jnp.ndarray:
        """The [N_max, G] label table as it is now (DQN looks rewards up at sampling time)."""
        return self.annotator.table()

    def metrics(self) -> dict:
        n = len(self.registry)
        labelled = int(self.annotator.labelled[1 : n + 1].sum())
        s = self.judge.stats
        return {
            "llm/table_fill_rate": labelled / n if n else 0.0,
            "llm/captions": n,
            "llm/cache_hit_rate": s.hit_rate(),
            "llm/misses": s.misses,
            "llm/unknown": s.unknown,
            "llm/queries": s.queries,
            "llm/endpoint_down": s.endpoint_down,
            "llm/prefiltered": self.annotator.prefiltered,
            "llm/overflow": self.registry.overflow,
        }

    def close(self) -> None:
        self.annotator.close()
        self.cache.close()
