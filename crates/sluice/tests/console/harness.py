"""What every console scenario shares: Debian's Chromium (SLUICE_CHROMIUM) driven by Playwright,
one page, script errors in the page failing the scenario, and signing in."""
import contextlib
import os
import sys

from playwright.sync_api import sync_playwright


@contextlib.contextmanager
def console(url, path="/", height=None, init_script=None):
    """A page of the console at URL + PATH; fails the scenario if the page's script threw.
    INIT_SCRIPT runs in the page before the console's own scripts."""
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=os.environ["SLUICE_CHROMIUM"], args=["--no-sandbox"])
        page = browser.new_page(viewport={"width": 1280, "height": height}) if height else browser.new_page()
        errors = []
        page.on("pageerror", lambda e: errors.append(str(e)))
        if init_script:
            page.add_init_script(init_script)
        page.goto(url + path)
        yield page
        browser.close()
        if errors:
            sys.exit(f"script errors in the page: {errors}")


def sign_in(page, password):
    """Signs in as admin from the sign-in form."""
    page.get_by_label("Password").fill(password)
    page.keyboard.press("Enter")
