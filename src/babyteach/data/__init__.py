"""Data stage: fetch (official URL or local mirror) → clean → tokenizer → token shards."""
