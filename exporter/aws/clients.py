"""boto3 clients per (account, region, service), assumed roles via STS, and the count of every call made."""

from __future__ import annotations

import os
import threading
import time
from collections import Counter
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from exporter.aws.config import AWSConfig
from pgwarden.aws import AwsClients, ClientSettings

if TYPE_CHECKING:
    from mypy_boto3_cloudwatch import CloudWatchClient
    from mypy_boto3_ec2 import EC2Client
    from mypy_boto3_rds import RDSClient
    from mypy_boto3_service_quotas import ServiceQuotasClient

Service = Literal["rds", "cloudwatch", "sts", "ec2", "service-quotas"]
DEFAULT_ACCOUNT = ""  # the exporter's own credentials; a role account is its 12-digit id
REFRESH_BEFORE = 300.0  # re-assume a role this long before its credentials expire


class ApiStats:
    """Thread-safe counters of AWS calls, errors and CloudWatch metrics requested (the billed unit)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.calls: Counter[tuple[str, str]] = Counter()
        self.errors: Counter[tuple[str, str]] = Counter()
        self.metrics_requested = 0

    def record_call(self, api: str, operation: str, metrics: int = 0) -> None:
        with self._lock:
            self.calls[(api, operation)] += 1
            self.metrics_requested += metrics

    def record_error(self, api: str, code: str) -> None:
        with self._lock:
            self.errors[(api, code)] += 1

    def snapshot(self) -> tuple[dict[tuple[str, str], int], dict[tuple[str, str], int], int]:
        with self._lock:
            return dict(self.calls), dict(self.errors), self.metrics_requested


@dataclass
class _Credentials:
    key: str
    secret: str
    token: str
    expires: float


class ClientFactory:
    """Caches clients per (account, service, region); every client counts its calls into `stats` through
    botocore events. The clients themselves, with their retries and timeouts, come from `pgwarden.aws`."""

    def __init__(self, config: AWSConfig, stats: ApiStats, env: dict[str, str] | None = None) -> None:
        self.config = config
        self.stats = stats
        env = dict(os.environ) if env is None else env
        self.endpoint_url = config.endpoint_url or env.get("AWS_ENDPOINT_URL") or None
        settings = ClientSettings(
            max_attempts=config.retries.max_attempts,
            connect_timeout=config.retries.connect_timeout,
            read_timeout=config.retries.read_timeout,
            endpoint_url=self.endpoint_url,
            user_agent_extra="pgwarden-exporter",
        )
        # boto3 is loaded here: an exporter without an `aws:` section never loads it (~15 MB of RSS).
        self.aws = AwsClients(settings)
        self._roles = {a.account_id: a for a in config.accounts}
        self._credentials: dict[str, _Credentials] = {}
        self._clients: dict[tuple[str, str, str], tuple[str, Any]] = {}
        self._lock = threading.Lock()

    def rds(self, account: str, region: str) -> RDSClient:
        client: RDSClient = self._client(account, "rds", region)
        return client

    def cloudwatch(self, account: str, region: str) -> CloudWatchClient:
        client: CloudWatchClient = self._client(account, "cloudwatch", region)
        return client

    def ec2(self, account: str, region: str) -> EC2Client:
        client: EC2Client = self._client(account, "ec2", region)
        return client

    def service_quotas(self, account: str, region: str) -> ServiceQuotasClient:
        client: ServiceQuotasClient = self._client(account, "service-quotas", region)
        return client

    def _client(self, account: str, service: Service, region: str) -> Any:
        with self._lock:
            creds = self._role_credentials(account) if account != DEFAULT_ACCOUNT else None
            key = (account, service, region)
            cached = self._clients.get(key)
            wanted = creds.key if creds else ""
            if cached is None or cached[0] != wanted:  # new, or the role was re-assumed: new credentials
                cached = self._clients[key] = (wanted, self._new_client(service, region, creds))
            return cached[1]

    def _new_client(self, service: Service, region: str, creds: _Credentials | None) -> Any:
        keys = None
        if creds is not None:
            keys = {
                "aws_access_key_id": creds.key,
                "aws_secret_access_key": creds.secret,
                "aws_session_token": creds.token,
            }
        client = self.aws.client(service, region, keys)
        self._count_calls(client, service)
        return client

    def _count_calls(self, client: Any, api: str) -> None:
        stats = self.stats

        def before_parameter_build(
            model: Any, params: dict[str, Any], context: dict[str, Any], **_: Any
        ) -> None:
            if model.name == "GetMetricData":  # the billed unit, read before serialisation
                context["pgwarden_metrics"] = len(params.get("MetricDataQueries") or ())

        def before_call(model: Any, context: dict[str, Any], **_: Any) -> None:
            stats.record_call(api, model.name, context.get("pgwarden_metrics", 0))

        def after_call(http_response: Any, parsed: dict[str, Any], model: Any, **_: Any) -> None:
            if http_response is not None and http_response.status_code >= 300:
                stats.record_error(api, str(parsed.get("Error", {}).get("Code") or http_response.status_code))

        def after_call_error(exception: Exception, **_: Any) -> None:
            stats.record_error(api, type(exception).__name__)

        client.meta.events.register("before-parameter-build", before_parameter_build)
        client.meta.events.register("before-call", before_call)
        client.meta.events.register("after-call", after_call)
        client.meta.events.register("after-call-error", after_call_error)

    def _role_credentials(self, account: str) -> _Credentials:
        creds = self._credentials.get(account)
        if creds is not None and creds.expires - time.time() > REFRESH_BEFORE:
            return creds
        role = self._roles.get(account)
        if role is None:
            raise UnknownAccount(account)
        sts = self._new_client("sts", _sts_region(self.config), None)
        params: dict[str, Any] = {"RoleArn": role.role_arn, "RoleSessionName": role.session_name}
        if role.external_id:
            params["ExternalId"] = role.external_id
        got = sts.assume_role(**params)["Credentials"]
        creds = _Credentials(
            got["AccessKeyId"], got["SecretAccessKey"], got["SessionToken"], got["Expiration"].timestamp()
        )
        self._credentials[account] = creds
        return creds


class UnknownAccount(Exception):
    """No role is configured for this account id."""


def _sts_region(config: AWSConfig) -> str:
    if config.discover is not None:
        return config.discover.regions[0]
    regions = [r for a in config.accounts for r in a.regions]
    return regions[0] if regions else "us-east-1"
