"""Per-episode caption history for sample-time reward lookup (DQN's replay).

A replayed transition is paid from the reward table as it is at sampling time, so it must carry
which captions came before it in its episode: `prior` [E, K], the distinct caption ids seen
earlier (0-padded; row 0 of the table pays 0). An episode with more than K distinct captions
keeps its first K and counts the rest in `overflow` (a later caption of a subgoal already done
by an unrecorded one could then pay twice).
"""

from __future__ import annotations

import numpy as np


class CaptionHistory:
    def __init__(self, num_envs: int, k: int):
        self.k = k
        self.prior = np.zeros((num_envs, k), np.int32)
        self.count = np.zeros(num_envs, np.int64)
        self.seen: list[set] = [set() for _ in range(num_envs)]
        self.overflow = 0

    def reset(self) -> None:
        self.prior[:] = 0
        self.count[:] = 0
        self.seen = [set() for _ in self.seen]

    def step(self, ids: np.ndarray, done: np.ndarray) -> np.ndarray:
        """[E, K] history before this step's `ids`; then records them, clearing where `done`."""
        out = self.prior.copy()
        for e, (cid, d) in enumerate(zip(np.asarray(ids), np.asarray(done), strict=True)):
            if d:
                self.prior[e] = 0
                self.count[e] = 0
                self.seen[e].clear()
            elif cid and cid not in self.seen[e]:
                self.seen[e].add(cid)
                if self.count[e] < self.k:
                    self.prior[e, self.count[e]] = cid
                    self.count[e] += 1
                else:
                    self.overflow += 1
        return out
