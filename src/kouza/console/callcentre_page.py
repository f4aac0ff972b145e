"""The call centre's page: look up a caller's bank account, read them the answer script, log
the call as an enquiry (and open a case on the wallet when asked).

The account number travels only in POST bodies (never a URL) and is reduced to its keyed
fingerprint by :mod:`kouza.ops.callcentre`; it is never stored or logged. The results page
carries it back once, in the hidden fields of the enquiry form, so the enquiry can be logged
without typing it again (pages are ``no-store``).
"""

from __future__ import annotations

from typing import Any

from fastapi import Request
from fastapi.responses import HTMLResponse

from kouza.console.answers import Answer, Situation, answer, explain
from kouza.console.auth import SignedIn, actor_of
from kouza.console.web import Anyone, CheckedForm, catalog, error_text, render, router
from kouza.errors import KouzaError
from kouza.kit.pages.i18n import choose_language
from kouza.kit.zengin import UnknownBankCode
from kouza.ops.callcentre import AccountRef, callcentre
from kouza.ops.compensation import PASSBOOK_TEXT
from kouza.ops.errors import InvalidOpsInput
from kouza.runtime import Runtime, RuntimeDep

SCRIPT_LANGUAGES = ("ja", "en")
"""The script is shown in both languages whatever the console's: the caller chooses."""
ACCOUNT_FIELDS = ("bank_code", "branch", "account_number")


def _account(form: dict[str, str]) -> AccountRef:
    values = {name: form.get(name, "").strip()[:20] for name in ACCOUNT_FIELDS}
    return AccountRef(values["bank_code"], values["branch"], values["account_number"])


def script(found: Answer, *, enquiry: str = "") -> dict[str, dict[str, str]]:
    """The answer script of ``found``'s situation, in each language: what to say, what
    happens next. Its fields are the caller's own figures only."""
    situation = found.situation
    first = found.links[0].view if found.links else None
    owed = sum(link.owed for link in found.links)
    fields: dict[str, Any] = {
        "bank": found.lookup.bank_name or found.lookup.bank_code,
        "since": first.linked_at.strftime("%Y-%m-%d") if first else "",
        "moved": f"{found.moved:,}",
        "refunded": f"{found.refunded:,}",
        "owed": f"{owed:,}",
        "passbook": PASSBOOK_TEXT,
    }
    link_state = (
        ""
        if situation is Situation.NOT_LINKED
        else (
            "script.link_active"
            if any(link.view.status == "active" for link in found.links)
            else "script.link_stopped"
        )
    )
    out: dict[str, dict[str, str]] = {}
    for language in SCRIPT_LANGUAGES:
        say = catalog.text(f"script.{situation.value}.say", language, **fields)
        if link_state:
            say = f"{say} {catalog.text(link_state, language)}"
        out[language] = {
            "say": say,
            "next": catalog.text(f"script.{situation.value}.next", language, **fields),
            "reference": catalog.text("script.reference", language, enquiry=enquiry)
            if enquiry
            else "",
        }
    return out


def _page(
    request: Request,
    runtime: Runtime,
    signed_in: SignedIn,
    *,
    found: Answer | None = None,
    form: dict[str, str] | None = None,
    errors: dict[str, str] | None = None,
    message: str = "",
    enquiry: str = "",
    case: str = "",
    status_code: int = 200,
) -> HTMLResponse:
    values = form or {}
    return render(
        request,
        runtime,
        "console/callcentre.html",
        {
            "found": found,
            "script": script(found, enquiry=enquiry) if found is not None else None,
            "values": {
                "bank_code": values.get("bank_code", "")[:4],
                "branch": values.get("branch", "")[:3],
            },
            "account": {name: values.get(name, "")[:7] for name in ACCOUNT_FIELDS}
            if found is not None
            else None,
            "errors": errors or {},
            "message": message,
            "enquiry": enquiry,
            "case": case,
            "languages": SCRIPT_LANGUAGES,
        },
        signed_in=signed_in,
        nav="callcentre",
        status_code=status_code,
    )


@router.get("/call-centre", response_class=HTMLResponse)
def call_centre(request: Request, signed_in: Anyone, runtime: RuntimeDep) -> HTMLResponse:
    """The look-up form."""
    return _page(request, runtime, signed_in)


def _refused(
    request: Request,
    runtime: Runtime,
    signed_in: SignedIn,
    form: dict[str, str],
    refused: KouzaError,
) -> HTMLResponse:
    """The form again with the refusal tied to its field (nothing was looked up or stored)."""
    field = str(refused.details.get("field", ""))
    text = error_text(request, refused)
    if isinstance(refused, InvalidOpsInput | UnknownBankCode) and field in ACCOUNT_FIELDS:
        t = catalog.translator(choose_language(request, catalog.languages))
        kind = "bad" if isinstance(refused, InvalidOpsInput) else "unknown"
        return _page(
            request,
            runtime,
            signed_in,
            form=form,
            errors={field: t(f"callcentre.{kind}.{field}")},
            message=t("callcentre.fix"),
            status_code=refused.status_code,
        )
    return _page(
        request,
        runtime,
        signed_in,
        form=form,
        message=text,
        status_code=refused.status_code,
    )


@router.post("/call-centre/lookup", response_class=HTMLResponse)
def lookup(
    request: Request, signed_in: Anyone, runtime: RuntimeDep, form: CheckedForm
) -> HTMLResponse:
    """Look the account up (audited by fingerprint) and show the answer and its script."""
    try:
        account = _account(form)
        with runtime.db.unit_of_work() as session:
            found = answer(session, account, actor=actor_of(signed_in.operator))
    except KouzaError as refused:
        return _refused(request, runtime, signed_in, form, refused)
    return _page(request, runtime, signed_in, found=found, form=form)


@router.post("/call-centre/enquiry", response_class=HTMLResponse)
def enquiry(
    request: Request, signed_in: Anyone, runtime: RuntimeDep, form: CheckedForm
) -> HTMLResponse:
    """Log the call as an enquiry (the caller's name and what they said are required); with
    "open a case", a case is opened on the linked wallet."""
    t = catalog.translator(choose_language(request, catalog.languages))
    caller, notes = form.get("caller_name", "").strip(), form.get("notes", "").strip()
    try:
        account = _account(form)
        if not caller or not notes:
            with runtime.db.unit_of_work() as session:
                found = answer(session, account, actor=actor_of(signed_in.operator))
            missing = {
                name: t(f"callcentre.enquiry.need.{name}")
                for name, value in (("caller_name", caller), ("notes", notes))
                if not value
            }
            return _page(
                request,
                runtime,
                signed_in,
                found=found,
                form=form,
                errors=missing,
                message=t("callcentre.fix"),
                status_code=400,
            )
        with runtime.db.unit_of_work() as session:
            taken, lookup_found = callcentre.take_enquiry(
                session,
                caller_name=caller[:200],
                caller_contact=form.get("caller_contact", "").strip()[:200],
                account=account,
                notes=notes[:2000],
                actor=actor_of(signed_in.operator),
                open_case=form.get("open_case") == "yes",
            )
            assert lookup_found is not None
            found = explain(session, lookup_found)
            enquiry_id, case_id = str(taken.id), str(taken.case_id or "")
    except KouzaError as refused:
        return _refused(request, runtime, signed_in, form, refused)
    return _page(
        request,
        runtime,
        signed_in,
        found=found,
        form=form,
        message=t("callcentre.enquiry.logged", reference=enquiry_id[:8]),
        enquiry=enquiry_id[:8],
        case=case_id,
    )
