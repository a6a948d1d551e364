"""How peers and node status look to an operator (`peer list`, `status`)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from lapnode.cli.common import one_line
from lapnode.clock import format_ms


def _when(ms: object) -> str:
    return format_ms(ms)[:19].replace("T", " ") if isinstance(ms, int) else "never"


def _peer_line(peer: Mapping[str, object]) -> str:
    flags = [
        "connected" if peer.get("connected") else "not connected",
        "subscribed" if peer.get("subscribed") else "not subscribed",
    ]
    if peer.get("blocked"):
        flags.append("BLOCKED")
    if peer.get("banned_until"):
        flags.append(f"refused until {_when(peer['banned_until'])}")
    name = one_line(str(peer.get("name") or "-"))
    details = [
        f"    address {one_line(str(peer.get('address')))}; last seen {_when(peer.get('last_seen'))}",
        f"    records received {peer.get('records_received', 0)}, sent {peer.get('records_sent', 0)}; "
        f"score {peer.get('score', 0)}",
    ]
    behind = peer.get("behind_our_feed")
    if isinstance(behind, int):
        details.append(f"    behind our feed by {behind} log positions")
    if peer.get("last_error"):
        details.append(f"    last error: {one_line(str(peer['last_error']))}")
    return f"  {name}  {peer.get('node_id')}  ({', '.join(flags)})\n" + "\n".join(details)


def peers_table(peers: Sequence[Mapping[str, object]]) -> str:
    if not peers:
        return "no peers; add one with `lapnode peer add NODE_ID HOST:PORT`"
    return "\n".join(_peer_line(peer) for peer in peers)


def _membership_line(membership: Mapping[str, object]) -> str:
    if membership.get("mode") != "strict":
        return "membership: legacy mode (no trusted authority; peers are admitted as added by hand)"
    if not membership.get("installed"):
        return "membership: strict; no credential installed"
    if membership.get("problem"):
        return f"membership: strict; credential unusable: {one_line(str(membership['problem']))}"
    return (
        f"membership: strict; credential for {one_line(str(membership.get('org')))} "
        f"({membership.get('category')}, {membership.get('jurisdiction')}) "
        f"until {_when(membership.get('not_after'))}"
    )


def status_text(report: Mapping[str, object]) -> str:
    lines = [
        f"node {report.get('node_id')} on network {report.get('network')}",
        f"daemon: {report.get('daemon')}; log head: {report.get('log_head')}",
    ]
    alarms = report.get("alarms") or []
    assert isinstance(alarms, list)
    membership = report.get("membership")
    if isinstance(membership, Mapping):
        lines.append(_membership_line(membership))
    for alarm in alarms:
        if "author" in alarm:
            lines.append(
                f"ALARM {alarm['kind']}: author {alarm['author']} frozen since {_when(alarm['since'])} "
                f"({one_line(str(alarm['reason']))}); an operator must act"
            )
        else:
            lines.append(f"ALARM {alarm['kind']}: {one_line(str(alarm['reason']))}")
    peers = report.get("peers") or []
    assert isinstance(peers, list)
    lines.append("peers:")
    lines.append(peers_table(peers))
    return "\n".join(lines)
