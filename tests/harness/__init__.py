"""Fault-injection harness: throwaway Redis and PostgreSQL servers, a TCP fault proxy."""
