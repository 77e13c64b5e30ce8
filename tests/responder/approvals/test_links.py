"""Approval links: only the approver they were made for, unaltered, in time, while their token is configured."""

from __future__ import annotations

import pytest
import time_machine

from responder.approvals.links import LinkError, approval_url, sign_link, verify_link
from responder.principals import Principal

ALICE = Principal("alice", "approver", "alice-token-" + "a" * 20)
BOB = Principal("bob", "approver", "bob-token-" + "b" * 22)
VICTOR = Principal("victor", "viewer", "victor-token-" + "v" * 20)
EVERYONE = (ALICE, BOB, VICTOR)


def test_a_link_names_its_approver_and_decision() -> None:
    url = approval_url("https://pgwarden.example.internal/", ALICE, 42)
    assert url.startswith("https://pgwarden.example.internal/ui/confirm/")
    claim = verify_link(url.rsplit("/", 1)[1], EVERYONE)
    assert (claim.action_id, claim.approver) == (42, "alice")
    assert claim.nonce != verify_link(sign_link(ALICE, 42), EVERYONE).nonce  # each link its own nonce


def test_viewers_get_no_link() -> None:
    with pytest.raises(LinkError):
        sign_link(VICTOR, 1)


@pytest.mark.parametrize("tamper", ["name", "action", "truncate", "garbage", "empty"])
def test_altered_links_decide_nothing(tamper: str) -> None:
    token = sign_link(ALICE, 7)
    rest = token.partition(".")[2]
    forged = {
        "name": sign_link(BOB, 7).partition(".")[0] + "." + rest,  # bob's claim under alice's signature
        "action": sign_link(ALICE, 8).partition(".")[0] + "." + rest,
        "truncate": token[:-3],
        "garbage": "../../etc/passwd",
        "empty": "",
    }[tamper]
    with pytest.raises(LinkError):
        verify_link(forged, EVERYONE)


def test_a_link_dies_with_its_approvers_token() -> None:
    token = sign_link(ALICE, 9)
    with pytest.raises(LinkError):
        verify_link(token, (BOB,))  # alice removed from the config
    rotated = Principal("alice", "approver", "alice-new-token-" + "c" * 20)
    with pytest.raises(LinkError):
        verify_link(token, (rotated, BOB))
    demoted = Principal("alice", "viewer", ALICE.token)
    with pytest.raises(LinkError):
        verify_link(token, (demoted,))


def test_a_link_expires() -> None:
    with time_machine.travel(1_800_000_000, tick=False):
        token = sign_link(ALICE, 3)
    with time_machine.travel(1_800_000_000 + 3599, tick=False):
        assert verify_link(token, EVERYONE).action_id == 3
    with time_machine.travel(1_800_000_000 + 3602, tick=False), pytest.raises(LinkError, match="expired"):
        verify_link(token, EVERYONE)
