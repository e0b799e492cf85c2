"""Security pieces that are not login: integration tokens kept in the
database, the audit log, and the PII masking rules (see docs/security.md)."""
