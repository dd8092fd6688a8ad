"""The event model and NATS plumbing. No domain decisions live here."""
