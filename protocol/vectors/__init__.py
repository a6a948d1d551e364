"""Golden vectors for protocol/SPEC.md Appendix B (records.json, invalid.json) and their generator."""
