"""Consent services: scopes down the tree, recording, set-based filtering, explain,
consent_mode flips, global suppression, compliance keywords and replies."""

from __future__ import annotations

import phonenumbers
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tenants.audit.record import SYSTEM, Actor
from tenants.audit.tables import AuditEvent
from tenants.consent import keywords as consent_keywords
from tenants.consent import scopes as consent_scopes
from tenants.consent import suppression
from tenants.consent.events import Change, explain, record_changes, record_opt_in, record_opt_out
from tenants.consent.filter import filter_recipients
from tenants.consent.keywords import classify_keyword, confirmation_reply
from tenants.consent.scopes import resolve_consent_scope
from tenants.consent.tables import ConsentEvent, channel_group
from tenants.demo import seed_demo
from tenants.errors import Conflict, PermissionDenied, ValidationFailed
from tenants.phones import normalize_phone

PHONE = "+61412345678"
OTHER = "+61412345679"


@pytest.fixture
async def demo() -> dict[str, int]:
    return await seed_demo()


async def blocked(account_id: int, phone: str = PHONE, channel: str = "sms") -> bool:
    allowed, _ = await filter_recipients(account_id, [phone], channel)
    return not allowed


async def flip(ids: dict[str, int], slug: str, mode: str) -> None:
    await consent_scopes.set_consent_mode(
        actor=SYSTEM, within_account_id=ids["northwind"], account_id=ids[slug], consent_mode=mode
    )


def test_normalize_phone_to_e164():
    assert normalize_phone("0412 345 678", "AU") == PHONE
    assert normalize_phone("+61 (4) 1234-5678", "AU") == PHONE
    assert normalize_phone("0061412345678", "AU") == PHONE
    assert normalize_phone("(415) 555-2671", "US") == "+14155552671"
    for bad in ("", "12", "not a number", "+61 4123", "0412345678999999", "+999123456"):
        assert normalize_phone(bad, "AU") is None


def test_channel_groups():
    assert [channel_group(c) for c in ("sms", "MMS", "rcs", "whatsapp")] == [
        "sms",
        "sms",
        "sms",
        "whatsapp",
    ]
    with pytest.raises(ValidationFailed) as exc:
        channel_group("pigeon")
    assert "channel" in exc.value.errors


async def test_scopes_of_the_demo_tree(demo):
    assert await resolve_consent_scope(demo["northwind"]) == demo["northwind"]
    assert await resolve_consent_scope(demo["sydney"]) == demo["northwind"]
    assert await resolve_consent_scope(demo["melbourne"]) == demo["melbourne"]
    assert await resolve_consent_scope(demo["melbourne-events"]) == demo["melbourne"]


async def test_demo_tree_acceptance_with_consent_mode_flips(demo):
    # An opt-out received by Sydney blocks Sydney and Northwind, not Melbourne.
    assert await record_opt_out(demo["sydney"], "0412 345 678", "sms", source="keyword")
    assert await blocked(demo["sydney"]) and await blocked(demo["northwind"])
    assert not await blocked(demo["melbourne"]) and not await blocked(demo["melbourne-events"])
    # One received by Melbourne Events blocks Melbourne and Melbourne Events, not Sydney.
    await record_opt_out(demo["melbourne-events"], OTHER, "sms", source="keyword")
    assert await blocked(demo["melbourne"], OTHER)
    assert await blocked(demo["melbourne-events"], OTHER)
    assert not await blocked(demo["sydney"], OTHER) and not await blocked(demo["northwind"], OTHER)
    # Melbourne to inherit: both apply across the whole tree.
    await flip(demo, "melbourne", "inherit")
    for slug in ("northwind", "sydney", "melbourne", "melbourne-events"):
        assert await blocked(demo[slug]) and await blocked(demo[slug], OTHER), slug
    # And back: the separation is restored, no event was lost.
    await flip(demo, "melbourne", "isolated")
    assert await blocked(demo["sydney"]) and not await blocked(demo["melbourne"])
    assert await blocked(demo["melbourne-events"], OTHER) and not await blocked(
        demo["sydney"], OTHER
    )
    assert await ConsentEvent.count() == 2


async def test_channel_groups_are_separate_and_mms_shares_sms(demo):
    await record_opt_out(demo["sydney"], PHONE, "mms", source="manual")
    assert await blocked(demo["sydney"], PHONE, "sms")
    assert await blocked(demo["sydney"], PHONE, "rcs")
    assert not await blocked(demo["sydney"], PHONE, "whatsapp")


async def test_latest_event_wins_and_changed_flag(demo):
    sydney, north = demo["sydney"], demo["northwind"]
    assert await record_opt_out(sydney, PHONE, "sms", source="keyword") is True
    assert await record_opt_out(north, PHONE, "sms", source="api") is False  # already out
    assert await record_opt_in(north, PHONE, "sms", source="manual", note="asked by phone")
    assert not await blocked(sydney)
    assert await record_opt_in(sydney, PHONE, "sms", source="keyword") is False
    trace = await explain(sydney, PHONE, "sms")
    assert trace.status == "opted_in"
    assert trace.deciding_event == trace.history[0]  # the latest event decides
    assert trace.history[1].source == "manual" and trace.history[1].note == "asked by phone"
    assert [e.action for e in trace.history] == ["opt_in", "opt_in", "opt_out", "opt_out"]


async def test_filter_recipients_reasons_order_and_dedupe(demo):
    sydney = demo["sydney"]
    await record_opt_out(sydney, PHONE, "sms", source="keyword")
    await suppression.add_global_suppression(actor=SYSTEM, phone="+61412000111", reason="litigator")
    allowed, skipped = await filter_recipients(
        sydney,
        ["0412 345 670", "garbage", "0412345678", "+61412345670", "0412 000 111", ""],
        "sms",
    )
    assert allowed == ["+61412345670"]
    assert skipped == [
        ("garbage", "invalid_number"),
        ("0412345678", "opted_out"),
        ("0412 000 111", "globally_suppressed"),
        ("", "invalid_number"),
    ]


async def test_bad_input_records_nothing(demo):
    with pytest.raises(ValidationFailed) as exc:
        await record_opt_out(demo["sydney"], "12", "sms", source="keyword")
    assert "phone" in exc.value.errors
    with pytest.raises(ValidationFailed):
        await record_opt_out(demo["sydney"], PHONE, "sms", source="carrier-pigeon")
    with pytest.raises(ValidationFailed):
        await record_opt_out(demo["sydney"], PHONE, "fax", source="manual")
    assert await ConsentEvent.count() == 0


async def test_recording_nests_in_a_callers_transaction_and_rolls_back_with_it(demo):
    from tenants.db import transaction

    with pytest.raises(RuntimeError):
        async with transaction():
            await record_opt_out(demo["sydney"], PHONE, "sms", source="keyword")
            raise RuntimeError("the send failed")
    assert await ConsentEvent.count() == 0
    assert not await blocked(demo["sydney"])


async def test_actor_writes_an_audit_row(demo):
    await record_opt_out(
        demo["sydney"],
        PHONE,
        "sms",
        source="manual",
        user_id=None,
        actor=Actor(label="admin@x.test"),
    )
    rows = await AuditEvent.select().where(AuditEvent.action == "consent.opt_out")
    assert len(rows) == 1 and rows[0]["account_id"] == demo["sydney"]


async def test_explain_unknown_and_scope(demo):
    trace = await explain(demo["melbourne-events"], PHONE, "whatsapp")
    assert trace.status == "unknown" and trace.deciding_event is None
    assert trace.scope_account_id == demo["melbourne"]
    assert trace.scope_account_name == "Melbourne Branch"


async def test_preview_counts_what_starts_and_stops_applying(demo):
    await record_opt_out(demo["sydney"], PHONE, "sms", source="keyword")
    await record_opt_out(demo["melbourne-events"], OTHER, "sms", source="keyword")
    preview = await consent_scopes.preview_consent_mode(demo["melbourne"], "inherit")
    assert preview.moved_account_ids == sorted([demo["melbourne"], demo["melbourne-events"]])
    assert (preview.starts_applying, preview.stops_applying) == (1, 0)
    assert (preview.rest_starts_applying, preview.rest_stops_applying) == (1, 0)
    same = await consent_scopes.preview_consent_mode(demo["melbourne"], "isolated")
    assert not same.changes_anything
    split = await consent_scopes.preview_consent_mode(demo["sydney"], "isolated")
    assert (split.starts_applying, split.stops_applying) == (0, 0)  # Sydney keeps its own
    await record_opt_out(demo["northwind"], "+61412345600", "sms", source="api")
    split = await consent_scopes.preview_consent_mode(demo["sydney"], "isolated")
    assert (split.starts_applying, split.stops_applying) == (0, 1)
    assert (split.rest_starts_applying, split.rest_stops_applying) == (0, 1)


async def test_an_account_cannot_flip_its_own_consent_mode(demo):
    with pytest.raises(Conflict):
        await consent_scopes.set_consent_mode(
            actor=SYSTEM,
            within_account_id=demo["melbourne"],
            account_id=demo["melbourne"],
            consent_mode="inherit",
        )


@pytest.mark.parametrize(
    ("text", "kind"),
    [
        ("STOP", "opt_out"),
        ("  stop!! ", "opt_out"),
        ("Unsubscribe.", "opt_out"),
        ("\tQuit\n", "opt_out"),
        ("start", "opt_in"),
        ("Yes!", "opt_in"),
        ("help?", "help"),
        ("info", "help"),
        ("stop sending me these", None),
        ("", None),
        ("hello", None),
    ],
)
async def test_classify_keyword_defaults(demo, text, kind):
    assert await classify_keyword(demo["sydney"], text) == kind


async def test_master_words_and_replies_are_inherited_by_the_tree(demo):
    await consent_keywords.set_custom_keywords(
        actor=SYSTEM, account_id=demo["northwind"], kind="opt_out", words=["basta", "Halt"]
    )
    assert await classify_keyword(demo["melbourne-events"], "Basta!") == "opt_out"
    assert await classify_keyword(demo["sydney"], "halt") == "opt_out"
    assert await classify_keyword(demo["sydney"], "stop") == "opt_out"  # defaults stay
    assert "unsubscribed" in await confirmation_reply(demo["sydney"], "opt_out")
    await consent_keywords.set_confirmation_reply(
        actor=SYSTEM, account_id=demo["northwind"], kind="opt_out", body="Northwind: you're out."
    )
    assert await confirmation_reply(demo["melbourne-events"], "opt_out") == "Northwind: you're out."
    with pytest.raises(PermissionDenied):
        await consent_keywords.set_custom_keywords(
            actor=SYSTEM, account_id=demo["sydney"], kind="opt_out", words=["nope"]
        )
    with pytest.raises(ValidationFailed):
        await consent_keywords.set_custom_keywords(
            actor=SYSTEM, account_id=demo["northwind"], kind="opt_in", words=["stop"]
        )
    with pytest.raises(ValidationFailed):
        await consent_keywords.set_custom_keywords(
            actor=SYSTEM, account_id=demo["northwind"], kind="opt_in", words=["two words!"]
        )
    assert (await consent_keywords.custom_keywords(demo["northwind"]))["opt_out"] == [
        "BASTA",
        "HALT",
    ]


async def test_global_suppression_add_and_remove(demo):
    view = await suppression.add_global_suppression(
        actor=SYSTEM, phone="+61 412 000 111", reason="x"
    )
    assert view.phone == "+61412000111"
    with pytest.raises(ValidationFailed):
        await suppression.add_global_suppression(actor=SYSTEM, phone="+61412000111", reason="again")
    with pytest.raises(ValidationFailed) as exc:
        await suppression.add_global_suppression(actor=SYSTEM, phone="0412000111", reason="")
    assert set(exc.value.errors) == {"phone", "reason"}
    assert await blocked(demo["melbourne"], "+61412000111", "whatsapp")
    await suppression.remove_global_suppression(actor=SYSTEM, suppression_id=view.id)
    assert not await blocked(demo["melbourne"], "+61412000111", "whatsapp")


@settings(max_examples=300, deadline=None)
@given(digits=st.from_regex(r"\A[1-9][0-9]{6,14}\Z"))
def test_e164_fast_path_agrees_with_the_parser(digits):
    text = "+" + digits
    try:
        parsed = phonenumbers.parse(text, None)
        expected = (
            phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)
            if phonenumbers.is_valid_number(parsed)
            else None
        )
    except phonenumbers.NumberParseException:
        expected = None
    assert normalize_phone(text, "AU") == expected


async def test_changes_recorded_together_are_as_one_after_the_other(demo):
    """record_changes (an inbound group's consent): the later change of a phone in a scope
    decides; scopes apart stay apart; a child's change is its parent's scope's."""
    with_national = "0412 345 679"  # read in the receiving account's region, as alone
    await record_changes(
        [
            Change(demo["sydney"], PHONE, "sms", "opt_out", message_id=None),
            Change(demo["melbourne-events"], PHONE, "sms", "opt_out"),
            Change(demo["northwind"], PHONE, "sms", "opt_in"),
            Change(demo["melbourne"], with_national, "whatsapp", "opt_out"),
        ],
        source="keyword",
    )
    assert not await blocked(demo["sydney"]) and not await blocked(demo["northwind"])
    assert await blocked(demo["melbourne"]) and await blocked(demo["melbourne-events"])
    assert await blocked(demo["melbourne"], OTHER, "whatsapp")
    assert not await blocked(demo["melbourne"], OTHER, "sms")
    trace = await explain(demo["sydney"], PHONE, "sms")
    assert [(e.action, e.account_id) for e in trace.history] == [
        ("opt_in", demo["northwind"]),
        ("opt_out", demo["sydney"]),
    ]
    assert trace.deciding_event == trace.history[0] and trace.history[0].source == "keyword"
    with pytest.raises(ValidationFailed):
        await record_changes([Change(demo["sydney"], PHONE, "fax", "opt_out")], source="keyword")
    with pytest.raises(ValidationFailed):
        await record_changes([Change(demo["sydney"], PHONE, "sms", "opt_out")], source="sms")
    assert await ConsentEvent.count() == 4
