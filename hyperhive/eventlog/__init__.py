"""The sqlite event log: the store, its sinks, the projector, replay, verify and queries."""
