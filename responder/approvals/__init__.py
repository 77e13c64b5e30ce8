"""Approvals outside the console: signed links for any receiver, and Slack's buttons."""
