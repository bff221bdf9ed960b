"""A live uvicorn server for browser and end-to-end tests, plus the Chromium launcher.

The server runs ``console.asgi:application`` (HTTP and websockets) in a thread of the test
process, so it uses the test database and, in embedded mode, the same in-memory channel
layer; tests that use it need committed data (``transactional_db``).
"""

from __future__ import annotations

import os
import shutil
import socket
import threading
import time

import uvicorn

CHROMIUM = os.environ.get("WARDEN_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]
SCREENSHOTS = os.path.join(
    os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "test-artifacts", "screenshots"
)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class LiveServer:
    def __init__(self, host: str = "127.0.0.1", port: int | None = None) -> None:
        self.host = host
        self.port = port or free_port()
        self.url = f"http://{host}:{self.port}"
        self.ws_url = f"ws://{host}:{self.port}"
        config = uvicorn.Config(
            "console.asgi:application",
            host=host,
            port=self.port,
            lifespan="off",
            log_level="warning",
        )
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, name="uvicorn-test", daemon=True)

    def start(self) -> None:
        self.thread.start()
        deadline = time.monotonic() + 15
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("uvicorn did not start")
            time.sleep(0.02)

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)


def launch_browser():
    from playwright.sync_api import sync_playwright

    if not shutil.which(CHROMIUM) and not os.path.exists(CHROMIUM):
        import pytest

        pytest.skip(f"Chromium not installed at {CHROMIUM} (apt-get install -y chromium)")
    # Playwright's sync API keeps an event loop running in this thread; the tests still
    # call the ORM synchronously, which Django allows once told it is deliberate.
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    playwright = sync_playwright().start()
    browser = playwright.chromium.launch(
        executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True
    )
    return playwright, browser


def screenshot(page, name: str) -> str:
    """Save a 1280×800 screenshot under test-artifacts/screenshots/ for review."""
    os.makedirs(SCREENSHOTS, exist_ok=True)
    path = os.path.join(SCREENSHOTS, f"{name}.png")
    page.screenshot(path=path)
    return path


def login(page, server: LiveServer, username: str, password: str) -> None:
    page.goto(server.url + "/login/")
    page.fill("#id_username", username)
    page.fill("#id_password", password)
    page.click("button[type=submit]")
    page.wait_for_url(server.url + "/")
