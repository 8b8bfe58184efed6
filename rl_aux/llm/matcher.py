"""ELLM-style matcher (Du et al. 2023, Sec. 3: r = max_k cos(E(caption), E(goal_k)) if > T).

Cosine between MiniLM caption and subgoal embeddings: the no-LLM reward (`reward=ellm`) and a
pre-filter that keeps clearly irrelevant captions away from the LLM judge.
"""

from __future__ import annotations

import chex
import numpy as np

from rl_aux.llm.embedder import Embedder
from rl_aux.llm.prompts import Subgoal


def subgoal_text(g: Subgoal) -> str:
    """What a subgoal is matched by: its description (the evidence hint is for the judge)."""
    return g.description or g.id.replace("_", " ")


class Matcher:
    """`scores(captions) -> [N, G]` cosines; `achieved` thresholds them at `threshold`."""

    def __init__(self, embedder: Embedder, subgoals: list[Subgoal], threshold: float):
        self.embedder, self.subgoals, self.threshold = embedder, subgoals, threshold
        self.goal_vecs = embedder.embed([subgoal_text(g) for g in subgoals])

    def scores(self, captions: list[str]) -> np.ndarray:
        v = self.embedder.embed(captions)
        s = v @ self.goal_vecs.T
        chex.assert_shape(s, (len(captions), len(self.subgoals)))
        return s

    def achieved(self, captions: list[str]) -> np.ndarray:
        return self.scores(captions) > self.threshold

    def ellm_values(self, captions: list[str]) -> np.ndarray:
        """ELLM's reward row per caption: the cosine where it clears the threshold, else 0."""
        s = self.scores(captions)
        return np.where(s > self.threshold, s, 0.0).astype(np.float32)
