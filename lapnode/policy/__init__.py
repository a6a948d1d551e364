"""The single disclosure decision, its inbound twin, and the operator's local rules.

Every exit asks `decide` and nothing else: gossip to a subscriber, relaying, the `--as` views, bundle
export and every export added later (DESIGN-NOTES 4); every entry asks `decide_inbound`. Local rules
(policy.toml, `load_policy`) may only withhold more than the author's scope, never less.
"""

from lapnode.home import POLICY_NAME
from lapnode.policy.decision import (
    CLOCK_SKEW_MS,
    PUBLIC,
    Decision,
    InboundDecision,
    Via,
    decide,
    decide_inbound,
)
from lapnode.policy.disclose import Draft, disclosed_record, disclosed_wire
from lapnode.policy.loader import PolicyError, load_policy, parse_policy
from lapnode.policy.rules import NO_RULES, Disclosable, Policy, Recipient, Rule

__all__ = [
    "CLOCK_SKEW_MS",
    "NO_RULES",
    "POLICY_NAME",
    "PUBLIC",
    "Decision",
    "Disclosable",
    "Draft",
    "InboundDecision",
    "Policy",
    "PolicyError",
    "Recipient",
    "Rule",
    "Via",
    "decide",
    "decide_inbound",
    "disclosed_record",
    "disclosed_wire",
    "load_policy",
    "parse_policy",
]
