"""The learned model's fixed feature vector, computed from an event and the history before it.

Why a fixed list written here and not learned from whatever the events carry: a model reads
only what is named below, so a reviewer can see that it never reads anything it must not —
the event's own ``outcome`` (known only after the decision), raw identifiers (wallet, user,
device, account), raw IP addresses or e-mail domains (in the simulator honest users come from
``10.x`` and ``mail.example.jp`` and attackers from ``203.0.x`` and a freemail domain: a model
reading those would learn the simulator, not the attack), any ``sim_*`` attribute, or a label.

Most features are expressions of the rule language (:mod:`kouza.risk.language`), compiled by
the same compiler and evaluated over the same :class:`~kouza.risk.features.FeatureStore`
the rules read, *before* the event is recorded. Training replays each simulated world through
an :class:`~kouza.risk.features.InMemoryFeatureStore` and calls :func:`vector` exactly as the
engine does at decision time, so there is one code path and no train/serve skew. The few
features the language cannot say (hour of day in JST, the amount against the wallet's usual
amounts, a transfer's new payee, the device compared with the linking one) are small functions
over the same store; they too read identifiers only to compare them, never as values.

Changing this list changes what a model file means: :data:`FEATURE_SET` names the list and
a model trained on another one is refused on load.
"""

from __future__ import annotations

import hashlib
import math
import statistics
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import timedelta, timezone
from typing import Any

from kouza.risk.events import EventType, RiskEvent
from kouza.risk.features import FeatureStore, keys_of
from kouza.risk.language import Compiled, Context, compile_expression, parse_window
from kouza.risk.plan import reads_of

JST = timezone(timedelta(hours=9))
"""Hours of day are Japan's: honest payments follow the customers' day, not UTC's."""

EVENT_TYPES: tuple[str, ...] = tuple(t.value for t in EventType)
CATEGORIES: tuple[str, ...] = (
    "none",
    "convenience_store",
    "supermarket",
    "restaurant",
    "transport",
    "drugstore",
    "electronics",
    "tobacco",
    "gift_cards",
    "online",
    "other",
)
"""Merchant categories the wallet knows; anything else is ``other`` (an integer code each)."""
NAME_MATCH: tuple[str, ...] = ("none", "match", "review", "mismatch", "other")
"""The ``name_match`` attribute of a link attempt when the bank compared holder names."""

_AMOUNT_WINDOW = parse_window("30d")
_MONEY = frozenset({"topup", "payment", "transfer", "withdrawal"})


@dataclass(frozen=True)
class Feature:
    """One position of the vector: its name, what it means, how it is computed."""

    name: str
    description: str
    kind: str
    """``numeric`` or ``categorical`` (then ``vocabulary`` lists its codes)."""
    source: str
    """The rule-language expression, or ``python:<function>`` for the few computed here."""
    vocabulary: tuple[str, ...] = ()


# name, rule-language expression, why it is there
_EXPRESSIONS: tuple[tuple[str, str, str], ...] = (
    ("amount", "event.amount", "yen moved by the event (0 when none)"),
    ("wallet_age_s", "age(wallet)", "seconds since the wallet was first seen: fresh wallets"),
    ("user_age_s", "age(user)", "seconds since the user was first seen"),
    ("device_age_s", "age(device)", "seconds since the device was first seen"),
    ("ip24_age_s", "age(ip24)", "seconds since the /24 network was first seen"),
    ("account_age_s", "age(account)", "seconds since the bank account was first tried"),
    ("since_link_created_s", 'since(wallet, "link_created")', "seconds since the last link"),
    (
        "since_contact_change_s",
        'since(user, "contact_change")',
        "seconds since phone, e-mail, password or device changed (takeovers change them)",
    ),
    ("since_device_added_s", 'since(user, "device_added")', "seconds since a device was added"),
    ("wallet_events_1h", 'count(wallet, "1h")', "the wallet's events in the last hour"),
    ("wallet_events_24h", 'count(wallet, "24h")', "the wallet's events in the last day"),
    ("wallet_topup_yen_30m", 'total(wallet, "30m", type="topup")', "yen charged in 30 minutes"),
    ("wallet_topup_yen_24h", 'total(wallet, "24h", type="topup")', "yen charged in a day"),
    ("wallet_payment_yen_24h", 'total(wallet, "24h", type="payment")', "yen paid in a day"),
    ("wallet_transfer_yen_24h", 'total(wallet, "24h", type="transfer")', "yen sent in a day"),
    (
        "wallet_refused_share_30d",
        'count(wallet, "30d", outcome_not="ok") / count(wallet, "30d")',
        "share of the wallet's earlier events that were refused",
    ),
    (
        "wallet_failed_links_24h",
        'count(wallet, "24h", type="link_attempt", outcome_not="ok")',
        "refused link attempts of the wallet in a day",
    ),
    (
        "wallet_other_holders_30d",
        'others(wallet, "holder_name", "30d", type="link_attempt")',
        "holder names other than this one the wallet tried",
    ),
    (
        "wallet_accounts_30d",
        'distinct(wallet, "account", "30d", type="link_attempt")',
        "bank accounts the wallet tried",
    ),
    ("user_devices_30d", 'distinct(user, "device", "30d")', "devices the user used"),
    ("device_events_24h", 'count(device, "24h")', "the device's events in a day"),
    (
        "device_failed_links_1h",
        'count(device, "1h", type="link_attempt", outcome_not="ok")',
        "refused link attempts from the device in an hour",
    ),
    (
        "device_other_accounts_24h",
        'others(device, "account", "24h", type="link_attempt")',
        "other bank accounts the device tried in a day",
    ),
    ("device_other_wallets_30d", 'others(device, "wallet", "30d")', "other wallets on the device"),
    ("ip24_events_1h", 'count(ip24, "1h")', "events from the /24 in an hour"),
    (
        "ip24_link_attempts_1h",
        'count(ip24, "1h", type="link_attempt")',
        "link attempts from the /24 in an hour",
    ),
    (
        "ip24_accounts_1h",
        'distinct(ip24, "account", "1h", type="link_attempt")',
        "bank accounts tried from the /24 in an hour (reverse brute force)",
    ),
    ("ip24_other_wallets_24h", 'others(ip24, "wallet", "24h")', "other wallets on the /24"),
    (
        "ip24_failed_links_24h",
        'count(ip24, "24h", type="link_attempt", outcome_not="ok")',
        "refused link attempts from the /24 in a day",
    ),
    (
        "account_other_wallets_30d",
        'others(account, "wallet", "30d")',
        "other wallets that used this bank account",
    ),
    (
        "account_links_revoked_30d",
        'count(account, "30d", type="link_revoked")',
        "links of this account revoked (by its holder or the bank)",
    ),
    (
        "bank_wrong_pin_10m",
        'count(bank, "10m", type="link_attempt", outcome="wrong_pin")',
        "wrong-PIN refusals at this bank in ten minutes (a campaign)",
    ),
)


def _hour_jst(event: RiskEvent, _store: FeatureStore) -> float:
    return float(event.at.astimezone(JST).hour)


def _amount_vs_wallet_median(event: RiskEvent, store: FeatureStore) -> float:
    """The amount over the median of the wallet's money movements in 30 days (NaN: none)."""
    wallet = keys_of(event).get("wallet")
    if not event.amount or wallet is None:
        return math.nan
    past = [
        e.amount
        for e in store.window(wallet, event.at - _AMOUNT_WINDOW)
        if e.amount > 0 and e.type.value in _MONEY
    ]
    if not past:
        return math.nan
    return event.amount / statistics.median(past)


def _new_payee(event: RiskEvent, store: FeatureStore) -> float:
    """1 when a transfer goes to a wallet this wallet never sent to in 30 days (NaN: not a
    transfer); the payee's id is compared, never read as a value."""
    payee = event.attributes.get("to")
    wallet = keys_of(event).get("wallet")
    if event.type is not EventType.TRANSFER or not payee or wallet is None:
        return math.nan
    for e in store.window(wallet, event.at - _AMOUNT_WINDOW):
        if e.type is EventType.TRANSFER and e.attributes.get("to") == payee:
            return 0.0
    return 1.0


_LINKING_DEVICE = compile_expression('first(account, "device", "link_created")')


def _device_differs_from_linking(event: RiskEvent, store: FeatureStore) -> float:
    """1 when the event's device is not the one that linked its bank account (NaN: no link)."""
    if not event.account:
        return math.nan
    linking = _LINKING_DEVICE(Context.for_event(event, store))
    if linking is None:
        return math.nan
    return 0.0 if linking == event.device else 1.0


_COMPUTED: tuple[tuple[str, Callable[[RiskEvent, FeatureStore], float], str], ...] = (
    ("hour_jst", _hour_jst, "hour of day in Japan"),
    (
        "amount_vs_wallet_median_30d",
        _amount_vs_wallet_median,
        "amount over the median of the wallet's money movements in 30 days",
    ),
    ("new_payee", _new_payee, "a transfer to a wallet not paid in 30 days"),
    (
        "device_differs_from_linking",
        _device_differs_from_linking,
        "the device is not the one that linked the account",
    ),
)


def _code(vocabulary: tuple[str, ...], value: str) -> float:
    if not value:
        return 0.0
    try:
        return float(vocabulary.index(value))
    except ValueError:
        return float(len(vocabulary) - 1)  # "other"


_CATEGORICAL: tuple[tuple[str, tuple[str, ...], Callable[[RiskEvent], str], str], ...] = (
    ("event_type", EVENT_TYPES, lambda e: e.type.value, "what happened"),
    ("category", CATEGORIES, lambda e: e.category, "merchant category of a payment"),
    (
        "name_match",
        NAME_MATCH,
        lambda e: str(e.attributes.get("name_match") or ""),
        "the bank's holder-name comparison, when present",
    ),
)

FEATURES: tuple[Feature, ...] = (
    *(Feature(n, d, "categorical", f"event.{n}", v) for n, v, _, d in _CATEGORICAL),
    *(Feature(n, d, "numeric", s) for n, s, d in _EXPRESSIONS),
    *(Feature(n, d, "numeric", f"python:{f.__name__}") for n, f, d in _COMPUTED),
)
"""The vector, in order."""
FEATURE_NAMES: tuple[str, ...] = tuple(f.name for f in FEATURES)
CATEGORICAL_INDICES: tuple[int, ...] = tuple(range(len(_CATEGORICAL)))
FEATURE_SET = (
    "v1-"
    + hashlib.sha256(
        "\n".join(
            f"{f.name}|{f.kind}|{f.source}|{','.join(f.vocabulary)}" for f in FEATURES
        ).encode()
    ).hexdigest()[:8]
)
"""Names this exact list; a model file records it and is refused if it differs."""

_COMPILED: tuple[Compiled, ...] = tuple(compile_expression(s) for _, s, _ in _EXPRESSIONS)


def _number(value: Any) -> float:
    if value is None:
        return math.nan
    if isinstance(value, bool):
        return 1.0 if value else 0.0
    if isinstance(value, (int, float)):
        return float(value)
    raise TypeError(f"a feature expression gave {type(value).__name__}, not a number")


def vector(event: RiskEvent, store: FeatureStore) -> list[float]:
    """The feature vector of ``event`` from ``store`` as it is *before* the event (the caller
    records the event afterwards). Unknown values (a key never seen, no earlier event) are
    NaN, which LightGBM treats as missing."""
    values = [_code(vocab, get(event)) for _, vocab, get, _ in _CATEGORICAL]
    ctx = Context.for_event(event, store)
    values.extend(_number(compiled(ctx)) for compiled in _COMPILED)
    values.extend(function(event, store) for _, function, _ in _COMPUTED)
    return values


def display_value(index: int, value: float) -> float | str | None:
    """A vector value as an operator reads it: the category's name, or the number (None for
    unknown)."""
    feature = FEATURES[index]
    if feature.kind == "categorical":
        return feature.vocabulary[int(value)]
    return None if math.isnan(value) else value


def reads() -> Mapping[str, timedelta | None]:
    """What the vector reads per dimension (longest window; None: whole history), so a shared
    store can fetch it with the rules' reads in the decision's one round trip."""
    windows: dict[str, timedelta | None] = {}
    sources = [s for _, s, _ in _EXPRESSIONS] + ['first(account, "device", "link_created")']
    for source in sources:
        for dimension, window in reads_of(source).items():
            previous = windows.get(dimension, timedelta(0)) if dimension in windows else window
            windows[dimension] = (
                None if previous is None or window is None else max(previous, window)
            )
    windows["wallet"] = (
        None
        if "wallet" in windows and windows["wallet"] is None
        else max(windows.get("wallet") or timedelta(0), _AMOUNT_WINDOW)
    )
    return windows
