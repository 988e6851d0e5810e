"""The dashboard in a real headless Chromium (Debian's, driven by Selenium) against real processes.

A real uvicorn server serves the dashboard; runs go through a real coordinator and
real workers on a private redis-server. The browser and its driver come from the
system packages (``apt-get install chromium chromium-driver``); nothing is
downloaded. Without them these tests are skipped locally and fail in CI.

Screenshots of every page go to ``$RQDAG_SCREENSHOT_DIR`` (docs/screenshots when
making the docs), else to the test's temporary folder.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

try:  # the test extra brings selenium; without it these tests are skipped locally and fail in CI
    from selenium import webdriver
    from selenium.common.exceptions import TimeoutException
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select, WebDriverWait
except ImportError as exc:
    SELENIUM_MISSING: str | None = f"selenium is not installed: {exc}"
else:
    SELENIUM_MISSING = None

from rqdag.shared.store.resolve import read_audit
from rqdag.shared.store.runs import RunStore
from rqdag.web.app import create_app
from tests.support.redis import skip_or_fail
from tests.web.conftest import TOKEN, WHO, Cluster, serve
from tests.web.flows import approval, mapped, nightly, payments

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
FLAGS = (
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--window-size=1440,1000",
)
RUNNING = "rgb(2, 132, 199)"  # the stroke of a running node (dashboard.css)
SUCCESS = "rgb(22, 163, 74)"


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """Headless Chromium with a fresh profile, driven through the system chromedriver."""
    if SELENIUM_MISSING:
        skip_or_fail(SELENIUM_MISSING)
    for path in (CHROMIUM, CHROMEDRIVER):
        if not os.access(path, os.X_OK):
            skip_or_fail(f"{path} is missing: apt-get install chromium chromium-driver")
    profile = tempfile.mkdtemp(prefix="rqdag-chromium-")
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in (*FLAGS, f"--user-data-dir={profile}"):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(executable_path=CHROMEDRIVER), options=options)
    driver.implicitly_wait(0)
    try:
        yield driver
    finally:
        driver.quit()


@pytest.fixture(scope="module")
def site(cluster: Cluster) -> Iterator[str]:
    """The dashboard with a token, served by uvicorn: its base URL."""
    with serve(create_app(cluster.url, token=TOKEN)) as base:
        yield base


@pytest.fixture(scope="module")
def read_only_site(cluster: Cluster) -> Iterator[str]:
    """The dashboard without a token: its base URL."""
    with serve(create_app(cluster.url)) as base:
        yield base


@pytest.fixture(scope="module")
def shots(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Where screenshots go."""
    chosen = os.environ.get("RQDAG_SCREENSHOT_DIR")
    folder = Path(chosen) if chosen else tmp_path_factory.mktemp("screenshots")
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def wait_for(browser: Any, condition: Callable[[], Any], what: str, timeout: float = 20) -> Any:
    """Poll ``condition`` in the page until it is truthy; fail naming ``what``."""
    try:
        return WebDriverWait(browser, timeout, poll_frequency=0.05).until(lambda _: condition())
    except TimeoutException:
        toast = browser.execute_script(
            "const t = document.getElementById('toast'); return t && t.textContent"
        )
        pytest.fail(
            f"timed out after {timeout}s waiting for {what} (page says: {toast!r}; {page_errors(browser)})"
        )


def page_errors(browser: Any) -> list[str]:
    """Errors the page logged (script errors, refused resources, CSP violations) since the last call."""
    return [entry["message"] for entry in browser.get_log("browser") if entry["level"] == "SEVERE"]


def node(browser: Any, task: str) -> dict[str, str]:
    """A DAG node's status and the colour its box is drawn in now."""
    found: dict[str, str] = browser.execute_script(
        "const g = document.querySelector(`#dag g.node[data-task='${arguments[0]}']`);"
        "const box = g.querySelector('rect.box');"
        "return {cls: g.getAttribute('class'), stroke: getComputedStyle(box).stroke};",
        task,
    )
    return found


def fetch_post(browser: Any, path: str) -> int:
    """The HTTP status of a POST that the page itself sends (with its CSRF token, if it has one)."""
    status: int = browser.execute_async_script(
        "const done = arguments[arguments.length - 1];"
        "rqdag.post(arguments[0], {reason: 'from the test'}).then((r) => done(r.status));",
        path,
    )
    return status


def screenshot(browser: Any, folder: Path, name: str) -> Path:
    """The whole page as ``<folder>/<name>.png`` (the window grown to the page's height)."""
    height = browser.execute_script("return document.documentElement.scrollHeight")
    browser.set_window_size(1440, min(max(int(height), 800), 2200))
    path = folder / f"{name}.png"
    browser.save_screenshot(str(path))
    browser.set_window_size(1440, 1000)
    return path


def sign_in(browser: Any, base: str, next_path: str) -> None:
    """Sign in through the login form, as a person would."""
    browser.get(f"{base}/login?next={next_path}")
    browser.find_element(By.ID, "token").send_keys(TOKEN)
    browser.find_element(By.ID, "login-submit").click()
    wait_for(
        browser, lambda: browser.execute_script("return document.body.dataset.signedIn") == "yes", "sign-in"
    )


def test_the_runs_page_lists_runs(browser: Any, site: str, cluster: Cluster) -> None:
    cluster.submit(nightly, "nightly-2026-11-26").wait(timeout=60)
    cluster.submit(nightly, "nightly-2026-11-27", fail=["score_customers"]).wait(timeout=60)
    browser.get(f"{site}/")
    rows = {
        row.get_attribute("data-run"): row.get_attribute("data-status")
        for row in browser.find_elements(By.CSS_SELECTOR, "#runs-rows tr[data-run]")
    }
    assert rows == {"nightly-2026-11-26": "succeeded", "nightly-2026-11-27": "failed"}
    bad = " ".join(browser.find_element(By.CSS_SELECTOR, "tr[data-run='nightly-2026-11-27']").text.split())
    assert "nightly_etl" in bad and "11/11" in bad and "1 failure" in bad and "2 skipped" in bad
    assert page_errors(browser) == []
    browser.get(f"{site}/?status=failed")
    assert [r.get_attribute("data-run") for r in browser.find_elements(By.CSS_SELECTOR, "tr[data-run]")] == [
        "nightly-2026-11-27"
    ]
    search = browser.find_element(By.NAME, "q")
    search.clear()
    search.send_keys("nightly-2026-11-26")
    Select(browser.find_element(By.NAME, "status")).select_by_value("")
    browser.find_element(By.CSS_SELECTOR, "#filters button[type=submit]").click()
    wait_for(
        browser,
        lambda: browser.current_url.endswith("/runs/nightly-2026-11-26"),
        "the exact id to open its run",
    )


def test_the_run_page_dag_changes_colour_as_tasks_finish(browser: Any, site: str, cluster: Cluster) -> None:
    cluster.submit(
        nightly, "nightly-2026-11-28", gated=["train_model"], fail=["score_customers"], sleep_s=0.1
    )
    browser.get(f"{site}/runs/nightly-2026-11-28")
    wait_for(
        browser, lambda: browser.execute_script("return document.body.dataset.live") == "yes", "live updates"
    )
    browser.execute_script("window.stillTheSamePage = true")
    wait_for(browser, lambda: "st-running" in node(browser, "train_model")["cls"], "train_model running")
    wait_for(
        browser, lambda: "st-failure" in node(browser, "score_customers")["cls"], "score_customers failed"
    )
    assert node(browser, "train_model")["stroke"] == RUNNING
    assert "st-pending" in node(browser, "publish_report")["cls"]
    assert node(browser, "build_features")["stroke"] == SUCCESS
    assert browser.execute_script("return document.getElementById('run-status').textContent") == "running"
    cluster.open_gate("nightly-2026-11-28", "train_model")
    wait_for(browser, lambda: "st-success" in node(browser, "train_model")["cls"], "train_model succeeded")
    assert node(browser, "train_model")["stroke"] == SUCCESS
    wait_for(
        browser, lambda: "st-skipped" in node(browser, "publish_report")["cls"], "publish_report skipped"
    )
    wait_for(
        browser,
        lambda: (
            browser.execute_script("return document.getElementById('run-status').textContent") == "failed"
        ),
        "the run's status to turn failed",
    )
    assert browser.execute_script("return window.stillTheSamePage") is True, "updated without a reload"
    timeline = browser.execute_script(
        "return [...document.querySelectorAll('#timeline-rows tr[data-task]')].map((r) => r.dataset.task)"
    )
    assert timeline.count("score_customers") == 2 and "train_model" in timeline
    assert page_errors(browser) == []


def test_an_action_with_the_token_cancels_a_run(browser: Any, site: str, cluster: Cluster) -> None:
    handle = cluster.submit(payments, "payments-0412", gated=["charge_cards"])
    browser.delete_all_cookies()
    sign_in(browser, site, "/runs/payments-0412")
    assert browser.current_url.endswith("/runs/payments-0412")
    wait_for(
        browser, lambda: browser.execute_script("return document.body.dataset.live") == "yes", "live updates"
    )
    wait_for(browser, lambda: "st-running" in node(browser, "charge_cards")["cls"], "charge_cards running")
    browser.find_element(By.ID, "cancel-run").click()
    reason = browser.find_element(By.ID, "cancel-reason")
    reason.clear()
    reason.send_keys("wrong invoices")
    browser.find_element(By.ID, "confirm-yes").click()
    wait_for(
        browser,
        lambda: (
            browser.execute_script("return document.getElementById('run-status').textContent") == "cancelled"
        ),
        "the run to be cancelled",
    )
    assert node(browser, "charge_cards")["cls"] == "node st-cancelled"
    assert handle.status().status == "cancelled" and handle.status().cancel == "wrong invoices"
    [entry] = read_audit(RunStore(cluster.connection), "payments-0412")
    assert entry["kind"] == "cancel" and entry["via"] == "session" and entry["reason"] == "wrong invoices"
    assert browser.find_element(By.ID, "cancel-run").get_attribute("disabled") == "true"
    assert page_errors(browser) == []


def test_without_the_token_an_action_is_refused(
    browser: Any, site: str, read_only_site: str, cluster: Cluster
) -> None:
    handle = cluster.submit(payments, "payments-0413", gated=["charge_cards"])
    browser.delete_all_cookies()
    browser.get(f"{site}/runs/payments-0413")
    assert browser.find_elements(By.ID, "cancel-run") == []
    assert browser.find_element(By.ID, "sign-in").is_displayed()
    assert fetch_post(browser, "/api/runs/payments-0413/cancel") == 401
    browser.get(f"{read_only_site}/runs/payments-0413")
    assert browser.find_element(By.ID, "auth-state").text == "read-only"
    assert browser.find_elements(By.ID, "cancel-run") == []
    assert fetch_post(browser, "/api/runs/payments-0413/cancel") == 403
    page_errors(browser)  # the refused requests are logged: forget them
    assert handle.status().cancel == "" and not handle.status().finished
    cluster.open_gate("payments-0413", "charge_cards")
    handle.wait(timeout=30)
    assert handle.status().status == "succeeded"


def node_text(browser: Any, task: str) -> tuple[str, str]:
    """A DAG node's two lines of text (its name line and its status line)."""
    found: list[str] = browser.execute_script(
        "const g = document.querySelector(`#dag g.node[data-task='${arguments[0]}']`);"
        "return [g.querySelector('text.name').textContent, g.querySelector('text.sub').textContent];",
        task,
    )
    return found[0], found[1]


def test_a_mapped_task_is_one_node_with_its_childrens_counts(
    browser: Any, site: str, cluster: Cluster
) -> None:
    handle = cluster.submit(mapped, "mapped-0501", count=3, gated=["load[1]"])
    browser.get(f"{site}/runs/mapped-0501")
    wait_for(
        browser, lambda: browser.execute_script("return document.body.dataset.live") == "yes", "live updates"
    )
    wait_for(browser, lambda: node_text(browser, "load")[0] == "load 2/3", "load 2/3 on the mapped node")
    assert "st-running" in node(browser, "load")["cls"] and node(browser, "load")["stroke"] == RUNNING
    assert node_text(browser, "load")[1] == "2/3 success, 1 running"
    drawn = browser.execute_script(
        "return [...document.querySelectorAll('#dag g.node')].map((g) => g.dataset.task).sort()"
    )
    assert drawn == ["load", "partitions", "summarize"]
    cluster.open_gate("mapped-0501", "load[1]")
    wait_for(browser, lambda: "st-success" in node(browser, "summarize")["cls"], "summarize succeeded")
    assert node_text(browser, "load") == ("load 3/3", "3/3 success")
    assert node(browser, "load")["stroke"] == SUCCESS
    handle.wait(timeout=30)
    assert page_errors(browser) == []


def test_the_task_page_reruns_a_task_and_its_downstream(browser: Any, site: str, cluster: Cluster) -> None:
    handle = cluster.submit(payments, "payments-0502")
    handle.wait(timeout=30)
    browser.delete_all_cookies()
    sign_in(browser, site, "/runs/payments-0502/tasks/send_receipts")
    browser.find_element(By.ID, "rerun-task").click()
    wait_for(browser, lambda: "send_receipts" in browser.find_element(By.ID, "confirm-body").text, "the plan")
    browser.find_element(By.ID, "confirm-yes").click()
    wait_for(browser, lambda: browser.current_url.endswith("/runs/payments-0502"), "the run's page")
    handle.wait(timeout=30)
    assert handle.status().epoch == 2 and handle.status().status == "succeeded"
    entry = read_audit(RunStore(cluster.connection), "payments-0502")[-1]
    assert entry["kind"] == "resumed" and entry["via"] == "session" and entry["rerun"] == ["send_receipts"]
    assert page_errors(browser) == []


def toast_text(browser: Any) -> str:
    """What the page's toast says now ('' when it is hidden)."""
    text: str = browser.execute_script(
        "const t = document.getElementById('toast'); return t && !t.hidden ? t.textContent : ''"
    )
    return text


def reloaded(browser: Any) -> bool:
    """True once the page was loaded again since :func:`fill_outcome` submitted its form."""
    return bool(browser.execute_script("return window.submittedHere === undefined"))


def fill_outcome(browser: Any, form_id: str, status: str, data: str, reason: str) -> None:
    """Fill a task's outcome form (the signal or the resolve form) and submit it."""
    browser.execute_script("window.submittedHere = true")
    form = browser.find_element(By.ID, form_id)
    Select(form.find_element(By.NAME, "status")).select_by_value(status)
    for name, value in (("data", data), ("reason", reason)):
        field = form.find_element(By.NAME, name)
        field.clear()
        field.send_keys(value)
    form.find_element(By.CSS_SELECTOR, "button[type=submit]").click()


def test_the_run_page_signals_a_pending_wait(browser: Any, site: str, cluster: Cluster) -> None:
    handle = cluster.submit(approval, "approve-0504")
    browser.delete_all_cookies()
    sign_in(browser, site, "/runs/approve-0504")
    fill_outcome(browser, "signal-form", "success", "{not json", "")
    wait_for(browser, lambda: toast_text(browser).startswith("Data is not JSON"), "the bad JSON refused")
    assert not reloaded(browser)
    assert not handle.status().finished and "approval" not in handle.snapshot()
    fill_outcome(browser, "signal-form", "success", '{"by": "ops"}', "approved in the meeting")
    results = handle.wait(timeout=30)
    assert results["approval"].data == {"by": "ops"} and handle.status().status == "succeeded"
    [entry] = [e for e in read_audit(RunStore(cluster.connection), "approve-0504") if e["kind"] == "signal"]
    assert entry["who"] == WHO and entry["reason"] == "approved in the meeting"
    wait_for(browser, lambda: reloaded(browser), "the page to reload")
    assert page_errors(browser) == []


def test_the_task_page_resolves_a_failed_task_with_its_data(
    browser: Any, site: str, cluster: Cluster
) -> None:
    handle = cluster.submit(payments, "payments-0505", fail=["send_receipts"])
    handle.wait(timeout=30)
    assert handle.snapshot()["send_receipts"].status.value == "failure"
    browser.delete_all_cookies()
    sign_in(browser, site, "/runs/payments-0505/tasks/send_receipts")
    fill_outcome(browser, "resolve-form", "success", '{"sent": true}', "sent by hand")
    store = RunStore(cluster.connection)
    wait_for(browser, lambda: read_audit(store, "payments-0505", "send_receipts"), "the resolution")
    [entry] = read_audit(store, "payments-0505", "send_receipts")
    assert entry["kind"] == "resolve" and entry["status"] == "success" and entry["reason"] == "sent by hand"
    assert entry["who"] == WHO and entry["previous"]["status"] == "failure"
    resolved = handle.snapshot()["send_receipts"]
    assert resolved.status.value == "success" and resolved.data == {"sent": True}
    wait_for(browser, lambda: reloaded(browser), "the page to reload")
    assert page_errors(browser) == []


def test_every_page_renders_cleanly_for_the_screenshots(
    browser: Any, site: str, cluster: Cluster, shots: Path
) -> None:
    run_id = "nightly-2026-11-29"
    handle = cluster.submit(
        nightly, run_id, gated=["train_model"], fail=["score_customers"], big=["build_features"], sleep_s=0.2
    )
    browser.delete_all_cookies()
    sign_in(browser, site, f"/runs/{run_id}")
    wait_for(browser, lambda: "st-running" in node(browser, "train_model")["cls"], "train_model running")
    wait_for(
        browser, lambda: "st-failure" in node(browser, "score_customers")["cls"], "score_customers failed"
    )
    assert browser.find_element(By.ID, "cancel-run").is_enabled()
    screenshot(browser, shots, "run")
    browser.get(f"{site}/workers")
    wait_for(
        browser,
        lambda: browser.find_elements(By.CSS_SELECTOR, f"#workers-rows a[href='/runs/{run_id}']"),
        "a worker on train_model (the rows refresh by themselves)",
    )
    assert len(browser.find_elements(By.CSS_SELECTOR, "#workers-rows tr[data-worker]")) == 2
    screenshot(browser, shots, "workers")
    browser.get(f"{site}/")
    screenshot(browser, shots, "runs")
    browser.get(f"{site}/runs/{run_id}/tasks/score_customers")
    assert "ValueError: customer 3 has no score" in browser.find_element(By.ID, "task-error").text
    assert len(browser.find_elements(By.CSS_SELECTOR, "#attempt-rows tr")) == 2
    shown = browser.find_element(By.ID, "task-logs").text
    assert "attempt 2" in shown and "score_customers: attempt 2 starts" in shown
    screenshot(browser, shots, "task")
    browser.get(f"{site}/runs/{run_id}/tasks/build_features")
    assert browser.find_element(By.ID, "data-truncated").is_displayed()
    assert page_errors(browser) == []
    cluster.open_gate(run_id, "train_model")
    handle.wait(timeout=30)
