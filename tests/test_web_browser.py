"""End-to-end tests of the staff web app in a real Chromium (Debian's ``chromium`` and
``chromium-driver``, driven by Selenium through the system chromedriver; no downloads).

The session fixture installs the browser with apt-get when it is missing (as root); it
fails with the reason when it cannot, and never skips under CI. Each test runs the whole
app (API and pages) under uvicorn on 127.0.0.1 with the suite's settable clock, logs in
through the login form and clicks through the pages as a person would. Waits are
WebDriverWait conditions, never sleeps. A failing test leaves a screenshot and the page's
HTML in ``tmp/artifacts/`` (``SOP_TEST_ARTIFACTS`` to choose another directory); with
``SOP_TEST_SCREENSHOTS=1`` every test leaves screenshots of the pages it checks.
"""
from __future__ import annotations

import os
import re
import shutil
import subprocess
from datetime import timedelta
from pathlib import Path
from typing import Any, Iterator

import pytest

from tests.api_support import COMPLAINT
from tests.web_support import Web, web  # noqa: F401  (fixture)

pytestmark = pytest.mark.browser

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM, DRIVER = Path("/usr/bin/chromium"), Path("/usr/bin/chromedriver")
PACKAGES = ("chromium", "chromium-driver", "graphviz", "fonts-noto-cjk")
ARTIFACTS = Path(os.environ.get("SOP_TEST_ARTIFACTS") or ROOT / "tmp" / "artifacts")
FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--disable-dev-shm-usage", "--disable-default-apps", "--disable-extensions", "--lang=zh-CN")
WAIT = 20  # seconds a condition may take on a busy two-core machine
REPLY = {"reply_method": "phone", "reply_summary": "已安排工程部上门维修"}


def _missing() -> list[str]:
    return [p for p, ok in (("chromium", CHROMIUM.exists()), ("chromium-driver", DRIVER.exists()),
                            ("graphviz", shutil.which("dot") is not None),
                            ("fonts-noto-cjk", Path("/usr/share/fonts/opentype/noto").exists())) if not ok]


def ensure_browser() -> None:
    """Install Debian's chromium, its driver, Graphviz and CJK fonts if any is missing."""
    missing = _missing()
    if not missing:
        return
    if os.environ.get("SOP_SKIP_BROWSER") and not os.environ.get("CI"):
        pytest.skip(f"SOP_SKIP_BROWSER is set and {', '.join(missing)} not installed")
    if os.geteuid() != 0 or shutil.which("apt-get") is None:
        pytest.fail(f"the browser tests need the Debian packages {' '.join(missing)}: run "
                    f"`apt-get install -y {' '.join(PACKAGES)}` as root (this suite installs them itself "
                    "when it runs as root on Debian)", pytrace=False)
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    for cmd in (["apt-get", "update", "-q"], ["apt-get", "install", "-y", "-q", "--no-install-recommends", *PACKAGES]):
        done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=1800)
        if done.returncode != 0:
            pytest.fail(f"{' '.join(cmd)} failed ({done.returncode}):\n{done.stderr[-2000:]}", pytrace=False)
    if _missing():
        pytest.fail(f"still missing after apt-get: {', '.join(_missing())}", pytrace=False)


@pytest.fixture(scope="session")
def chromium(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    ensure_browser()
    os.environ["SE_OFFLINE"] = "true"  # Selenium Manager never downloads anything
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for flag in (*FLAGS, f"--user-data-dir={tmp_path_factory.mktemp('chromium-profile')}", "--window-size=1280,900"):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(str(DRIVER)), options=options)
    driver.set_page_load_timeout(60)
    yield driver
    driver.quit()


class Browser:
    """The driver, pointed at one test's server, with the few steps the tests repeat."""

    def __init__(self, driver: Any, web: Web, name: str) -> None:
        from selenium.webdriver.support.ui import WebDriverWait

        self.d, self.web, self.name = driver, web, name
        self.wait = WebDriverWait(driver, WAIT)

    def go(self, path: str) -> None:
        self.d.get(self.web.url + path)

    def el(self, css: str) -> Any:
        from selenium.webdriver.common.by import By
        from selenium.webdriver.support import expected_conditions as ec

        return self.wait.until(ec.presence_of_element_located((By.CSS_SELECTOR, css)))

    def all(self, css: str) -> list[Any]:
        from selenium.webdriver.common.by import By

        return self.d.find_elements(By.CSS_SELECTOR, css)

    def text_in(self, css: str, text: str) -> Any:
        from selenium.webdriver.common.by import By
        from selenium.webdriver.support import expected_conditions as ec

        self.wait.until(ec.text_to_be_present_in_element((By.CSS_SELECTOR, css), text))
        return self.el(css)

    def fill(self, css: str, value: str) -> None:
        field = self.el(css)
        field.clear()
        field.send_keys(value)

    def choose(self, css: str, value: str) -> None:
        from selenium.webdriver.support.ui import Select

        Select(self.el(css)).select_by_value(value)

    def submit_and_wait(self, button_css: str, then_css: str) -> Any:
        """Click and wait for an element of the page that follows (not the old page's)."""
        from selenium.common.exceptions import WebDriverException

        old = self.el("body")
        self.el(button_css).click()

        def left(_driver: Any) -> bool:
            # ec.staleness_of catches only StaleElementReferenceException; in the middle of a
            # navigation chromedriver may say the node "does not belong to the document"
            # instead: the old page is gone either way.
            try:
                old.is_enabled()
            except WebDriverException:
                return True
            return False

        self.wait.until(left)
        return self.el(then_css)

    def login(self, staff: str) -> None:
        self.go("/login")
        self.fill("#staff", staff)
        self.fill("#secret", self.web.tokens[staff])
        self.submit_and_wait("#login", "#me")

    def shot(self, label: str) -> None:
        if os.environ.get("SOP_TEST_SCREENSHOTS"):
            ARTIFACTS.mkdir(parents=True, exist_ok=True)
            self.d.save_screenshot(str(ARTIFACTS / f"{self.name}-{label}.png"))


@pytest.fixture
def browser(chromium: Any, web: Web, request: pytest.FixtureRequest) -> Iterator[Browser]:
    chromium.execute_cdp_cmd("Network.clearBrowserCookies", {})
    chromium.execute_cdp_cmd("Emulation.clearDeviceMetricsOverride", {})
    chromium.set_window_size(1280, 900)
    b = Browser(chromium, web, request.node.name)
    yield b
    report = getattr(request.node, "rep_call", None)
    if report is None or report.failed:
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        chromium.save_screenshot(str(ARTIFACTS / f"{request.node.name}.png"))
        (ARTIFACTS / f"{request.node.name}.html").write_text(chromium.page_source, encoding="utf-8")


def start_complaint(web: Web, **changes: Any) -> Any:
    return web.engine.start("complaint", "liu_fang", {**COMPLAINT, **changes})


# ---------------------------------------------------------------- the tests

def test_login_then_my_inbox_counts_down_the_deadline_in_its_sla_colour(browser: Browser) -> None:
    inst = start_complaint(browser.web)
    browser.go("/")
    browser.el("#login-form")  # sent to the login page first
    browser.login("chen_jing")
    row = browser.el(f"#task-{inst.id}")
    assert "sla-open" in row.get_attribute("class")
    browser.text_in(f"#task-{inst.id} .countdown", "剩余")  # the script has run (server time, not the PC's)
    assert re.match(r"^剩余 (8小时59分|9小时00分)\d\d秒$", browser.el(f"#task-{inst.id} .countdown").text)
    assert browser.el(f"#task-{inst.id} .sla").value_of_css_property("background-color") == "rgba(232, 245, 233, 1)"
    browser.shot("inbox")


def test_the_inbox_refreshes_without_a_reload(browser: Browser) -> None:
    first = start_complaint(browser.web)
    browser.login("chen_jing")
    browser.el(f"#task-{first.id}")
    browser.d.execute_script("window.__same_page = true;")
    browser.web.engine.clock.advance(timedelta(hours=10))
    browser.web.engine.tick(browser.web.engine.clock.now())  # the first is past due now
    second = start_complaint(browser.web, unit="3-0502")
    browser.d.execute_script("window.sopRefreshInbox();")    # what the page's timer calls every 20 s
    browser.el(f"#task-{second.id}")
    assert "sla-breached" in browser.el(f"#task-{first.id}").get_attribute("class")
    assert browser.text_in(f"#task-{first.id} .countdown", "已超时 1小时00分").text.startswith("已超时 1小时00分")
    assert browser.el("#count-mine").text == "2"
    assert [r.get_attribute("id") for r in browser.all("table.mine tr.task")] == [f"task-{first.id}",
                                                                                  f"task-{second.id}"]
    assert browser.d.execute_script("return window.__same_page === true;")


def test_claiming_a_task_from_my_roles_queue(browser: Browser) -> None:
    inst = start_complaint(browser.web, anonymous=True, unit=None, owner_name=None, contact=None)
    browser.login("li_qiang")
    assert browser.el(f"#claim-{inst.id}")
    browser.submit_and_wait(f"#claim-{inst.id}", "#flash")
    assert browser.el("#flash").text == f"已认领 #{inst.id}。"
    assert browser.el("#assignee").text == "李强"
    assert browser.web.engine.show(inst.id).assignee == "li_qiang"


def test_acting_with_a_bad_form_shows_chinese_errors_then_a_good_one_goes_through(browser: Browser,
                                                                                 tmp_path: Path) -> None:
    inst = start_complaint(browser.web)
    before = len(browser.web.engine.history(inst.id))
    browser.login("chen_jing")
    browser.go(f"/instances/{inst.id}")
    browser.submit_and_wait("#act-reply", "#act-form")
    browser.choose("#in-reply_method", "open_letter")
    photo = tmp_path / "公开信.png"
    photo.write_bytes(b"\x89PNG\r\n\x1a\n" + b"\0" * 64)
    browser.el("#in-open_letter_ref-file").send_keys(str(photo))
    browser.submit_and_wait("#submit", "#problem")
    assert browser.el("#error-reply_summary").text == "必填"
    assert "has-error" in browser.el("#field-reply_summary").get_attribute("class")
    assert len(browser.web.engine.history(inst.id)) == before  # nothing written
    browser.shot("form-errors")
    browser.fill("#in-reply_summary", "已张贴公开信，说明停水原因")
    browser.submit_and_wait("#submit", "#flash")
    assert browser.el("#flash").text == "已提交：答复业主。"
    assert "公开信.png" in browser.el("#timeline").text
    stored = browser.web.engine.show(inst.id).data["open_letter_ref"]
    assert stored["filename"] == "公开信.png" and stored["size"] == 72 and len(stored["sha256"]) == 64


def test_a_stale_page_is_refused_and_nothing_is_written(browser: Browser) -> None:
    inst = start_complaint(browser.web)
    browser.login("chen_jing")
    browser.go(f"/instances/{inst.id}/act/reply")
    browser.choose("#in-reply_method", "phone")
    browser.fill("#in-reply_summary", "已安排工程部上门维修")
    browser.web.engine.record(inst.id, "li_qiang", {"priority": "high"})  # someone else, meanwhile
    before = len(browser.web.engine.history(inst.id))
    browser.submit_and_wait("#submit", "#problem")
    assert "已被他人更新" in browser.el("#problem").text and "未保存任何内容" in browser.el("#problem").text
    assert len(browser.web.engine.history(inst.id)) == before
    assert browser.el("#in-reply_summary").get_attribute("value") == "已安排工程部上门维修"  # not lost


def test_the_instance_timeline_diagram_and_an_auditors_verification(browser: Browser) -> None:
    inst = start_complaint(browser.web)
    browser.web.engine.advance(inst.id, "reply", "chen_jing", REPLY)
    child = browser.web.engine.show(inst.id)
    browser.login("li_qiang")
    browser.go(f"/instances/{inst.id}")
    events = browser.web.engine.history(inst.id)
    assert len(browser.all("#timeline li.event")) == len(events)
    assert "答复业主" in browser.el("#timeline").text and "陈静 · 管家" in browser.el("#timeline").text
    current = browser.el(f"#diagram svg g#state_{child.state} path, #diagram svg g#state_{child.state} polygon")
    assert current.get_attribute("fill") == "#1565c0"
    assert browser.el("#clock-reply").text.endswith("已达标")
    browser.shot("instance")
    browser.submit_and_wait("#verify", "#chain-result")
    assert browser.el("#chain-result").text.startswith("哈希链完整")
    assert browser.el("#replay-result").text.startswith("重放一致")
    assert len(browser.all("#chain tr")) == len(events) + 1
    browser.shot("verify")


def test_the_sla_dashboard_draws_its_charts(browser: Browser) -> None:
    web = browser.web
    met = start_complaint(web)
    web.engine.advance(met.id, "reply", "chen_jing", REPLY)
    start_complaint(web, unit="5-0101")
    web.engine.clock.advance(timedelta(hours=10))
    web.engine.tick(web.engine.clock.now())
    browser.login("li_qiang")
    browser.submit_and_wait("#nav-dashboard", ".compliance-chart")
    bar = browser.el(".compliance-chart rect.bar")
    assert bar.get_attribute("data-month") == "2025-09" and bar.get_attribute("data-value") == "50.0"
    assert browser.el(".breach-chart rect.bar").get_attribute("data-building") == "5"
    assert browser.el("#export-xlsx").get_attribute("href").endswith("/dashboard.xlsx")
    assert "QA-3" in browser.el("#quality").text
    browser.shot("dashboard")


def test_the_front_desk_starts_a_complaint_in_one_form(browser: Browser) -> None:
    browser.login("liu_fang")
    browser.submit_and_wait("#nav-start", "#start-complaint")
    browser.submit_and_wait("#start-complaint", "#act-form")
    browser.el("#field-anonymous input[value=false]").click()
    browser.fill("#in-unit", "3-1201")
    browser.fill("#in-owner_name", "王先生")
    browser.fill("#in-contact", "13912345678")
    browser.choose("#in-channel", "visit")
    browser.fill("#in-content", "楼上漏水，天花板渗水")
    browser.submit_and_wait("#submit", "#flash")
    assert browser.el("#flash").text.startswith("已登记 #1（投诉处理）")
    assert browser.el("#assignee").text == "陈静"
    assert browser.web.engine.show(1).data["channel"] == "visit"


def test_the_pages_fit_a_phone_screen(browser: Browser) -> None:
    inst = start_complaint(browser.web)
    browser.web.engine.advance(inst.id, "reply", "chen_jing", REPLY)
    start_complaint(browser.web, unit="3-0502")
    browser.d.execute_cdp_cmd("Emulation.setDeviceMetricsOverride",
                              {"width": 390, "height": 844, "deviceScaleFactor": 2, "mobile": True})
    browser.login("li_qiang")
    for label, path, css in (("inbox", "/", "#inbox"), ("instance", f"/instances={inst.id}", "body"),
                             ("form", f"/instances/{inst.id + 1}/act/reply", "#act-form"),
                             ("start", "/start", "#start-complaint"), ("dashboard", "/dashboard", "#quality")):
        browser.go(path.replace("=", "/"))
        browser.el(css)
        width = browser.d.execute_script("return document.documentElement.scrollWidth;")
        assert width <= 390, f"{label}: the page is {width}px wide on a 390px screen"
        browser.shot(f"phone-{label}")
