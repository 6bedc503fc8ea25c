"""The keyword registry: unique per number whatever the case, compliance words never
claimable, conflicts that name the holder only to those who may see it."""

from __future__ import annotations

import pytest

from tenants.audit.record import SYSTEM
from tenants.contacts.tables import ContactList
from tenants.errors import Conflict, NotFound, ValidationFailed
from tenants.numbers import keywords, numbers


async def shared_number() -> numbers.NumberView:
    number = await numbers.find_number("+61480000000")
    assert number is not None
    return number


async def claim(within: int, word: str, owner: int, number_id: int | None = None):
    return await keywords.claim_keyword(
        actor=SYSTEM,
        within_account_id=within,
        number_id=number_id or (await shared_number()).id,
        word=word,
        account_id=owner,
    )


async def test_demo_join_belongs_to_sydney_with_its_actions(demo):
    join = await keywords.keyword_on((await shared_number()).id, "join")
    assert join is not None and join.account_id == demo["sydney"]
    assert [a.kind for a in join.actions] == ["add_to_list", "auto_reply"]


@pytest.mark.parametrize("word", ["STOP", "stop", " Stop! ", "unsubscribe", "Help", "start"])
async def test_compliance_words_cannot_be_claimed(demo, word):
    with pytest.raises(Conflict) as exc:
        await claim(demo["northwind"], word, demo["sydney"])
    assert exc.value.code == "compliance_keyword"
    assert "compliance keyword" in exc.value.message


async def test_a_masters_added_opt_out_word_is_compliance_too(demo):
    from tenants.consent import keywords as consent_keywords

    await consent_keywords.set_custom_keywords(
        actor=SYSTEM, account_id=demo["northwind"], kind="opt_out", words=["NOMORE"]
    )
    with pytest.raises(Conflict) as exc:
        await claim(demo["sydney"], "nomore", demo["sydney"])
    assert "(opt-out)" in exc.value.message


async def test_unique_per_number_regardless_of_case(demo):
    await claim(demo["northwind"], "Deals", demo["melbourne"])
    with pytest.raises(Conflict) as exc:
        await claim(demo["northwind"], "DEALS", demo["sydney"])
    # The master sees its whole tree, so the reason names the holder.
    assert exc.value.code == "duplicate_keyword"
    assert "already held by Melbourne Branch" in exc.value.message


async def test_conflict_hides_a_holder_the_caller_cannot_see(demo):
    await claim(demo["northwind"], "deals", demo["melbourne"])
    with pytest.raises(Conflict) as exc:
        await claim(demo["sydney"], "deals", demo["sydney"])
    assert "already taken by another account" in exc.value.message
    assert "Melbourne" not in exc.value.message


async def test_same_word_on_another_number_is_free(demo):
    melb = await numbers.find_number("+61480000001")
    assert melb is not None
    kw = await claim(demo["melbourne"], "join", demo["melbourne-events"], melb.id)
    assert kw.word == "JOIN" and kw.account_id == demo["melbourne-events"]


async def test_claims_stay_inside_the_callers_subtree(world, demo):
    # Sydney may claim on the shared number for itself, not for a sibling.
    with pytest.raises(NotFound):
        await claim(demo["sydney"], "promo", demo["melbourne"])
    # Nobody claims on a number of another tree.
    melb = await numbers.find_number("+61480000001")
    assert melb is not None
    with pytest.raises(NotFound):
        await claim(demo["sydney"], "promo", demo["sydney"], melb.id)
    with pytest.raises(NotFound):
        await claim(world.accounts["alpha"], "promo", world.accounts["alpha"])


@pytest.mark.parametrize(
    ("word", "message"),
    [("", "required"), ("two words", "one word"), ("A" * 21, "one word")],
)
async def test_bad_words_are_refused_by_field(demo, word, message):
    with pytest.raises(ValidationFailed) as exc:
        await claim(demo["northwind"], word, demo["sydney"])
    assert message in exc.value.errors["word"]


async def test_actions_validate_and_several_per_keyword(demo):
    kw = await claim(demo["northwind"], "promo", demo["sydney"])
    with pytest.raises(ValidationFailed) as exc:
        await keywords.add_action(
            actor=SYSTEM, within_account_id=demo["sydney"], keyword_id=kw.id, kind="auto_reply"
        )
    assert "reply_text" in exc.value.errors
    other_list = (
        await ContactList.insert(ContactList(account_id=demo["melbourne"], name="M")).returning(
            ContactList.id
        )
    )[0]["id"]
    with pytest.raises(ValidationFailed) as exc:
        await keywords.add_action(
            actor=SYSTEM,
            within_account_id=demo["sydney"],
            keyword_id=kw.id,
            kind="add_to_list",
            list_id=other_list,
        )
    assert "Sydney Branch" in exc.value.errors["list_id"]
    for kind, text in (("auto_reply", "Hi {{first_name|there}}"), ("forward_webhook", "")):
        kw = await keywords.add_action(
            actor=SYSTEM,
            within_account_id=demo["sydney"],
            keyword_id=kw.id,
            kind=kind,
            reply_text=text,
        )
    assert [a.kind for a in kw.actions] == ["auto_reply", "forward_webhook"]
    kw = await keywords.remove_action(
        actor=SYSTEM,
        within_account_id=demo["sydney"],
        keyword_id=kw.id,
        action_id=kw.actions[0].id,
    )
    assert [a.kind for a in kw.actions] == ["forward_webhook"]


async def test_release_frees_the_word(demo):
    kw = await claim(demo["northwind"], "promo", demo["melbourne"])
    with pytest.raises(NotFound):
        await keywords.release_keyword(
            actor=SYSTEM, within_account_id=demo["sydney"], keyword_id=kw.id
        )
    await keywords.release_keyword(
        actor=SYSTEM, within_account_id=demo["melbourne"], keyword_id=kw.id
    )
    assert (await claim(demo["sydney"], "PROMO", demo["sydney"])).account_id == demo["sydney"]


def test_first_word_ignores_case_spaces_and_punctuation():
    assert keywords.first_word("  join!! now ") == "JOIN"
    assert keywords.first_word("Join") == "JOIN"
    assert keywords.first_word("...") == ""


async def test_a_keyword_goes_only_to_an_account_that_sends_from_the_number(demo):
    melb = await numbers.find_number("+61480000001")
    assert melb is not None
    with pytest.raises(ValidationFailed) as exc:
        await claim(demo["northwind"], "promo", demo["sydney"], melb.id)
    assert "does not send from +61480000001" in exc.value.errors["account_id"]


async def test_moving_a_number_releases_words_of_accounts_that_lose_it(demo):
    melb = await numbers.find_number("+61480000001")
    assert melb is not None
    await claim(demo["melbourne"], "gig", demo["melbourne-events"], melb.id)
    await claim(demo["melbourne"], "club", demo["melbourne"], melb.id)
    await numbers.assign_number(
        actor=SYSTEM,
        within_account_id=demo["northwind"],
        number_id=melb.id,
        to_account_id=demo["melbourne-events"],
    )
    assert await keywords.keyword_on(melb.id, "gig") is not None
    assert await keywords.keyword_on(melb.id, "club") is None
