"""`rec view` in a real browser (headless Chromium through Selenium): lanes, a planted gap, a
click showing the closest frame of every stream, zoom, and a divergence from a replay report.

Run by .ci/run after the Python package is installed: REC_BIN names the `rec` binary.
Screenshots go to target/view-screenshots/.
"""

from __future__ import annotations

import json
import os
import subprocess
import tempfile
import time
from pathlib import Path

import pytest

import recfile

ROOT = Path(__file__).resolve().parents[2]
REC = os.environ.get("REC_BIN", str(ROOT / "target" / "release" / "rec"))
SHOTS = ROOT / "target" / "view-screenshots"


@pytest.fixture(scope="module")
def browser():
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    opts = webdriver.ChromeOptions()
    opts.binary_location = os.environ.get("CHROMIUM", "/usr/bin/chromium")
    for a in ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
              "--disable-background-networking", "--disable-component-update", "--disable-sync",
              "--window-size=1400,900", f"--user-data-dir={tempfile.mkdtemp()}"]:
        opts.add_argument(a)
    driver = webdriver.Chrome(service=Service(os.environ.get("CHROMEDRIVER", "/usr/bin/chromedriver")), options=opts)
    yield driver
    driver.quit()


class Viewer:
    """A `rec view` child process."""

    def __init__(self, path: Path, *extra: str) -> None:
        self.proc = subprocess.Popen([REC, "view", str(path), "--port", "0", *extra], stdout=subprocess.PIPE, text=True)
        line = self.proc.stdout.readline()  # type: ignore[union-attr]
        self.url = line[line.index("http://"):].split()[0]

    def close(self) -> None:
        self.proc.terminate()
        self.proc.wait(10)


def wait_ready(driver, timeout: float = 15.0) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        if driver.execute_script("return !!(window.recview && window.recview.ready)"):
            return
        time.sleep(0.05)
    raise AssertionError("the page did not become ready: " + driver.execute_script("return document.body.innerText")[:500])


def pixel(driver, x: float, y: float) -> list[int]:
    return driver.execute_script(
        "const c = document.getElementById('timeline'); return Array.from(c.getContext('2d').getImageData(arguments[0], arguments[1], 1, 1).data);",
        int(x), int(y))


def click_canvas(driver, x: float, y: float) -> None:
    from selenium.webdriver.common.action_chains import ActionChains

    c = driver.find_element("id", "timeline")
    w, h = c.size["width"], c.size["height"]
    ActionChains(driver).move_to_element_with_offset(c, int(x - w / 2), int(y - h / 2)).click().perform()


def planted(dir: Path) -> tuple[Path, Path, int]:
    """lidar 10 Hz with no frame from 4 s to 6 s, odom (json) 100 Hz, 5 actions; and a replay
    report in which action 2 diverges."""
    path = dir / "planted.rec"
    t0 = time.time_ns() - 10_000_000_000
    with recfile.Recorder(path) as rec, rec.session("planted") as s:
        lidar = s.add_stream("lidar")
        odom = s.add_stream("odom", encoding="json")
        for i in range(1000):
            t = t0 + i * 10_000_000
            s.write_object(odom, {"i": i, "x": i / 100}, ts_ns=t)
            if i % 10 == 0 and not 400 <= i < 600:
                s.write(lidar, bytes([i % 256]) * 64, ts_ns=t)
        for k in range(5):
            s.record_call("plan", {"k": k}, lambda a: {"steps": a["k"] * 2})
    with recfile.open(path) as f:
        report = recfile.ReplayEngine(f.last_session).run(lambda a: {"steps": a.input["k"] * 2 + (1 if a.seq == 2 else 0)})
    assert report.diverged == 1
    rpath = dir / "report.json"
    rpath.write_text(json.dumps(report.to_dict()))
    return path, rpath, t0


def test_demo_file_shows_every_stream(browser, tmp_path: Path) -> None:
    demo = tmp_path / "demo.rec"
    subprocess.run([REC, "demo", str(demo)], check=True, capture_output=True)
    v = Viewer(demo)
    try:
        t = time.perf_counter()
        browser.get(v.url)
        wait_ready(browser)
        loaded = time.perf_counter() - t
        assert browser.execute_script("return window.recview.streams") == ["lidar", "camera", "odom"]
        frames = browser.find_elements("css selector", "#frames .frame")
        assert [f.get_attribute("data-stream") for f in frames] == ["lidar", "camera", "odom"]
        assert "robot" in browser.find_element("id", "streams").text or "odom" in browser.find_element("id", "streams").text
        SHOTS.mkdir(parents=True, exist_ok=True)
        browser.save_screenshot(str(SHOTS / "demo.png"))
        print(f"demo page ready in {loaded * 1000:.0f} ms")
    finally:
        v.close()


def test_gap_click_zoom_and_divergence(browser, tmp_path: Path) -> None:
    path, report, t0 = planted(tmp_path)
    v = Viewer(path, "--report", str(report))
    try:
        browser.get(v.url)
        wait_ready(browser)
        rv = "return window.recview."
        assert browser.execute_script(rv + "streams") == ["lidar", "odom"]
        # The planted gap: found by the API and drawn in red in the lidar lane.
        gaps = browser.execute_script(rv + "gaps")["lidar"]["gaps"]
        # (JavaScript numbers hold nanosecond timestamps to within a microsecond.)
        assert len(gaps) == 1, gaps
        assert abs(gaps[0]["from_ns"] - t0 - 3_900_000_000) < 1000 and abs(gaps[0]["until_ns"] - t0 - 6_000_000_000) < 1000, gaps
        x = browser.execute_script("return window.recview.xOf(arguments[0])", t0 + 5_000_000_000)
        r, g, b, _ = pixel(browser, x, browser.execute_script("return window.recview.laneY(0)"))
        assert r > 150 and g < 150 and b < 150, (r, g, b)
        # Outside the gap the lidar lane is not red.
        x_ok = browser.execute_script("return window.recview.xOf(arguments[0])", t0 + 2_000_000_000)
        r2, g2, b2, _ = pixel(browser, x_ok, browser.execute_script("return window.recview.laneY(0)") - 12)
        assert not (r2 > 150 and g2 < 150 and b2 < 150), (r2, g2, b2)
        # A click moves the playhead and shows, for every stream, the frame closest to it.
        x_click = browser.execute_script("return window.recview.xOf(arguments[0])", t0 + 2_345_000_000)
        click_canvas(browser, x_click, browser.execute_script("return window.recview.laneY(1)"))
        time.sleep(0.2)
        wait_ready(browser)
        head = browser.execute_script(rv + "playhead")
        assert abs(head - (t0 + 2_345_000_000)) < 50_000_000
        want_i = min(999, max(0, round((head - t0) / 10_000_000)))
        odom = browser.find_element("css selector", '#frames .frame[data-stream="odom"] pre').text
        assert json.loads(odom)["i"] == want_i, odom
        lidar = browser.find_element("css selector", '#frames .frame[data-stream="lidar"] h4').text
        assert lidar.startswith("lidar #"), lidar
        # Zooming changes the axis (and re-queries the density).
        before_axis, before_view = browser.execute_script(rv + "axis"), browser.execute_script(rv + "view")
        browser.execute_script(
            "const c = document.getElementById('timeline'); const r = c.getBoundingClientRect();"
            "c.dispatchEvent(new WheelEvent('wheel', {deltaY: -400, clientX: r.left + arguments[0], clientY: r.top + 50, bubbles: true, cancelable: true}));",
            x_click)
        time.sleep(0.2)
        wait_ready(browser)
        after_view = browser.execute_script(rv + "view")
        assert after_view["until"] - after_view["from"] < before_view["until"] - before_view["from"]
        assert browser.execute_script(rv + "axis") != before_axis
        browser.execute_script("document.getElementById('reset').click()")
        time.sleep(0.2)
        wait_ready(browser)
        # The diverged action is red in the actions lane, and a click shows its diff.
        acts = browser.execute_script("return fetch('/api/actions').then(r => r.json())")["actions"]
        diverged = next(a for a in acts if a["seq"] == 2)
        xa = browser.execute_script("return window.recview.xOf(arguments[0])", diverged["ts_ns"])
        ya = browser.execute_script("return window.recview.actionsY()")
        SHOTS.mkdir(parents=True, exist_ok=True)
        browser.save_screenshot(str(SHOTS / "planted.png"))
        r, g, b, _ = pixel(browser, xa, ya)
        assert r > 150 and g < 100, (r, g, b)
        click_canvas(browser, xa, ya)
        time.sleep(0.2)
        detail = browser.find_element("id", "detail").text
        assert "DIVERGED" in detail and "#2" in detail, detail
    finally:
        v.close()
