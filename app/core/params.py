"""Constraints shared by query parameters that reach the database."""

# PostgreSQL text cannot hold NUL: refuse it at the edge as a validation error.
NO_NUL = r"^[^\x00]*$"
