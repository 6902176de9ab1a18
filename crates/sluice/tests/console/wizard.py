"""The create-project wizard in headless Chromium, then the project it made: every step, the first
by keyboard only; a bad name and a row filter on a missing column shown at their fields; a
table checked in the tree, an include rule with `*`, a rename and a row filter; the precheck;
create and start; Running with full-sync progress at 100% and the charts drawing points; pause
and resume; a table added from the project page arriving whole; stop and release. Every field
of every step must have a label. Screenshots go to OUT_DIR.

usage: wizard.py URL OUT_DIR PROJECT DB PASSWORD"""
import os
import re
import sys

from harness import console, sign_in
from playwright.sync_api import expect

url, out_dir, project, db, password = sys.argv[1:6]
os.makedirs(out_dir, exist_ok=True)
shot = lambda page, name: page.screenshot(path=os.path.join(out_dir, name), full_page=True)


def labelled(page):
    """Fails unless every field of the step has a label or an aria-label."""
    bare = page.evaluate("""() => [...document.querySelectorAll('#wizard-step input, #wizard-step select, #wizard-step textarea')]
        .filter(e => !(e.labels && e.labels.length) && !e.getAttribute('aria-label')).map(e => e.outerHTML)""")
    if bare:
        sys.exit(f"fields without a label: {bare}")


def focused(page):
    return page.evaluate("() => document.activeElement && document.activeElement.id")


def step_is(page, n, title):
    heading = page.locator("#wiz-heading")
    expect(heading).to_have_text(f"{n}. {title}", timeout=30_000)
    if focused(page) != "wiz-heading":
        sys.exit(f"step {n}: the focus is on {focused(page)!r}, not the step's heading")
    expect(page.locator('.steps li[aria-current="step"]')).to_contain_text(title)
    labelled(page)


with console(url, height=1100) as page:
    sign_in(page, password)
    page.locator("#new-project").click()

    # 1. Name, source, destination, by keyboard only: Tab from the heading reaches the name,
    # the two data sources and Next in that order; Enter goes on.
    step_is(page, 1, "Source and destination")
    order = []
    for _ in range(4):
        page.keyboard.press("Tab")
        order.append(focused(page))
    if order != ["wiz-name", "wiz-source", "wiz-destination", "wiz-next"]:
        sys.exit(f"tab order of step 1: {order}")
    page.locator("#wiz-name").focus()
    page.keyboard.type("bad name")
    page.keyboard.press("Enter")
    expect(page.locator("#wiz-name-error")).to_contain_text("is not a project name")
    page.locator("#wiz-name").fill("")
    page.locator("#wiz-name").focus()
    page.keyboard.type(project)
    page.keyboard.press("Enter")

    # 2. Stages: full sync is on by default, so the incremental start is disabled.
    step_is(page, 2, "Stages")
    expect(page.get_by_label("Full sync: copy the existing rows first")).to_be_checked()
    expect(page.locator("#wiz-start")).to_be_disabled()
    expect(page.locator("#wiz-verify")).to_be_enabled()
    page.keyboard.press("Tab")
    page.keyboard.press("Shift+Tab")
    page.locator("#wiz-next").press("Enter")

    # 3. Objects: the tree read live from the source; table t checked, t2* by a rule.
    step_is(page, 3, "Objects")
    page.locator(f'#wiz-tree input[data-key="{db}.t"]').check()
    page.get_by_label(re.compile("^Include rules")).fill(f"{db}.t2*")
    expect(page.locator("#wiz-selection-note")).to_have_text("2 table(s) selected.", timeout=30_000)
    page.get_by_label(f"Rename of {db}.t", exact=True).fill(f"{db}_r.orders")
    page.get_by_label(f"Row filter of {db}.t2", exact=True).fill("nosuch > 1")
    page.locator("#wiz-next").click()
    err = page.locator(f'[data-error="filter"][data-key="{db}.t2"]')
    expect(err).to_contain_text("nosuch", timeout=30_000)
    shot(page, "wizard-objects-error.png")
    page.get_by_label(f"Row filter of {db}.t2", exact=True).fill("id <= 100")
    page.locator("#wiz-next").click()

    # 4. Destination options.
    step_is(page, 4, "Destination options")
    page.get_by_label("Partition mode").select_option("table")
    page.get_by_label("Heartbeat (s)").fill("1")
    page.locator("#wiz-next").click()

    # 5. Precheck, with its findings.
    step_is(page, 5, "Precheck")
    expect(page.locator("#wiz-precheck-result")).to_have_text("The precheck passed.", timeout=90_000)
    shot(page, "wizard-precheck.png")
    page.locator("#wiz-next").click()

    # 6. Review: the project file holds the choices; create and start.
    step_is(page, 6, "Review and start")
    review = page.locator("#wiz-yaml")
    for want in [f'"{db}.t": "{db}_r.orders"', f'"{db}.t2": "id <= 100"', f'"{db}.t2*"', "partition_mode: \"table\""]:
        expect(review).to_contain_text(want)
    expect(page.locator("#wiz-review-tables")).to_contain_text(f"{db}.t → {db}_r.orders")
    shot(page, "wizard-review.png")
    page.locator("#wiz-next").click()

    # The project page: Running, full sync done for both tables, the charts drawing.
    state = page.locator("#project-state")
    expect(state).to_have_text("Running", timeout=60_000)
    for t in ["t", "t2"]:
        expect(page.locator(f'tr[data-table="{db}.{t}"]')).to_contain_text("done", timeout=60_000)
    expect(page.locator("#full progress")).to_have_count(2)
    for p in page.locator("#full progress").all():
        expect(p).to_have_attribute("value", "100")
    expect(page.locator("#project-stage")).to_have_text("incremental", timeout=60_000)
    expect(page.locator("svg.chart polyline.series-1").first).to_have_attribute(
        "data-points", re.compile(r"^([3-9]|\d\d+)$"), timeout=60_000)

    def act(action, want):
        page.locator(f'button[data-action="{action}"]').click()
        expect(state).to_have_text(want, timeout=60_000)

    act("pause", "Paused")
    act("resume", "Running")

    # A table added while running: Modifying until it is copied, then Running again.
    page.get_by_label("Add a table").fill(f"{db}.u")
    page.locator("#add-table-button").click()
    expect(page.locator(f'tr[data-table="{db}.u"]')).to_contain_text("done", timeout=90_000)
    expect(state).to_have_text("Running", timeout=60_000)
    expect(page.locator(f'tr[data-include="{db}.u"]')).to_be_visible()
    # Where each table goes, read from the source: the rename, the rule's match, the addition.
    for src, dst in [("t", f"{db}_r.orders"), ("t2", f"{db}.t2"), ("u", f"{db}.u")]:
        expect(page.locator(f'tr[data-mapped="{db}.{src}"]')).to_contain_text(dst, timeout=30_000)
    shot(page, "wizard-project-running.png")
    act("stop", "Stopped")
    act("release", "Released")
    shot(page, "wizard-project-released.png")
print("console scenario passed")
