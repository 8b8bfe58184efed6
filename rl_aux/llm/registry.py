"""Caption string -> integer id, with a fixed capacity so the reward table's shape never changes.

Id 0 is reserved for "overflow" (its table row is always zero), so ids past capacity pay
nothing and are counted instead of growing the table (which would retrace the jitted update).
"""

from __future__ import annotations

import threading

OVERFLOW_ID = 0


class CaptionRegistry:
    """Thread-safe interning of captions into ids 1..capacity-1; new ids are reported once."""

    def __init__(self, capacity: int):
        if capacity < 2:
            raise ValueError(f"llm.table_size={capacity} must be >= 2 (row 0 is the overflow row)")
        self.capacity = capacity
        self._ids: dict[str, int] = {}
        self._texts: list[str] = ["<overflow>"]
        self._lock = threading.Lock()
        self.overflow = 0  # lookups that did not fit

    def __len__(self) -> int:
        return len(self._texts) - 1

    def text(self, cid: int) -> str:
        return self._texts[cid]

    def intern(self, caption: str) -> tuple[int, bool]:
        """(id, is_new). Past capacity: (OVERFLOW_ID, False) and the overflow counter grows."""
        with self._lock:
            cid = self._ids.get(caption)
            if cid is not None:
                return cid, False
            if len(self._texts) >= self.capacity:
                self.overflow += 1
                return OVERFLOW_ID, False
            cid = len(self._texts)
            self._ids[caption] = cid
            self._texts.append(caption)
            return cid, True
