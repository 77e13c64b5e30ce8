"""pgwarden.aws, the one boto3 client factory: its settings reach botocore, botocore retries as configured, and
each program's clients come out of it prepared (the responder's guarded, the exporter's counted).

AWS itself is never reached: the endpoint is a closed local port, and botocore's `before-send` hook answers
each attempt with AWS's throttling error (what botocore sends, and how often, is real)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from botocore.awsrequest import AWSResponse

from devtools.motoserver import FAKE_CREDENTIALS
from exporter.aws.clients import ApiStats, ClientFactory
from exporter.aws.config import AWSConfig
from pgwarden.aws import AwsClients, ClientSettings
from responder.aws import AwsConfig, RdsApi, UngatedEffect

REGION = "eu-west-1"
NOWHERE = "http://127.0.0.1:9"  # discard: nothing answers there
THROTTLED = (
    b"<ErrorResponse><Error><Type>Sender</Type><Code>Throttling</Code><Message>Rate exceeded</Message>"
    b"</Error><RequestId>r</RequestId></ErrorResponse>"
)


@pytest.fixture(autouse=True)
def fake_credentials(monkeypatch: pytest.MonkeyPatch, tmp_path: Any) -> None:
    for key, value in FAKE_CREDENTIALS.items():
        monkeypatch.setenv(key, value)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-aws-config"))
    for key in ("AWS_ENDPOINT_URL", "AWS_PROFILE", "AWS_MAX_ATTEMPTS", "AWS_RETRY_MODE"):
        monkeypatch.delenv(key, raising=False)


class _Body:
    def __init__(self, data: bytes) -> None:
        self.data = data

    def stream(self, **_: Any) -> Iterator[bytes]:
        yield self.data


class Throttled:
    """A before-send hook: every request is answered 400 Throttling without leaving the process; counted."""

    def __init__(self) -> None:
        self.sent: list[str] = []

    def __call__(self, request: Any, **_: Any) -> AWSResponse:
        self.sent.append(request.url)
        return AWSResponse(request.url, 400, {"Content-Type": "text/xml"}, _Body(THROTTLED))  # type: ignore[arg-type]


def test_settings_reach_botocore() -> None:
    settings = ClientSettings(
        max_attempts=4,
        retry_mode="adaptive",
        connect_timeout=2.0,
        read_timeout=7.0,
        endpoint_url=NOWHERE,
        user_agent_extra="pgwarden-test",
    )
    client = AwsClients(settings).client("rds", REGION)
    assert client.meta.config.retries == {"mode": "adaptive", "total_max_attempts": 5}
    assert (client.meta.config.connect_timeout, client.meta.config.read_timeout) == (2.0, 7.0)
    assert client.meta.config.user_agent_extra == "pgwarden-test"
    assert (client.meta.endpoint_url, client.meta.region_name) == (NOWHERE, REGION)


@pytest.mark.parametrize("retries", [0, 1, 2])
def test_a_throttled_call_is_retried_max_attempts_times_then_raised(retries: int) -> None:
    throttled = Throttled()
    clients = AwsClients(
        ClientSettings(max_attempts=retries, endpoint_url=NOWHERE),
        prepare=[lambda c: c.meta.events.register("before-send", throttled)],
    )
    client = clients.client("rds", REGION)
    with pytest.raises(client.exceptions.ClientError, match="Throttling"):
        client.describe_db_instances()
    assert len(throttled.sent) == retries + 1


def test_the_endpoint_comes_from_the_environment_when_not_set(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_ENDPOINT_URL", NOWHERE)
    assert AwsClients().client("secretsmanager", REGION).meta.endpoint_url == NOWHERE


def test_every_responder_client_refuses_an_ungated_change_before_sending() -> None:
    rds = RdsApi(AwsConfig(REGION, NOWHERE, timeout=3.0))
    changes: list[tuple[Any, Callable[[Any], object]]] = [
        (rds.client(), lambda c: c.delete_db_instance(DBInstanceIdentifier="prod", SkipFinalSnapshot=True)),
        (rds.client("us-east-1"), lambda c: c.modify_db_instance(DBInstanceIdentifier="prod")),
        (rds.secrets_client(), lambda c: c.put_secret_value(SecretId="s", SecretString="x")),
    ]
    for client, change in changes:
        throttled = Throttled()
        client.meta.events.register("before-send", throttled)
        assert client.meta.config.retries == {"mode": "standard", "total_max_attempts": 4}
        assert client.meta.config.read_timeout == 3.0
        with pytest.raises(UngatedEffect):
            change(client)
        assert throttled.sent == []


def test_the_exporter_clients_carry_its_retries_and_count_every_attempted_call() -> None:
    config = AWSConfig.model_validate(
        {
            "endpoint_url": NOWHERE,
            "retries": {"max_attempts": 2, "connect_timeout": "1s", "read_timeout": "4s"},
        }
    )
    stats = ApiStats()
    client: Any = ClientFactory(config, stats).rds("", REGION)
    assert client.meta.config.retries == {"mode": "standard", "total_max_attempts": 3}
    assert (client.meta.config.connect_timeout, client.meta.config.read_timeout) == (1.0, 4.0)
    throttled = Throttled()
    client.meta.events.register("before-send", throttled)
    with pytest.raises(client.exceptions.ClientError):
        client.describe_db_instances()
    calls, errors, _ = stats.snapshot()
    assert len(throttled.sent) == 3
    assert calls == {("rds", "DescribeDBInstances"): 1} and errors == {("rds", "Throttling"): 1}
