"""infra.report without a stack: --since, output formats, and the readable tail of a csvlog file."""

from datetime import UTC, datetime, timedelta

import pytest

from infra import report

NOW = datetime(2026, 12, 5, 12, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("30m", NOW - timedelta(minutes=30)),
        ("6h", NOW - timedelta(hours=6)),
        ("2d", NOW - timedelta(days=2)),
        ("2026-12-05T10:00:00", datetime(2026, 12, 5, 10, tzinfo=UTC)),
        ("2026-12-05T11:00:00+01:00", datetime(2026, 12, 5, 10, tzinfo=UTC)),
    ],
)
def test_since_is_a_utc_moment(text, expected):
    assert report.parse_since(text, now=NOW) == expected


@pytest.mark.parametrize(("name", "fmt"), [("r.html", "html"), ("r.JSON", "json")])
def test_output_format_follows_the_extension(tmp_path, name, fmt):
    assert report.output_format(tmp_path / name) == fmt


def test_tail_reads_the_newest_csv_file(tmp_path):
    row = (
        '2026-12-05 12:00:00.123 UTC,"app","afs_db",42,"127.0.0.1:5000",abc.1,1,"SELECT",'
        '2026-12-05 11:59:00 UTC,3/1,0,LOG,00000,"duration: 250.1 ms  statement: SELECT 1",'
        '"a ""quoted""\ndetail",,,,,,,,,"client backend",,0\n'
    )
    (tmp_path / "postgresql-Sat-1200.csv").write_text(row)
    (tmp_path / "postgresql-Sat-1100.log").write_text("stderr only\n")
    text = report.tail(tmp_path, 5)
    assert (
        text.splitlines()[1]
        == (
            '2026-12-05 12:00:00.123 UTC LOG: app@afs_db duration: 250.1 ms  statement: SELECT 1 (a "quoted"\ndetail)'
        ).splitlines()[0]
    )
    assert report.log_files(tmp_path) == [tmp_path / "postgresql-Sat-1200.csv"]


def test_no_files_is_said(tmp_path):
    assert "no PostgreSQL log files" in report.tail(tmp_path / "missing", 5)
    with pytest.raises(report.ReportError, match="no PostgreSQL logs in"):
        report.build(tmp_path, tmp_path / "r.html")
