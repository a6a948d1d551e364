"""Standard formats: STIX 2.1, TAXII 2.1, MISP feeds, X-ARF, ARF and CSV, in and out.

Rule 1: every record that leaves through an export or the TAXII server passes `disclosure.decide_rows`,
which asks the single policy decision function (lapnode.policy.decide, through lapnode.exits) and nothing
else decides; each decision is recorded in the audit trail before the output is written or served.
Rule 2: imports never publish. They make drafts (lapnode.store.drafts), unsigned and local, which the
operator reviews and publishes with `lapnode publish lead --from-draft ID`.
"""
