"""The project detail page in headless Chromium: actions allowed by the state (others disabled
with the reason on hover), start, full-sync progress to 100%, the Store and Writer charts
drawing points, pause, resume, stop, release. Screenshots go to OUT_DIR.

usage: detail.py URL OUT_DIR PROJECT TABLE PASSWORD"""
import os
import re
import sys

from harness import console, sign_in
from playwright.sync_api import expect

url, out_dir, project, table, password = sys.argv[1:6]
os.makedirs(out_dir, exist_ok=True)
with console(url, height=1100) as page:
    sign_in(page, password)
    page.get_by_role("link", name=project).click()
    state = page.locator("#project-state")
    expect(state).to_have_text("NotStarted")
    pause = page.locator('button[data-action="pause"]')
    expect(pause).to_be_disabled()
    expect(pause).to_have_attribute("title", re.compile("pause is allowed only when it is Running"))

    def act(action, want):
        page.locator(f'button[data-action="{action}"]').click()
        expect(state).to_have_text(want, timeout=60_000)

    act("start", "Running")
    expect(page.locator(f'tr[data-table="{table}"]')).to_contain_text("done", timeout=60_000)
    expect(page.locator("#project-stage")).to_have_text("incremental", timeout=60_000)
    # The charts draw points as the sampler records them.
    expect(page.locator("svg.chart polyline.series-1").first).to_have_attribute(
        "data-points", re.compile(r"^([3-9]|\d\d+)$"), timeout=60_000)
    page.screenshot(path=os.path.join(out_dir, "detail-running.png"), full_page=True)
    act("pause", "Paused")
    act("resume", "Running")
    act("stop", "Stopped")
    act("release", "Released")
    expect(page.locator('button[data-action="start"]')).to_be_disabled()
    page.screenshot(path=os.path.join(out_dir, "detail-released.png"), full_page=True)
print("console scenario passed")
