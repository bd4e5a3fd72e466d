"""A cycle where one account was refused tells the seller which, once (not twice when the
whole cycle failed: that alert already names the cause)."""

from __future__ import annotations

from ecsync.alerts import ACCOUNT_FAILED, CYCLE_FAILED, cycle_alerts

REFUSED = "BASE account 'base-2': the token endpoint refused the credentials"


def test_a_refused_account_in_a_partial_cycle_alerts() -> None:
    alerts = cycle_alerts(
        {"cycle_id": 7, "status": "partial", "account_errors": {"base-2": REFUSED}}
    )
    assert [a.kind for a in alerts] == [ACCOUNT_FAILED]
    assert "base-2" in alerts[0].title
    assert REFUSED in alerts[0].body and "stay planned" in alerts[0].body


def test_a_failed_cycle_alerts_once() -> None:
    alerts = cycle_alerts(
        {"cycle_id": 8, "status": "failed", "error": REFUSED, "account_errors": {"base-1": REFUSED}}
    )
    assert [a.kind for a in alerts] == [CYCLE_FAILED]


def test_a_clean_cycle_does_not_alert() -> None:
    assert cycle_alerts({"cycle_id": 9, "status": "ok"}) == []
