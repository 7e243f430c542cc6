"""`vtg demo` in a real headless Chromium (Debian's chromium + chromium-driver; .ci/run installs
them): upload a generated video, ground a query, read the answer and the timeline from the page,
and see the duration and upload limits refuse what is too long or too large."""

import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import pytest

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
DRIVER = shutil.which("chromedriver") or "/usr/bin/chromedriver"
QUERY = "the red square moves to the left"

pytestmark = [
    pytest.mark.browser,
    pytest.mark.slow,
    pytest.mark.skipif(not (os.path.isfile(CHROMIUM) and os.path.isfile(DRIVER)),
                       reason="needs Debian's chromium and chromium-driver: apt-get install -y chromium chromium-driver "
                              "(.ci/run installs them)"),
]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _listening_addresses(port: int) -> set[str]:
    """Local IPv4 addresses (hex, as /proc/net/tcp writes them) listening on ``port``."""
    found = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        if not os.path.exists(table):
            continue
        for line in Path(table).read_text().splitlines()[1:]:
            local, state = line.split()[1], line.split()[3]
            address, hex_port = local.rsplit(":", 1)
            if state == "0A" and int(hex_port, 16) == port:  # 0A: LISTEN
                found.add(address)
    return found


@pytest.fixture
def server(tiny_run, tmp_path):
    """`vtg demo --run RUN` on a free port (default host), limits of 1 MB and 30 s."""
    port = _free_port()
    env = {**os.environ, "OMP_NUM_THREADS": "1", "GRADIO_ANALYTICS_ENABLED": "False",
           "GRADIO_TEMP_DIR": str(tmp_path / "gradio"), "HF_HUB_OFFLINE": "1"}
    log = (tmp_path / "demo.log").open("w")
    proc = subprocess.Popen([sys.executable, "-m", "vtgcore.apps.cli", "demo", "--run", str(tiny_run), "--port", str(port),
                             "--max-upload-mb", "1", "--max-duration", "30", "--max-new-tokens", "48"],
                            stdout=log, stderr=subprocess.STDOUT, env=env)
    url = f"http://127.0.0.1:{port}/"
    deadline = time.monotonic() + 180
    try:
        while True:
            try:
                with urllib.request.urlopen(url, timeout=5) as response:
                    if response.status == 200:
                        break
            except OSError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"vtg demo did not start:\n{(tmp_path / 'demo.log').read_text()[-3000:]}")
            time.sleep(0.5)
        yield url, port
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()


@pytest.fixture
def browser(tmp_path):
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--disable-dev-shm-usage", "--window-size=1280,1000",
                 f"--user-data-dir={tempfile.mkdtemp(dir=tmp_path)}"):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(DRIVER), options=options)
    driver.set_page_load_timeout(60)
    try:
        yield driver
    finally:
        driver.quit()


def _ask(driver, url, video, task="mr", query="", wait_answer=True):
    """Open the page, upload ``video``, choose ``task``, type ``query``, press Ground; the answer."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    driver.get(url)
    wait = WebDriverWait(driver, 60)
    wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, "#vtg-video input[type=file]"))
    driver.find_element(By.CSS_SELECTOR, "#vtg-video input[type=file]").send_keys(str(video))
    if wait_answer:  # the upload finished when the file box shows its size
        wait.until(lambda d: "KB" in d.find_element(By.CSS_SELECTOR, "#vtg-video").text)
    driver.find_element(By.CSS_SELECTOR, f"#vtg-task input[value={task}]").click()
    driver.find_element(By.CSS_SELECTOR, "#vtg-query textarea").send_keys(query)
    driver.find_element(By.CSS_SELECTOR, "#vtg-run").click()
    answer = lambda d: d.find_element(By.CSS_SELECTOR, "#vtg-answer textarea").get_attribute("value")  # noqa: E731
    wait.until(answer)
    return answer(driver)


def test_demo_page_grounds_an_uploaded_video(server, browser, synth_dir, tiny_run, tmp_path):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    from vtgcore.eval.generate import GenerationConfig
    from vtgcore.apps.pipeline import load_pipeline
    from vtgcore.data.pattern_videos import write_test_video

    url, port = server
    assert _listening_addresses(port) == {"0100007F"}, "binds to 127.0.0.1 only by default"
    video = synth_dir / "videos" / "val_00000.mp4"
    text = _ask(browser, url, video, "mr", QUERY)
    expected = load_pipeline(tiny_run, generation=GenerationConfig(max_new_tokens=48)).ground(str(video), QUERY)
    assert text.splitlines()[0] == f'val_00000.mp4 (00:09, 9.0 s): moment retrieval for "{QUERY}"'
    assert text.splitlines()[1] == f"answer: {expected.text}"
    bar = browser.find_element(By.CSS_SELECTOR, "#vtg-timeline .vtg-timeline")
    assert float(bar.get_attribute("data-duration")) == expected.duration
    windows = [(float(w.get_attribute("data-start")), float(w.get_attribute("data-end")))
               for w in browser.find_elements(By.CSS_SELECTOR, "#vtg-timeline .vtg-window")]
    assert windows == expected.windows  # the page shows what the Python API answers
    assert len(browser.find_elements(By.CSS_SELECTOR, "#vtg-timeline .vtg-frames img")) == 8
    browser.save_screenshot(str(tmp_path / "answer.png"))

    long_video = write_test_video(tmp_path / "long.mp4", duration=40, fps=2, size=(32, 32))
    text = _ask(browser, url, long_video, "mr", QUERY)
    assert text.startswith("The video is 00:40 long (40.0 s); this demo accepts at most 00:30")

    big = tmp_path / "big.mp4"
    big.write_bytes(os.urandom(3 * 2**19))  # 1.5 MB
    text = _ask(browser, url, big, "mr", QUERY, wait_answer=False)
    toast = WebDriverWait(browser, 30).until(
        lambda d: " ".join(t.text for t in d.find_elements(By.CSS_SELECTOR, "[data-testid='toast-body']")))
    assert "exceed the maximum allowed size of 1.0 Mb" in toast and "big.mp4" in toast
    assert text.startswith("Upload a video first (at most 1 MB")
