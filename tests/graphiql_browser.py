"""GraphiQL in headless Chromium (the system `chromium`), signed in through the admin login page."""

from __future__ import annotations

import contextlib
import shutil
import urllib.parse


@contextlib.contextmanager
def graphiql_running(base: str, username: str, query: str, *, path: str = "/"):
    """Log in as `username` (password "pw", the factories'), open GraphiQL at `path` with `query` and press
    run; yields the page (the result pane is `.result-window`)."""
    from playwright.sync_api import sync_playwright  # why: only the browser tests need Playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=shutil.which("chromium"), args=["--no-sandbox"])
        try:
            page = browser.new_page()
            page.goto(f"{base}/admin/login/?next=/admin/")
            page.fill("#id_username", username)
            page.fill("#id_password", "pw")
            page.click("input[type=submit]")
            page.wait_for_url(f"{base}/admin/")
            page.goto(f"{base}{path}#query={urllib.parse.quote(query)}")
            page.wait_for_selector(".graphiql-execute-button", timeout=20000)
            page.click(".graphiql-execute-button")
            yield page
        finally:
            browser.close()
