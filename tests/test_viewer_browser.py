"""`longhorizon view` in a real headless browser (Debian's chromium through chromedriver and
Selenium) over a run the tests make themselves: lists and filters, an episode, the token
view with its mask colours, the OPD heatmap, synthesis provenance, comparison, the report's
links, script injection; and path traversal against the real server over raw HTTP."""

from __future__ import annotations

import http.client
import json
import shutil
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

import pytest
from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webelement import WebElement
from selenium.webdriver.support import expected_conditions
from selenium.webdriver.support.ui import Select, WebDriverWait

from longhorizon.core import Trajectory, TrajectoryStore
from longhorizon.distill.monitors import read_token_monitors
from longhorizon.evaluation.items import read_seeds
from longhorizon.viewer import exposure_warning, make_server
from longhorizon.viewer.conversation import PREVIEW_CHARS
from tests.conftest import in_ci
from tests.viewer_run import (
    INJECTION,
    SCRIPTED_STORE,
    TOOL_INJECTION,
    artifacts_dir,
    scripted_episode,
)

CHROMIUM, CHROMEDRIVER = shutil.which("chromium"), shutil.which("chromedriver")
TRAINED = "rgb(198, 239, 206)"  # .tok.trained in base.html.jinja
CONTEXT = "rgb(232, 232, 232)"  # .tok.context


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory: pytest.TempPathFactory, micro_run_dir: Path) -> Path:
    out = tmp_path_factory.mktemp("viewer") / "run"
    shutil.copytree(micro_run_dir, out)  # the scripted episode goes into a copy
    scripted_episode(out)
    return out


@pytest.fixture(scope="module")
def base_url(run_dir: Path) -> Iterator[str]:
    server, sock = make_server({"run": run_dir}, port=0)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.05)
    host, port = sock.getsockname()[:2]
    assert server.started and host == "127.0.0.1"  # loopback by default
    yield f"http://{host}:{port}"
    server.should_exit = True
    thread.join(timeout=10)


@pytest.fixture(scope="module")
def browser() -> Iterator[webdriver.Chrome]:
    if not (CHROMIUM and CHROMEDRIVER):
        message = "chromium and chromium-driver are not installed (apt-get install them)"
        if in_ci():
            pytest.fail(message, pytrace=False)
        pytest.skip(message)
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--window-size=1400,1000"):
        options.add_argument(arg)
    driver = webdriver.Chrome(options=options, service=Service(CHROMEDRIVER))
    yield driver
    driver.quit()


def shot(driver: webdriver.Chrome, name: str) -> None:
    driver.save_screenshot(str(artifacts_dir("viewer") / f"{name}.png"))


def stored(run_dir: Path, store: str) -> list[Trajectory]:
    return list(TrajectoryStore(run_dir / store))


def follow(driver: webdriver.Chrome, element: WebElement) -> None:
    """Click a link or submit button and wait until the next page has replaced this one."""
    page = driver.find_element(By.TAG_NAME, "html")
    element.click()
    WebDriverWait(driver, 20).until(expected_conditions.staleness_of(page))
    WebDriverWait(driver, 20).until(
        lambda d: d.execute_script("return document.readyState") == "complete"
    )


def text(driver: webdriver.Chrome, css: str) -> str:
    return str(driver.find_element(By.CSS_SELECTOR, css).text)


def test_filter_open_an_episode_and_its_tokens(
    run_dir: Path, base_url: str, browser: webdriver.Chrome
) -> None:
    store = "synth/search/trajectories"
    trajs = stored(run_dir, store)
    completed = [t for t in trajs if t.status.value == "COMPLETED"]
    browser.get(f"{base_url}/trajectories")
    Select(browser.find_element(By.NAME, "store")).select_by_value(store)
    Select(browser.find_element(By.NAME, "status")).select_by_visible_text("COMPLETED")
    follow(browser, browser.find_element(By.ID, "apply"))
    statuses = [e.text for e in browser.find_elements(By.CSS_SELECTOR, "#list td.status")]
    assert statuses == ["COMPLETED"] * len(completed)
    assert text(browser, "#count") == f"1–{len(completed)} of {len(completed)} in 1 store(s)"
    shot(browser, "list-filtered")

    follow(browser, browser.find_element(By.CSS_SELECTOR, "a.episode"))
    traj = completed[0]
    assert text(browser, "#title") == traj.id
    assert text(browser, "#final-answer") == traj.final_answer
    first = next(m for m in traj.messages if m.role == "assistant" and m.tool_calls)
    assert first.tool_calls is not None
    args = json.dumps(json.loads(first.tool_calls[0].function.arguments), indent=2)
    shown = [e.text for e in browser.find_elements(By.CSS_SELECTOR, "pre.args")]
    assert args in shown  # arguments pretty-printed
    verdicts = "pass" if traj.passed else "fail"
    assert text(browser, "#verdicts").startswith(verdicts)
    shot(browser, "episode")

    follow(browser, browser.find_element(By.CSS_SELECTOR, "a.token-view"))
    (seq,) = traj.token_sequences()
    leaf = len(traj.calls) - 1
    assert text(browser, "#summary") == (
        f"sequence 1 of 1 (ends with model call {leaf}) · {len(seq)} tokens, "
        f"{sum(seq.loss_mask)} trained"
    )
    cells = browser.find_elements(By.CSS_SELECTOR, "#tokens .tok")
    ids = [int(c.get_attribute("data-id") or -1) for c in cells]
    assert ids == seq.input_ids  # the exact training ids, in order
    colours = browser.execute_script(
        "return Array.from(document.querySelectorAll('#tokens .tok'))"
        ".map(e => getComputedStyle(e).backgroundColor)"
    )
    assert colours == [TRAINED if m else CONTEXT for m in seq.loss_mask]
    shot(browser, "tokens")


def test_long_observations_expand(run_dir: Path, base_url: str, browser: webdriver.Chrome) -> None:
    store = "synth/search/trajectories"
    traj = next(
        t
        for t in stored(run_dir, store)
        if any(len(s.observation) > PREVIEW_CHARS for s in t.steps)
    )
    browser.get(f"{base_url}/episode?store={quote(store)}&id={quote(traj.id)}")
    details = browser.find_elements(By.CSS_SELECTOR, ".msg.tool details")
    assert details
    full = details[0].find_element(By.CSS_SELECTOR, "pre.full")
    assert not full.is_displayed()
    details[0].find_element(By.TAG_NAME, "summary").click()
    assert full.is_displayed() and len(full.text) > PREVIEW_CHARS


def test_rollback_forced_answer_and_script_injection(
    run_dir: Path, base_url: str, browser: webdriver.Chrome
) -> None:
    (traj,) = stored(run_dir, SCRIPTED_STORE)
    browser.get(f"{base_url}/episode?store={quote(SCRIPTED_STORE)}&id={quote(traj.id)}")
    assert text(browser, "#status") == "COMPLETED: answer forced at the turn limit"
    discarded = browser.find_elements(By.CSS_SELECTOR, ".msg.discarded")
    assert [e.find_element(By.CLASS_NAME, "role").text for e in discarded] == ["ASSISTANT", "TOOL"]
    forced = browser.find_elements(By.CSS_SELECTOR, ".badge.forced")
    assert [f.text for f in forced] == ["forced final answer"]
    # The model wrote a script tag: it is shown as text and never runs.
    contents = [
        e.text for e in browser.find_elements(By.CSS_SELECTOR, ".msg.assistant pre.content")
    ]
    assert len(contents) == 3 and all(c.startswith(INJECTION) for c in contents)
    observation = text(browser, ".msg.tool pre.content")  # the tool's output, with its <img>
    assert observation.endswith(f"not an arithmetic expression: {TOOL_INJECTION!r}")
    assert text(browser, ".msg.tool .badge.fail") == "tool error"
    assert browser.execute_script("return window.__pwned === undefined") is True
    injected = "#conversation pre script, #conversation pre b, #conversation img"
    assert not browser.find_elements(By.CSS_SELECTOR, injected)  # no element made from it
    shot(browser, "rollback-and-injection")


def test_opd_heatmap_shows_per_token_kl_and_top_k(
    run_dir: Path, base_url: str, browser: webdriver.Chrome
) -> None:
    monitors = read_token_monitors(run_dir / "distill")
    m = max(monitors, key=lambda x: len(x.positions))
    browser.get(
        f"{base_url}/tokens?store=distill/rollouts&id={quote(m.trajectory_id)}&seq={m.sequence}"
    )
    assert text(browser, "#teacher") == m.teacher
    alphas = browser.execute_script(
        "return Array.from(document.querySelectorAll('#heatmap .heat'))"
        ".map(e => [Number(e.dataset.pos), e.dataset.kl])"
    )
    assert [pos for pos, kl in alphas if kl] == m.positions  # exactly the trained tokens
    top = max(range(len(m.kl)), key=lambda j: m.kl[j])
    cell = browser.find_element(By.CSS_SELECTOR, f'#heatmap .heat[data-pos="{m.positions[top]}"]')
    assert cell.value_of_css_property("background-color") == "rgba(214, 39, 40, 1)"  # darkest
    cell.click()
    detail = text(browser, "#detail").splitlines()
    assert detail[0] == (
        f"position {m.positions[top]} · id {cell.get_attribute('data-id')} · "
        f"reverse KL {m.kl[top]:.5f}"
    )
    assert detail[2].startswith("teacher top-k: ") and detail[2].count(";") == 4  # k = 5
    assert detail[3].startswith("student top-k: ") and detail[3].count(";") == 4
    shot(browser, "opd-heatmap")


def test_synthesis_task_with_provenance(
    run_dir: Path, base_url: str, browser: webdriver.Chrome
) -> None:
    import sqlite3

    db = sqlite3.connect(run_dir / "synth" / "search" / "kag.db")
    task_id, status, payload = db.execute(
        "SELECT id, status, payload FROM tasks WHERE domain = 'search' ORDER BY id LIMIT 1"
    ).fetchone()
    attempts = db.execute("SELECT COUNT(*) FROM trajectories WHERE task_id = ?", (task_id,))
    (n_attempts,) = attempts.fetchone()
    task = json.loads(payload)
    browser.get(f"{base_url}/tasks?domain=search")
    follow(browser, browser.find_element(By.LINK_TEXT, task_id))
    assert text(browser, "#task-status") == status
    walk = task["provenance"]["extra"]["walk"]
    assert text(browser, "#walk").startswith(f"walk: {walk[0]} —")
    rows = browser.find_elements(By.CSS_SELECTOR, "#evidence tr")
    assert len(rows) == 1 + len(task["evidence"])
    assert len(browser.find_elements(By.CSS_SELECTOR, ".attempt")) == n_attempts > 0
    shot(browser, "synthesis-task")


def test_compare_lists_differing_items_first(
    run_dir: Path, base_url: str, browser: webdriver.Chrome
) -> None:
    bench = "instruction-heldout"
    a = read_seeds(run_dir / "eval" / "base" / bench)
    b = read_seeds(run_dir / "eval" / "sft" / bench)
    keys = [(s, i) for s in a for i in a[s]]
    differ = sum(a[s][i].score != b[s][i].score for s, i in keys)
    browser.get(f"{base_url}/compare?bench={bench}&a=base&b=sft")
    assert text(browser, "#count") == (
        f"{differ} of {len(keys)} item(s) differ between run:base and run:sft"
    )
    classes = [
        r.get_attribute("class") for r in browser.find_elements(By.CSS_SELECTOR, "#pairs tr")[1:]
    ]
    assert classes == ["differs"] * differ + ["same"] * (len(keys) - differ)


def test_report_links_into_the_viewer_only_when_served_by_it(
    run_dir: Path, base_url: str, browser: webdriver.Chrome
) -> None:
    browser.get(f"{base_url}/report")
    nav = browser.find_element(By.CSS_SELECTOR, "nav.lh-viewer")
    assert nav.is_displayed()
    links = {a.text: a.get_attribute("href") for a in nav.find_elements(By.TAG_NAME, "a")}
    assert links["search tasks and KAG provenance"] == f"{base_url}/tasks?domain=search"
    assert links["OPD rollouts and per-token KL"] == f"{base_url}/trajectories?stage=distill"
    browser.get((run_dir / "report" / "report.html").as_uri())  # the file on its own
    assert not browser.find_element(By.CSS_SELECTOR, "nav.lh-viewer").is_displayed()
    assert not browser.find_elements(By.TAG_NAME, "script")  # it stays script-free


def raw_get(base_url: str, path: str) -> tuple[int, str]:
    """GET with the path sent exactly as written (a browser would normalise `..`)."""
    host, port = base_url.removeprefix("http://").split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=10)
    conn.request("GET", path)
    response = conn.getresponse()
    return response.status, response.read().decode()


def test_paths_are_resolved_inside_the_run(run_dir: Path, base_url: str) -> None:
    escape = run_dir / "escape"
    if not escape.is_symlink():
        escape.symlink_to("/etc")  # a link inside the run that leads out of it
    for path in (
        "/raw/../../../../etc/passwd",
        "/raw/%2e%2e/%2e%2e/%2e%2e/%2e%2e/etc/passwd",
        "/raw/escape/passwd",
        "/raw//etc/passwd",
        "/episode?store=../../../etc&id=x",
        "/tokens?store=%2Fetc&id=x",
    ):
        status, body = raw_get(base_url, path)
        assert status == 403, path
        assert "is outside the run directory" in body and "root:" not in body, path
    status, body = raw_get(base_url, "/raw/stages.json")
    assert status == 200 and json.loads(body)["stages"]["report"]["done"] is True


def test_only_loopback_is_quiet() -> None:
    assert exposure_warning("127.0.0.1") is None and exposure_warning("::1") is None
    assert exposure_warning("localhost") is None
    assert exposure_warning("0.0.0.0") == (
        "WARNING: serving on 0.0.0.0: anyone who can reach this machine can read this run "
        "(trajectories, tasks, evaluation items) with no authentication"
    )


def test_two_runs_compare_on_the_same_items(run_dir: Path, tmp_path: Path) -> None:
    from starlette.testclient import TestClient

    from longhorizon.viewer import ViewerState, create_app

    bench = "instruction-heldout"
    other = tmp_path / "other"
    shutil.copytree(run_dir / "eval", other / "eval")
    items = other / "eval" / "sft" / bench / "items-seed0.jsonl"
    records = [json.loads(x) for x in items.read_text().splitlines()]
    flipped = records[-1]["item_id"]
    records[-1]["score"] = 1.0 - records[-1]["score"]  # the other run answered it differently
    items.write_text("".join(json.dumps(r) + "\n" for r in records))
    client = TestClient(create_app(ViewerState.open({"run": run_dir, "other": other})))
    page = client.get(f"/compare?bench={bench}&a=sft&b=sft&b_run=other").text
    assert f"1 of {len(records)} item(s) differ between run:sft and other:sft" in page
    first_row = page.split('<tr class="')[1]
    assert first_row.startswith("differs") and f"<td>{flipped}</td>" in first_row
    assert "run=other&store=eval/sft/" in page  # its answers link to the other run's episodes
