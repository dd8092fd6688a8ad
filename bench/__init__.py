"""`python -m bench`: hyperhive's bus measured against the raw NATS, sqlite and msgspec walls."""
