"""The report writer: every file written, figures exact, HTML self-contained, no glyph warnings.

Results are built by hand (no database): a robbed legacy profile at banks with Japanese names, a
partly defended one, and a profile that lost nothing and had no honest users; then the same
over two seeds with an ablated kouza beside it (the median [range] cells and the ablation table).
"""

from __future__ import annotations

import base64
import json
import re
import struct
import warnings
from datetime import date
from pathlib import Path

import matplotlib
import pytest
from rich.console import Console

from kouza.sim.profiles import LAYERS
from kouza.sim.report import (
    CHARTS,
    _losses_by_bank,
    _losses_over_time,
    _month_ticks,
    _typeface,
    ablation_table,
    banks_with_losses,
    comparison_markdown,
    comparison_table,
    comparison_tables,
    friction_count,
    funnel,
    render_html,
    results_data,
    targets_rows,
    write_report,
)
from kouza.sim.results import (
    FRICTION_EVENTS,
    FRICTION_USERS,
    STAGES,
    AttackerResult,
    ProfileResult,
    SimulationResult,
)

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
FILES = [
    "summary.json",
    "results.json",
    *(f"{name}.png" for name in CHARTS),
    "comparison.md",
    "report.html",
]
REQUIRED = (
    "loss_yen",
    "victims",
    "banks_hit",
    "attack_attempts",
    "honest_active_users",
    "honest_step_ups",
    "honest_blocks",
    "false_locks",
)
BANK_NAMES = {
    "0125": "七十七銀行",
    "0168": "中国銀行",
    "9900": "ゆうちょ銀行",
    "0005": "三菱UFJ銀行",
}


def _legacy() -> ProfileResult:
    daily = [0] * 366
    daily[10], daily[40], daily[41] = 600_000, 300_000, 25_000
    return ProfileResult(
        profile="legacy-2019",
        description="E-mail-only wallets, legacy forms.",
        loss_yen=925_000,
        spent_yen=900_000,
        frozen_yen=25_000,
        victims=3,
        banks_hit=2,
        attack_attempts=5,
        losses_by_bank={"0125": 625_000, "9900": 300_000},
        victims_by_bank={"0125": 2, "9900": 1},
        losses_by_day=daily,
        max_loss_per_victim_yen=600_000,
        net_loss_yen=900_000,
        seed=2020,
        attackers=[
            AttackerResult(
                name="leaked-list",
                strategy="leaked_credentials",
                attempts=4,
                stages={
                    "wallet_opened": 4,
                    "link_attempted": 4,
                    "linked": 3,
                    "charged": 3,
                    "spent": 3,
                },
                refusals={"pin_mismatch": 1},
                loss_yen=925_000,
                victims=3,
                succeeded=3,
            ),
            AttackerResult(
                name="one-pin-sweep",
                strategy="reverse_brute_force",
                attempts=1,
                stages={"wallet_opened": 1, "link_attempted": 1},
            ),
        ],
        detection_delays_hours=[30.0, 6.0, 12.0],
        honest_active_users=1_250,
        honest_operations=40_000,
        honest_step_ups=5,
        honest_reviews=2,
        honest_blocks=1,
        false_locks=0,
        operations=40_123,
        seconds=12.345,
    )


def _jba() -> ProfileResult:
    return ProfileResult(
        profile="jba-2020",
        description="Banks require IB password + OTP.",
        loss_yen=90_000,
        spent_yen=90_000,
        net_loss_yen=90_000,
        seed=2020,
        victims=1,
        banks_hit=1,
        attack_attempts=5,
        losses_by_bank={"0168": 90_000, "0005": 0},
        victims_by_bank={"0168": 1},
        losses_by_day=[0, 0, 90_000],
        max_loss_per_victim_yen=90_000,
        attackers=[
            AttackerResult(
                name="leaked-list",
                strategy="leaked_credentials",
                attempts=5,
                stages={
                    "wallet_opened": 5,
                    "link_attempted": 5,
                    "linked": 1,
                    "charged": 1,
                    "spent": 1,
                },
                refusals={"oauth_required": 4},
                loss_yen=90_000,
                victims=1,
            )
        ],
        honest_active_users=1_000,
        honest_step_ups=0,
        honest_reviews=0,
        honest_blocks=0,
        false_locks=1,
        honest_link_refusals=7,
    )


def _kouza() -> ProfileResult:
    return ProfileResult(
        profile="kouza",
        description="Everything kouza has <script>alert(1)</script>.",
        attack_attempts=5,
        seed=2020,
        attackers=[
            AttackerResult(
                name="leaked-list",
                strategy="leaked_credentials",
                attempts=5,
                stages={"wallet_opened": 5},
                refusals={
                    "level_too_low": 3,
                    "device_unknown": 2,
                    "device_signature_required": 1,
                    "device_signature_invalid": 1,
                },
                stopped_by_rule={"link-soon-after-signup": 2},
            )
        ],
        honest_active_users=0,
    )


def _result(*profiles: ProfileResult) -> SimulationResult:
    return SimulationResult(
        scenario="docomo-2020",
        seeds=[2020],
        start="2019-10-01T00:00:00+09:00",
        days=366,
        bank_names=dict(BANK_NAMES),
        profiles=list(profiles),
    )


@pytest.fixture
def result() -> SimulationResult:
    return _result(_legacy(), _jba(), _kouza())


@pytest.fixture(scope="module")
def written(tmp_path_factory: pytest.TempPathFactory) -> tuple[list[Path], Path]:
    """The three-profile report, written once (with warnings as errors) for the whole module."""
    out_dir = tmp_path_factory.mktemp("report") / "new" / "report"
    return _write(_result(_legacy(), _jba(), _kouza()), out_dir), out_dir


def _write(result: SimulationResult, out_dir: Path) -> list[Path]:
    """write_report with every warning (missing glyphs included) raised as an error."""
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        return write_report(result, out_dir)


def _png_size(data: bytes) -> tuple[int, int]:
    assert data[:8] == PNG_SIGNATURE
    assert data[12:16] == b"IHDR"
    width, height = struct.unpack(">II", data[16:24])
    return width, height


class TestWriteReport:
    def test_every_file_written_non_empty(self, written: tuple[list[Path], Path]) -> None:
        paths, out_dir = written
        assert paths == [out_dir / name for name in FILES]
        assert sorted(p.name for p in out_dir.iterdir()) == sorted(FILES)
        for path in paths:
            assert path.stat().st_size > 0, path

    def test_summary_is_exactly_the_results_summary(
        self, result: SimulationResult, written: tuple[list[Path], Path]
    ) -> None:
        text = (written[1] / "summary.json").read_text(encoding="utf-8")
        summary = json.loads(text)
        assert summary == result.summary()
        assert list(summary) == [
            "scenario",
            "seeds",
            "population_scale",
            "wallet_share",
            "honest_users",
            "start",
            "days",
            "profiles",
            "ablation",
        ]
        assert (summary["scenario"], summary["seeds"], summary["population_scale"]) == (
            "docomo-2020",
            [2020],
            1.0,
        )
        profiles = summary["profiles"]
        assert list(profiles) == ["legacy-2019", "jba-2020", "kouza"]
        for name, entry in profiles.items():
            assert list(entry) == ["description", "median", "min", "max", "per_seed"]
            assert set(REQUIRED) <= set(entry["median"])
            # one seed: the median, the range and the seed's own figures are the same tree
            assert entry["median"] == entry["min"] == entry["max"] == entry["per_seed"]["2020"]
            assert (
                entry["per_seed"]["2020"]
                == next(p for p in result.profiles if p.profile == name).summary()
            )
        legacy = profiles["legacy-2019"]["median"]
        assert legacy["loss_yen"] == 925_000
        assert legacy["net_loss_yen"] == 900_000
        assert legacy["attacks_succeeded"] == 3
        assert legacy["losses_by_bank"] == {"0125": 625_000, "9900": 300_000}
        assert profiles["kouza"]["median"]["friction_per_1000"]["step_ups"] == 0.0
        assert summary["ablation"] == []
        assert text.startswith("{\n  ")

    def test_results_hold_everything(
        self, result: SimulationResult, written: tuple[list[Path], Path]
    ) -> None:
        data = json.loads((written[1] / "results.json").read_text(encoding="utf-8"))
        assert data == json.loads(json.dumps(results_data(result)))
        assert (data["scenario"], data["seeds"], data["start"], data["days"]) == (
            "docomo-2020",
            [2020],
            "2019-10-01T00:00:00+09:00",
            366,
        )
        assert data["bank_names"]["0125"] == "七十七銀行"
        legacy = data["profiles"][0]
        assert legacy["seed"] == 2020
        assert legacy["losses_by_day"][40] == 300_000
        assert legacy["detection_delay_median_hours"] == 12.0
        assert legacy["attackers"][0]["stages"]["linked"] == 3
        assert legacy["attackers"][0]["refusals"] == {"pin_mismatch": 1}

    def test_json_keeps_japanese_readable(self, written: tuple[list[Path], Path]) -> None:
        raw = (written[1] / "results.json").read_bytes()
        assert "七十七銀行".encode() in raw
        assert b"\\u" not in raw

    def test_charts_are_png(self, written: tuple[list[Path], Path]) -> None:
        sizes = {name: _png_size((written[1] / f"{name}.png").read_bytes()) for name in CHARTS}
        for width, height in sizes.values():
            assert width > 300 and height > 200

    def test_same_result_same_files(
        self, result: SimulationResult, tmp_path: Path, written: tuple[list[Path], Path]
    ) -> None:
        first = written[0]
        second = _write(result, tmp_path)
        for one, two in zip(first, second, strict=True):
            assert one.read_bytes() == two.read_bytes(), one.name

    def test_no_losses_at_all(self, tmp_path: Path) -> None:
        quiet = _result(_kouza(), ProfileResult(profile="empty", description="Nothing ran."))
        paths = _write(quiet, tmp_path)
        for path in paths:
            assert path.stat().st_size > 0, path
        html = (tmp_path / "report.html").read_text(encoding="utf-8")
        assert "No losses: no bank account lost money under any profile." in html
        assert "No attackers ran against this profile." in html
        assert _png_size((tmp_path / "losses_by_bank.png").read_bytes())[0] > 300

    def test_no_profiles_and_no_global_matplotlib_state(self, tmp_path: Path) -> None:
        settings = dict(matplotlib.rcParams)
        paths = _write(_result(), tmp_path)
        assert dict(matplotlib.rcParams) == settings
        assert [path.name for path in paths] == FILES
        summary = json.loads((tmp_path / "summary.json").read_text(encoding="utf-8"))
        assert (summary["profiles"], summary["ablation"]) == ({}, [])


class TestHtml:
    @pytest.fixture
    def html(self, written: tuple[list[Path], Path]) -> str:
        return (written[1] / "report.html").read_text(encoding="utf-8")

    def test_title_and_figures(self, html: str) -> None:
        assert "<title>kouza simulation: docomo-2020</title>" in html
        assert "seed 2020 · 2019-10-01 – 2020-09-30 (366 days)" in html
        for name in ("legacy-2019", "jba-2020", "kouza"):
            assert f'<th colspan="2">{name}</th>' in html
        for yen in ("¥925,000", "¥625,000", "¥300,000", "¥600,000", "¥90,000", "¥25,000"):
            assert f">{yen}</td>" in html
        assert "money the real code moved from a\nvictim to an attacker" in html

    def test_comparison_row(self, html: str) -> None:
        cells = [
            "legacy-2019",
            "¥925,000",
            "¥900,000",
            "3",
            "2",
            "¥600,000",
            "5",
            "3",
            "¥900,000",
            "¥25,000",
            "12.0 h",
            "1,250",
            "4.00",
            "1.60",
            "0.80",
            "0.00",
            "0",
        ]
        numeric = ' class="num"'
        row = "".join(f"<td{'' if i == 0 else numeric}>{c}</td>" for i, c in enumerate(cells))
        assert f"<tr>{row}</tr>" in html

    def test_banks_by_name_only_with_losses(self, html: str) -> None:
        for code in ("0125", "9900", "0168"):
            assert f"<tr><td>{code}</td><td>{BANK_NAMES[code]}</td>" in html
        assert "0005" not in html
        assert "三菱UFJ銀行" not in html

    def test_attackers(self, html: str) -> None:
        assert "<li>pin_mismatch × 1</li>" in html  # a code CONTROLS does not know, as it is
        assert html.index("<li>level_too_low × 3</li>") < html.index("<li>device_unknown × 2</li>")
        # two codes for one control, counted together, the codes beside it
        assert (
            '<li>device keys × 2 <span class="muted">(device_signature_required, '
            "device_signature_invalid)</span></li>"
        ) in html
        assert "<li>rule link-soon-after-signup × 2</li>" in html
        assert "one-pin-sweep" in html and "reverse_brute_force" in html
        succeeded = '<td class="num">3</td><td><ul class="refusals"><li>pin_mismatch × 1</li>'
        assert succeeded in html

    def test_friction_section(self, html: str) -> None:
        section = html[html.index('<h2 id="friction">') : html.index("<h2>Attackers")]
        assert (
            '<h3>legacy-2019 <span class="muted">· 1,250 honest active users · 40,000 '
            "honest operations</span></h3>"
        ) in section
        # count, denominator and rate side by side; link refusals of those who tried to link
        assert (
            '<tr><td>step-ups</td><td class="num">0</td><td class="num">1,250</td>'
            '<td class="num">0.00 %</td>'
        ) in section
        assert (
            '<tr><td>link refusals</td><td class="num">0</td><td class="num">0</td>'
            '<td class="num">—</td>'
        ) in section
        assert "Time to money: 0 honest top-up(s) not spendable at once; median —" in section

    def test_no_ablation_section(self, html: str) -> None:
        assert 'id="ablation"' not in html

    def test_escaped(self, html: str) -> None:
        assert "<script" not in html
        assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html

    def test_self_contained(self, html: str, written: tuple[list[Path], Path]) -> None:
        assert "http://" not in html and "https://" not in html
        assert "<link" not in html and "@import" not in html
        sources = re.findall(r"""(?:src|href)\s*=\s*["']?([^"'\s>]*)""", html)
        assert len(sources) == len(CHARTS)  # no ablation chart: this run has no ablation
        for name, source in zip(CHARTS, sources, strict=True):
            png = (written[1] / f"{name}.png").read_bytes()
            assert source == "data:image/png;base64," + base64.b64encode(png).decode("ascii")


class TestComparison:
    def test_markdown(self, result: SimulationResult) -> None:
        lines = comparison_markdown(result).splitlines()
        assert lines[0].startswith("| profile | loss | net loss | victims | banks hit |")
        assert lines[1] == "|:---|" + "|".join(["---:"] * 16) + "|"
        assert lines[2:] == [
            "| legacy-2019 | ¥925,000 | ¥900,000 | 3 | 2 | ¥600,000 | 5 | 3 | ¥900,000 | ¥25,000 "
            "| 12.0 h | 1,250 | 4.00 | 1.60 | 0.80 | 0.00 | 0 |",
            "| jba-2020 | ¥90,000 | ¥90,000 | 1 | 1 | ¥90,000 | 5 | 0 | ¥90,000 | ¥0 | — | 1,000 "
            "| 0.00 | 0.00 | 0.00 | 1.00 | 7 |",
            "| kouza | ¥0 | ¥0 | 0 | 0 | ¥0 | 5 | 0 | ¥0 | ¥0 | — | 0 | — | — | — | — | 0 |",
        ]

    def test_markdown_escapes_pipes(self) -> None:
        markdown = comparison_markdown(_result(ProfileResult(profile="a|b", description="")))
        assert markdown.splitlines()[2].startswith(r"| a\|b | ¥0 |")

    def test_rich_table(self, result: SimulationResult) -> None:
        result.profiles.append(ProfileResult(profile="[bold]x", description=""))
        table = comparison_table(result)
        assert (len(table.columns), table.row_count) == (17, 4)
        console = Console(record=True, width=300)
        console.print(table)
        text = console.export_text()
        assert "¥925,000" in text and "12.0 h" in text
        assert "[bold]x" in text

    def test_rich_table_on_its_side_in_a_narrow_terminal(self, result: SimulationResult) -> None:
        table = comparison_table(result, width=80)
        assert (len(table.columns), table.row_count) == (1 + len(result.profiles), 16)
        console = Console(record=True, width=80)
        console.print(table)
        text = console.export_text()
        assert "¥925,000" in text and "12.0 h" in text and "…" not in text

    def test_many_profiles_split_into_tables_that_fit(self) -> None:
        many = _result(
            *(
                ProfileResult(
                    profile=f"kouza-without-layer-{i}",
                    description="",
                    seed=2020,
                    loss_yen=1_234_567 * i,
                )
                for i in range(9)
            )
        )
        tables = comparison_tables(many, width=80)
        assert len(tables) > 1
        assert sum(len(table.columns) - 1 for table in tables) == 9
        console = Console(record=True, width=80)
        for table in tables:
            console.print(table)
        text = console.export_text()
        assert "…" not in text and "¥9,876,536" in text
        assert comparison_tables(many, width=250)[0].row_count == 9


class TestFigures:
    def test_friction_and_funnel(self) -> None:
        legacy = _legacy()
        assert friction_count(legacy) == 8
        assert funnel(legacy) == {
            "attempted": 5,
            "wallet_opened": 5,
            "link_attempted": 5,
            "linked": 3,
            "charged": 3,
            "spent": 3,
        }
        assert list(funnel(_kouza())) == ["attempted", *STAGES]

    def test_banks_with_losses_largest_first(self, result: SimulationResult) -> None:
        assert banks_with_losses(result) == ["0125", "9900", "0168"]

    def test_month_ticks(self) -> None:
        ticks, labels = _month_ticks(date(2019, 10, 1), 366)
        assert ticks == [0, 31, 61, 92, 123, 152, 183, 213, 244, 274, 305, 336]
        assert labels[:5] == ["Oct\n2019", "Nov", "Dec", "Jan\n2020", "Feb"]
        ticks, labels = _month_ticks(date(2019, 10, 15), 1_000)
        assert ticks[0] == 17 and labels[0] == "Nov\n2019"
        assert len(ticks) <= 13

    def test_bank_labels_use_names_only_when_drawable(self, result: SimulationResult) -> None:
        codes = banks_with_losses(result)
        face = _typeface(BANK_NAMES[code] for code in codes)
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            figure = _losses_by_bank(result, face)
            labels = [label.get_text() for label in figure.axes[0].get_yticklabels()]
        expected = [
            f"{code} {BANK_NAMES[code]}" if face.draws(BANK_NAMES[code]) else code for code in codes
        ]
        assert labels == expected

    def test_ascii_bank_names_are_drawn(self) -> None:
        plain = _result(_legacy())
        plain.bank_names = {"0125": "Shichijushichi", "9900": "Japan Post Bank"}
        figure = _losses_by_bank(plain, _typeface(plain.bank_names.values()))
        labels = [label.get_text() for label in figure.axes[0].get_yticklabels()]
        assert labels == ["0125 Shichijushichi", "9900 Japan Post Bank"]

    def test_unparseable_start(self) -> None:
        odd = _result(_legacy())
        odd.start = "day zero"
        html = render_html(odd, dict.fromkeys(CHARTS, b"png"))
        assert "seed 2020 · day zero, 366 days" in html
        axes = _losses_over_time(odd, _typeface(["docomo-2020"])).axes[0]
        assert axes.get_xlabel() == "days from start"
        assert axes.get_xlim() == (0, 366)


# --- several seeds and an ablation ----------------------------------------------------------


def _kouza_world(
    seed: int,
    *,
    profile: str = "kouza",
    loss: int = 0,
    step_ups: int = 0,
    users: int = 100,
    link_refusals: int = 0,
) -> ProfileResult:
    """A kouza-like world with friction figures (users and events) for one seed."""
    return ProfileResult(
        profile=profile,
        description=f"{profile}.",
        seed=seed,
        loss_yen=loss,
        net_loss_yen=loss // 2,
        honest_active_users=users,
        honest_operations=10 * users,
        honest_link_attempters=users // 2,
        honest_step_ups=step_ups,
        friction_users={
            **dict.fromkeys(FRICTION_USERS, 0),
            "step_up": step_ups,
            "link_refusal": link_refusals,
        },
        friction_events={
            **dict.fromkeys(FRICTION_EVENTS, 0),
            "step_up": 2 * step_ups,
            "link_refusal": link_refusals,
        },
        time_to_money_hours=[2.0, 30.0] if seed == 2020 else [],
    )


def _seeded() -> SimulationResult:
    """Two seeds of legacy-2019, kouza and two ablated kouzas, the population halved."""
    second = _legacy()
    second.seed, second.loss_yen, second.victims = 2021, 600_000, 2
    second.losses_by_bank, second.victims_by_bank = {"0125": 600_000}, {"0125": 2}
    worlds = [
        _legacy(),
        second,
        _kouza_world(2020, step_ups=10, link_refusals=4, loss=20_000),
        _kouza_world(2021, step_ups=14, users=120, link_refusals=6),
        _kouza_world(2020, profile="kouza-without-device-keys", step_ups=10, loss=0),
        _kouza_world(
            2021, profile="kouza-without-device-keys", step_ups=12, users=120, loss=300_000
        ),
        _kouza_world(2020, profile="kouza-without-linking-rules", loss=50_000),
        _kouza_world(2021, profile="kouza-without-linking-rules", users=120, loss=0),
    ]
    seeded = _result(*worlds)
    seeded.seeds = [2020, 2021]
    seeded.population_scale, seeded.wallet_share = 0.5, 0.015
    return seeded


@pytest.fixture(scope="module")
def out(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The two-seed report with its ablation table, written once for the module."""
    out_dir = tmp_path_factory.mktemp("seeded")
    paths = _write(_seeded(), out_dir)
    assert [path.name for path in paths] == [*FILES[:-2], "ablation.png", *FILES[-2:]]
    return out_dir


class TestSeveralSeeds:
    def test_summary_per_seed_median_and_range(self, out: Path) -> None:
        summary = json.loads((out / "summary.json").read_text(encoding="utf-8"))
        assert summary == _seeded().summary()
        assert (summary["seeds"], summary["population_scale"], summary["wallet_share"]) == (
            [2020, 2021],
            0.5,
            0.015,
        )
        legacy = summary["profiles"]["legacy-2019"]
        assert list(legacy["per_seed"]) == ["2020", "2021"]
        assert [legacy[spread]["loss_yen"] for spread in ("median", "min", "max")] == [
            762_500,
            600_000,
            925_000,
        ]
        assert legacy["median"]["victims"] == 2.5
        # a bank one seed did not hit counts as 0 there
        assert legacy["median"]["losses_by_bank"] == {"0125": 612_500, "9900": 150_000}
        assert legacy["min"]["losses_by_bank"] == {"0125": 600_000, "9900": 0}

    def test_friction_rates_are_median_count_over_median_denominator(self, out: Path) -> None:
        kouza = json.loads((out / "summary.json").read_text(encoding="utf-8"))["profiles"]["kouza"]
        step_up = {
            spread: kouza[spread]["friction"]["per_user"]["step_up"]
            for spread in ("median", "min", "max")
        }
        assert step_up["median"] == {"users": 12, "of": 110, "rate": round(12 / 110, 6)}
        assert (step_up["min"]["rate"], step_up["max"]["rate"]) == (0.1, round(14 / 120, 6))
        # time to money: one seed had no delayed top-up, so its median is left out
        money = kouza["median"]["friction"]["time_to_money"]
        assert (money["delayed"], money["median_hours"]) == (1, 30.0)

    def test_ablation_rows(self, out: Path) -> None:
        rows = json.loads((out / "summary.json").read_text(encoding="utf-8"))["ablation"]
        assert [row["layer"] for row in rows] == ["device-keys", "linking-rules"]
        keys, rules = rows
        assert keys["description"] == LAYERS["device-keys"][0]
        assert keys["profile"] == "kouza-without-device-keys"
        # loss without the layer − loss with it, seed by seed: kouza lost ¥20,000 in 2020
        assert [keys["per_seed"][seed]["yen_saved"] for seed in ("2020", "2021")] == [
            -20_000,
            300_000,
        ]
        assert (
            keys["median"]["yen_saved"],
            keys["min"]["yen_saved"],
            keys["max"]["yen_saved"],
        ) == (140_000, -20_000, 300_000)
        assert keys["median"]["net_yen_saved"] == 70_000
        # friction caused = kouza's − the ablated profile's, paired by seed: 0 and 2 users
        caused = keys["per_seed"]["2021"]["friction_caused"]
        assert (caused["per_user"]["step_up"], caused["per_event"]["step_up"]) == (2, 4)
        assert keys["median"]["friction_caused"]["per_user"]["step_up"] == 1
        assert keys["median"]["honest_active_users"] == 110
        assert [rules[spread]["yen_saved"] for spread in ("median", "min", "max")] == [
            15_000,
            0,
            30_000,
        ]
        assert rules["median"]["friction_caused"]["per_user"]["step_up"] == 12

    def test_html(self, out: Path) -> None:
        html = (out / "report.html").read_text(encoding="utf-8")
        assert "seeds 2020–2021 (median [min–max] of 2)" in html
        assert "honest population ×0.5, wallet share 0.015" in html
        assert (
            '<td class="num">¥762,500 <span class="range">[¥600,000–¥925,000]</span></td>' in html
        )
        assert '<td class="num">2.5 <span class="range">[2–3]</span></td>' in html
        # a bank no seed of kouza lost money at: ¥0, not "not measured"
        assert (
            '<tr><td>9900</td><td>ゆうちょ銀行</td><td class="num">¥150,000 <span '
            'class="range">[¥0–¥300,000]</span></td><td class="num">0.5 <span class="range">'
            '[0–1]</span></td><td class="num">¥0</td><td class="num">0</td>'
        ) in html
        ablation = html[html.index('id="ablation"') : html.index("<h2>Losses by bank")]
        assert f"<td>device-keys</td><td>{LAYERS['device-keys'][0]}</td>" in ablation
        assert (
            '<td class="num">¥140,000 <span class="range">[-¥20,000–¥300,000]</span></td>'
            in ablation
        )
        assert (
            '<td class="num">+1 <span class="range">[0–+2]</span> (+2 <span class="range">'
            "[0–+4]</span>)</td>"
        ) in ablation
        assert '<td class="num">0 (0)</td><td class="num">0</td>' in ablation  # blocks, locks
        sources = re.findall(r'src="(data:image/png;base64,[^"]*)"', html)
        assert len(sources) == len(CHARTS) + 1
        png = (out / "ablation.png").read_bytes()
        assert sources[-1] == "data:image/png;base64," + base64.b64encode(png).decode("ascii")
        assert _png_size(png)[0] > 600

    def test_targets_table(self) -> None:
        headers, rows = targets_rows(_seeded())
        assert headers[1:] == [
            "honest step-ups ≤ 2%",
            "reviews ≤ 0.50%",
            "false locks ≤ 0.05%",
            "link refusals ≤ 1%",
            "loss ≤ 0.5% of legacy-2019",
        ]
        kouza = next(row for row in rows if row[0] == "kouza")
        # 10 of 100 and 14 of 120 stepped up; 4 of 50 and 6 of 60 link refusals; ¥20,000 of
        # ¥925,000 lost on seed 2020, nothing of ¥600,000 on 2021
        assert kouza[1] == "12 / 110 (11.67% at worst) ✗"
        assert kouza[2] == "0 / 110 (0.00% at worst) ✓"
        assert kouza[4] == "5 / 55 (10.00% at worst) ✗"
        assert kouza[5] == "2.16% at worst ✗"
        legacy = next(row for row in rows if row[0] == "legacy-2019")
        assert legacy[5] == "—"

    def test_markdown_file(self, out: Path) -> None:
        text = (out / "comparison.md").read_text(encoding="utf-8")
        assert "## Against an operator's targets" in text
        assert text.startswith("docomo-2020 · seeds 2020–2021 (median [min–max] of 2) · ")
        assert "honest population ×0.5" in text.splitlines()[0]
        assert "## What each layer of kouza does" in text
        assert (
            f"| device-keys | {LAYERS['device-keys'][0]} | ¥140,000 [-¥20,000–¥300,000] | "
            "¥70,000 [-¥10,000–¥150,000] | +1 [0–+2] (+2 [0–+4]) |"
        ) in text

    def test_cli_tables(self) -> None:
        console = Console(record=True, width=180)
        for table in comparison_tables(_seeded(), width=180):
            console.print(table)
        table = ablation_table(_seeded())
        assert table is not None
        console.print(table)
        text = console.export_text()
        assert "…" not in text
        assert "¥762,500 [¥600,000–¥925,000]" in text
        assert "step-ups +1 [0–+2] (+2 [0–+4])" in text
        assert ablation_table(_result(_legacy())) is None
