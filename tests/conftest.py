"""Shared fixtures. The database and broker come from TEST_DATABASE_URL / TEST_BROKER_URL
(SQLite file + in-process broker by default) and are set before anything is imported."""

from __future__ import annotations

import asyncio
import copy
import os
import re
import tempfile
import uuid
import warnings
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

_TMP = Path(tempfile.mkdtemp(prefix="portal-tests-"))
os.environ["DATABASE_URL"] = os.environ.get("TEST_DATABASE_URL") or f"sqlite:///{_TMP}/test.db"
os.environ["BROKER_URL"] = os.environ.get("TEST_BROKER_URL") or "memory://"
os.environ["BROKER_NAMESPACE"] = f"portal-test-{uuid.uuid4().hex[:8]}"
os.environ["DATA_DIR"] = str(_TMP / "data")
os.environ["SECRET_KEY"] = "test-secret-key-not-for-production"
os.environ["PORTAL_BASE_URL"] = "http://testserver.local"
os.environ.setdefault("SIMULATOR_SECRET", "simulator-secret")

import authlib.deprecate  # noqa: E402

# authlib 1.9 warns once, on import, that it runs on httpx rather than httpx2 (which we do
# not install), and its own "always" filter outranks pytest's: import it here, quietly.
with warnings.catch_warnings():
    warnings.simplefilter("ignore", authlib.deprecate.AuthlibDeprecationWarning)
    import authlib.integrations.httpx_client  # noqa: E402, F401

import dramatiq  # noqa: E402
from litestar.testing import AsyncTestClient  # noqa: E402

from tasks.broker import broker, is_in_process  # noqa: E402
from tenants import handoff  # noqa: E402
from tenants.access import users  # noqa: E402
from tenants.accounts.tree import create_root_account, create_sub_account  # noqa: E402
from tenants.audit.record import SYSTEM  # noqa: E402
from tenants.db import DB, is_sqlite  # noqa: E402
from tenants.schema import migrate, wipe_all_data  # noqa: E402
from tenants.settings import get_settings, reload_settings  # noqa: E402
from tests.factories import CHEAP_HASHER, PASSWORD, PASSWORD_HASH, make_user  # noqa: E402
from tests.snapshots import Snapshot, drop_saved  # noqa: E402

# Every password and API key secret hashed during the tests uses the cheap parameters too.
users._hasher = CHEAP_HASHER
BUILTIN_ROLES = ("Owner", "Admin", "Sender", "Support", "Finance", "Viewer")
CSRF_RE = re.compile(r'name="_csrf_token" value="([^"]+)"')


@pytest.fixture(scope="session", autouse=True)
def _schema() -> Iterator[None]:
    async def prepare() -> None:
        if not is_sqlite():
            # The test database belongs to the suite: start from an empty schema each run.
            await DB.run_ddl("DROP SCHEMA public CASCADE")
            await DB.run_ddl("CREATE SCHEMA public")
            await drop_saved()
        await migrate()

    asyncio.run(prepare())
    yield
    asyncio.run(drop_saved())


@pytest.fixture(autouse=True)
def _no_handoff_left() -> Iterator[None]:
    """create_app installs the broker hand-over for the process; a test without the app
    must not inherit it from the test before (its work would vanish into the broker)."""
    yield
    handoff.install(None)


@dataclass
class World:
    """Two masters, each with a sub-account, and one user per built-in role in master A
    (role -> email), plus one Sender in each sub-account and in master B."""

    accounts: dict[str, int] = field(default_factory=dict)
    users: dict[str, str] = field(default_factory=dict)
    user_ids: dict[str, int] = field(default_factory=dict)


async def _build_world() -> World:
    w = World()
    a = await create_root_account(name="Alpha Master", slug="alpha")
    b = await create_root_account(name="Beta Master", slug="beta")
    platform = await create_root_account(name="Platform", slug="platform", kind="platform")
    a1 = await create_sub_account(
        actor=SYSTEM, within_account_id=a.id, parent_id=a.id, name="Alpha One", slug="alpha-one"
    )
    b1 = await create_sub_account(
        actor=SYSTEM, within_account_id=b.id, parent_id=b.id, name="Beta One", slug="beta-one"
    )
    w.accounts = {
        "alpha": a.id,
        "beta": b.id,
        "alpha-one": a1.id,
        "beta-one": b1.id,
        "platform": platform.id,
    }
    for role in BUILTIN_ROLES:
        email = f"{role.lower()}@alpha.test"
        w.users[role] = email
        w.user_ids[email] = await make_user(email, a.id, role)
    for email, slug in (
        ("sender@alpha-one.test", "alpha-one"),
        ("sender@beta.test", "beta"),
        ("owner@beta.test", "beta"),
        ("sender@beta-one.test", "beta-one"),
    ):
        role = "Owner" if email.startswith("owner") else "Sender"
        w.user_ids[email] = await make_user(email, w.accounts[slug], role)
    w.user_ids["operator@platform.test"] = await make_user(
        "operator@platform.test", platform.id, "Owner", operator=True
    )
    return w


async def _seed_demo() -> dict[str, int]:
    from tenants.demo import seed_demo

    real = users.hash_password
    users.hash_password = lambda password: PASSWORD_HASH  # type: ignore[assignment]
    try:
        return await seed_demo()
    finally:
        users.hash_password = real  # type: ignore[assignment]


@dataclass
class _Saved:
    snapshot: Snapshot
    world: World | None
    demo: dict[str, int] | None


# (uses world, uses demo) -> the data built once this session and saved; `_now` is the one
# the running test started from.
_saved: dict[tuple[bool, bool], _Saved] = {}
_now: _Saved | None = None


async def _start_from(key: tuple[bool, bool]) -> _Saved | None:
    """Put the database in the state a test starts from: empty, or holding the `world`
    and/or `demo` data (built in that order, as the fixtures used to, on first use)."""
    if key == (False, False):
        await wipe_all_data()
        return None
    saved = _saved.get(key)
    if saved is not None:
        await saved.snapshot.restore()
        return saved
    await wipe_all_data()
    w = await _build_world() if key[0] else None
    d = await _seed_demo() if key[1] else None
    snapshot = Snapshot(f"{'world' if key[0] else ''}{'demo' if key[1] else ''}")
    await snapshot.save()
    saved = _saved[key] = _Saved(snapshot, w, d)
    return saved


@pytest.fixture(autouse=True)
def _clean_data(request: pytest.FixtureRequest) -> None:
    # Sync on purpose: browser tests hold Playwright's loop open in this thread, and they
    # talk to a server with its own database anyway.
    global _now
    if request.node.get_closest_marker("browser") is None:
        key = ("world" in request.fixturenames, "demo" in request.fixturenames)
        _now = asyncio.run(_start_from(key))


@pytest.fixture
def world() -> World:
    """Built once per session (see _start_from); each test gets its own copy of the ids."""
    assert _now is not None and _now.world is not None
    return copy.deepcopy(_now.world)


# (settings, secret key) -> the app built from them; the settings object is kept, so its
# id is never reused while it is a key.
_apps: dict[tuple[int, str], tuple[Any, Any]] = {}


@pytest.fixture
def app():  # type: ignore[no-untyped-def]
    """The portal app. Building its ~1000 handlers takes longer than most tests, so one is
    kept for as long as the settings and secret key it was built from stay the same; what
    create_app sets up for the process (secrets key, broker hand-over) is redone per test.
    Each test's client still runs the app's startup and shutdown."""
    from portal.app import create_app, prepare_process

    settings = get_settings()
    key = (id(settings), prepare_process())
    if key not in _apps:
        _apps.clear()
        _apps[key] = (settings, create_app())
    return _apps[key][1]


@pytest.fixture
async def client(app) -> AsyncIterator[AsyncTestClient]:  # type: ignore[no-untyped-def]
    async with AsyncTestClient(app=app, base_url="http://testserver.local") as c:
        yield c


def another_client() -> AsyncTestClient:
    """A second visitor within one test (a guest, an API caller): a client of an app of its
    own, because one app's startup cannot be entered twice at once."""
    from portal.app import create_app

    return AsyncTestClient(app=create_app(), base_url="http://testserver.local")


async def csrf_token(client: AsyncTestClient, path: str = "/login") -> str:
    page = await client.get(path)
    match = CSRF_RE.search(page.text)
    assert match, f"no CSRF token on {path}"
    return match.group(1)


async def login(client: AsyncTestClient, email: str, password: str = PASSWORD) -> str:
    """Sign in through the form; returns a CSRF token for later posts."""
    token = await csrf_token(client)
    response = await client.post(
        "/login",
        data={"_csrf_token": token, "email": email, "password": password},
        follow_redirects=False,
    )
    assert response.status_code == 303, response.text
    return await csrf_token(client, "/")


@pytest.fixture
def worker() -> Iterator[dramatiq.Worker]:
    """A Dramatiq worker in this process for the configured broker (stub or Redis)."""
    import tasks.actors  # noqa: F401

    broker.flush_all()
    w = dramatiq.Worker(broker, worker_timeout=100, worker_threads=2)
    w.start()
    yield w
    w.stop()
    broker.flush_all()


def join_queues(*queues: str) -> None:
    """Wait until the named queues are drained (stub broker only)."""
    if is_in_process(broker):
        for q in queues:
            broker.join(q, fail_fast=True)  # type: ignore[attr-defined]


@pytest.fixture
def settings_env() -> Iterator[Callable[..., None]]:
    """Configure one test through the environment, as an operator would:
    `settings_env(WEBHOOK_ALLOW_PRIVATE_TARGETS="1", SMTP_HOST=None)` sets (None unsets) the
    variables and drops the loaded settings; both are restored after the test."""
    patch = pytest.MonkeyPatch()

    def apply(**env: object) -> None:
        for name, value in env.items():
            if value is None:
                patch.delenv(name, raising=False)
            else:
                patch.setenv(name, str(value))
        reload_settings()

    yield apply
    patch.undo()
    reload_settings()


@pytest.fixture
def demo(monkeypatch: pytest.MonkeyPatch) -> dict[str, int]:
    """The demo data of CONTRACT.md (account ids by slug), without paying for argon2 again."""
    monkeypatch.setattr(users, "hash_password", lambda password: PASSWORD_HASH)
    assert _now is not None and _now.demo is not None
    return dict(_now.demo)


@pytest.fixture
def simulator(app):  # type: ignore[no-untyped-def]
    """The built-in provider simulator, reached in-process: the gateway calls the portal's
    /simulator mount and the simulator posts callbacks to the portal's hooks through
    httpx's ASGI transport. Deterministic: no latency, duplicates or random failures."""
    import httpx

    from tasks import gateways
    from tasks.simulator import SIMULATOR

    SIMULATOR.reset()
    SIMULATOR.configure(
        {
            "latency_ms": 0,
            "callback_delay_ms": 0,
            "delivered_rate": 1.0,
            "failed_rate": 0,
            "rejected_rate": 0,
            "read_rate": 0,
            "duplicate_rate": 0,
            "reorder_rate": 0,
            "seed": 7,
        }
    )
    transport = httpx.ASGITransport(app=app)
    SIMULATOR.callback_transport = transport
    gateways.use_transport(transport)
    yield SIMULATOR
    SIMULATOR.stop_flushers()
    gateways.reset()
    SIMULATOR.callback_transport = None
    SIMULATOR.reset()


async def drain_credits(account_id: int) -> None:
    """Spend an account's whole balance, for tests of what happens without credits."""
    from tenants.credits import ledger, spending

    left = await ledger.balance(account_id)
    if left > 0:
        await spending.reserve(account_id, left, reference="test drain", idempotency_key="drain")
