"""Finding inline code a strict Content-Security-Policy would block (tests/security)."""

from __future__ import annotations

import re
from html.parser import HTMLParser

URL_ATTRIBUTES = {"href", "src", "action", "formaction", "data", "hx-get", "hx-post"}


def parse_policy(header: str) -> dict[str, list[str]]:
    policy = {}
    for part in header.split(";"):
        words = part.split()
        if words:
            policy[words[0]] = words[1:]
    return policy


class InlineCodeFinder(HTMLParser):
    """Collects what a strict CSP would block (or what needs the nonce to run)."""

    def __init__(self, nonce: str | None) -> None:
        super().__init__(convert_charrefs=True)
        self.nonce = nonce
        self.problems: list[str] = []
        self.scripts = 0

    def handle_starttag(self, tag, attrs):
        values = dict(attrs)
        if tag in {"script", "style"}:
            self.scripts += tag == "script"
            if self.nonce is None or values.get("nonce") != self.nonce:
                self.problems.append(f"<{tag}> without the response's nonce: {values}")
        for name, value in attrs:
            if name.startswith("on"):
                self.problems.append(f"inline handler {name}= on <{tag}>")
            elif name == "style":
                self.problems.append(f"style= attribute on <{tag}>")
            elif name.startswith("hx-on"):
                self.problems.append(f"{name}= (htmx inline handler) on <{tag}>")
            elif (
                name in URL_ATTRIBUTES
                and value
                and re.sub(r"\s", "", value).lower().startswith("javascript:")
            ):
                self.problems.append(f"javascript: URL in {name}= on <{tag}>")

    handle_startendtag = handle_starttag


def inline_code_problems(response) -> list[str]:
    header = response.get("Content-Security-Policy", "")
    policy = parse_policy(header)
    if not header:
        return ["no Content-Security-Policy header"]
    nonces = [w for w in policy.get("script-src", []) if w.startswith("'nonce-")]
    # Without a nonce in the header (a page that never asked for one) no script may appear.
    nonce = nonces[0][len("'nonce-") : -1] if nonces else None
    finder = InlineCodeFinder(nonce)
    finder.feed(response.content.decode())
    return finder.problems
