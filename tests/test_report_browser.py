"""The HTML report as a person sees it: opened from disk in headless Chromium, hovered, clicked, selected.

A few thousand points keep it quick; benchmarks/bench_explorer.py does the same with 70,000.
"""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path

import numpy as np
import pytest

import report_fixtures as F
from latentatlas.report import build_report

pytestmark = pytest.mark.browser

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMEDRIVER = shutil.which("chromedriver") or "/usr/bin/chromedriver"
ARTIFACTS = Path(__file__).resolve().parent.parent / "test-artifacts"
N_IMAGES, N_ITEMS, K = 3000, 30, 5
IMAGES, ITEMS = "run-2-explorer-0", "run-1-explorer-0"


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    root = tmp_path_factory.mktemp("browser")
    embed = F.embedding_run(root / "embed", n=N_IMAGES)
    with np.load(embed / "embedding.npz") as z:
        arrays = {k: z[k] for k in z.files}
    arrays["coords_umap"] = arrays["coords_pca"][:, ::-1] * 2        # a third projection, unlike the others
    np.savez(embed / "embedding.npz", **arrays)
    runs = [F.train_run(root / "als", "als", 0.91, n_items=N_ITEMS), embed]
    return build_report(runs, root / "out", neighbours=K)


@pytest.fixture(scope="module")
def driver(tmp_path_factory):
    if CHROMIUM is None or not Path(CHROMEDRIVER).exists():
        pytest.skip("headless Chromium not installed (Debian packages chromium and chromium-driver)")
    webdriver = pytest.importorskip("selenium.webdriver")
    from selenium.webdriver.chrome.service import Service

    opts = webdriver.ChromeOptions()
    opts.binary_location = CHROMIUM
    # Software WebGL (SwiftShader) for Plotly's scattergl on machines without a GPU, asked for explicitly.
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--enable-unsafe-swiftshader", "--disable-quic",
                 "--no-first-run", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--disable-dev-shm-usage", "--window-size=1400,1000",
                 f"--user-data-dir={tmp_path_factory.mktemp('chromium-profile')}"):
        opts.add_argument(flag)
    opts.set_capability("goog:loggingPrefs", {"browser": "ALL", "performance": "ALL"})
    drv = webdriver.Chrome(service=Service(CHROMEDRIVER), options=opts)
    drv.set_page_load_timeout(120)
    yield drv
    drv.quit()


def _wait(driver, script: str, timeout: float = 60):
    from selenium.webdriver.support.ui import WebDriverWait

    return WebDriverWait(driver, timeout, poll_frequency=0.05).until(lambda d: d.execute_script(script))


def _pointer_to(driver, box: str, d: int):
    """ActionChains placed on drawn point ``d`` of explorer ``box`` (the real pointer, not a JS event)."""
    from selenium.webdriver.common.action_chains import ActionChains

    plot = driver.find_element("css selector", f"#{box} .plot")
    x, y = driver.execute_script(f"return window.latentatlas.explorers['{box}'].screenXY({d});")
    left, top, w, h = driver.execute_script(
        "var r = arguments[0].getBoundingClientRect(); return [r.left, r.top, r.width, r.height];", plot)
    return ActionChains(driver).move_to_element_with_offset(plot, round(x - left - w / 2), round(y - top - h / 2))


def _isolated_point(driver, box: str) -> int:
    """A drawn point with no other point within 6 screen pixels, so the pointer lands on it alone."""
    return driver.execute_script(f"""
        var E = window.latentatlas.explorers['{box}'], n = E.data.n_points, xy = [];
        for (var d = 0; d < n; d++) xy.push(E.screenXY(d));
        var r = E.plot.getBoundingClientRect();
        for (var d = 0; d < n; d++) {{
          if (xy[d][0] < r.left + 80 || xy[d][0] > r.right - 200 || xy[d][1] < r.top + 80 || xy[d][1] > r.bottom - 40) continue;
          var alone = true;
          for (var e = 0; e < n && alone; e++)
            if (e !== d && Math.abs(xy[e][0] - xy[d][0]) < 6 && Math.abs(xy[e][1] - xy[d][1]) < 6) alone = false;
          if (alone) return d;
        }}
        return -1;""")


def test_report_in_headless_chromium(report, driver):
    page = report.html.resolve().as_uri()
    driver.get(page)
    _wait(driver, "return performance.getEntriesByName('latentatlas-drawn').length > 0;")

    # Every point is drawn (WebGL: counted from what Plotly drew), and the data block says how many.
    counts = driver.execute_script(
        "return Array.from(document.querySelectorAll('.explorer')).map(b => [b.dataset.kind, +b.dataset.drawn,"
        " JSON.parse(document.getElementById(b.id + '-data').textContent).n_points, +b.dataset.total]);")
    assert sorted(counts) == [["images", N_IMAGES, N_IMAGES, N_IMAGES], ["items", N_ITEMS, N_ITEMS, N_ITEMS]]
    assert driver.execute_script(f"return document.querySelector('#{IMAGES} .plot canvas') !== null;")
    _wait(driver, f"return document.getElementById('{IMAGES}').dataset.sprite === '1';")
    driver.execute_script(f"document.getElementById('{IMAGES}').scrollIntoView();")

    # Hover: the side panel names the point and draws its thumbnail from the sprite.
    d = _isolated_point(driver, IMAGES)
    assert d >= 0
    _pointer_to(driver, IMAGES, d).pause(0.3).perform()
    _wait(driver, f"return document.getElementById('{IMAGES}').dataset.hovered === '{d}';")
    hovered = driver.execute_script(
        f"var b = document.getElementById('{IMAGES}'), c = b.querySelector('.hover-img');"
        "var px = c.getContext('2d').getImageData(0, 0, c.width, c.height).data, lit = 0;"
        "for (var i = 0; i < px.length; i += 4) if (px[i] > 100) lit++;"
        "return {text: b.querySelector('.hover-text').textContent, point: +c.dataset.point, w: c.width, lit: lit};")
    label_index = d % 3                                     # the fixture labels row i with i % 3
    assert hovered["text"] == f"#{d} · {F.LABEL_NAMES[label_index]}" and hovered["point"] == d
    assert hovered["w"] == 28 and hovered["lit"] > 30        # a shape drawn in grey 220 on black, not blank

    # Click: the k nearest neighbours are listed with thumbnails and ringed; codes cluster by label.
    _pointer_to(driver, IMAGES, d).pause(0.2).click().perform()
    _wait(driver, f"return document.querySelectorAll('#{IMAGES} .nn-list li').length === {K};")
    items = driver.execute_script(
        f"return Array.from(document.querySelectorAll('#{IMAGES} .nn-list li')).map(li => li.textContent);")
    assert all(F.LABEL_NAMES[label_index] in t for t in items)
    assert driver.execute_script(f"return document.querySelectorAll('#{IMAGES} .nn-list canvas').length;") == K
    ring = f"var g = document.querySelector('#{IMAGES} .plot'); return g.data[g.data.length - 1].x.length;"
    assert driver.execute_script(ring) == K + 1

    # Box selection with the pointer: the selected thumbnails appear as a grid.
    driver.find_element("css selector", f"#{IMAGES} .modebar-btn[data-val='select']").click()
    _pointer_to(driver, IMAGES, d).move_by_offset(-40, -40).click_and_hold().pause(0.1).move_by_offset(40, 40) \
        .pause(0.1).move_by_offset(40, 40).pause(0.1).release().perform()
    selected = _wait(driver, f"return +document.getElementById('{IMAGES}').dataset.selected;")
    cells = driver.execute_script(f"return +document.querySelector('#{IMAGES} .selection canvas.grid').dataset.cells;")
    assert selected >= 1 and cells == min(selected, 400)

    # Switching the projection moves the points and keeps the selection and the ring.
    driver.execute_script("window.beforeX = Array.from(document.querySelector"
                          f"('#{IMAGES} .plot').data[0].x.slice(0, 5));")
    driver.find_element("css selector", f"#{IMAGES} .proj[data-key='umap']").click()
    _wait(driver, f"return document.getElementById('{IMAGES}').dataset.projection === 'umap';")
    moved = driver.execute_script(f"return Array.from(document.querySelector('#{IMAGES} .plot').data[0].x.slice(0, 5));")
    assert moved != driver.execute_script("return window.beforeX;")
    kept = driver.execute_script(
        f"var g = document.querySelector('#{IMAGES} .plot'); return g.data.filter(t => t.meta === 'points')"
        ".reduce((s, t) => s + (t.selectedpoints ? t.selectedpoints.length : 0), 0);")
    assert kept == selected and driver.execute_script(ring) == K + 1
    assert int(driver.execute_script(f"return document.getElementById('{IMAGES}').dataset.selected;")) == selected

    # Search by index.
    box = driver.find_element("css selector", f"#{IMAGES} input.search")
    box.send_keys(f"#{d} ")
    _wait(driver, f"return document.getElementById('{IMAGES}').dataset.matches === '1';")

    # Class filter: clicking a legend entry hides that class's points; clicking again shows them.
    visible = f"return document.querySelector('#{IMAGES} .plot')._fullData[0].visible;"
    driver.find_element("css selector", f"#{IMAGES} .legend .traces .legendtoggle").click()
    _wait(driver, visible.replace("return ", "return 'legendonly' === "))
    time.sleep(0.5)                                  # a second click within 300 ms would be a double click
    driver.find_element("css selector", f"#{IMAGES} .legend .traces .legendtoggle").click()
    _wait(driver, visible.replace("return ", "return true === "))

    # The item explorer: hover names the item, click lists its neighbours by cosine similarity.
    driver.execute_script(f"document.getElementById('{ITEMS}').scrollIntoView();")
    e = _isolated_point(driver, ITEMS)
    _pointer_to(driver, ITEMS, e).pause(0.3).click().perform()
    _wait(driver, f"return document.querySelectorAll('#{ITEMS} .nn-list li').length === {K};")
    text = driver.execute_script(f"return document.querySelector('#{ITEMS} .hover-text').textContent;")
    assert text.startswith(f"item {100 + e} · ") and text.endswith(f"{e % 5} ratings")
    assert all("cos" in t for t in driver.execute_script(
        f"return Array.from(document.querySelectorAll('#{ITEMS} .nn-list li')).map(li => li.textContent);"))

    ARTIFACTS.mkdir(exist_ok=True)
    driver.execute_script(f"document.getElementById('{IMAGES}').scrollIntoView();")
    assert driver.save_screenshot(str(ARTIFACTS / "report-explorer.png"))

    errors = [entry for entry in driver.get_log("browser") if entry["level"] == "SEVERE"]
    assert errors == [], errors
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


N_FULL = 70_000


@pytest.fixture(scope="module")
def full_report(tmp_path_factory):
    """A report of 70,000 embedded images — every point drawn, as for all of Fashion-MNIST."""
    root = tmp_path_factory.mktemp("browser-full")
    embed = F.embedding_run(root / "embed", n=N_FULL)
    return build_report([embed], root / "out", neighbours=K)


def test_a_70000_point_report_draws_every_point_and_answers(full_report, driver):
    page = full_report.html.resolve().as_uri()
    assert full_report.html.stat().st_size < 50 * 2**20
    t0 = time.perf_counter()
    driver.get(page)
    _wait(driver, "return performance.getEntriesByName('latentatlas-drawn').length > 0;", timeout=120)
    box = "run-1-explorer-0"
    counts = driver.execute_script(
        f"var b = document.getElementById('{box}');"
        f"return [+b.dataset.drawn, JSON.parse(document.getElementById('{box}-data').textContent).n_points,"
        " +b.dataset.total];")
    assert counts == [N_FULL, N_FULL, N_FULL], counts
    assert time.perf_counter() - t0 < 120
    _wait(driver, f"return document.getElementById('{box}').dataset.sprite === '1';", timeout=120)
    driver.execute_script(f"document.getElementById('{box}').scrollIntoView();")
    # Hover and click somewhere in the middle of the cloud: a point is named and its neighbours listed.
    plot = driver.find_element("css selector", f"#{box} .plot")
    from selenium.webdriver.common.action_chains import ActionChains

    d = driver.execute_script(f"""
        var E = window.latentatlas.explorers['{box}'], r = E.plot.getBoundingClientRect();
        for (var d = 0; d < E.data.n_points; d += 97) {{
          var p = E.screenXY(d);
          if (p[0] > r.left + 80 && p[0] < r.right - 200 && p[1] > r.top + 80 && p[1] < r.bottom - 40) return d;
        }}
        return -1;""")
    assert d >= 0
    x, y = driver.execute_script(f"return window.latentatlas.explorers['{box}'].screenXY({d});")
    left, top, w, h = driver.execute_script(
        "var r = arguments[0].getBoundingClientRect(); return [r.left, r.top, r.width, r.height];", plot)
    ActionChains(driver).move_to_element_with_offset(plot, round(x - left - w / 2), round(y - top - h / 2)) \
        .pause(0.3).click().perform()
    _wait(driver, f"return document.getElementById('{box}').dataset.hovered !== undefined;")
    _wait(driver, f"return document.querySelectorAll('#{box} .nn-list li').length === {K};")
    errors = [entry for entry in driver.get_log("browser") if entry["level"] == "SEVERE"]
    assert errors == [], errors


#: The colours of the tiny colour run's pictures: a square of one of them on black; the colour is the label.
SQUARE_COLOURS = np.array([[220, 120, 30], [40, 200, 90], [60, 80, 230]], np.uint8)


@pytest.fixture(scope="module")
def colour_report(tmp_path_factory):
    """A real tiny colour image run: an autoencoder trained on coloured squares, its codes embedded, reported."""
    from latentatlas.images import workflow

    root = tmp_path_factory.mktemp("browser-colour")
    rng = np.random.default_rng(0)
    labels = np.arange(90) % 3
    images = np.zeros((90, 3, 16, 16), np.uint8)
    for img, label in zip(images, labels):
        r, c = rng.integers(0, 9, size=2)
        img[:, r:r + 7, c:c + 7] = SQUARE_COLOURS[label][:, None, None]
    np.savez(root / "squares.npz", images=images, labels=labels)
    quiet = {"progress": lambda line: None}
    workflow.train_run(root / "ae", data=root / "squares.npz", epochs=1, batch_size=16, channels=(2, 4, 8),
                       latent_channels=4, num_threads=1, **quiet)
    workflow.embed_run(root / "embed", checkpoint=root / "ae", data=root / "squares.npz", methods="pca", k=5, **quiet)
    return build_report([root / "embed"], root / "out", neighbours=K), labels


def _colour_pixels(driver, canvas_js: str, rgb) -> dict:
    """Pixels of the canvas ``canvas_js`` evaluates to: how many are (within 6 levels) colour ``rgb``, and how
    many are lit but grey (R = G = B)."""
    return driver.execute_script(
        f"var c = {canvas_js}, px = c.getContext('2d').getImageData(0, 0, c.width, c.height).data, hit = 0, grey = 0;"
        f"var want = {list(map(int, rgb))};"
        "for (var i = 0; i < px.length; i += 4) {"
        "  if (Math.abs(px[i] - want[0]) <= 6 && Math.abs(px[i + 1] - want[1]) <= 6 && Math.abs(px[i + 2] - want[2]) <= 6) hit++;"
        "  else if (px[i] > 30 && px[i] === px[i + 1] && px[i + 1] === px[i + 2]) grey++;"
        "}"
        "return {hit: hit, grey: grey, w: c.width, h: c.height};")


def test_colour_thumbnails_are_coloured_in_the_explorer(colour_report, driver):
    report, labels = colour_report
    box = "run-1-explorer-0"
    driver.get(report.html.resolve().as_uri())
    _wait(driver, "return performance.getEntriesByName('latentatlas-drawn').length > 0;")
    _wait(driver, f"return document.getElementById('{box}').dataset.sprite === '1';")
    driver.execute_script(f"document.getElementById('{box}').scrollIntoView();")

    d = _isolated_point(driver, box)
    assert d >= 0
    _pointer_to(driver, box, d).pause(0.3).perform()
    _wait(driver, f"return document.getElementById('{box}').dataset.hovered === '{d}';")
    colour = SQUARE_COLOURS[labels[d]]
    assert len(set(colour.tolist())) == 3                                   # R ≠ G ≠ B in the picture itself
    hovered = _colour_pixels(driver, f"document.querySelector('#{box} .hover-img')", colour)
    # the 7×7 square of the picture's colour is drawn in it (the thumbnail is 16×16), and nothing lit is grey
    assert (hovered["w"], hovered["h"]) == (16, 16) and hovered["hit"] >= 40 and hovered["grey"] == 0, hovered

    # the nearest neighbours' thumbnails are coloured too, each in its own picture's colour
    _pointer_to(driver, box, d).pause(0.2).click().perform()
    _wait(driver, f"return document.querySelectorAll('#{box} .nn-list li').length === {K};")
    shown = driver.execute_script(f"return Array.from(document.querySelectorAll('#{box} .nn-list li'))"
                                  ".map(li => li.textContent);")
    for i, text in enumerate(shown):
        e = int(text.split("#")[1].split()[0])
        thumb = _colour_pixels(driver, f"document.querySelectorAll('#{box} .nn-list canvas')[{i}]",
                               SQUARE_COLOURS[labels[e]])
        assert thumb["hit"] >= 20 and thumb["grey"] == 0, (text, thumb)
    errors = [entry for entry in driver.get_log("browser") if entry["level"] == "SEVERE"]
    assert errors == [], errors
