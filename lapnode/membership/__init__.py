"""Membership on the operator's side: the authority's home and tools, the node's credential, whom the
node trusts, and joining by invite (protocol/SPEC.md §8; docs/operator-guide.md §7).

The wire formats and their verification are in `protocol.credential` and `protocol.invite`; the keys and
signing domains in `keys.membership`. This package reads and writes the files and applies the rules.
"""
