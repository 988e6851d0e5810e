"""The embedded default: a private redis-server, local worker processes, process helpers."""
