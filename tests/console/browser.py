"""Drives two running `fedq console`s (officer A = officer-zhang, officer B = officer-li) in
headless Debian Chromium, through the DOM contract the console's pages follow: edit the
policy (a typo, its fix, a real change), see the change, make, review, sign (A then B) and
publish a bundle, then audit, citizens and the language switch.

  target/browser-tools/bin/python tests/console/browser.py --a URL_A --b URL_B \
      --case CASE --case-entries N --complaint ID --objection ID --shots DIR

Prints `ok: <step>` per step; on the first failure one line `FAIL: <step>: ...`, a
screenshot DIR/failure-<step>.png, exit 1. scripts/ensure-browser.sh installs what it needs.
"""
import argparse, os, re, shutil, sys, tempfile, time
from urllib.parse import urlsplit

from selenium import webdriver
from selenium.common.exceptions import TimeoutException, WebDriverException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.action_chains import ActionChains
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.support.ui import WebDriverWait

WAIT = 20  # seconds; every wait is bounded by this
FIELD = "hrss.benefit_fraud.benefit"
REQUESTER = "market-regulation.licensing"

# Every matching element's attributes (and `_text`), read in one go: never stale.
ROWS_JS = """return Array.from(document.querySelectorAll(arguments[0])).map(e => {
  const o = {_text: e.textContent.trim()};
  for (const a of e.attributes) o[a.name] = a.value;
  return o; });"""
# Selects `word` on 1-based line `line` of a textarea (or puts the caret after it), in
# JavaScript's own UTF-16 offsets, and focuses it so the keys typed next replace the selection.
SELECT_JS = """const [el, line, word, after] = arguments;
const lines = el.value.split('\\n'); let off = 0;
for (let i = 0; i < line - 1; i++) off += lines[i].length + 1;
const col = lines[line - 1].indexOf(word); if (col < 0) return false;
const start = off + col, end = start + word.length;
el.focus(); el.setSelectionRange(after ? end : start, end); return true;"""


class Fail(Exception):
    pass


def launch():
    profile = tempfile.mkdtemp(prefix="fedq-console-chromium-")
    opts = webdriver.ChromeOptions()
    opts.binary_location = "/usr/bin/chromium"
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic",
                "--no-first-run", "--disable-background-networking", "--disable-component-update",
                "--disable-sync", "--disable-dev-shm-usage", "--window-size=1400,1000",
                "--user-data-dir=" + profile, "--lang=zh-CN"):
        opts.add_argument(arg)
    # The page's console messages (a CSP violation, a script error) are read at the end.
    opts.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    # Both paths given: Selenium Manager has nothing to look up or download.
    d = webdriver.Chrome(service=Service(executable_path="/usr/bin/chromedriver"), options=opts)
    d.set_page_load_timeout(WAIT)
    d.set_script_timeout(WAIT)
    d.profile_dir = profile
    return d


def rows(d, css):
    return d.execute_script(ROWS_JS, css)


def one(d, css):
    r = rows(d, css)
    return r[0] if r else None


def seen(d):
    try:
        msg = one(d, "#message")
        return "url %s%s" % (d.current_url, ", #message[%s] %r" % (msg.get("data-kind"), msg["_text"][:200]) if msg else "")
    except WebDriverException as e:
        return "(page unreadable: %s)" % e.msg.splitlines()[0] if e.msg else "(page unreadable)"


def wait(d, what, cond, saw=None):
    """Waits ≤ WAIT s for cond() to be truthy (errors while a page loads count as not yet)."""
    def poll(_):
        try:
            return cond()
        except WebDriverException:
            return False
    try:
        return WebDriverWait(d, WAIT, poll_frequency=0.2).until(poll)
    except TimeoutException:
        extra = ""
        if saw:
            try:
                extra = "; " + saw()
            except WebDriverException:
                pass
        raise Fail("timed out after %ds waiting for %s; saw %s%s" % (WAIT, what, seen(d), extra))


def click_reload(d, css, within=None):
    """Clicks a button that submits a form, and waits for the next page."""
    old = d.find_element(By.TAG_NAME, "html")
    (within or d).find_element(By.CSS_SELECTOR, css).click()
    wait(d, "a new page after clicking %s" % css, lambda: _stale(old))


def _stale(el):
    try:
        el.tag_name
        return False
    except WebDriverException:
        return True


def message_ok(d, after):
    m = wait(d, "#message[data-kind] after " + after, lambda: (lambda m: m if m and m.get("data-kind") else None)(one(d, "#message")))
    expect(m["data-kind"] == "ok", "after %s #message[data-kind=%s] %r" % (after, m["data-kind"], m["_text"][:200]))


def verdict(d):
    v = one(d, "#check-status") or {}
    return v.get("data-ok"), int(v.get("data-checked") or -1)


def errors(d):
    return "errors %s" % [(e.get("data-line"), e.get("data-column"), e["_text"][:80]) for e in rows(d, "ul#errors > li.error")]


def editor_lines(d):
    return d.find_element(By.ID, "editor").get_property("value").split("\n")


def type_at(d, line, word, keys, after=False):
    """Selects `word` on `line` (or the caret after it) and types `keys` there, like a person."""
    if not d.execute_script(SELECT_JS, d.find_element(By.ID, "editor"), line, word, after):
        raise Fail("%r not on line %d: %r" % (word, line, editor_lines(d)[line - 1]))
    ActionChains(d).send_keys(keys).perform()


def wait_verdict(d, ok, before, extra=lambda: True, what=""):
    wait(d, "a new verdict #check-status[data-ok=%s] (data-checked > %d)%s" % (ok, before, what),
         lambda: verdict(d)[1] > before and verdict(d)[0] == ok and extra(),
         lambda: "verdict %s, %s" % (verdict(d), errors(d)))


def expect(cond, what):
    if not cond:
        raise Fail(what)


def main():
    ap = argparse.ArgumentParser()
    for a in ("--a", "--b", "--case", "--complaint", "--objection", "--shots"):
        ap.add_argument(a, required=True)
    ap.add_argument("--case-entries", type=int, required=True)
    args = ap.parse_args()
    os.makedirs(args.shots, exist_ok=True)
    # A console's link is its session: http://127.0.0.1:PORT/s/TOKEN/policy; every page is
    # under http://127.0.0.1:PORT/s/TOKEN.
    base = {k: u.rsplit("/policy", 1)[0] for k, u in (("a", args.a), ("b", args.b))}
    drivers, state = {}, {}

    def shot(d, name):
        d.save_screenshot(os.path.join(args.shots, name + ".png"))

    def step_policy(a):
        a.get(args.a)
        wait(a, "/policy with textarea#editor after login",
             lambda: urlsplit(a.current_url).path.endswith("/policy") and one(a, "textarea#editor"))
        wait(a, "#check-status[data-ok=true] on load", lambda: verdict(a)[0] == "true", lambda: errors(a))
        shot(a, "policy")

    def step_typo(a):
        lines = editor_lines(a)
        ids = [i for i, l in enumerate(lines) if 'id = "lic-benefit-fraud"' in l]
        expect(ids, 'no line holds id = "lic-benefit-fraud"')
        eff = next((i for i in range(ids[0] + 1, len(lines)) if lines[i].lstrip().startswith("effect")), None)
        expect(eff is not None and '"grant"' in lines[eff], "no effect = \"grant\" line after the rule's id")
        state.update(rule=ids[0], effect=eff + 1)
        line = eff + 1
        before = verdict(a)[1]
        type_at(a, line, "grant", "gant")
        expect('"gant"' in editor_lines(a)[eff], "typing left line %d as %r" % (line, editor_lines(a)[eff]))
        wait_verdict(a, "false", before, lambda: one(a, 'ul#errors > li.error[data-line="%d"]' % line)
                     and one(a, '#gutter span.line.error[data-line="%d"]' % line),
                     " with li.error and #gutter span.line.error at line %d" % line)
        shot(a, "policy-error")

    def step_edit(a):
        line = state["effect"]
        before = verdict(a)[1]
        type_at(a, line, "gant", "grant")
        wait_verdict(a, "true", before, what=" after fixing the typo")
        lines, rule = editor_lines(a), state["rule"]
        # The rule's block: from the table header above its id to the next header.
        top = next((i for i in range(rule, -1, -1) if lines[i].lstrip().startswith("[")), 0)
        end = next((i for i in range(rule + 1, len(lines)) if lines[i].lstrip().startswith("[")), len(lines))
        f = next((i for i in range(top, end) if re.match(r'\s*fields\s*=\s*\["decided_on"\]', lines[i])), None)
        expect(f is not None, 'no fields = ["decided_on"] line in the rule (lines %d-%d)' % (top + 1, end))
        before = verdict(a)[1]
        type_at(a, f + 1, '"decided_on"', ', "benefit"', after=True)
        expect('["decided_on", "benefit"]' in editor_lines(a)[f], "typing left line %d as %r" % (f + 1, editor_lines(a)[f]))
        wait_verdict(a, "true", before, what=" after adding \"benefit\"")
        click_reload(a, "button#save")
        message_ok(a, "#save")
        expect('["decided_on", "benefit"]' in editor_lines(a)[f], "after saving, line %d is %r" % (f + 1, editor_lines(a)[f]))
        a.find_element(By.CSS_SELECTOR, "button#run-tests").click()
        s = wait(a, "#tests-summary[data-passed][data-failed]",
                 lambda: (lambda s: s if s and "data-failed" in s and "data-passed" in s else None)(one(a, "#tests-summary")))
        failed = [t["_text"][:100] for t in rows(a, "ul#tests > li.fail")]
        expect(s["data-failed"] == "0" and int(s["data-passed"]) > 0,
               "tests passed=%s failed=%s %s" % (s["data-passed"], s["data-failed"], failed))

    def step_changes(a):
        a.get(base["a"] + "/changes")
        wait(a, "table#diff or p#no-change", lambda: one(a, "table#diff") or one(a, "p#no-change"))
        ch = rows(a, "tr.change")
        expect(any(c.get("data-kind") == "gain" and c.get("data-field") == FIELD and c.get("data-requester") == REQUESTER for c in ch),
               "no tr.change gain of %s for %s; rows %s" % (FIELD, REQUESTER, [(c.get("data-kind"), c.get("data-requester"), c.get("data-field")) for c in ch]))
        shot(a, "changes")
        box = a.find_element(By.CSS_SELECTOR, 'form#who-can [name="field"]')
        box.clear()
        box.send_keys(FIELD)
        a.find_element(By.CSS_SELECTOR, "button#who-can-submit").click()
        wait(a, "table#who-can-result listing " + REQUESTER, lambda: REQUESTER in (one(a, "table#who-can-result") or {"_text": ""})["_text"],
             lambda: "table %r" % ((one(a, "table#who-can-result") or {}).get("_text", "")[:200]))

    def bundle(d, sigs):
        css = 'tr.bundle[data-version="1"]'
        return wait(d, '%s[data-signatures="%d"]' % (css, sigs), lambda: (one(d, css) or {}).get("data-signatures") == str(sigs),
                    lambda: "bundles %s" % [(r.get("data-version"), r.get("data-signatures"), r.get("data-threshold")) for r in rows(d, "tr.bundle")])

    def review_sign(d, must_show):
        d.find_element(By.CSS_SELECTOR, 'tr.bundle[data-version="1"] a.review').click()
        text = wait(d, "pre#review", lambda: (one(d, "pre#review") or {}).get("_text"))
        expect(must_show in text, "pre#review does not show %r: %r" % (must_show, text[:300]))
        click_reload(d, "button#sign")
        message_ok(d, "#sign")

    def step_bundle_a(a):
        a.get(base["a"] + "/approve")
        v = wait(a, "input#bundle-version", lambda: a.find_element(By.ID, "bundle-version").get_property("value"))
        expect(v == "1", "#bundle-version is %r, not \"1\"" % v)
        click_reload(a, "button#bundle-create")
        message_ok(a, "#bundle-create")
        bundle(a, 0)
        review_sign(a, FIELD)
        bundle(a, 1)

    def step_publish_b(b):
        b.get(args.b)
        wait(b, "/policy after B's login", lambda: urlsplit(b.current_url).path.endswith("/policy"))
        b.get(base["b"] + "/approve")
        bundle(b, 1)
        review_sign(b, "officer-zhang")
        bundle(b, 2)
        shot(b, "approve")
        click_reload(b, "button.publish", b.find_element(By.CSS_SELECTOR, 'tr.bundle[data-version="1"]'))
        nodes = wait(b, "table#publication with tr.node rows", lambda: one(b, "table#publication") and rows(b, "table#publication tr.node"))
        expect(all(n.get("data-applied") == "true" for n in nodes),
               "not applied everywhere: %s" % [(n.get("data-node"), n.get("data-applied")) for n in nodes])
        procs = []

        def status_ok():  # reloads until the status shows the bundle in force everywhere
            procs[:] = rows(b, "table#status tr.process")
            if len(procs) >= 2 and any(p.get("data-name") == "coordinator" for p in procs) and all(
                    p.get("data-version") == "1" and p.get("data-reachable") == "true" for p in procs):
                return True
            b.get(base["b"] + "/approve")
            return False
        wait(b, "table#status: coordinator and >= 1 node, all data-version=1 data-reachable=true", status_ok,
             lambda: "processes %s" % [(p.get("data-name"), p.get("data-version"), p.get("data-reachable")) for p in procs])
        shot(b, "status")

    def step_audit(b):
        b.get(base["b"] + "/audit?lang=en")
        box = wait(b, "#f-case in form#audit-filter", lambda: b.find_element(By.CSS_SELECTOR, "form#audit-filter #f-case"))
        box.clear()
        box.send_keys(args.case)
        click_reload(b, "button#filter")
        c = wait(b, "#entry-count[data-count]", lambda: (one(b, "#entry-count") or {}).get("data-count"))
        entries = rows(b, "table#entries tr.entry")
        cases = [e["_text"] for e in rows(b, "table#entries tr.entry td.case")]
        expect(args.case_entries > 0, "--case-entries must be > 0")
        expect(c == str(args.case_entries) and len(entries) == args.case_entries and len(cases) == len(entries),
               "#entry-count %s, %d tr.entry, %d td.case; expected %d" % (c, len(entries), len(cases), args.case_entries))
        expect(all(x == args.case for x in cases), "td.case not all %r: %s" % (args.case, sorted(set(cases))[:5]))
        expect(one(b, "svg#per-office"), "no svg#per-office")
        shot(b, "audit")

    def step_citizens(b):
        b.get(base["b"] + "/citizens")
        want = ("table#complaints", "table#objections", "table#repairs")
        wait(b, ", ".join(want), lambda: all(one(b, t) for t in want),
             lambda: "present %s" % [t for t in want if one(b, t)])
        objections = rows(b, "table#objections tr.item")
        expect(any(o.get("data-id") == args.objection for o in objections),
               "objection %s not listed: %s" % (args.objection, [o.get("data-id") for o in objections]))
        row = 'table#complaints tr.item[data-id="%s"]' % args.complaint
        c = one(b, row)
        expect(c and c.get("data-status") == "open", "complaint %s not listed open: %s" % (args.complaint, c))
        shot(b, "citizens")
        # The officer takes the complaint into review, with a note the filer reads.
        form = b.find_element(By.CSS_SELECTOR, row + " form")
        form.find_element(By.CSS_SELECTOR, 'select[name="status"]').send_keys("in-review")
        form.find_element(By.CSS_SELECTOR, 'input[name="note"]').send_keys("已转法院核查")
        click_reload(b, "button[type=submit]", form)
        message_ok(b, "the complaint's status change")
        c = wait(b, row, lambda: one(b, row))
        expect(c.get("data-status") == "in-review", "complaint now %s" % c.get("data-status"))
        # And decides the objection: the record is corrected, signed with the officer's key.
        row = 'table#objections tr.item[data-id="%s"]' % args.objection
        form = b.find_element(By.CSS_SELECTOR, row + " form")
        form.find_element(By.CSS_SELECTOR, 'select[name="decision"]').send_keys("corrected")
        form.find_element(By.CSS_SELECTOR, 'input[name="note"]').send_keys("经核实已履行")
        form.find_element(By.CSS_SELECTOR, 'textarea[name="corrections"]').send_keys("performance_status=performed")
        click_reload(b, "button[type=submit]", form)
        message_ok(b, "the objection's decision")
        o = wait(b, row, lambda: one(b, row))
        expect(o.get("data-status") == "corrected", "objection now %s" % o.get("data-status"))
        shot(b, "citizens-decided")

    def step_keyboard(a):
        # From the top of a page: Tab reaches the skip link first, Enter moves to the content;
        # the next Tabs walk the navigation, and Enter on one opens its page.
        a.get(base["a"] + "/changes")
        wait(a, "/changes", lambda: one(a, "#nav-changes"))
        ActionChains(a).send_keys(Keys.TAB).perform()
        focused = a.execute_script("return document.activeElement.className")
        expect(focused == "skip", "the first Tab focused %r, not the skip link" % focused)
        ActionChains(a).send_keys(Keys.TAB, Keys.TAB, Keys.TAB, Keys.TAB).perform()
        focused = a.execute_script("return document.activeElement.id")
        expect(focused == "nav-audit", "four Tabs on focused %r, not #nav-audit" % focused)
        old = a.find_element(By.TAG_NAME, "html")
        ActionChains(a).send_keys(Keys.ENTER).perform()
        wait(a, "the audit page opened from the keyboard", lambda: _stale(old) and urlsplit(a.current_url).path.endswith("/audit"))

    def step_language(a):
        nav = {}
        for lang, html in (("en", "en"), ("zh", "zh-CN")):
            a.get(base["a"] + "/policy?lang=" + lang)
            wait(a, "html[lang=%s]" % html, lambda: a.find_element(By.TAG_NAME, "html").get_attribute("lang") == html,
                 lambda: "html lang %r" % a.find_element(By.TAG_NAME, "html").get_attribute("lang"))
            nav[lang] = a.find_element(By.ID, "nav-policy").text.strip()
            if lang == "en":
                shot(a, "policy-en")
        expect(nav["en"] and nav["zh"] and nav["en"] != nav["zh"], "a#nav-policy reads %r in en and %r in zh" % (nav["en"], nav["zh"]))

    def step_no_page_errors(d):
        # Nothing the pages did was refused by their own CSP or failed in script.
        for who, drv in drivers.items():
            severe = [e["message"][:200] for e in drv.get_log("browser") if e.get("level") == "SEVERE"]
            expect(not severe, "browser %s logged errors: %s" % (who, severe))

    steps = [("policy", "a", step_policy), ("typo", "a", step_typo), ("edit-save-test", "a", step_edit),
             ("changes", "a", step_changes), ("bundle-sign-a", "a", step_bundle_a),
             ("sign-publish-b", "b", step_publish_b), ("audit", "b", step_audit),
             ("citizens", "b", step_citizens), ("keyboard", "a", step_keyboard),
             ("language", "a", step_language), ("page-errors", "a", step_no_page_errors)]
    step, started = "launch", time.monotonic()
    try:
        drivers["a"] = launch()
        drivers["b"] = launch()
        print("ok: launch", flush=True)
        for step, who, fn in steps:
            fn(drivers[who])
            print("ok: %s" % step, flush=True)
        print("ok: all %d steps in %.1fs" % (len(steps), time.monotonic() - started), flush=True)
        return 0
    except Exception as e:  # one line: the step, what was seen
        d = drivers.get(dict((s, w) for s, w, _ in steps).get(step, "a"))
        why = str(e) if isinstance(e, Fail) else "%s: %s; saw %s" % (
            type(e).__name__, getattr(e, "msg", None) or e, seen(d) if d else "no browser")
        print("FAIL: %s: %s" % (step, " ".join(why.split())), flush=True)
        if d:
            try:
                d.save_screenshot(os.path.join(args.shots, "failure-%s.png" % step))
            except Exception:
                pass
        return 1
    finally:
        for d in drivers.values():
            try:
                d.quit()
            except Exception:
                pass
            shutil.rmtree(d.profile_dir, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
