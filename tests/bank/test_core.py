"""Core records: secrets at rest, formats, the app's meta routes, seeding."""

from __future__ import annotations

from datetime import date

import pyotp
import pytest
from cryptography.fernet import InvalidToken
from fastapi.testclient import TestClient
from sqlalchemy import func, select, text

from kouza.bank.app import create_bank_app
from kouza.bank.core import BankConfig, CustomerData, core
from kouza.bank.errors import AccountExists, BankExists, InvalidBankData
from kouza.bank.kana import same_holder_name, to_zengin_kana
from kouza.bank.keys import decrypt_totp_seed, encrypt_totp_seed
from kouza.bank.models import Account, AccountType, Bank, Customer
from kouza.bank.runtime import BankRuntime
from kouza.bank.seed import PARTNER_BANKS, seed_banks
from kouza.kit import zengin
from kouza.kit.clock import ManualClock
from kouza.kit.security import verify_password
from kouza.kit.zengin import UnknownBankCode
from tests.bank.helpers import make_bank, make_holder


class TestSecretsAtRest:
    def test_pin_password_and_totp_seed_are_never_stored_readable(
        self,
        bank_rt: BankRuntime,
        clock: ManualClock,
    ) -> None:
        make_bank(bank_rt)
        make_holder(bank_rt, pin="8642")
        with bank_rt.db.unit_of_work() as session:
            bank = core.bank(session, "0125")
            customer = core.add_customer(
                session,
                bank,
                CustomerData(
                    "鈴木 花子",
                    "すずき はなこ",
                    date(1985, 5, 5),
                    "仙台",
                    "+81900000000",
                    "hanako@example.jp",
                ),
                internet_banking_password="correct horse battery",
            )
            device, seed = core.add_otp_device(session, customer, label="token")
            code_now = pyotp.TOTP(seed).at(clock.now())
            assert core.verify_otp(session, device, code_now)
            assert not core.verify_otp(session, device, "000000")

        with bank_rt.db.session() as session:
            dump = " ".join(
                str(row)
                for table in ("accounts", "customers", "otp_devices")
                for row in session.execute(text(f"SELECT * FROM {table}"))
            )
            account = session.scalars(select(Account)).one()
            customer = session.get_one(Customer, 2)
        assert "8642" not in dump and "correct horse" not in dump and seed not in dump
        assert verify_password(account.pin_hash, "8642")
        assert customer.name_kana == "ｽｽﾞｷ ﾊﾅｺ"
        assert customer.internet_banking_password_hash is not None
        assert verify_password(customer.internet_banking_password_hash, "correct horse battery")

    def test_totp_seed_is_bound_to_its_bank(self) -> None:
        token = encrypt_totp_seed(b"secret", bank_code="0125", seed="JBSWY3DPEHPK3PXP")

        assert decrypt_totp_seed(b"secret", bank_code="0125", token=token) == "JBSWY3DPEHPK3PXP"
        with pytest.raises(InvalidToken):
            decrypt_totp_seed(b"secret", bank_code="0126", token=token)
        with pytest.raises(InvalidToken):
            decrypt_totp_seed(b"other", bank_code="0125", token=token)


class TestFormats:
    @pytest.mark.parametrize("typed", ["ヤマダ タロウ", "やまだ　たろう", "ﾔﾏﾀﾞ  ﾀﾛｳ", "ﾔﾏﾀﾞ ﾀﾛｳ"])
    def test_kana_folds_to_zengin(self, typed: str) -> None:
        assert to_zengin_kana(typed) == "ﾔﾏﾀﾞ ﾀﾛｳ"
        assert same_holder_name(typed, "ﾔﾏﾀﾞ ﾀﾛｳ")

    def test_small_kana_and_mismatches(self) -> None:
        assert to_zengin_kana("キュウ") == "ｷﾕｳ"
        assert not same_holder_name("ヤマダ ハナコ", "ﾔﾏﾀﾞ ﾀﾛｳ")
        assert not same_holder_name("山田太郎", "ﾔﾏﾀﾞ ﾀﾛｳ")
        with pytest.raises(InvalidBankData):
            to_zengin_kana("山田")

    def test_codes_numbers_and_duplicates(self, bank_rt: BankRuntime) -> None:
        make_bank(bank_rt)
        make_holder(bank_rt)
        with bank_rt.db.unit_of_work() as session:
            with pytest.raises(InvalidBankData):
                core.create_bank(
                    session, code="125", name="x", name_kana="ｴｯｸｽ", config=BankConfig()
                )
            with pytest.raises(BankExists):
                core.create_bank(
                    session, code="0125", name="x", name_kana="ｴｯｸｽ", config=BankConfig()
                )
            bank = core.bank(session, "0125")
            branch = core.branch(session, bank, "100")
            customer = session.scalars(select(Customer)).one()
            with pytest.raises(AccountExists):
                core.open_account(
                    session,
                    customer,
                    branch=branch,
                    account_type=AccountType.SAVINGS,
                    number="1234567",
                    pin="1111",
                )
            with pytest.raises(InvalidBankData):
                core.open_account(
                    session,
                    customer,
                    branch=branch,
                    account_type=AccountType.SAVINGS,
                    number="7654321",
                    pin="11a1",
                )


class TestApp:
    def test_health_jwks_and_openapi(self, bank_rt: BankRuntime) -> None:
        make_bank(bank_rt)
        with TestClient(create_bank_app(bank_rt)) as api:
            health = api.get("/health").json()
            jwks = api.get("/.well-known/jwks.json").json()
            spec = api.get("/openapi.json").json()
            banks = api.get("/v1/banks").json()

        assert health["status"] == "ok"
        [key] = jwks["keys"]
        assert (key["kty"], key["crv"], key["alg"], key["use"]) == (
            "OKP",
            "Ed25519",
            "Ed25519",
            "sig",
        )
        assert "d" not in key
        assert "/v1/links/{link_id}/debits" in spec["paths"]
        debit_responses = spec["paths"]["/v1/links/{link_id}/debits"]["post"]["responses"]
        assert {"201", "401", "404", "409", "422"} <= set(debit_responses)
        assert banks == [
            {
                "code": "0125",
                "name": "七十七銀行",
                "name_kana": "ｼﾁｼﾞﾕｳｼﾁ",
                "auth_profile": "legacy_pin",
                "notice_channel": "email",
            }
        ]


class TestSeed:
    def test_seed_creates_every_partner_bank_once(self, bank_rt: BankRuntime) -> None:
        with bank_rt.db.unit_of_work() as session:
            first = seed_banks(session, rng_seed=7, customers_per_bank=3)
        with bank_rt.db.unit_of_work() as session:
            again = seed_banks(session, rng_seed=7, customers_per_bank=3)

        assert (first.banks, first.customers) == (len(PARTNER_BANKS), 3 * len(PARTNER_BANKS))
        assert again.banks == 0 and len(again.skipped_banks) == len(PARTNER_BANKS)
        with bank_rt.db.session() as session:
            profiles = dict(session.execute(select(Bank.code, Bank.auth_profile)).all())
            accounts = session.scalar(select(func.count()).select_from(Account))
        assert profiles["0125"] == "legacy_pin" and profiles["0010"] == "oauth"
        assert accounts == 3 * len(PARTNER_BANKS)
        seeded = first.accounts[0]
        assert len(seeded.number) == 7 and len(seeded.pin) == 4
        assert to_zengin_kana(seeded.name_kana) == seeded.name_kana


class TestRealCodes:
    """The bank system's banks and branches are real ones: codes from the Zengin list."""

    def test_seed_table_matches_the_zengin_list(self) -> None:
        for partner in PARTNER_BANKS:
            listed = zengin.bank(partner.code)
            assert zengin.same_name(listed.name, partner.name), (partner.code, listed.name)

    def test_unknown_codes_refused(self, bank_rt: BankRuntime) -> None:
        with bank_rt.db.unit_of_work() as session:
            with pytest.raises(UnknownBankCode, match="'0999' is not a bank code"):
                core.create_bank(
                    session, code="0999", name="x", name_kana="ｴｯｸｽ", config=BankConfig()
                )
            bank = core.create_bank(
                session, code="0125", name="七十七銀行", name_kana="ｼﾁｼﾞﾕｳｼﾁ", config=BankConfig()
            )
            with pytest.raises(UnknownBankCode, match="'999' is not a branch code of bank 0125"):
                core.add_branch(session, bank, code="999", name="x")
