"""WebSocket passthrough: upgrades under a service prefix, relayed to the downstream, closed
when the caller's session ends (CONTRACT.md §5, WebSockets).

- `relay.py`: one socket from the upgrade to its last close (the handler);
- `upgrade.py`: who is calling and may they (before any downstream connection);
- `downstream.py`: the connection to the service (breaker, credentials, headers);
- `pump.py`: frames both ways; `refusal.py`: HTTP answers at the upgrade;
- `hub.py`: this process's open sockets by session, re-checked on session invalidations;
- `quota.py`: the per-user cap on open sockets, in Redis (shared by every instance);
- `metrics.py`: open sockets, messages, closes.
"""
