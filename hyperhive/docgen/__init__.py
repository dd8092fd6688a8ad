"""The docs that must never drift from the code, generated from it.

    python -m hyperhive.docgen           # rewrite the generated files that changed
    python -m hyperhive.docgen --check   # change nothing; exit 1 naming any stale file

`events` (the catalogue and its JSON schema), `configuration` (hive.toml, env,
flags) and `cli` (every command's reference) each declare `GENERATED`, a map of
file to renderer; `runner` checks or rewrites them. The test suite runs the
check, so a page that no longer says what the code does fails it.
"""
