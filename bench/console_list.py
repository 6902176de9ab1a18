"""The figures of bench/console-list: creates N projects on a running `sluice server`, then
times the API's project list and the console's Projects page. usage: URL PASSWORD N"""
import http.client
import json
import statistics
import sys
import time
import urllib.parse

import os

from playwright.sync_api import sync_playwright

url, password, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
u = urllib.parse.urlparse(url)
conn = http.client.HTTPConnection(u.hostname, u.port)
token = None


def call(method, path, body=None):
    headers = {"content-type": "application/json"}
    if token:
        headers["authorization"] = f"Bearer {token}"
    conn.request(method, path, json.dumps(body) if body is not None else None, headers)
    r = conn.getresponse()
    data = r.read()
    if r.status >= 300:
        sys.exit(f"{method} {path}: {r.status} {data[:300]!r}")
    return json.loads(data) if data else None


token = call("POST", "/api/v1/login", {"user": "admin", "password": password})["token"]
call("POST", "/api/v1/datasources", {"name": "shop", "kind": "mariadb", "host": "127.0.0.1", "port": 3316, "user": "root"})
call("POST", "/api/v1/datasources", {"name": "mq", "kind": "kafka", "brokers": "127.0.0.1:9092"})
for i in range(n):
    call("POST", "/api/v1/projects", {
        "name": f"p{i:03}", "source": {"datasource": "shop"},
        "destination": {"datasource": "mq", "format": "oms", "topic": "{db}.{table}"},
        "objects": {"include": [f"shop{i}.*"], "rename": {f"shop{i}.orders": f"copy{i}.orders"}},
        "stages": {"full": True}})

times = []
for _ in range(200):
    t0 = time.perf_counter()
    got = call("GET", "/api/v1/projects")
    times.append((time.perf_counter() - t0) * 1000)
    assert len(got) == n, len(got)
times.sort()
p99 = times[int(len(times) * 0.99) - 1]
print(f"api projects list ({n} projects, 200 calls): median {statistics.median(times):.1f} ms, p99 {p99:.1f} ms, max {times[-1]:.1f} ms", file=sys.stderr)

with sync_playwright() as p:
    browser = p.chromium.launch(executable_path=os.environ["SLUICE_CHROMIUM"], args=["--no-sandbox"])
    page = browser.new_page()
    page.goto(url + "/")
    page.get_by_label("Password").fill(password)
    page.keyboard.press("Enter")
    page.locator("tr[data-project]").nth(n - 1).wait_for()
    loads, clicks = [], []
    for _ in range(20):
        # A whole page load (the script, the session check, the list) ...
        t0 = time.perf_counter()
        page.reload()
        page.locator("tr[data-project]").nth(n - 1).wait_for()
        loads.append((time.perf_counter() - t0) * 1000)
        # ... and what a user clicking "Projects" from another page waits for.
        page.get_by_role("link", name="Data sources").click()
        page.locator("tr[data-datasource]").first.wait_for()
        # Timed in the page itself (no automation round trips): from the hash change to the
        # last row in the document.
        clicks.append(page.evaluate("""async (n) => {
            const t0 = performance.now();
            location.hash = "#/projects";
            while (document.querySelectorAll("tr[data-project]").length < n) await new Promise((r) => setTimeout(r, 0));
            return performance.now() - t0;
        }""", n))
    browser.close()
loads.sort()
clicks.sort()
print(f"console projects page, whole load to {n} rows (20 loads): median {statistics.median(loads):.0f} ms, max {loads[-1]:.0f} ms", file=sys.stderr)
print(f"console projects page, click to {n} rows (20 clicks): median {statistics.median(clicks):.0f} ms, max {clicks[-1]:.0f} ms", file=sys.stderr)
print(f"projects_page_load_median: {statistics.median(loads):.0f} ms")
print(f"projects_page_click_median: {statistics.median(clicks):.0f} ms")
print(f"projects_list_api_p99: {p99:.1f} ms")
