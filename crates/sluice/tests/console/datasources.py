"""The data-source pages in headless Chromium: add a MariaDB and a Kafka data source through the
form (their connection tests succeed), one with a wrong password (its test shows the server's
answer), a bad name (the error at the field), a delete refused while a project names the data
source (saying which), an edit (a wrong port fails its test, the right one passes), a delete. Screenshots go to OUT_DIR.

usage: datasources.py URL OUT_DIR MARIADB_HOST MARIADB_PORT KAFKA USED PROJECT PASSWORD"""
import os
import re
import sys

from harness import console, sign_in
from playwright.sync_api import expect

url, out_dir, host, port, kafka, used, project, password = sys.argv[1:9]
os.makedirs(out_dir, exist_ok=True)
WRONG = "wrong-pw-7c1e"
with console(url, "/#/datasources", height=1200) as page:
    sign_in(page, password)
    expect(page.get_by_role("heading", name="Data sources")).to_be_visible()
    result = page.locator("#datasource-result")

    def add(name, kind, **fields):
        page.get_by_label("Name *").fill(name)
        page.get_by_label("Kind").select_option(kind)
        for k, v in fields.items():
            page.locator(f"#ds-{k}").fill(v)
        page.get_by_role("button", name="Add").click()

    def test(name, pattern):
        page.locator(f'button[data-test="{name}"]').click()
        expect(result).to_contain_text(re.compile(pattern), timeout=60_000)

    add("bad name", "kafka", brokers=kafka)
    expect(page.locator("#ds-name-error")).to_contain_text("not a data source name")

    add("shop2", "mariadb", host=host, port=port, user="root")
    expect(page.locator('tr[data-datasource="shop2"]')).to_contain_text(f"{host}:{port}")
    test("shop2", "shop2: connected")

    add("mq2", "kafka", brokers=kafka)
    test("mq2", "mq2: connected")

    # Edit: the name and kind stay; a wrong port fails its test, the right one passes again.
    def edit(name, **fields):
        page.locator(f'button[data-edit="{name}"]').click()
        expect(page.get_by_role("heading", name=f"Edit data source {name}")).to_be_focused()
        expect(page.locator("#ds-name")).to_be_disabled()
        expect(page.locator("#ds-kind")).to_be_disabled()
        for k, v in fields.items():
            page.locator(f"#ds-{k}").fill(v)
        page.get_by_role("button", name="Save").click()

    edit("shop2", port="1")
    expect(page.locator('tr[data-datasource="shop2"]')).to_contain_text(f"{host}:1")
    test("shop2", "shop2: .*check the data source's host, port, user and password")
    edit("shop2", port=port)
    expect(page.locator('tr[data-datasource="shop2"]')).to_contain_text(f"{host}:{port}")
    test("shop2", "shop2: connected")

    add("badpw", "mariadb", host=host, port=port, user="root", password=WRONG)
    test("badpw", "Access denied")
    page.screenshot(path=os.path.join(out_dir, "datasources-test.png"), full_page=True)

    page.locator(f'button[data-delete="{used}"]').click()
    expect(result).to_contain_text(f"used by project {project}")
    page.locator('button[data-delete="badpw"]').click()
    expect(page.locator('tr[data-datasource="badpw"]')).to_have_count(0)
    if WRONG in page.content():
        sys.exit("the password shows in the page")
    page.screenshot(path=os.path.join(out_dir, "datasources.png"), full_page=True)
print("console scenario passed")
