"""The user menu's API tokens in headless Chromium: create one (shown once), use it from
outside the browser, revoke it (it stops working). Screenshots go to OUT_DIR.

usage: tokens.py URL OUT_DIR PASSWORD"""
import os
import re
import sys
import urllib.error
import urllib.request

from harness import console, sign_in
from playwright.sync_api import expect

url, out_dir, password = sys.argv[1:4]
os.makedirs(out_dir, exist_ok=True)


def me(token):
    req = urllib.request.Request(url + "/api/v1/me", headers={"Authorization": f"Bearer {token}"})
    try:
        with urllib.request.urlopen(req) as r:
            return r.status
    except urllib.error.HTTPError as e:
        return e.code


# The projects list answers 1.5 s late: the page signing in goes to first must not draw over
# the tokens page the user went to meanwhile (it once did, under load, mid-form).
SLOW_PROJECTS = """
const realFetch = window.fetch;
window.fetch = async (...args) => {
  const answer = await realFetch(...args);
  if (String(args[0]).endsWith("/api/v1/projects")) await new Promise((ok) => setTimeout(ok, 1500));
  return answer;
};
"""

with console(url, init_script=SLOW_PROJECTS) as page:
    sign_in(page, password)
    page.get_by_role("link", name="API tokens").click()
    page.get_by_label("Label *").fill("ci-token")
    page.wait_for_timeout(2000)
    expect(page.get_by_label("Label *")).to_have_value("ci-token")
    page.get_by_label("Expires after (days, empty: never)").fill("30")
    page.get_by_role("button", name="Create").click()
    value = page.locator("#token-value")
    expect(value).to_have_text(re.compile(r"^slu_"))
    token = value.inner_text()
    expect(page.locator('tr[data-token="ci-token"]')).to_contain_text("active")
    page.screenshot(path=os.path.join(out_dir, "tokens-created.png"), full_page=True)
    if me(token) != 200:
        sys.exit("the new token does not work")
    page.locator('button[data-revoke="ci-token"]').click()
    expect(page.locator('tr[data-token="ci-token"]')).to_contain_text("revoked")
    expect(page.locator("#token-value")).to_have_count(0)
    if me(token) != 401:
        sys.exit("the revoked token still works")
    page.screenshot(path=os.path.join(out_dir, "tokens-revoked.png"), full_page=True)
print("console scenario passed")
