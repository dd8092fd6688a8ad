"""c0re: the hive's single decision-maker. `state` (the fold), `decide` (the rules),
`deadlines` (what is due), `service` (the command service), `lifecycle` (backends)."""
