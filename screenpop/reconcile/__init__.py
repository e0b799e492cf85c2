"""Reconciliation with Asterisk's own records (CEL) after AMI outages.

``reader`` reads the CEL table, ``services`` decides what the interaction
log must gain or correct, ``plugin`` runs it after every reconnect and on a
schedule."""
