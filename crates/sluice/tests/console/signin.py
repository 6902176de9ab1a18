"""The console's first scenario, in headless Chromium driven by Playwright: sign in (a wrong
password shows the server's answer), the projects list with its state filter and its row actions (a start refused by the precheck), the data sources
list, keyboard order of the sign-in form, sign out. Screenshots go to OUT_DIR.

usage: signin.py URL OUT_DIR PROJECT DATASOURCE PASSWORD"""
import os
import re
import sys

from harness import console, sign_in
from playwright.sync_api import expect

url, out_dir, project, datasource, password = sys.argv[1:6]
os.makedirs(out_dir, exist_ok=True)
with console(url) as page:
    # Labels name every field; Tab goes user -> password -> the button.
    page.get_by_label("User").focus()
    page.keyboard.press("Tab")
    expect(page.get_by_label("Password")).to_be_focused()
    page.keyboard.press("Tab")
    expect(page.get_by_role("button", name="Sign in")).to_be_focused()

    page.get_by_label("Password").fill("not-the-password")
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("alert")).to_have_text("wrong user or password")

    sign_in(page, password)
    row = page.locator(f'tr[data-project="{project}"]')
    expect(row).to_contain_text("NotStarted")
    expect(row.locator(".state")).to_have_class("state state-NotStarted")
    page.get_by_label("State").select_option("Running")
    expect(row).to_have_count(0)
    page.get_by_label("State").select_option("")
    expect(row).to_have_count(1)
    # The row's actions follow its state; a disabled one says why on hover. Its broker is
    # unreachable, so a start from the list shows the precheck's refusal.
    expect(row.locator('button[data-action="pause"]')).to_be_disabled()
    expect(row.locator('button[data-action="pause"]')).to_have_attribute(
        "title", re.compile("pause is allowed only when it is Running"))
    row.locator('button[data-action="start"]').click()
    expect(page.locator("#list-result")).to_contain_text(f"{project}: the precheck failed", timeout=60_000)
    expect(row).to_contain_text("NotStarted")
    page.screenshot(path=os.path.join(out_dir, "projects.png"), full_page=True)

    page.get_by_role("link", name="Data sources").click()
    ds = page.locator(f'tr[data-datasource="{datasource}"]')
    expect(ds).to_contain_text("mariadb")
    expect(ds).to_contain_text(project)
    page.screenshot(path=os.path.join(out_dir, "datasources.png"), full_page=True)

    page.get_by_role("button", name="Sign out").click()
    expect(page.get_by_label("Password")).to_be_visible()
    # The session is over on the server too.
    page.goto(url + "/#/projects")
    expect(page.get_by_label("Password")).to_be_visible()
    page.screenshot(path=os.path.join(out_dir, "signed-out.png"))
print("console scenario passed")
