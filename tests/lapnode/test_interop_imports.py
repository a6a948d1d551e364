"""ARF, X-ARF and CSV in; X-ARF and CSV out, each checked against its reference where one exists."""

from __future__ import annotations

import copy
import json

import pytest
import xarf
from hypothesis import given, settings
from hypothesis import strategies as st

from lapnode.errors import InputError
from lapnode.interop import csv_io
from lapnode.interop.arf import parse_arf
from lapnode.interop.xarf_io import parse_xarf, report_for
from tests.factories import NETWORK, T0
from tests.lapnode.interop_corpus import AUTHOR, LOCAL, build, disclose, row_of

# RFC 5965 Appendix B.2 (the "complete example"), as published.
ARF_SAMPLE = b"""\
From: <abusedesk@example.com>
Date: Thu, 8 Mar 2005 17:40:36 EDT
Subject: FW: Earn money
To: <abuse@example.net>
MIME-Version: 1.0
Content-Type: multipart/report; report-type=feedback-report;
     boundary="part1_13d.2e68ed54_boundary"

--part1_13d.2e68ed54_boundary
Content-Type: text/plain; charset="US-ASCII"
Content-Transfer-Encoding: 7bit

This is an email abuse report for an email message received from IP
192.0.2.1 on Thu, 8 Mar 2005 14:00:00 EDT.  For more information
about this format please see http://www.mipassoc.org/arf/.

--part1_13d.2e68ed54_boundary
Content-Type: message/feedback-report

Feedback-Type: abuse
User-Agent: SomeGenerator/1.0
Version: 1
Original-Mail-From: <somespammer@example.net>
Original-Rcpt-To: <user@example.com>
Arrival-Date: Thu, 8 Mar 2005 14:00:00 EDT
Reporting-MTA: dns; mail.example.com
Source-IP: 192.0.2.1
Authentication-Results: mail.example.com;
               spf=fail smtp.mail=somespammer@example.com
Reported-Domain: example.net
Reported-Uri: http://example.net/earn_money.html
Reported-Uri: mailto:user@example.com
Removal-Recipient: user@example.com

--part1_13d.2e68ed54_boundary
Content-Type: message/rfc822
Content-Disposition: inline

From: <somespammer@example.net>
Received: from mailserver.example.net (mailserver.example.net
        [192.0.2.1]) by example.com with ESMTP id M63d4137594e46;
        Thu, 08 Mar 2005 14:00:00 -0400
To: <Undisclosed Recipients>
Subject: Earn money
MIME-Version: 1.0
Content-type: text/plain
Message-ID: 8787KJKJ3K4J3K4J3K4J3.mail@example.net
Date: Thu, 02 Sep 2004 12:31:03 -0500

Spam Spam Spam
Spam Spam Spam
Spam Spam Spam
Spam Spam Spam
--part1_13d.2e68ed54_boundary--
"""

# The messaging/spam example of the X-ARF v4 schema, as shipped with the xarf library.
XARF_SAMPLE: dict[str, object] = {
    "xarf_version": "4.2.0",
    "report_id": "123e4567-e89b-12d3-a456-426614174000",
    "timestamp": "2024-01-15T14:30:25Z",
    "reporter": {
        "org": "Spam Reporting Service",
        "contact": "reports@spam-reports.example",
        "domain": "spam-reports.example",
    },
    "sender": {
        "org": "Spam Reporting Service",
        "contact": "reports@spam-reports.example",
        "domain": "spam-reports.example",
    },
    "source_identifier": "192.0.2.123",
    "source_port": 25,
    "category": "messaging",
    "type": "spam",
    "protocol": "smtp",
    "smtp_from": "fake@example.com",
    "subject": "Urgent: Verify Your Account",
    "evidence_source": "spamtrap",
    "evidence": [
        {
            "content_type": "message/rfc822",
            "description": "Complete spam email with headers",
            "payload": "UmVjZWl2ZWQ6IGZyb20=",
        }
    ],
    "spam_indicators": {"suspicious_links": ["http://phish.example/login"]},
    "tags": ["spam:commercial", "campaign:fake_bank_2024"],
    "confidence": 0.92,
}


def _subjects(document: dict[str, object]) -> set[tuple[str, str]]:
    subjects = document["subjects"]
    assert isinstance(subjects, list)
    return {(s["type"], s["value"]) for s in subjects}


def test_arf_sample_becomes_a_draft_lead_with_every_reported_field() -> None:
    document = parse_arf(ARF_SAMPLE, source="sample.eml")
    assert _subjects(document) == {
        ("ip", "192.0.2.1"),
        ("domain", "example.net"),
        ("url", "http://example.net/earn_money.html"),
        ("email", "user@example.com"),
        ("email", "somespammer@example.net"),
    }
    assert document["first_seen"] == document["last_seen"] == "2005-03-08T18:00:00Z"
    assert document["violation_types"] == ["unsolicited-email"]
    evidence = document["evidence"]
    assert isinstance(evidence, list) and evidence[0]["digest"].startswith("sha256:")
    assert "SomeGenerator/1.0" in str(document["summary"])


@pytest.mark.parametrize(
    ("mangle", "message"),
    [
        (
            lambda d: d.replace(b"report-type=feedback-report", b"report-type=delivery-status"),
            "not report-type=feedback-report",
        ),
        (lambda d: d.replace(b"Feedback-Type: abuse\n", b""), "no Feedback-Type field"),
        (lambda d: d.replace(b"Version: 1\n", b""), "no Version field"),
        (
            lambda d: d.replace(b"Arrival-Date: Thu, 8 Mar 2005 14:00:00 EDT", b"Arrival-Date: yesterday"),
            "Arrival-Date",
        ),
        (lambda d: b"Subject: hello\n\nnot a report\n", "is not an ARF report"),
        (lambda d: d.replace(b"Feedback-Type: abuse", b"Feedback-Type: not-spam"), "not-spam"),
    ],
)
def test_a_malformed_arf_report_gets_a_clear_error(mangle: object, message: str) -> None:
    with pytest.raises(InputError, match=message):
        parse_arf(mangle(ARF_SAMPLE), source="bad.eml")  # type: ignore[operator]


def test_xarf_sample_imports_and_xarf_parse_accepts_it() -> None:
    assert xarf.parse(XARF_SAMPLE).errors == []
    document = parse_xarf(json.dumps(XARF_SAMPLE), source="spam.json")
    assert _subjects(document) == {
        ("ip", "192.0.2.123"),
        ("email", "fake@example.com"),
        ("url", "http://phish.example/login"),
    }
    assert document["first_seen"] == "2024-01-15T14:30:25Z"


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"category": "connection", "type": "ddos"}, "not a valid X-ARF|not messaging/spam"),
        ({"reporter": None}, "not a valid X-ARF v4 report"),
        ({"smtp_from": "not an address"}, "not a valid X-ARF v4 report"),
    ],
)
def test_an_invalid_xarf_report_is_refused(change: dict[str, object], message: str) -> None:
    report = copy.deepcopy(XARF_SAMPLE) | change
    with pytest.raises(InputError, match=message):
        parse_xarf(json.dumps(report), source="bad.json")


def test_a_lead_exports_as_xarf_that_xarf_parse_accepts() -> None:
    corpus = build()
    [item] = disclose(
        [row_of(corpus.referral, 1)],
        LOCAL,
        now_ms=T0,
        our_key=AUTHOR.public_key.raw,
        network=NETWORK,
    )
    report = report_for(item.record, org="OPTA", contact="abuse@opta.example")
    result = xarf.parse(json.loads(json.dumps(report)))
    assert result.errors == [] and result.report is not None
    assert report["source_identifier"] == "198.51.100.7"
    assert report["smtp_from"] == "sales@pharma-spam.example"
    assert "tlp:amber" in report["tags"]  # type: ignore[operator]
    # Round trip: our own report imports as a draft naming the same source and sender.
    assert {("ip", "198.51.100.7"), ("email", "sales@pharma-spam.example")} <= _subjects(
        parse_xarf(json.dumps(report), source="x")
    )


def test_csv_import_lists_every_bad_row_and_imports_nothing() -> None:
    text = "type,value\ndomain,good.example\nip,300.1.1.1\n,example.org\nemail,not-an-address\n"
    with pytest.raises(InputError) as caught:
        csv_io.import_csv(text, title="t", summary=None, source="bad.csv")
    message = str(caught.value)
    assert "3 bad rows" in message or "2 bad rows" in message
    assert "line 3" in message and "line 5" in message and "line 2" not in message


def test_csv_export_imports_back_as_the_same_indicators() -> None:
    corpus = build()
    disclosed = disclose(
        [row_of(corpus.referral, 1), row_of(corpus.contact, 2)],
        LOCAL,
        now_ms=T0,
        our_key=AUTHOR.public_key.raw,
        network=NETWORK,
    )
    text = csv_io.export_csv(disclosed)
    assert text.splitlines()[0] == ",".join(csv_io.COLUMNS)
    document = csv_io.import_csv(text, title="Round trip", summary=None, source="out.csv")
    expected = {(s.type, s.value) for s in corpus.referral.body.subjects or ()}  # type: ignore[union-attr]
    assert expected | {("email", "spam@opta.example")} == _subjects(document)


@settings(max_examples=60, deadline=None)
@given(cut=st.integers(min_value=0, max_value=len(ARF_SAMPLE)), noise=st.binary(max_size=40))
def test_truncated_or_garbled_arf_is_refused_or_read_never_a_crash(cut: int, noise: bytes) -> None:
    for data in (ARF_SAMPLE[:cut], ARF_SAMPLE[:cut] + noise + ARF_SAMPLE[cut:]):
        try:
            document = parse_arf(data, source="fuzz.eml")
        except InputError:
            continue
        assert str(document["title"]).startswith("ARF ") and document["status"] == "suspected"


@settings(max_examples=60, deadline=None)
@given(text=st.text(max_size=200))
def test_garbage_xarf_and_csv_are_refused_with_one_line(text: str) -> None:
    for parse in (
        lambda: parse_xarf(text, source="fuzz.json"),
        lambda: csv_io.import_csv(text, title="t", summary=None, source="fuzz.csv"),
    ):
        try:
            parse()
        except InputError as exc:
            assert str(exc)
