"""The responder's console as a person uses it, for the demo: sign in with an approver's own token (the
sign-in form's CSRF token and cookie), then press Approve on a pending action (the session's CSRF token)."""

from __future__ import annotations

import re
import urllib.parse
import urllib.request
from http.cookiejar import CookieJar

CSRF = re.compile(r'name="csrf" value="([^"]+)"')


class Console:
    def __init__(self, url: str, token: str) -> None:
        self.url = url.rstrip("/")
        self.token = token
        self.csrf = ""
        self._browser = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(CookieJar()))

    def _open(self, path: str, form: dict[str, str] | None = None) -> tuple[str, str]:
        """(the final URL after redirects, the page) of a GET, or of a form POST."""
        data = urllib.parse.urlencode(form).encode() if form is not None else None
        with self._browser.open(f"{self.url}{path}", data=data, timeout=10) as resp:
            return str(resp.geturl()), resp.read().decode()

    def _csrf(self, page: str) -> str:
        found = CSRF.search(page)
        if found is None:
            raise RuntimeError("the console's page has no CSRF token")
        return found.group(1)

    def sign_in(self) -> None:
        _, form = self._open("/ui/login")
        landed, page = self._open("/ui/login", {"csrf": self._csrf(form), "token": self.token})
        if not landed.endswith("/ui"):
            raise RuntimeError(f"console sign-in refused (landed on {landed})")
        self.csrf = self._csrf(page)

    def approve(self, action_id: int) -> str:
        """Approve from the timeline's form; the console's answer (`approved`, `expired`, ...)."""
        if not self.csrf:
            self.sign_in()
        landed, _ = self._open(f"/ui/actions/{action_id}/approve", {"csrf": self.csrf})
        answer = urllib.parse.parse_qs(urllib.parse.urlsplit(landed).query).get("answer", ["?"])
        return answer[0]
