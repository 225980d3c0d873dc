"""Who is calling and what they may do: the principal, permission matching and `require`.

A leaf every domain may use (auth, the proxy, the admin routes, the dashboard): it imports only
core. Authentication itself lives in `app.auth`, which puts its `identify` function in the app's
state; `current_principal` and the proxy call that same function.
"""
