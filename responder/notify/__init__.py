"""Notifications: every decision reaches the people on call, where they talk (Slack, Teams, PagerDuty, a webhook)."""
