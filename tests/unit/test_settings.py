"""The settings tree: defaults, validation naming the variable, the README's table, and that
nothing else in portal/, tenants/ or tasks/ reads the environment."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from portal import cli
from tenants import secrets_box
from tenants.mail import mail_settings
from tenants.messaging import outbox
from tenants.settings import (
    README_BEGIN,
    README_END,
    SettingsError,
    describe,
    export_env,
    get_settings,
    load_settings,
    markdown_table,
)

ROOT = Path(__file__).resolve().parents[2]

# The variables CONTRACT.md names, and the defaults every setting had before the tree.
CONTRACT_DEFAULTS = {
    "DATABASE_URL": "sqlite:///portal.db",
    "BROKER_URL": "memory://",
    "PORTAL_BASE_URL": "http://127.0.0.1:8000",
    "SIMULATOR_SECRET": "simulator-secret",
}
OTHER_DEFAULTS = {
    "DB_POOL_SIZE": 20,
    "BROKER_NAMESPACE": "portal",
    "SEND_CHUNK_SIZE": 100,
    "RATE_LIMIT_PROVIDER_SEGMENTS": 2000,
    "RATE_LIMIT_SENDER_SEGMENTS": 1000,
    "CLAIM_LEASE_SECONDS": 60,
    "SWEEP_GRACE_SECONDS": 120,
    "SWEEP_INTERVAL_SECONDS": 5,
    "MAX_SUBMIT_ATTEMPTS": 8,
    "PROVIDER_RETRY_BACKOFF": 0.5,
    "PROVIDER_TIMEOUT_SECONDS": 15,
    "WEBHOOK_MAX_ATTEMPTS": 12,
    "WEBHOOK_MIN_BACKOFF_MS": 2000,
    "WEBHOOK_TIMEOUT_SECONDS": 10,
    "WEBHOOK_STALE_SECONDS": 660,
    "WEBHOOK_ALLOW_PRIVATE_TARGETS": False,
    "SIMULATOR_LATENCY_MS": 50,
    "SIMULATOR_CALLBACK_DELAY_MS": 200,
    "SIMULATOR_DELIVERED_RATE": 0.95,
    "SIMULATOR_FAILED_RATE": 0.04,
    "SIMULATOR_REJECTED_RATE": 0.01,
    "SIMULATOR_SUBMIT_REJECT_RATE": 0.0,
    "SIMULATOR_READ_RATE": 0.2,
    "SIMULATOR_DUPLICATE_RATE": 0.05,
    "SIMULATOR_REORDER_RATE": 0.05,
    "SMTP_HOST": "",
    "SMTP_SECURITY": "starttls",
    "SMTP_USERNAME": "",
    "SMTP_PASSWORD": "",
    "SMTP_FROM": "no-reply@localhost",
}


def _value(settings: object, env: str) -> object:
    for info in describe():
        if info.env == env:
            for group in vars(settings).values():
                if type(group) is info.group:
                    return getattr(group, info.name)
    raise KeyError(env)


def test_every_variable_is_unique_and_documented_with_a_type_and_a_meaning():
    names = [info.env for info in describe()]
    assert len(names) == len(set(names))
    assert all(info.doc and info.type for info in describe())


def test_unset_and_empty_variables_take_the_defaults_they_always_had():
    unset = load_settings({})
    empty = load_settings({name: "" for name in (info.env for info in describe())})
    for env, default in {**CONTRACT_DEFAULTS, **OTHER_DEFAULTS}.items():
        assert _value(unset, env) == default, env
        assert _value(empty, env) == default, env
    assert unset.web.secret_key == "" and unset.mail.port is None
    assert unset.web.data_dir == Path("data").resolve()
    assert {info.env for info in describe()} >= {*CONTRACT_DEFAULTS, "SECRET_KEY", "DATA_DIR"}


def test_values_are_typed_and_normalised():
    settings = load_settings(
        {
            "DB_POOL_SIZE": "5",
            "PROVIDER_TIMEOUT_SECONDS": "2.5",
            "WEBHOOK_ALLOW_PRIVATE_TARGETS": "1",
            "PORTAL_BASE_URL": "https://sms.example.com/",
            "SMTP_SECURITY": "SSL",
            "SMTP_PORT": "2465",
            "DATA_DIR": "~/portal-data",
        }
    )
    assert settings.database.pool_size == 5
    assert settings.providers.timeout_seconds == 2.5
    assert settings.webhooks.allow_private_targets is True
    assert settings.web.base_url == "https://sms.example.com"
    assert settings.web.cookie_secure is True
    assert settings.mail.security == "ssl" and settings.mail.port == 2465
    assert settings.web.data_dir == (Path.home() / "portal-data").resolve()


@pytest.mark.parametrize(
    ("env", "raw", "message"),
    [
        ("DB_POOL_SIZE", "abc", "DB_POOL_SIZE: expected an integer, got 'abc'"),
        ("SEND_CHUNK_SIZE", "1.5", "SEND_CHUNK_SIZE: expected an integer, got '1.5'"),
        ("CLAIM_LEASE_SECONDS", "soon", "CLAIM_LEASE_SECONDS: expected a number, got 'soon'"),
        (
            "WEBHOOK_ALLOW_PRIVATE_TARGETS",
            "yes",
            "WEBHOOK_ALLOW_PRIVATE_TARGETS: expected 1 or 0, got 'yes'",
        ),
        (
            "SMTP_SECURITY",
            "tls",
            "SMTP_SECURITY: expected one of starttls, ssl, none, got 'tls'",
        ),
    ],
)
def test_a_bad_value_is_refused_naming_the_variable(env, raw, message):
    with pytest.raises(SettingsError) as refused:
        load_settings({env: raw})
    assert str(refused.value) == message


def test_the_cli_stops_at_start_on_a_bad_value(settings_env, capsys):
    settings_env(DB_POOL_SIZE="abc")
    assert cli.main(["migrate"]) == 2
    captured = capsys.readouterr()
    assert "DB_POOL_SIZE: expected an integer, got 'abc'" in captured.err
    assert "migrations applied" not in captured.out


def test_services_read_the_settings_when_called_not_at_import(settings_env):
    assert mail_settings() is None
    settings_env(SMTP_HOST="mail.example.com", SMTP_SECURITY="none", MAX_SUBMIT_ATTEMPTS="3")
    smtp = mail_settings()
    assert smtp is not None and (smtp.host, smtp.port) == ("mail.example.com", 25)
    assert get_settings().sending.max_submit_attempts == 3
    settings_env(RATE_LIMIT_SENDER_SEGMENTS="7")
    assert outbox.sender_rate() == 7


def test_export_env_keeps_a_value_already_set_unless_told_to_replace(settings_env, tmp_path):
    settings_env(PORTAL_BASE_URL="https://sms.example.com", DATA_DIR=tmp_path)
    export_env("PORTAL_BASE_URL", "http://127.0.0.1:9000", replace=False)
    assert get_settings().web.base_url == "https://sms.example.com"
    export_env("PORTAL_BASE_URL", "http://127.0.0.1:9000")
    assert get_settings().web.base_url == "http://127.0.0.1:9000"
    settings_env(SECRET_KEY=None)
    export_env("SECRET_KEY", secrets_box.server_secret(), replace=False)
    assert get_settings().web.secret_key == (tmp_path / "secret_key").read_text().strip()
    with pytest.raises(KeyError):
        export_env("NOT_A_SETTING", "1")


def test_the_readme_table_is_the_generated_one():
    readme = (ROOT / "README.md").read_text()
    assert README_BEGIN in readme and README_END in readme
    documented = readme.split(README_BEGIN, 1)[1].split(README_END, 1)[0]
    assert documented.strip() == markdown_table().strip(), (
        "README configuration table is stale: paste `python -m tenants.settings --markdown`"
    )
    for info in describe():
        assert f"`{info.env}`" in documented


# tenants/__init__.py sets PICCOLO_CONF's default: Piccolo itself reads that variable to
# find its engine (migrations, tables without db=), before any settings could be loaded.
ENV_READERS_ALLOWED = {Path("tenants/settings.py"), Path("tenants/__init__.py")}


def _environment_uses(tree: ast.AST) -> list[int]:
    lines = []
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.Attribute)
            and isinstance(node.value, ast.Name)
            and node.value.id == "os"
            and node.attr in ("environ", "getenv", "putenv", "unsetenv", "environb")
        ):
            lines.append(node.lineno)
        if isinstance(node, ast.ImportFrom) and node.module == "os":
            if any(a.name in ("environ", "getenv", "environb") for a in node.names):
                lines.append(node.lineno)
    return lines


def test_only_the_settings_module_reads_the_environment():
    offenders = []
    for package in ("portal", "tenants", "tasks"):
        for path in sorted((ROOT / package).rglob("*.py")):
            relative = path.relative_to(ROOT)
            if relative in ENV_READERS_ALLOWED:
                continue
            for line in _environment_uses(ast.parse(path.read_text(), str(path))):
                offenders.append(f"{relative}:{line}")
    assert offenders == []


def test_the_environment_check_finds_a_reader():
    assert _environment_uses(ast.parse("import os\nx = os.environ.get('A')\n")) == [2]
    assert _environment_uses(ast.parse("from os import getenv\n")) == [1]
