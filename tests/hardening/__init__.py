"""Hardening: faults, attacks, fuzzing and scale-out (docs/RELIABILITY.md names each test)."""
