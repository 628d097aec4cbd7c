"""The live dashboard in a real headless browser (Debian's chromium driven by Selenium): `seldon serve`
with the seed's examples (a model with a request logger, an A/B test, a bandit, an outlier
detector) on two workers; the page loads without a console error, shows every deployment and its
graph's node names as text, and its counters, bandit shares and detector counts move while traffic
runs; a client that is not this host is refused.

SELDON_DASHBOARD_SCREENSHOTS=DIR keeps screenshots of the page there (docs/images are made so)."""

from __future__ import annotations

import contextlib
import os
import random
import shutil
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from tests.helpers import ROOT, Gateway, gateway, wait_until

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
GRAPHS = {
    "mymodel": ["mymodel"],
    "myabtest": ["random-ab-test", "classifier-1", "classifier-2"],
    "mymab": ["eg-router", "classifier-1", "classifier-2"],
    "myout": ["outlier-detector", "myout"],
}
ROW = {"data": {"ndarray": [[1.0, 2.0, 3.0, 4.0]]}}


def _browser() -> Any:
    if not (CHROMIUM.exists() and CHROMEDRIVER.exists()):
        why = "chromium and chromium-driver are not installed (apt-get install -y chromium chromium-driver)"
        if os.environ.get("SELDON_NO_SKIP") == "1":
            pytest.fail(why)
        pytest.skip(why)
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for argument in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1500,1400"):
        options.add_argument(argument)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    # The driver named explicitly: Selenium Manager would try to download one.
    return webdriver.Chrome(service=Service(str(CHROMEDRIVER)), options=options)


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Gateway, Path]]:
    work = tmp_path_factory.mktemp("dashboard")
    manifests = work / "manifests"
    manifests.mkdir()
    for path in (ROOT / "examples" / "manifests").glob("*.yaml"):
        shutil.copy(path, manifests / path.name)
    # mymodel's node logs its requests and answers (to a file): the page lists them, redacted.
    doc = yaml.safe_load((manifests / "mymodel.yaml").read_text())
    graph = doc["items"][0]["spec"]["predictors"][0]["graph"]
    graph["logger"] = {"mode": "all", "url": f"file://{work / 'events.jsonl'}"}
    (manifests / "mymodel.yaml").write_text(yaml.safe_dump(doc))
    with gateway(manifests, state_dir=work / "state", workers=2) as gw:
        yield gw, work


def _traffic(gw: Gateway, stop: threading.Event) -> None:
    """Predictions to every deployment; each bandit answer gets a feedback (reward 1 on branch 1)."""
    rng = random.Random(16)
    with httpx.Client(timeout=10) as client:
        while not stop.is_set():
            # mymodel's on a new connection each: the kernel spreads those over both workers, and
            # the page lists the recent requests of the worker that serves it.
            r = httpx.post(f"{gw.url}/seldon/mymodel/api/v0.1/predictions", json=ROW, timeout=10)
            assert r.status_code == 200, r.text
            # The detector sees rows around 0, and now and then one far out.
            row = [[rng.gauss(0, 1) * (25 if rng.random() < 0.1 else 1) for _ in range(4)]]
            r = client.post(f"{gw.url}/seldon/myout/api/v0.1/predictions", json={"data": {"ndarray": row}})
            assert r.status_code == 200, r.text
            for name in ("myabtest", "mymab"):
                r = client.post(f"{gw.url}/seldon/{name}/api/v0.1/predictions", json=ROW)
                assert r.status_code == 200, r.text
                if name == "mymab":
                    answer = r.json()
                    reward = float(answer["meta"]["routing"]["eg-router"] == 1)
                    body = {"request": ROW, "response": answer, "reward": reward}
                    client.post(f"{gw.url}/seldon/mymab/api/v0.1/feedback", json=body).raise_for_status()
            time.sleep(0.01)


def _texts(driver: Any, css: str) -> list[str]:
    # Read in one script: the page redraws a deployment whenever its numbers change, and an
    # element found in one call may be gone by the next.
    script = "return Array.from(document.querySelectorAll(arguments[0])).map((e) => e.textContent)"
    return [" ".join(t.split()) for t in driver.execute_script(script, css)]


def _one(driver: Any, css: str) -> str:
    found = _texts(driver, css)
    return found[0] if found else ""


def _number(text: str) -> float:
    try:
        return float(text.split()[0].removesuffix("%").removesuffix("/s"))
    except ValueError:
        return -1.0


def _bandit_shares(driver: Any) -> list[str]:
    return _texts(driver, "[data-deployment='default/mymab'] table.bandit .share")


def test_dashboard_live_in_a_browser(served: tuple[Gateway, Path]) -> None:
    gw, _ = served
    driver = _browser()
    stop = threading.Event()
    sender = threading.Thread(target=_traffic, args=(gw, stop), daemon=True)
    shots = os.environ.get("SELDON_DASHBOARD_SCREENSHOTS")
    try:
        driver.get(f"{gw.url}/dashboard")
        # Every deployment, and its graph's nodes, as text in the page.
        wait_until(lambda: set(_texts(driver, ".dep-name")) == set(GRAPHS), "every deployment shown", 15)
        for name, nodes in GRAPHS.items():
            shown = _texts(driver, f"[data-deployment='default/{name}'] .node-name")
            assert sorted(shown) == sorted(nodes), (name, shown)
        # How each node runs (the examples are built-ins: in the gateway's event loop).
        hows = _texts(driver, "[data-deployment='default/mymab'] .node-how")
        assert len(hows) == 3 and all(t.startswith("inline · in-process") for t in hows), hows
        mab = "[data-deployment='default/mymab'] [data-field='predictor-mymab-requests'] b"
        before = _number(_one(driver, mab))
        shares_before = _bandit_shares(driver)
        sender.start()
        # Counters move while the traffic runs: requests, the rate, per node stats, bandit arms.
        wait_until(lambda: _number(_one(driver, mab)) > before + 20, "mymab's request counter moves", 10)
        first = _number(_one(driver, mab))
        wait_until(lambda: _number(_one(driver, mab)) > first, "mymab's request counter keeps moving", 5)
        rate = "[data-field='predictor-mymab-rps'] b"
        wait_until(lambda: _number(_one(driver, rate)) > 0, "mymab's requests per second shown", 5)
        node = ", ".join(f"[data-field='node-mymab-classifier-{i}-requests'] b" for i in (1, 2))
        wait_until(lambda: sum(_number(t) for t in _texts(driver, node)) > 0, "per node counters move", 5)
        wait_until(lambda: _bandit_shares(driver) != shares_before, "the bandit's shares change", 5)
        tries = "[data-deployment='default/mymab'] table.bandit .tries"
        wait_until(lambda: sum(_number(t) for t in _texts(driver, tries)) > 0, "the bandit counts tries", 5)
        observed = "[data-deployment='default/myout'] [data-field='det-obs'] b"
        wait_until(lambda: _number(_one(driver, observed)) > 0, "the detector's observations move", 5)
        recent = "[data-deployment='default/mymodel'] table.recent tbody tr"
        wait_until(lambda: len(_texts(driver, recent)) > 0, "mymodel's recent requests listed", 5)
        assert all(row.endswith("redacted") for row in _texts(driver, recent))
        if shots:
            spark = "[data-deployment='default/myout'] .spark circle"
            wait_until(lambda: len(_texts(driver, spark)) > 0, "the outlier rate drawn", 8)
            time.sleep(4)  # a few points of it
            Path(shots).mkdir(parents=True, exist_ok=True)
            driver.save_screenshot(str(Path(shots) / "dashboard.png"))
        stop.set()
        sender.join(10)
        # Five more, each on a new connection (the kernel picks the worker): the page lists every
        # one, whichever worker logged it (odds of all five on the page's own worker: 1 in 32).
        puids = []
        for _ in range(5):
            r = httpx.post(f"{gw.url}/seldon/mymodel/api/v0.1/predictions", json=ROW, timeout=10)
            puids.append(r.json()["meta"]["puid"])
        ids = "[data-deployment='default/mymodel'] table.recent .request-id"
        wait_until(lambda: set(puids) <= set(_texts(driver, ids)), "every worker's recent requests", 6)
        errors = [e for e in driver.get_log("browser") if e["level"] == "SEVERE"]
        assert errors == [], errors
    finally:
        stop.set()
        if sender.is_alive():
            sender.join(10)
        with contextlib.suppress(Exception):
            driver.quit()


def test_dashboard_refuses_other_hosts(served: tuple[Gateway, Path]) -> None:
    gw, _ = served
    # What a proxy in front of the server sends: the client is not this host.
    r = httpx.get(f"{gw.url}/dashboard/events", headers={"x-forwarded-for": "203.0.113.9"})
    assert r.status_code == 403
    info = r.json()["status"]["info"]
    assert "--dashboard-public" in info and info.count(". ") == 0 and "\n" not in info
