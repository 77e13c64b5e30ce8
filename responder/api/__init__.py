"""The HTTP API's handlers, one module per concern; `responder.app` routes them.

- `auth`: who may call what (the bearer checks, as the one decorator `bearer(check)`);
- `webhook`: `POST /webhook`, from the body to the dispatcher and the reply;
- `actions`: `GET /actions`, `POST /actions/{id}/approve|reject`;
- `schedules`: `GET /schedules`, `POST /schedules/{name}/run`;
- `probes`: `GET /metrics`, `GET /healthz`;
- `slack`: `POST /integrations/slack/interactions`, Slack's Approve / Reject buttons.
"""
