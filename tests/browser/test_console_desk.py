"""The console's call centre, rules and reports in a real browser.

* A call-centre operator signs in, looks up the victim's account from the fraud story's attack,
  sees it was linked and what moved, reads the script and logs the call.
* An analyst compares the candidate rule set with the live one, backtests it and requests
  publishing it; an admin approves; the candidate is live. The reports page is visited too.

Every page visited passes axe-core.
"""

from __future__ import annotations

from pathlib import Path

from playwright.sync_api import Page, expect
from sqlalchemy import select

from kouza.controls.models import OperatorRole
from kouza.ops.models import Enquiry
from kouza.risk.service import risk, shipped_rule_set
from kouza.risk.versions import rule_versions
from tests.browser.conftest import LiveWorld, assert_accessible
from tests.browser.test_console import STOLEN, attack, sign_in
from tests.console.support import make_staff

CANDIDATE_VERSION = "2026-12-20.1"


def test_the_call_centre_tells_the_victim_what_happened(page: Page, live_world: LiveWorld) -> None:
    world = live_world
    fraud_wallet = attack(world)
    operator = make_staff(world.rt, "chika", OperatorRole.CALL_CENTRE)

    sign_in(page, world, operator)
    expect(page.get_by_role("heading", level=1)).to_have_text("Call centre")
    expect(page.get_by_role("link", name="Alerts & cases")).to_have_count(0)
    assert_accessible(page, "the call-centre page")

    victim = world.legacy_victim
    page.get_by_label("Bank code (4 digits)").fill(victim.bank_code)
    page.get_by_label("Branch (3 digits)").fill("999")
    page.get_by_label("Account number (7 digits)").fill(victim.number)
    page.get_by_role("button", name="Look up").click()
    expect(page.get_by_text("This bank has no branch with that number.")).to_be_visible()
    assert_accessible(page, "the call-centre page with a refused look-up")

    page.get_by_label("Branch (3 digits)").fill(victim.branch_code)
    page.get_by_label("Account number (7 digits)").fill(victim.number)
    page.get_by_role("button", name="Look up").click()
    expect(page.get_by_text("Linked, money moved (under investigation)")).to_be_visible()
    expect(page.get_by_text(str(fraud_wallet)).first).to_be_visible()
    expect(page.get_by_role("cell", name=f"¥{STOLEN:,}").first).to_be_visible()
    expect(page.locator("div[lang=en] p.script")).to_contain_text(
        f"¥{STOLEN:,} in total was taken from it by top-ups"
    )
    expect(page.locator("div[lang=ja] p.script")).to_contain_text(f"合計 {STOLEN:,} 円")
    assert_accessible(page, "the call-centre answer")

    page.get_by_label("Caller's name").fill("山田 花子")
    page.get_by_label("What they said (reason)").fill("debits labelled ｺｳｻﾞ I never made")
    page.get_by_label("Open a case on the linked wallet (suspected fraud)").check()
    page.get_by_role("button", name="Log the call").click()
    expect(page.get_by_text("The call is logged")).to_be_visible()
    expect(page.locator("div[lang=en]").get_by_text("Your reference is")).to_be_visible()
    assert_accessible(page, "the call-centre answer after logging the call")

    with world.rt.db.unit_of_work() as session:
        enquiry = session.scalars(select(Enquiry)).one()
        assert (enquiry.wallet_id, enquiry.actor) == (fraud_wallet, "console:chika")
        assert enquiry.case_id is not None
        assert victim.number not in str(enquiry.account_fingerprint)


def _candidate() -> str:
    shipped = shipped_rule_set().text
    assert "version: " in shipped
    lines = [
        f'version: "{CANDIDATE_VERSION}"' if line.startswith("version:") else line
        for line in shipped.splitlines()
    ]
    return "\n".join(lines) + (
        "\n  - id: any-topup-over-50000\n"
        "    description: Every top-up of 50,000 yen or more is reviewed.\n"
        "    events: [topup]\n"
        "    when: event.amount >= 50000\n"
        "    outcome: review\n"
    )


def _sim_report(world: LiveWorld) -> None:
    folder = Path(world.rt.settings.var_dir) / "simulation" / "demo"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "summary.json").write_text('{"worlds": 1}', encoding="utf-8")
    (folder / "comparison.md").write_text(
        "# Comparison\n\n| profile | attack wallets stopped |\n|---|---|\n| kouza | 3 |\n",
        encoding="utf-8",
    )


def test_a_candidate_rule_set_is_backtested_and_published_with_approval(
    page: Page, live_world: LiveWorld
) -> None:
    world = live_world
    attack(world)
    with world.rt.db.unit_of_work() as session:
        rule_versions.set_candidate(
            session, _candidate(), source="test", actor="test", reason="tighter top-ups"
        )
    _sim_report(world)
    analyst = make_staff(world.rt, "aiko")
    admin = make_staff(world.rt, "bunta", OperatorRole.ADMIN)

    sign_in(page, world, analyst)
    page.get_by_role("link", name="Rules").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Rules")
    expect(page.get_by_role("heading", name=f"Candidate rule set (shadow): {CANDIDATE_VERSION}"))
    assert_accessible(page, "the rules page")

    page.get_by_role("link", name="Difference with the live set").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Rule set difference")
    expect(page.get_by_role("row", name="any-topup-over-50000 added")).to_be_visible()
    assert_accessible(page, "the rule set difference")
    page.get_by_role("link", name="Back to the rules").click()

    page.get_by_label("Tested rule set").select_option("pasted")
    page.get_by_label("Pasted rule set (YAML, when “pasted” is chosen)").fill("rules: [oops")
    page.get_by_role("button", name="Run the backtest").click()
    expect(page.get_by_text("pasted: line 1: not valid YAML")).to_be_visible()
    assert page.url.endswith("/console/rules")  # swapped in place by HTMX, no navigation
    expect(page.get_by_label("Pasted rule set (YAML, when “pasted” is chosen)")).to_have_attribute(
        "aria-invalid", "true"
    )
    assert_accessible(page, "the rules page with a refused backtest")
    page.get_by_label("Tested rule set").select_option("candidate")
    page.get_by_label("Period", exact=True).select_option("24h")
    page.get_by_role("button", name="Run the backtest").click()
    expect(
        page.get_by_role("heading", name=f"{CANDIDATE_VERSION} against the live")
    ).to_be_visible()
    expect(page.get_by_role("row", name="allow review 1")).to_be_visible()
    assert_accessible(page, "the backtest result")

    page.get_by_label("Reason").first.fill("reviews every large top-up; backtest above")
    page.get_by_role("button", name=f"Request publishing {CANDIDATE_VERSION}").click()
    expect(page.get_by_text("Publishing requested.")).to_be_visible()

    page.get_by_role("link", name="Reports").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Reports")
    assert_accessible(page, "the reports page")
    page.get_by_role("link", name="Read comparison.md").click()
    expect(page.get_by_role("columnheader", name="attack wallets stopped")).to_be_visible()
    assert_accessible(page, "a simulator report")
    page.get_by_role("button", name="Show").click()
    expect(page.get_by_role("heading", name="Unauthorised top-up report")).to_be_visible()
    assert_accessible(page, "the regulator report")

    page.get_by_role("button", name="Sign out").click()
    sign_in(page, world, admin)
    page.get_by_role("link", name="Approvals").click()
    expect(page.get_by_text(CANDIDATE_VERSION).first).to_be_visible()
    page.get_by_role("button", name="Approve and run").first.click()
    expect(page.get_by_text("Approved and done.")).to_be_visible()
    assert_accessible(page, "the approvals page after publishing")

    with world.rt.db.unit_of_work() as session:
        engine = risk.engine(world.rt, session)
        assert (engine.rules.version, engine.candidate) == (CANDIDATE_VERSION, None)
    page.get_by_role("link", name="Rules").click()
    expect(page.get_by_role("heading", name=f"Live rule set: {CANDIDATE_VERSION}")).to_be_visible()
    expect(page.get_by_text("No candidate rule set is running.")).to_be_visible()
    assert_accessible(page, "the rules page after publishing")
