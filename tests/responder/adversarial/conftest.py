"""The notify fixtures (tests/responder/notify/fixtures.py): a journal, local Slack, Teams and PagerDuty."""

from tests.responder.notify.fixtures import journal, pagerduty, slack_api, slack_webhook, teams

__all__ = ["journal", "pagerduty", "slack_api", "slack_webhook", "teams"]
