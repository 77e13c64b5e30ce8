"""Guarded schema migrations (`pgwarden-responder migrate lint|run|backfill|status`): the runbook's "Schema
Migrations" section, built on the responder's gate, journal and recovery engine.

- `settings`: the `migrations:` section of responder.yml.
- `lint`: squawk's rules plus what only a tool connected to the target can know.
- `run`: pre-flight, snapshot, the migration tool's command under timeouts, the lock watchdog, retries.
- `backfill`: batched updates by primary key, resumable; the same engine serves the `purge_rows` playbook.
"""
