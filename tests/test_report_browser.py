"""The HTML report as a person sees it: opened from disk in headless Chromium, hovered and clicked."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

import report_fixtures as F
from latentatlas.report import build_report

pytestmark = pytest.mark.browser

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMEDRIVER = shutil.which("chromedriver") or "/usr/bin/chromedriver"
ARTIFACTS = Path(__file__).resolve().parent.parent / "test-artifacts"


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    root = tmp_path_factory.mktemp("browser")
    runs = [F.train_run(root / "als", "als", 0.91, n_items=30), F.embedding_run(root / "embed", n=60)]
    return build_report(runs, root / "out", explorer_points=45, neighbours=5)


@pytest.fixture(scope="module")
def driver(tmp_path_factory):
    if CHROMIUM is None or not Path(CHROMEDRIVER).exists():
        pytest.skip("headless Chromium not installed (Debian packages chromium and chromium-driver)")
    webdriver = pytest.importorskip("selenium.webdriver")
    from selenium.webdriver.chrome.service import Service

    opts = webdriver.ChromeOptions()
    opts.binary_location = CHROMIUM
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--disable-dev-shm-usage", "--window-size=1280,1000",
                 f"--user-data-dir={tmp_path_factory.mktemp('chromium-profile')}"):
        opts.add_argument(flag)
    opts.set_capability("goog:loggingPrefs", {"browser": "ALL", "performance": "ALL"})
    drv = webdriver.Chrome(service=Service(CHROMEDRIVER), options=opts)
    drv.set_page_load_timeout(60)
    yield drv
    drv.quit()


def _wait(driver, script: str, timeout: float = 30):
    from selenium.webdriver.support.ui import WebDriverWait

    return WebDriverWait(driver, timeout).until(lambda d: d.execute_script(script))


def _hover_and_click(driver, box_id: str) -> dict:
    """Move the real pointer onto a drawn point, then click it; returns what the side panel shows."""
    from selenium.webdriver.common.action_chains import ActionChains

    point = driver.execute_script(
        f"return document.querySelectorAll('#{box_id} .scatterlayer .point')[3];")
    driver.execute_script("arguments[0].scrollIntoView({block: 'center'});", point)
    ActionChains(driver).move_to_element(point).pause(0.3).perform()
    _wait(driver, f"return document.querySelector('#{box_id} .hover-text').textContent.length > 0;")
    hovered = driver.execute_script(
        f"var b = document.querySelector('#{box_id}'); var img = b.querySelector('.hover-img');"
        "return {text: b.querySelector('.hover-text').textContent, src: img ? img.getAttribute('src') : null,"
        " width: img ? img.naturalWidth : 0};")
    ActionChains(driver).move_to_element(point).click().perform()
    _wait(driver, f"return document.querySelectorAll('#{box_id} .nn-list li').length > 0;")
    clicked = driver.execute_script(
        f"var b = document.querySelector('#{box_id}');"
        "return {items: Array.from(b.querySelectorAll('.nn-list li')).map(li => li.textContent),"
        " imgs: Array.from(b.querySelectorAll('.nn-list img')).map(i => i.naturalWidth),"
        " title: b.querySelector('.nn-title').textContent};")
    return {"hover": hovered, "click": clicked}


def test_report_in_headless_chromium(report, driver):
    driver.get(report.html.resolve().as_uri())
    _wait(driver, "return document.querySelectorAll('.explorer[data-ready]').length === 2;")

    # Every point of the seeded sample is drawn: 45 images (3 label traces), 30 items (all of them).
    counts = driver.execute_script(
        "return Array.from(document.querySelectorAll('.explorer')).map("
        " b => [b.dataset.kind, b.querySelectorAll('.scatterlayer .point').length, +b.dataset.points]);")
    assert sorted(counts) == [["images", 45, 45], ["items", 30, 30]]

    images = _hover_and_click(driver, "run-2-explorer-0")
    assert images["hover"]["src"].startswith("data:image/png;base64,")
    assert images["hover"]["width"] == 28          # the decoded thumbnail, not a broken image
    assert any(name in images["hover"]["text"] for name in F.LABEL_NAMES)
    assert len(images["click"]["items"]) == 5 and images["click"]["imgs"] == [28] * 5
    # Codes form one tight cluster per label, so every nearest neighbour has the clicked point's label.
    label = next(name for name in F.LABEL_NAMES if name in images["click"]["title"])
    assert all(label in item for item in images["click"]["items"])

    ring = "var g = document.querySelector('#run-2-explorer-0 .plot'); return g.data[g.data.length - 1].x;"
    _wait(driver, ring.replace("return g.data[g.data.length - 1].x;", "return g.data[g.data.length - 1].x.length > 0;"))
    ring_pca = driver.execute_script(ring)
    assert len(ring_pca) == 6                                  # the clicked point and its 5 neighbours, ringed

    items = _hover_and_click(driver, "run-1-explorer-0")
    assert items["hover"]["text"].startswith("item 1")
    assert len(items["click"]["items"]) == 5 and all("cos" in t for t in items["click"]["items"])
    # All 30 items are drawn, so the clicked item and its 5 nearest are ringed.
    assert len(driver.execute_script(ring.replace("run-2-explorer-0", "run-1-explorer-0"))) == 6

    # Switching the projection to t-SNE moves the points (PCA and t-SNE coordinates differ in the fixture).
    # Remember the drawn positions in the page itself, so both sides of the comparison are JavaScript's.
    driver.execute_script(
        "var g = document.querySelector('#run-2-explorer-0 .plot');"
        "window.beforeX = JSON.stringify(g.data[0].x); window.beforeRing = JSON.stringify(g.data[g.data.length - 1].x);")
    driver.execute_script(
        "Array.from(document.querySelectorAll('#run-2-explorer-0 .updatemenu-button'))"
        ".find(b => b.textContent.includes('t-SNE')).dispatchEvent(new MouseEvent('click', {bubbles: true}));")
    _wait(driver, "return JSON.stringify(document.querySelector('#run-2-explorer-0 .plot').data[0].x) !== window.beforeX;")

    # The ring follows its points to the new projection.
    _wait(driver, "var g = document.querySelector('#run-2-explorer-0 .plot');"
                  " return JSON.stringify(g.data[g.data.length - 1].x) !== window.beforeRing;")
    assert len(driver.execute_script(ring)) == 6

    ARTIFACTS.mkdir(exist_ok=True)
    driver.execute_script("document.querySelector('#run-2-explorer-0').scrollIntoView();")
    assert driver.save_screenshot(str(ARTIFACTS / "report-explorer.png"))

    logs = driver.get_log("browser")
    errors = [entry for entry in logs if entry["level"] == "SEVERE"]
    assert errors == [], errors

    page = report.html.resolve().as_uri()
    from_page, anywhere = [], []
    for entry in driver.get_log("performance"):
        msg = json.loads(entry["message"])["message"]
        if msg["method"] == "Network.requestWillBeSent":
            url = msg["params"]["request"]["url"]
            anywhere.append(url)
            if msg["params"].get("documentURL") == page:
                from_page.append(url)
    from_page += driver.execute_script("return performance.getEntriesByType('resource').map(e => e.name);")
    assert page in from_page, "the performance log did not record the page itself; the check would be vacuous"
    assert [u for u in from_page if not u.startswith(("file:", "data:"))] == []
    # Chromium's own pages (chrome://…) are not network traffic; nothing may leave the machine.
    assert [u for u in anywhere if u.split(":", 1)[0] in ("http", "https", "ws", "wss", "ftp")] == []
