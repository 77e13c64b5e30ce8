"""boto3 clients for both programs, made in one place: botocore's retries, the timeouts, the endpoint and the
user agent are configured once, in `ClientSettings`.

`AwsClients` makes every client of a program from one boto3 session with its settings, and runs the
program's `prepare` hooks on each before anyone can use it (the exporter counts calls; the responder makes
each client refuse a mutating call that did not pass its effect gate). boto3 is imported when the first
`AwsClients` is made: an exporter without AWS never loads it.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:
    from botocore.config import Config

# "adaptive" also slows the client down on its own after AWS throttles it.
RetryMode = Literal["standard", "adaptive"]
Prepare = Callable[[Any], object]


@dataclass(frozen=True, slots=True)
class ClientSettings:
    """How every client of one program talks to AWS."""

    max_attempts: int = 3  # botocore's `max_attempts`: retries of a call after its first attempt
    retry_mode: RetryMode = "standard"
    connect_timeout: float = 5.0
    read_timeout: float = 20.0
    endpoint_url: str | None = None  # None: AWS_ENDPOINT_URL when set (boto3 reads it), else AWS itself
    user_agent_extra: str | None = None

    def botocore_config(self) -> Config:
        from botocore.config import Config

        return Config(
            retries={"max_attempts": self.max_attempts, "mode": self.retry_mode},
            connect_timeout=self.connect_timeout,
            read_timeout=self.read_timeout,
            user_agent_extra=self.user_agent_extra,
        )


class AwsClients:
    """Makes boto3 clients with one program's settings, from one session; thread-safe."""

    def __init__(self, settings: ClientSettings | None = None, prepare: Sequence[Prepare] = ()) -> None:
        import boto3

        self.settings = settings or ClientSettings()
        self.config = self.settings.botocore_config()
        self.prepare = tuple(prepare)
        self._session: Any = boto3.session.Session()
        self._lock = threading.Lock()  # making clients from one session is not thread-safe

    def client(self, service: str, region: str, credentials: Mapping[str, str] | None = None) -> Any:
        """A new client of `service` in `region`, prepared; `credentials` (`aws_access_key_id`,
        `aws_secret_access_key`, `aws_session_token`: an assumed role's) instead of the default chain's."""
        with self._lock:
            client = self._session.client(
                service,
                region_name=region,
                endpoint_url=self.settings.endpoint_url,
                config=self.config,
                **(credentials or {}),
            )
        for hook in self.prepare:
            hook(client)
        return client
