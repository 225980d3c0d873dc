"""Audit log tests: one row per security event, tied to its request."""
