"""Console entry points: `hyperhive`, `hivectl`, `hive-events`."""
