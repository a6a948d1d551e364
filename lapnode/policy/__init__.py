"""The single disclosure decision: may this record go to this recipient, now?

Every exit asks `decide` and nothing else: gossip to a subscriber, relaying, and every export added
later (DESIGN-NOTES 4). Local rules may only withhold more than the author's scope, never less.
"""

from lapnode.policy.decision import Decision, Recipient, decide

__all__ = ["Decision", "Recipient", "decide"]
