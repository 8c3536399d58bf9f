"""pgAdmin 4 on a stack with agentdb:tools: set up, locked down, and usable in a real browser.

One stack of its own (tools on), started by the real `agentdb up`. The browser test drives Debian's
headless Chromium through its chromedriver: log in with the generated login, expand the server
group, see every enabled database, and run a query in the query tool as the readonly role. Its
screenshots are kept in the pytest temporary directory, whose path the test prints.
"""

from __future__ import annotations

import json
import socket
import sqlite3
import stat
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest
from selenium import webdriver
from selenium.webdriver.chrome.service import Service as ChromeService
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.support.ui import WebDriverWait

from infra import credentials as sec
from infra import pgadmin
from tests.conftest import TestStack, dedicated_stack

CHROMIUM, CHROMEDRIVER = "/usr/bin/chromium", "/usr/bin/chromedriver"
# As the machine notes say: no sandbox (root), no GPU, and nothing that phones home.
CHROMIUM_FLAGS = [
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--window-size=1400,900",
]
WAIT_S = 60
QUERY = "SELECT current_user AS who, 6 * 7 AS answer"


@pytest.fixture(scope="module")
def tools_stack() -> Iterator[TestStack]:
    with dedicated_stack("agentdb-tools-", {"agentdb:tools": True}) as ts:
        yield ts


@pytest.fixture(scope="module")
def screens(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("pgadmin-screenshots")
    print(f"\npgAdmin screenshots: {path}")
    return path


@pytest.fixture
def browser() -> Iterator[WebDriver]:
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    with tempfile.TemporaryDirectory(prefix="agentdb-chromium-") as profile:
        for flag in [*CHROMIUM_FLAGS, f"--user-data-dir={profile}"]:
            options.add_argument(flag)
        driver = webdriver.Chrome(service=ChromeService(CHROMEDRIVER), options=options)
        try:
            yield driver
        finally:
            driver.quit()


def _node(name: str) -> str:
    """XPath of an object-explorer node by its label."""
    return f"//span[@class='file-name' and text()='{name}']"


def _expand(driver: WebDriver, xpath: str) -> None:
    toggle = "/ancestor::div[contains(@class,'file-entry')]/i[contains(@class,'directory-toggle')]"
    driver.find_element(By.XPATH, f"({xpath}){toggle}").click()


def test_browser_logs_in_sees_every_database_and_runs_a_query(tools_stack, browser, screens):
    stack = tools_stack
    secrets = stack.local.secrets()
    wait = WebDriverWait(browser, WAIT_S)
    url = f"http://{stack.settings.bind_address}:{stack.settings.pgadmin_port}"

    browser.get(url)
    wait.until(lambda d: d.find_elements(By.NAME, "email"))
    browser.find_element(By.NAME, "email").send_keys(secrets[sec.PGADMIN_LOGIN])
    browser.find_element(By.NAME, "password").send_keys(secrets[sec.PGADMIN_PASSWORD])
    browser.find_element(By.CSS_SELECTOR, "button[type=submit]").click()
    wait.until(lambda d: d.find_elements(By.XPATH, _node(pgadmin.SERVER_GROUP)))
    browser.save_screenshot(str(screens / "1-logged-in.png"))

    _expand(browser, _node(pgadmin.SERVER_GROUP))
    names = [db.name for db in stack.settings.enabled]
    wait.until(lambda d: all(d.find_elements(By.XPATH, _node(name)) for name in names))
    browser.save_screenshot(str(screens / "2-server-group.png"))

    # Expanding a server connects to it: through PgBouncer, as the readonly role, password from PassFile.
    first = stack.settings.enabled[0]
    browser.find_element(By.XPATH, _node(first.name)).click()
    _expand(browser, _node(first.name))
    wait.until(lambda d: d.find_elements(By.XPATH, _node("Databases")))
    _expand(browser, _node("Databases"))
    database = f"({_node(first.name)})[2]"  # the database node under its server of the same name
    wait.until(lambda d: d.find_elements(By.XPATH, database))
    browser.find_element(By.XPATH, database).click()

    browser.find_element(By.XPATH, "//button[.//*[text()='Tools'] or text()='Tools']").click()
    query_tool = "//*[@role='menuitem'][.//*[text()='Query Tool'] or text()='Query Tool']"
    wait.until(lambda d: d.find_element(By.XPATH, query_tool).is_enabled())
    browser.find_element(By.XPATH, query_tool).click()
    # The query tool lives in an iframe of its own; only the open one has a size.
    frame = wait.until(
        lambda d: next(
            (f for f in d.find_elements(By.CSS_SELECTOR, "iframe[id^=id-query-tool]") if f.size["width"]), None
        )
    )
    browser.switch_to.frame(frame)
    editor = wait.until(
        lambda d: next((e for e in d.find_elements(By.CSS_SELECTOR, ".cm-content") if e.is_displayed()), None)
    )
    editor.click()
    editor.send_keys(QUERY)
    editor.send_keys(Keys.F5)
    cells = wait.until(
        lambda d: [c.text for c in d.find_elements(By.CSS_SELECTOR, "[role=gridcell]") if c.text] or None
    )
    browser.switch_to.default_content()
    browser.save_screenshot(str(screens / "3-query-tool.png"))
    print(f"query tool result cells: {cells}")
    assert first.readonly_role in cells and "42" in cells, cells


def test_servers_json_registers_every_database_through_pgbouncer_as_readonly(tools_stack):
    stack = tools_stack
    servers = json.loads((stack.local.etc / pgadmin.SERVERS).read_text())["Servers"].values()
    expected = {
        (db.name, stack.settings.bind_address, stack.settings.pgbouncer_port, db.readonly_role, pgadmin.PASSFILE)
        for db in stack.settings.enabled
    }
    assert {(s["Name"], s["Host"], s["Port"], s["Username"], s["PassFile"]) for s in servers} == expected


@pytest.mark.parametrize(
    "path", ["etc/" + pgadmin.PGPASS, "secrets/" + sec.PGADMIN_LOGIN, "secrets/" + sec.PGADMIN_PASSWORD]
)
def test_pgadmin_secret_files_are_0600(tools_stack, path):
    mode = stat.S_IMODE((tools_stack.state_dir / path).stat().st_mode)
    assert mode == 0o600, f"{path} is {oct(mode)}"


def _pgadmin_processes(stack: TestStack) -> list[psutil.Process]:
    data = pgadmin.data_dir(stack.local.layout)
    found = []
    for proc in psutil.process_iter(["cmdline", "username"]):
        cmdline = " ".join(proc.info["cmdline"] or [])
        if "gunicorn" in cmdline and f"{stack.settings.bind_address}:{stack.settings.pgadmin_port}" in cmdline:
            found.append(proc)
    assert found, f"no gunicorn serving pgAdmin for {data}"
    return found


def test_pgadmin_runs_as_the_service_user_and_listens_on_the_bind_address_only(tools_stack):
    stack = tools_stack
    port = stack.settings.pgadmin_port
    procs = _pgadmin_processes(stack)
    assert {p.info["username"] for p in procs} == {"agentdb"}
    listening = {
        conn.laddr
        for p in procs
        for conn in p.net_connections(kind="inet")
        if conn.status == psutil.CONN_LISTEN and conn.laddr.port == port
    }
    assert listening == {(stack.settings.bind_address, port)}
    # A wildcard bind would answer on the machine's other addresses; the bind address is loopback here.
    with socket.socket() as probe:
        probe.settimeout(2)
        assert probe.connect_ex(("127.0.0.2", port)) != 0, "pgAdmin answers on an address other than the bind address"


def test_no_pgadmin_secret_in_the_process_list_or_the_logs(tools_stack):
    stack = tools_stack
    secrets = stack.local.secrets()
    values = {name: secrets[name] for name in (sec.PGADMIN_LOGIN, sec.PGADMIN_PASSWORD)}
    values.update({db.readonly_role: secrets[db.readonly_role] for db in stack.settings.enabled})
    leaks = []
    for proc in psutil.process_iter(["cmdline", "environ"]):
        text = (
            " ".join(proc.info["cmdline"] or [])
            + " "
            + " ".join(f"{k}={v}" for k, v in (proc.info["environ"] or {}).items())
        )
        if "pgadmin" in text.lower():
            leaks += [f"pid {proc.pid}: {name}" for name, value in values.items() if value in text]
    password = values[sec.PGADMIN_PASSWORD]
    for log in [*stack.local.logs.glob("*.log"), *Path(pgadmin.data_dir(stack.local.layout)).glob("*.log")]:
        if password in log.read_text(errors="replace"):
            leaks.append(f"{log}: pgAdmin's password")
    assert not leaks, leaks


def test_env_prints_the_login_url_and_user(tools_stack):
    stack = tools_stack
    out = stack.cli("env").stdout
    secrets = stack.local.secrets()
    assert f"export PGADMIN_URL=http://{stack.settings.bind_address}:{stack.settings.pgadmin_port}\n" in out
    assert f"export PGADMIN_EMAIL={secrets[sec.PGADMIN_LOGIN]}\n" in out
    # `env` is where the stack's secrets are printed (its URLs carry the passwords): pgAdmin's too.
    assert f"export PGADMIN_PASSWORD={secrets[sec.PGADMIN_PASSWORD]}\n" in out


def test_a_restart_registers_the_servers_again_without_duplicates(tools_stack):
    stack = tools_stack
    assert stack.local._ctl("restart", "pgadmin").returncode == 0
    probe = next(s for s in stack.local.services() if s.name == "pgadmin").health
    deadline = time.monotonic() + WAIT_S
    while True:
        try:
            probe()
            break
        except Exception:
            assert time.monotonic() < deadline, stack.local.log_tail("pgadmin")
            time.sleep(0.5)
    db = Path(pgadmin.data_dir(stack.local.layout)) / "pgadmin4.db"
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as conn:
        names = sorted(row[0] for row in conn.execute("SELECT name FROM server"))
    assert names == sorted(d.name for d in stack.settings.enabled)
    summary = f"Added 1 Server Group(s) and {len(stack.settings.enabled)} Server(s)."
    assert stack.local.log_tail("pgadmin", 200).count(summary) == 2
