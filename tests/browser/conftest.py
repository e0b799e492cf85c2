"""Browser fixtures: Debian's chromium driven by Playwright, a stub server,
and screenshots kept as artifacts.

Never ``playwright install``: the browser is /usr/bin/chromium (Debian's
package; ``make test INSTALL_DEPS=1`` installs it, as CI does).  Screenshots go to the test's tmp dir and are
copied to ``var/test-artifacts/browser/`` (ignored by git) so a person can
look at what the agent saw after a run."""
from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from tests.browser.stub_server import StubService, serving

CHROMIUM = "/usr/bin/chromium"
ARTIFACTS = Path(__file__).resolve().parents[2] / "var" / "test-artifacts" / "browser"
LAPTOP = {"width": 1366, "height": 768}


@pytest.fixture
async def browser():
    from playwright.async_api import async_playwright

    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: sudo apt-get install chromium (or make test INSTALL_DEPS=1)")
    async with async_playwright() as p:
        browser = await p.chromium.launch(executable_path=CHROMIUM, args=["--headless", "--no-sandbox", "--disable-background-networking"])
        try:
            yield browser
        finally:
            await browser.close()


@pytest.fixture
async def stub():
    async with serving(StubService()) as service:
        yield service


@pytest.fixture
async def page(browser, stub):
    """A laptop-sized page; uncaught script errors are collected and must stay empty."""
    context = await browser.new_context(viewport=LAPTOP, base_url=stub.base_url)
    page = await context.new_page()
    page.script_errors = []
    page.on("pageerror", lambda exc: page.script_errors.append(str(exc)))
    yield page
    await context.close()


@pytest.fixture
def shot(tmp_path, request):
    """shot(page, name): a screenshot in tmp_path, copied to var/test-artifacts/browser/."""

    async def take(page, name: str) -> Path:
        path = tmp_path / f"{request.node.name}-{name}.png"
        await page.screenshot(path=str(path), full_page=True)
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        shutil.copy(path, ARTIFACTS / path.name)
        return path

    return take
