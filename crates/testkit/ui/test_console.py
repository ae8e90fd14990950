"""The admin console end to end: Debian's Chromium, headless, driven by Playwright (PyPI),
against a real `tessera serve` that `cargo xtask ui` started. The API is used directly (urllib)
to set the scene and to check what the console did. axe-core (npm) checks each main view.

Environment (set by xtask/src/ui.rs): TESSERA_URL, TESSERA_GATEWAY_URL, TESSERA_ADMIN_KEY,
CHROMIUM, AXE_JS, SCREENSHOTS.
"""

import http.server
import json
import os
import re
import socket
import sys
import threading
import urllib.error
import urllib.request

from playwright.sync_api import sync_playwright

API = os.environ["TESSERA_URL"]
GATEWAY = os.environ["TESSERA_GATEWAY_URL"]
KEY = os.environ["TESSERA_ADMIN_KEY"]
SHOTS = os.environ["SCREENSHOTS"]
AXE = open(os.environ["AXE_JS"], encoding="utf-8").read()
ADMIN_PASSWORD = "console admin password 1"

failures = []
axe_counts = {}


def check(cond, what):
    print(("ok   " if cond else "FAIL ") + what, flush=True)
    if not cond:
        failures.append(what)


def api(method, path, body=None, token=KEY):
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(API + path, data=data, method=method)
    if token:
        req.add_header("Authorization", "Bearer " + token)
    if data is not None:
        req.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(req) as r:
            text = r.read()
            return r.status, (json.loads(text) if text else None)
    except urllib.error.HTTPError as e:
        text = e.read()
        return e.code, (json.loads(text) if text else None)


def shot(page, name):
    page.screenshot(path=os.path.join(SHOTS, name + ".png"), full_page=True)


def axe(page, view):
    """Runs axe-core in the page (through the DevTools protocol: the page's CSP stays on)."""
    page.evaluate(AXE + "\n;0")
    result = page.evaluate("async () => { const r = await axe.run(); return r.violations.map(v => ({id: v.id, impact: v.impact, n: v.nodes.length, target: v.nodes[0] && v.nodes[0].target})); }")
    counts = {}
    for v in result:
        counts[v["impact"]] = counts.get(v["impact"], 0) + 1
    axe_counts[view] = counts
    bad = [v for v in result if v["impact"] in ("serious", "critical")]
    for v in bad:
        print("     axe:", view, v, flush=True)
    check(not bad, f"axe: no serious or critical violation in {view} (all: {counts or 'none'})")


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


class Upstream(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        body = f"hello from upstream, user {self.headers.get('X-Authenticated-Userid', '?')}".encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


def sign_in(page, email, password, next_path=None):
    url = API + "/ui/login" + (f"?next={next_path}" if next_path else "")
    page.goto(url)
    page.fill("#email", email)
    page.fill("#password", password)
    page.click("button[type=submit]")


def main():
    # ---- the scene, through the API ----
    status, me = api("GET", "/v2/users/me")
    check(status == 200, "the bootstrap key works")
    admin_id = me["user"]["id"]
    status, _ = api("PATCH", f"/v2/users/{admin_id}", {"password": ADMIN_PASSWORD})
    check(status == 200, "the administrator has a password")
    status, bob = api("POST", "/v2/users", {"email": "bob@example.com", "first_name": "Bob", "password": "bob password 1"})
    check(status == 201, "bob exists")
    bob_id = bob["user"]["id"]
    status, signed = api("POST", "/v2/sessions", {"email": "bob@example.com", "password": "bob password 1"}, token=None)
    check(status == 201, "bob signed in through the API")
    bob_token = signed["token"]

    upstream_port = free_port()
    upstream = http.server.ThreadingHTTPServer(("127.0.0.1", upstream_port), Upstream)
    threading.Thread(target=upstream.serve_forever, daemon=True).start()

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=os.environ["CHROMIUM"], headless=True, args=["--no-sandbox"])
        context = browser.new_context(viewport={"width": 1360, "height": 900})
        page = context.new_page()
        csp_errors = []
        page.on("console", lambda m: csp_errors.append(m.text) if "Content Security Policy" in m.text else None)

        # ---- sign in; the next= target must stay inside the console ----
        page.goto(API + "/ui/sessions")
        check("/ui/login" in page.url, "an anonymous visitor is sent to the sign-in page")
        shot(page, "01-login")
        axe(page, "login")
        form_token = page.locator("input[name=login_token]").get_attribute("value")
        jar = {c["name"]: c for c in context.cookies()}
        login_cookie = jar.get("tessera_csrf_login")
        check(
            login_cookie is not None and login_cookie["value"] == form_token and login_cookie["sameSite"] == "Strict",
            "the sign-in form carries the token of its SameSite=Strict cookie (login CSRF)",
        )
        sign_in(page, "admin@tessera.local", "wrong password")
        check(page.locator("#login-error").is_visible(), "a wrong password is refused on the page")
        sign_in(page, "admin@tessera.local", ADMIN_PASSWORD, next_path="//evil.example/steal")
        check(page.url == API + "/ui/sessions", f"next=//evil.example is not followed (landed on {page.url})")
        cookie = [c for c in context.cookies() if c["name"] == "tessera_session"][0]
        check(cookie["httpOnly"] and cookie["sameSite"] == "Strict", "the session cookie is HttpOnly and SameSite=Strict")

        # ---- sessions: table, counts, filter, error position ----
        check(page.locator("table tbody tr").count() >= 2, "the sessions table lists the console's and bob's sessions")
        login_active = page.locator("#counts b[data-kind=login][data-status=Active]").inner_text()
        check(int(login_active) >= 2, f"live counts show active login sessions ({login_active})")
        shot(page, "02-sessions")
        axe(page, "sessions")
        page.fill("#filter", "user_id_or_email eq 'bob@example.com' and kind eq 'login'")
        page.click("text=Apply filter")
        rows = page.locator("table tbody tr")
        check(rows.count() == 1 and "bob@example.com" in rows.first.inner_text(), "a typed $filter shows only bob's session")
        page.fill("#filter", "status eq 'Active' and kind eq")
        page.click("text=Apply filter")
        err = page.locator("#filter-error .error")
        check(err.is_visible() and "at position 30" in err.inner_text(), f"a bad $filter names its position ({err.inner_text() if err.count() else 'no error'})")
        caret = page.locator("#filter-error pre.caret").inner_text().split("\n")
        check(len(caret) == 2 and caret[1].index("^") == 30, "the caret is under the offending position")
        check(page.get_attribute("#filter", "aria-invalid") == "true", "the filter box is marked invalid")
        shot(page, "03-sessions-filter-error")
        # sort by a column: the header link switches the order
        page.goto(API + "/ui/sessions")
        page.click("th >> text=User")
        check("orderby=user_id_or_email" in page.url and page.get_attribute("th[aria-sort]", "aria-sort") == "ascending", "a column header sorts by it")

        # ---- terminate bob's session; the API refuses its token ----
        status, _ = api("GET", "/v2/sessions/current", token=bob_token)
        check(status == 200, "bob's token works before")
        page.goto(API + "/ui/sessions?user=bob%40example.com&status=Active")
        page.click("table tbody tr >> button:has-text('Terminate')")
        check("done=terminated" in page.url and "Terminated" in page.inner_text("dl.fields"), "the session detail shows it terminated")
        shot(page, "04-session-detail")
        axe(page, "session detail")
        status, _ = api("GET", "/v2/sessions/current", token=bob_token)
        check(status == 401, f"bob's terminated token is refused by the API ({status})")

        # ---- a user, and an API key shown once ----
        page.goto(API + "/ui/users")
        page.fill("#u-email", "bob@example.com")
        page.click("text=Create user")
        check(page.locator("#u-email-error").is_visible(), "a taken email is refused next to the field")
        page.fill("#u-email", "carol@example.com")
        page.fill("#u-first", "Carol")
        page.fill("#u-password", "carol password 1")
        page.click("text=Create user")
        check("/ui/users/" in page.url and "carol@example.com" in page.inner_text("h1"), "the user was created")
        user_url = page.url.split("?")[0]
        shot(page, "05-users")
        axe(page, "user detail")
        page.fill("#key-name", "ci")
        with page.expect_response(lambda r: r.url.endswith("/keys")) as resp:
            page.click("text=Create API key")
        check(resp.value.headers.get("cache-control") == "no-store", "the page with the new key is not stored")
        secret = page.inner_text("#new-secret")
        check(secret.startswith("tessera_ak_"), "the new key is shown")
        shot(page, "06-user-new-key")
        status, who = api("GET", "/v2/users/me", token=secret)
        check(status == 200 and who["user"]["email"] == "carol@example.com", "the shown key authenticates as carol")
        page.goto(user_url)
        check(secret not in page.content() and page.locator("#new-secret").count() == 0, "the key is not shown again")
        page.goto(API + "/ui/users")
        axe(page, "users")

        # ---- lockout and clearing it ----
        carol_id = user_url.rsplit("/", 1)[1]
        for _ in range(30):
            api("POST", "/v2/sessions", {"email": "carol@example.com", "password": "not the password"}, token=None)
            _, lock = api("GET", f"/v2/users/{carol_id}/login-lock")
            if lock["login_lock"]["locked"]:
                break
        page.goto(user_url)
        check(page.inner_text("#lock-state").startswith("Locked"), "the user page shows the lock")
        page.click("text=Clear the login lock")
        check(page.inner_text("#lock-state").startswith("Not locked"), "the lock is cleared")
        _, lock = api("GET", f"/v2/users/{carol_id}/login-lock")
        check(not lock["login_lock"]["locked"], "the API agrees the lock is cleared")

        # ---- a policy with a validation error on its line ----
        page.goto(API + "/ui/policies")
        page.fill("#p-name", "readers")
        doc = '{\n  "Version": "2012-10-17",\n  "Statement": [\n    {\n      "Effect": "Allow",\n      "Action": ["no such action!"],\n      "Resource": "*"\n    }\n  ]\n}'
        page.fill("#p-doc", doc)
        page.click("text=Create policy")
        perr = page.locator("#p-doc-error")
        check(perr.is_visible(), f"the policy's validation error is shown ({perr.inner_text() if perr.count() else '-'})")
        marked = page.locator("ol.lines li.line-error")
        check(marked.count() == 1 and "Action" in marked.inner_text(), "the error marks the Action line")
        shot(page, "07-policy-error")
        axe(page, "policy editor")
        page.fill("#p-doc", doc.replace("no such action!", "iam.user.Read"))
        page.click("text=Create policy")
        check("/ui/policies/" in page.url and "done=created" in page.url, "the corrected policy is saved")

        # ---- gateway: service, route, session plugin; sign in through the gateway ----
        def create(kind, obj):
            page.goto(f"{API}/ui/gateway/{kind}")
            page.fill("#g-doc", json.dumps(obj, indent=2))
            page.click("button:has-text('Create')")
            return page.url.split("?")[0].rsplit("/", 1)[1]

        svc = create("services", {"name": "app", "url": f"http://127.0.0.1:{upstream_port}"})
        check(len(svc) == 36, "a gateway service was created")
        create("routes", {"name": "bad", "paths": ["no-slash"], "service": {"id": svc}})
        gerr = page.locator("#g-doc-error")
        check(gerr.is_visible(), f"a bad route is refused next to the editor ({gerr.inner_text() if gerr.count() else '-'})")
        shot(page, "08-gateway-route-error")
        rt = create("routes", {"name": "app", "paths": ["/app"], "service": {"id": svc}})
        check(len(rt) == 36, "a gateway route was created")
        plugin = create("plugins", {"name": "session", "route": {"id": rt}, "config": {"cookie_secure": False, "storage": "server", "unauthenticated": "redirect"}})
        check(len(plugin) == 36, "a session plugin was created")
        page.goto(API + "/ui/gateway")
        check(not re.search(r'"secret":\s*"', page.content()), "the plugin's cookie secret is not in the page")
        shot(page, "09-gateway")
        axe(page, "gateway")
        gw = context.new_page()
        gw.goto(GATEWAY + "/app/")
        check("/.tessera/login" in gw.url, f"the gateway asks for a sign-in ({gw.url})")
        gw.fill("input[name=email]", "carol@example.com")
        gw.fill("input[name=password]", "carol password 1")
        gw.click("button[type=submit], input[type=submit]")
        check("hello from upstream" in gw.inner_text("body"), "signed in through the gateway, the upstream answers")
        gw.close()
        page.goto(API + "/ui/sessions?kind=gateway")
        check("carol@example.com" in page.inner_text("table tbody"), "the gateway session is listed in the console")
        # terminate all of carol's sessions from her page
        page.goto(user_url)
        page.click("text=Terminate all sessions")
        check("done=terminated_user" in page.url, "all of a user's sessions can be terminated")
        page.goto(API + "/ui/sessions?user=carol%40example.com&status=Active")
        check(page.locator("table tbody tr").count() == 0, "carol has no active session left")
        # disable the plugin from the console
        page.goto(f"{API}/ui/gateway/plugins/{plugin}")
        check(not re.search(r'"secret":\s*"', page.content()), "the plugin's cookie secret is not in its editor")
        page.click("button:has-text('Disable')")
        check("Enabled: no" in page.inner_text("main"), "the plugin can be disabled")

        # ---- the rest of the views ----
        for path, name in [("/ui/settings", "10-settings"), ("/ui/groups", "11-groups"), ("/ui/roles", "12-roles"), ("/ui/trusts", "13-trusts"), ("/ui/oidc", "14-oidc")]:
            page.goto(API + path)
            check(page.locator("main h1").count() == 1, f"{path} renders")
            shot(page, name)
            axe(page, path)
        page.goto(API + "/ui/settings")
        check("***" in page.inner_text("#effective-config") or "database" in page.inner_text("#effective-config"), "the effective configuration is shown")
        page.fill("#s-idle_timeout", "5")
        page.click("text=Save limits")
        check(page.locator("#s-idle_timeout-error").is_visible(), "a bad session limit is shown next to its field")

        # ---- a user without permissions sees no admin page ----
        other = browser.new_context()
        op = other.new_page()
        sign_in(op, "bob@example.com", "bob password 1")
        resp = op.goto(API + "/ui/users")
        check(resp.status == 403, f"bob (no policies) gets 403 on the users page ({resp.status})")
        other.close()

        # ---- sign out ----
        page.goto(API + "/ui/sessions")
        page.click("text=Sign out")
        check("/ui/login" in page.url, "signed out")
        page.goto(API + "/ui/users")
        check("/ui/login" in page.url, "after sign-out the console needs a sign-in again")

        check(not csp_errors, f"no Content-Security-Policy violation in the console ({csp_errors[:3]})")
        browser.close()
    upstream.shutdown()

    print("axe violations by impact per view:", json.dumps(axe_counts), flush=True)
    if failures:
        print(f"{len(failures)} check(s) failed:", *failures, sep="\n  ", flush=True)
        sys.exit(1)
    print("the console's end-to-end test passed", flush=True)


if __name__ == "__main__":
    main()
