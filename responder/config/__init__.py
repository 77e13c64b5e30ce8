"""The responder's configuration, in the two stages of `pgwarden.config`: `schema` (stage 1: the strict shape of
responder.yml) and `resolve` (stage 2: secrets, cross-references, each playbook's params, into the frozen
`Config`). Every error carries its key path (`playbooks.3.params.max_class`), and all are reported at once.
"""

from __future__ import annotations

from responder.config.advice import warnings
from responder.config.resolve import (
    Config,
    ConfigError,
    Match,
    Playbook,
    Schedule,
    Server,
    build_config,
    load_config,
    resolve,
    summary,
)

__all__ = [
    "Config",
    "ConfigError",
    "Match",
    "Playbook",
    "Schedule",
    "Server",
    "build_config",
    "load_config",
    "resolve",
    "summary",
    "warnings",
]
