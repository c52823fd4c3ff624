"""Browser tests: Debian's Chromium driven by Playwright (never `playwright install`)."""

import os
import shutil

import pytest

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--headless",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]

# Playwright's sync API runs an event loop in the test thread; Django's ORM calls
# made by fixtures in that thread are still synchronous and safe.
os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")


def pytest_collection_modifyitems(config, items):
    if os.path.exists(CHROMIUM):
        return
    if os.environ.get("CLOSELOOP_REQUIRE_BROWSER"):
        raise pytest.UsageError(f"Browser tests are required but no Chromium at {CHROMIUM}")
    skip = pytest.mark.skip(reason="Chromium not installed (apt-get install chromium)")
    for item in items:
        if "browser" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(scope="session")
def browser_type_launch_args(browser_type_launch_args):
    return {**browser_type_launch_args, "executable_path": CHROMIUM, "args": CHROMIUM_ARGS}


@pytest.fixture
def browser_context_args(browser_context_args):
    return {
        **browser_context_args,
        "locale": "zh-CN",
        "timezone_id": "Asia/Shanghai",
        "viewport": {"width": 1400, "height": 900},
    }


JOURNEY_PASSWORD = "journey-pass-1"


@pytest.fixture
def open_as(browser, browser_context_args, live_server):
    """A logged-in page for a user, each in its own browser context (own session)."""
    contexts = []

    def _open(user):
        user.set_password(JOURNEY_PASSWORD)
        user.save()
        context = browser.new_context(**browser_context_args)
        contexts.append(context)
        page = context.new_page()
        page.goto(f"{live_server.url}/accounts/login/")
        page.fill("input[name=username]", user.username)
        page.fill("input[name=password]", JOURNEY_PASSWORD)
        page.click("button[type=submit]")
        page.wait_for_load_state()
        return page

    yield _open
    for context in contexts:
        context.close()
