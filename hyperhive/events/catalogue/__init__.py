"""The event catalogue, one module per domain; `hyperhive.events.registry` joins them in one union."""
