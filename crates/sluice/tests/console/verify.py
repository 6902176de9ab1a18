"""Verification on the project page in headless Chromium: the Verify button runs one, the
results show per table, a table that differs is marked and its first differences listed.
Screenshots go to OUT_DIR.

usage: verify.py URL OUT_DIR PROJECT TABLE MISSING_ID PASSWORD"""
import os
import sys

from harness import console, sign_in
from playwright.sync_api import expect

url, out_dir, project, table, missing, password = sys.argv[1:7]
os.makedirs(out_dir, exist_ok=True)
with console(url, height=1200) as page:
    sign_in(page, password)
    page.get_by_role("link", name=project).click()
    expect(page.locator("#project-state")).to_have_text("Running", timeout=60_000)
    page.locator('button[data-action="verify"]').click()
    row = page.locator(f'tr[data-verified="{table}"]')
    expect(row).to_have_class("differs", timeout=60_000)
    # Rows, equal, missing, extra, different: one missing.
    expect(row.locator("td").nth(4)).to_have_text("1")
    diffs = page.locator(f'details[data-differences="{table}"]')
    diffs.locator("summary").click()
    expect(diffs).to_contain_text(f"missing id={missing}")
    page.screenshot(path=os.path.join(out_dir, "verify.png"), full_page=True)
print("console scenario passed")
