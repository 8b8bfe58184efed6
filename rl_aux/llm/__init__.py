"""LLM-derived rewards for NLE/MiniHack: captions, cache, client, judge, matcher, reward table."""
