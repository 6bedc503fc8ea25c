"""Acceptance: every built-in role against every route of the app, with the status each
must get. Pages are tried signed in to the master account; /api routes with an API key of
that role. Routes are found by walking `create_app().routes`, so routes added later are
covered: those not in the table below get the status their declared permission implies.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass

from litestar.handlers import HTTPRouteHandler

from portal.app import create_app
from tenants.access import apikeys
from tenants.access.decide import BUILTIN_ROLES
from tenants.audit.record import SYSTEM
from tests.api.conftest import basic
from tests.conftest import login

ROLES = ("Owner", "Admin", "Sender", "Support", "Finance", "Viewer")

# The expected status of each GET page (no path parameters) for each built-in role of the
# master account. 403: signed in but not allowed; the page's permission is in brackets.
TABLE = """
path                      permission        Owner Admin Sender Support Finance Viewer
/                         account.view      200   200   200    200     200     200
/accounts                 account.view      200   200   200    200     200     200
/composer                 account.view      200   200   200    200     200     200
/users                    users.manage      200   200   403    403     403     403
/teams                    users.manage      200   200   403    403     403     403
/roles                    roles.manage      200   200   403    403     403     403
/api-keys                 api_keys.manage   200   200   403    403     403     403
/audit                    audit.view        200   200   403    403     403     403
/security                 settings.manage   200   200   403    403     403     403
/settings                 settings.manage   200   200   403    403     403     403
/branding                 branding.manage   200   200   403    403     403     403
/me/two-factor            authenticated     200   200   200    200     200     200
/me/accounts              authenticated     200   200   200    200     200     200
/contacts                 contacts.view     200   200   200    200     403     200
/contacts/import          contacts.manage   200   200   200    403     403     403
/contacts/export.csv      contacts.export   200   200   200    403     403     403
/consent/keywords         keywords.manage   200   200   403    403     403     403
/consent/report           contacts.view     200   200   200    200     403     200
/credits                  credits.view      200   200   200    403     200     200
/credits/ledger           credits.view      200   200   200    403     200     200
/credits/ledger.csv       credits.view      200   200   200    403     200     200
/credits/prices           credits.view      200   200   200    403     200     200
/credits/wallets          credits.allocate  200   200   403    403     403     403
/templates                templates.view    200   200   200    200     403     200
/templates/new            templates.manage  200   200   200    403     403     403
/platform                 platform.operate  403   403   403    403     403     403
/platform/health          platform.operate  403   403   403    403     403     403
/platform/orders          platform.operate  403   403   403    403     403     403
/platform/suppression     platform.operate  403   403   403    403     403     403
/api/v1/account           account.view      200   200   200    200     200     200
/api/v1/accounts          account.view      200   200   200    200     200     200
/api/v1/contacts/export   contacts.export   200   200   200    403     403     403
/api/v1/credits/ledger    credits.view      200   200   200    403     200     200
/api/v1/credits/prices    credits.view      200   200   200    403     200     200
/api/v1/templates         templates.view    200   200   200    200     403     200
/api/v1/reports/usage     reports.view      422   422   422    403     422     422
/api/v1/reports/clicks    reports.view      422   422   422    403     422     422
/api/v1/reports/consent   reports.view      422   422   422    403     422     422
"""
# With a path parameter naming nothing (or another tenant's row): 404 once allowed. A
# parameter listed in PARAM_VALUES gets that value instead (a phone nobody has: 200).
PARAM_TABLE = """
path                                  permission        Owner Admin Sender Support Finance Viewer
/accounts/{account_id:int}/children   account.view      404   404   404    404     404     404
/users/{user_id:int}/permissions      users.manage      404   404   403    403     403     403
/roles/{role_id:int}                  roles.manage      404   404   403    403     403     403
/contacts/{contact_id:int}            contacts.view     404   404   404    404     403     404
/contacts/import/{import_id:int}      contacts.manage   404   404   404    403     403     403
/credits/wallets/{account_id:int}     credits.allocate  404   404   403    403     403     403
/templates/{template_id:int}          templates.view    404   404   404    404     403     404
/api/v1/contacts/{contact_id:int}     contacts.view     404   404   404    404     403     404
/api/v1/consent/{phone:str}           contacts.view     200   200   200    200     403     200
/api/v1/campaigns/{campaign_id:int}   campaigns.manage  404   404   404    403     403     403
"""
PARAM_VALUES = {"phone": "+61491570006"}
MISSING_ID = 987654


def _parse(table: str) -> dict[str, tuple[str, dict[str, int]]]:
    lines = [line.split() for line in table.strip().splitlines()]
    header, rows = lines[0], lines[1:]
    assert header[2:] == list(ROLES)
    return {r[0]: (r[1], dict(zip(ROLES, map(int, r[2:]), strict=True))) for r in rows}


EXPECTED = _parse(TABLE)
EXPECTED_WITH_PARAMS = _parse(PARAM_TABLE)


@dataclass(frozen=True)
class RouteCase:
    method: str
    template: str  # the route as declared
    url: str  # with made-up parameters
    permission: str
    has_params: bool


def _fill(path: str) -> str:
    def value(match: re.Match[str]) -> str:
        if match.group(1) in PARAM_VALUES:
            return PARAM_VALUES[match.group(1)]
        kind = match.group(2) or "str"
        return str(MISSING_ID) if kind == "int" else "no-such-thing"

    return re.sub(r"\{(\w+)(?::(\w+))?\}", value, path)


def routes() -> Iterator[RouteCase]:
    app = create_app()
    for route in app.routes:
        for handler in getattr(route, "route_handlers", []):
            if not isinstance(handler, HTTPRouteHandler) or handler.opt.get("public"):
                continue
            for method in sorted(set(handler.http_methods) - {"OPTIONS", "HEAD"}):
                yield RouteCase(
                    method=method,
                    template=route.path,
                    url=_fill(route.path),
                    permission=handler.opt["permission"],
                    has_params="{" in route.path,
                )


ROUTES = list(routes())


def holds(role: str, permission: str) -> bool:
    return permission == "authenticated" or permission in BUILTIN_ROLES[role]


def expected_status(case: RouteCase, role: str) -> int:
    table = EXPECTED_WITH_PARAMS if case.has_params else EXPECTED
    if case.method == "GET" and case.template in table:
        return table[case.template][1][role]
    if not holds(role, case.permission):
        return 403
    return 404 if case.has_params else 200


def test_tables_agree_with_the_permissions_routes_declare():
    """A route whose permission changes must have its row in the table changed too."""
    declared = {(c.template, c.permission) for c in ROUTES if c.method == "GET"}
    for table in (EXPECTED, EXPECTED_WITH_PARAMS):
        for path, (permission, statuses) in table.items():
            assert (path, permission) in declared, f"{path} no longer declares {permission}"
            for role, status in statuses.items():
                allowed = holds(role, permission)
                assert (status != 403) == allowed, (path, role, status)


async def test_every_role_gets_the_expected_status_on_every_route(client, world):
    failures = []
    checked = 0
    for role in ROLES:
        # Signing in again replaces the session cookie: one client walks every role.
        token = await login(client, world.users[role])
        key = await apikeys.create_api_key(
            actor=SYSTEM, account_id=world.accounts["alpha"], name=f"matrix-{role}", role=role
        )
        key_headers = basic(key.key_id, key.secret)
        for case in ROUTES:
            expected = expected_status(case, role)
            if case.method != "GET" and expected != 403:
                # Allowed writes would change state; their behaviour has its own tests.
                continue
            is_api = case.template.startswith("/api/")
            headers = key_headers if is_api else {"x-csrftoken": token}
            response = await client.request(
                case.method, case.url, headers=headers, follow_redirects=False
            )
            checked += 1
            if response.status_code != expected:
                failures.append(
                    f"{role:8} {case.method:5} {case.url}: got {response.status_code}, "
                    f"expected {expected}"
                )
    assert not failures, "\n".join(failures)
    assert checked >= len(EXPECTED) * len(ROLES)


async def test_signed_out_pages_redirect_and_unauthenticated_api_is_401(client, world):
    for case in ROUTES:
        if case.method != "GET":
            continue
        response = await client.get(case.url, follow_redirects=False)
        if case.template.startswith("/api/"):
            assert response.status_code == 401, case.url
        else:
            assert response.status_code == 303, case.url
            assert response.headers["location"].startswith("/login")
