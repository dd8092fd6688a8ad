"""The event catalogue, one module per domain. `hyperhive.bus.events` joins them."""
