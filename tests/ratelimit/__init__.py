"""Rate limiter tests: the Redis script, the HTTP limits, several processes."""
