"""gitflags server: the read-only HTTP API over a compiled snapshot (not built yet)."""
