"""The engine: state machine, executor loop, dispatchers, leases."""
