"""The reports page: the regulator report (page, JSON, Markdown) and the simulator's reports
under the var dir (listed, Markdown rendered safely, files served; nothing outside)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from kouza.console.simreports import render_markdown, resolve
from kouza.controls.models import AuditEvent, OperatorRole
from kouza.runtime import Runtime
from tests.console.support import Staff, make_staff, sign_in

PNG = b"\\x89PNG\\r\\n\\x1a\\n" + b"\\x00" * 32
MARKDOWN = """# Comparison

| profile | stopped |
|---|---|
| kouza | 12 |

<script>alert("x")</script>

[click](javascript:alert(1))
"""


@pytest.fixture
def analyst(rt: Runtime) -> Staff:
    return make_staff(rt, "aiko", OperatorRole.ANALYST)


@pytest.fixture
def sim(rt: Runtime, tmp_path: Path) -> Path:
    """A simulator report folder under the var dir, and a secret outside any report."""
    root = Path(rt.settings.var_dir)
    folder = root / "simulation" / "seed-7"
    folder.mkdir(parents=True)
    (folder / "summary.json").write_text('{"worlds": 3}', encoding="utf-8")
    (folder / "comparison.md").write_text(MARKDOWN, encoding="utf-8")
    (folder / "stopped.png").write_bytes(PNG)
    (folder / "notes.txt").write_text("not served", encoding="utf-8")
    (root / "root.md").write_text("var dir's own file", encoding="utf-8")
    outside = tmp_path / "outside.md"
    outside.write_text("secret outside", encoding="utf-8")
    os.symlink(outside, folder / "link.md")
    return folder


class TestSimulatorReports:
    def test_listed_with_files_and_charts(
        self, client: TestClient, rt: Runtime, analyst: Staff, sim: Path
    ) -> None:
        sign_in(client, rt, analyst)
        page = client.get("/console/reports")
        assert page.status_code == 200
        text = page.text
        assert '<h3 id="sim-1" class="mono">simulation/seed-7</h3>' in text
        assert "comparison.md" in text and "summary.json" in text
        assert 'src="/console/reports/sim/file?path=simulation/seed-7/stopped.png"' in text
        assert "notes.txt" not in text and "link.md" not in text

    def test_markdown_rendered_without_raw_html_or_script_links(
        self, client: TestClient, rt: Runtime, analyst: Staff, sim: Path
    ) -> None:
        sign_in(client, rt, analyst)
        page = client.get("/console/reports/sim/view?path=simulation/seed-7/comparison.md")
        assert page.status_code == 200
        text = page.text
        assert "<h3>Comparison</h3>" in text
        assert "<th>profile</th>" in text and "<td>12</td>" in text
        assert "<script>alert" not in text and "&lt;script&gt;" in text
        assert 'href="javascript:' not in text

    def test_files_served_chart_inline_others_as_downloads(
        self, client: TestClient, rt: Runtime, analyst: Staff, sim: Path
    ) -> None:
        sign_in(client, rt, analyst)
        chart = client.get("/console/reports/sim/file?path=simulation/seed-7/stopped.png")
        assert (chart.status_code, chart.headers["content-type"], chart.content) == (
            200,
            "image/png",
            PNG,
        )
        assert chart.headers["content-disposition"] == 'inline; filename="stopped.png"'
        summary = client.get("/console/reports/sim/file?path=simulation/seed-7/summary.json")
        assert summary.json() == {"worlds": 3}
        assert summary.headers["content-disposition"].startswith("attachment;")
        assert summary.headers["x-content-type-options"] == "nosniff"

    @pytest.mark.parametrize(
        "path",
        [
            "../outside.md",
            "simulation/../../outside.md",
            "simulation/seed-7/../../../outside.md",
            "/etc/passwd",
            "root.md",
            "simulation/seed-7/link.md",
            "simulation/seed-7/notes.txt",
            "simulation/seed-7/missing.md",
            "simulation\\\\seed-7\\\\comparison.md",
            "",
        ],
    )
    def test_nothing_outside_a_report_folder(
        self, client: TestClient, rt: Runtime, analyst: Staff, sim: Path, path: str
    ) -> None:
        sign_in(client, rt, analyst)
        for url in ("/console/reports/sim/file", "/console/reports/sim/view"):
            answer = client.get(url, params={"path": path})
            assert answer.status_code == 404, (url, path)
            assert "secret outside" not in answer.text and "var dir" not in answer.text
        assert resolve(Path(rt.settings.var_dir), path) is None

    def test_the_database_and_secret_are_never_served(
        self, client: TestClient, rt: Runtime, analyst: Staff, sim: Path
    ) -> None:
        sign_in(client, rt, analyst)
        for name in (rt.settings.DATABASE_FILE, rt.settings.SECRET_FILE):
            assert client.get("/console/reports/sim/file", params={"path": name}).status_code == 404

    def test_markdown_headings_sit_below_the_page(self) -> None:
        assert render_markdown("# A\n## B") == "<h3>A</h3>\n<h4>B</h4>\n"


class TestRegulatorReport:
    def test_page_and_downloads(self, client: TestClient, rt: Runtime, analyst: Staff) -> None:
        sign_in(client, rt, analyst)
        page = client.get("/console/reports/regulator?from=2026-11-01&to=2026-11-30")
        assert page.status_code == 200
        assert "<h3>Unauthorised top-up report" in page.text
        assert "Period: 2026-11-01 to 2026-11-30" in page.text
        as_json = client.get("/console/reports/regulator?from=2026-11-01&to=2026-11-30&format=json")
        assert as_json.headers["content-disposition"] == (
            'attachment; filename="regulator-report-2026-11-01-2026-11-30.json"'
        )
        assert json.loads(as_json.text)["period_from"] == "2026-11-01"
        as_md = client.get("/console/reports/regulator?from=2026-11-01&to=2026-11-30&format=md")
        assert as_md.text.startswith("# Unauthorised top-up report")
        with rt.db.unit_of_work() as session:
            audits = session.scalars(
                select(AuditEvent).where(AuditEvent.action == "report.regulator")
            ).all()
        assert [a.actor for a in audits] == ["console:aiko"] * 3

    @pytest.mark.parametrize(
        ("query", "field", "message"),
        [
            ("from=2026-13-01&to=2026-11-30", "from", "Enter the date as YYYY-MM-DD."),
            ("from=2026-11-30&to=2026-11-01", "to", "--to is before --from"),
        ],
    )
    def test_bad_periods(
        self, client: TestClient, rt: Runtime, analyst: Staff, query: str, field: str, message: str
    ) -> None:
        sign_in(client, rt, analyst)
        page = client.get(f"/console/reports/regulator?{query}")
        assert page.status_code == 400
        assert f'<p class="error" id="f-{field}-error">{message}</p>' in page.text
