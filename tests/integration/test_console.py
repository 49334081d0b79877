"""The console in a real browser: Debian's Chromium driven by Playwright, against the console served by uvicorn,
calling the real gateway (Triton, trained models) of a private stack. Screenshots go to $SHOP_SCREENSHOTS_DIR
(reports/ when the README's are refreshed), else to the test's temporary folder."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest
from shop.common.v1 import common_pb2
from shop.gateway.v1 import gateway_service_pb2 as gw
from shop.gateway.v1 import gateway_service_pb2_grpc as gw_grpc

from libs.config import REPO_ROOT
from libs.triton.launcher import free_port

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="no Debian chromium: `make browser` installs it as root")
# Headless Chromium on a machine without network or GPU: no background fetches, no sandbox (root in CI).
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@pytest.fixture(scope="module")
def ab_report(own_stack, tmp_path_factory) -> Path:
    """A real readout: events recorded through the gateway on its own responses, then `make ab-report`'s code."""
    with grpc.insecure_channel(own_stack.addresses["gateway"]) as channel:
        gateway = gw_grpc.GatewayServiceStub(channel)
        events = []
        for user in ("17850", "13047", "12583", "14688"):
            page = gateway.Recommend(gw.RecommendRequest(user_id=user, page_size=3), timeout=10)
            for kind in (common_pb2.EVENT_TYPE_IMPRESSION, common_pb2.EVENT_TYPE_CLICK)[: 1 + (user != "14688")]:
                events.append(
                    gw.Event(
                        event_id=str(uuid.uuid4()),
                        type=kind,
                        user_id=user,
                        product_id=page.results[0].product.product_id,
                        attribution_token=page.attribution_token,
                    )
                )
        gateway.RecordEvents(gw.RecordEventsRequest(events=events), timeout=10)
    out = tmp_path_factory.mktemp("ab")
    subprocess.run(
        [sys.executable, "-m", "tools.ab_report", "--out", str(out)],
        check=True,
        cwd=REPO_ROOT,
        env={**os.environ, **own_stack.env},
        stdout=subprocess.DEVNULL,
    )
    return out / "ab.json"


@pytest.fixture(scope="module")
def console(own_stack, ab_report, tmp_path_factory) -> Iterator[str]:
    addr = f"127.0.0.1:{free_port()}"
    log = open(tmp_path_factory.mktemp("console") / "console.log", "wb")  # noqa: SIM115 - closed below
    proc = subprocess.Popen(
        [sys.executable, "-m", "services.console"],
        cwd=REPO_ROOT,
        stdout=log,
        stderr=subprocess.STDOUT,
        env={
            **os.environ,
            "SHOP_GATEWAY_ADDR": own_stack.addresses["gateway"],
            "SHOP_CONSOLE_ADDR": addr,
            "SHOP_CONSOLE_AB_REPORT": str(ab_report),
        },
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                urllib.request.urlopen(f"http://{addr}/healthz", timeout=1).read()
                break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    pytest.fail(f"console did not start (exit {proc.poll()})")
                time.sleep(0.2)
        yield f"http://{addr}"
    finally:
        proc.terminate()
        proc.wait(timeout=10)
        log.close()


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        yield b
        b.close()


@pytest.fixture
def page(browser) -> Iterator[object]:
    context = browser.new_context(viewport={"width": 1200, "height": 900})
    yield context.new_page()
    context.close()


def _shot(page, name: str, tmp_path: Path, element=None) -> None:
    folder = Path(os.environ.get("SHOP_SCREENSHOTS_DIR", tmp_path))
    folder.mkdir(parents=True, exist_ok=True)
    path = str(folder / f"console_{name}.png")
    element.screenshot(path=path) if element is not None else page.screenshot(path=path, full_page=True)


def test_search_shows_cards_with_matched_words_price_and_an_explained_why(console, page, tmp_path):
    page.goto(f"{console}/?q=lantern&user=17850&size=10")
    cards = page.locator("li.card")
    assert cards.count() == 10
    assert page.locator("li.card mark").first.inner_text().lower() == "lantern"
    assert "GBP" in cards.first.inner_text()
    _shot(page, "search", tmp_path)
    cards.first.get_by_role("button", name="Why this?").click()
    panel = cards.first.locator(".why-panel")
    panel.locator("svg.waterfall").wait_for(timeout=15_000)
    bars = panel.locator("svg.waterfall rect.bar")
    values = [
        (bars.nth(i).get_attribute("data-kind"), float(bars.nth(i).get_attribute("data-value")))
        for i in range(bars.count())
    ]
    baseline, score = values[0][1], values[-1][1]
    steps = sum(v for kind, v in values if kind in ("evidence", "interaction"))
    assert steps == pytest.approx(score - baseline, abs=1e-4)  # the drawn bars add up
    shown = float(cards.first.get_by_test_id("score").inner_text())
    assert score == pytest.approx(shown, abs=1e-4)  # ... to the score the card shows
    assert panel.get_by_test_id("sentence").inner_text().strip()
    assert panel.locator("table").first.locator("tbody tr").count() == bars.count()  # the text alternative
    _shot(page, "why", tmp_path, cards.first)


def test_recommend_opens_and_closes_why_by_keyboard_alone(console, page):
    page.goto(f"{console}/?user=17850&size=10")
    first_why = page.locator("button.why").first
    for _ in range(20):  # Tab through the form to the first result's button
        page.keyboard.press("Tab")
        if page.evaluate("document.activeElement.classList.contains('why')"):
            break
    assert page.evaluate("document.activeElement.classList.contains('why')")
    page.keyboard.press("Enter")
    assert first_why.get_attribute("aria-expanded") == "true"
    page.locator(".why-panel svg.waterfall").first.wait_for(timeout=15_000)
    page.keyboard.press("Escape")
    assert first_why.get_attribute("aria-expanded") == "false"
    assert page.evaluate("document.activeElement.classList.contains('why')")


def test_ab_page_draws_the_funnel_with_its_table(console, page, tmp_path):
    page.goto(f"{console}/ab")
    assert page.locator("svg.funnel rect").count() >= 3  # click, add-to-cart and purchase rates of the arm
    assert page.locator("table tbody tr").count() == page.locator("svg.funnel rect").count()
    _shot(page, "ab", tmp_path)


def test_a_degraded_answer_is_shown_as_degraded(console, own_stack, page, tmp_path):
    own_stack.stop_service("ranking")  # last test of the module: its stack is private
    page.goto(f"{console}/?q=tea%20cup&size=10")
    banner = page.get_by_test_id("degraded")
    assert banner.is_visible() and "ranking" in banner.inner_text()
    _shot(page, "degraded", tmp_path)
