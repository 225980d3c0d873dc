"""The planted bugs: each a security check of app/ broken on purpose, and the tests that must
notice. `find` must occur exactly once in `file`; `tests` are pytest ids run from the repo root.
`equivalent`, when set, says why the mutant cannot change behaviour (it is then not run)."""

from __future__ import annotations

from typing import NamedTuple


class Mutant(NamedTuple):
    id: str
    file: str
    find: str
    replace: str
    tests: tuple[str, ...]
    why: str
    equivalent: str | None = None


HEADERS = "app/proxy/headers.py"
PATHGUARD = "app/proxy/pathguard.py"
NETWORK = "app/core/network.py"
SPOOF = "tests/proxy/test_spoofed_headers.py"
UNITS = "tests/proxy/test_units.py"
PATHGUARD_T = "tests/proxy/test_pathguard.py"
NET_T = "tests/core/test_network.py"
STATED = "tests/proxy/test_outbound_statements.py"
# The unit tests of pathguard first: with -x, a killed mutant stops before the live ones.
PATHS = (
    f"{PATHGUARD_T}::test_refused_tails",
    f"{PATHGUARD_T}::test_accepted_tails",
    f"{PATHGUARD_T}::test_an_encoded_slash_is_a_segment_separator",
    f"{PATHGUARD_T}::test_encoded_separators_do_not_bypass_the_checks",
    f"{PATHGUARD_T}::test_split_tail_refuses_an_encoded_prefix",
    f"{PATHGUARD_T}::test_no_accepted_tail_has_a_dot_segment_after_any_decoding",
    f"{PATHGUARD_T}::test_built_url_keeps_scheme_host_and_port",
    f"{PATHGUARD_T}::test_path_attacks_are_invalid_path_and_never_sent",
    f"{PATHGUARD_T}::test_ordinary_paths_still_pass",
)

PROXY = (
    Mutant(
        "headers-authorization-kept",
        HEADERS,
        '        b"authorization",\n        b"cookie",\n',
        '        b"cookie",\n',
        (
            f"{UNITS}::test_outbound_rules",
            f"{SPOOF}::test_no_spelling_of_a_spoofable_header_is_forwarded",
        ),
        "the client's Authorization reaches the downstream",
    ),
    Mutant(
        "headers-x-user-prefix-kept",
        HEADERS,
        'OUTBOUND_DROP_PREFIXES = (b"x-user-", b"x-forwarded-")',
        'OUTBOUND_DROP_PREFIXES = (b"x-forwarded-",)',
        (f"{SPOOF}::test_no_spelling_of_a_spoofable_header_is_forwarded",),
        "a client's X-User-* headers reach the downstream",
    ),
    Mutant(
        "headers-underscore-not-folded",
        HEADERS,
        'if 0x5F in name and _dropped_outbound(name.replace(b"_", b"-")):',
        "if 0x5F in name and _dropped_outbound(name):",
        (SPOOF,),
        "`X_User_Id` is not read as `X-User-Id` (no `_`/`-` folding)",
    ),
    Mutant(
        "headers-connection-token-not-folded",
        HEADERS,
        '        if _UNDERSCORE in name:\n            name = name.replace(b"_", b"-")\n',
        "",
        (f"{SPOOF}::test_connection_named_headers_are_dropped_in_either_spelling",),
        "a Connection-named `X_Drop_Me` is not folded, its `x-drop-me` travels on",
    ),
    Mutant(
        "headers-connection-named-kept",
        HEADERS,
        "    if named:  # usually None",
        "    if named and False:  # usually None",
        (f"{UNITS}::test_outbound_rules",),
        "headers the client's Connection names as hop-by-hop are forwarded",
    ),
    Mutant(
        "headers-x-original-uri-kept",
        HEADERS,
        '        b"x-original-uri",\n',
        "",
        (SPOOF, STATED),
        "X-Original-URI (a URL override) reaches the downstream",
    ),
    Mutant(
        "headers-content-length-not-checked",
        HEADERS,
        "if not length.strip().isdigit():",
        "if not length.strip().lstrip(b'+-').isdigit():",
        (UNITS, SPOOF, STATED),
        "a signed Content-Length (`-1`, `+5`) is believed",
    ),
    Mutant(
        "headers-set-cookie-kept",
        HEADERS,
        '        b"set-cookie",\n        b"set-cookie2",\n',
        '        b"set-cookie2",\n',
        (f"{UNITS}::test_inbound_rules",),
        "a downstream's Set-Cookie reaches the browser",
    ),
    Mutant(
        "headers-www-authenticate-kept",
        HEADERS,
        '        b"www-authenticate",  # a Basic',
        "        # a Basic",
        (f"{UNITS}::test_inbound_rules",),
        "a downstream's WWW-Authenticate (Basic prompt) reaches the browser",
    ),
    Mutant(
        "headers-cors-prefix-kept",
        HEADERS,
        "if name in INBOUND_DROP or name.startswith(INBOUND_DROP_PREFIX):",
        "if name in INBOUND_DROP:",
        (f"{SPOOF}::test_downstream_cors_and_security_headers_are_dropped",),
        "a downstream's Access-Control-* headers reach the browser",
    ),
    Mutant(
        "headers-csp-kept",
        HEADERS,
        '        b"content-security-policy",\n',
        "",
        (f"{SPOOF}::test_downstream_cors_and_security_headers_are_dropped",),
        "a downstream's Content-Security-Policy replaces Studio's",
    ),
    Mutant(
        "headers-location-prefix-boundary",
        HEADERS,
        'if not rest or rest[:1] in (b"/", b"?", b"#"):',
        "if True:",
        (f"{UNITS}::test_inbound_rules",),
        "`/basement` is rewritten as if it were under the base path `/base`",
    ),
    Mutant(
        "headers-forwarded-for-is-peer",
        HEADERS,
        'client_ip: str = state.get("client_ip") or (scope.get("client") or ("unknown",))[0]',
        'client_ip: str = (scope.get("client") or ("unknown",))[0]',
        (
            "tests/ratelimit/test_http_limits.py::test_forwarded_for_honoured_from_trusted_proxy",
            "tests/proxy/test_forwarding.py::test_downstream_sees_studio_headers_only",
            f"{STATED}::test_forwarded_for_is_the_client_the_middleware_found_not_the_peer",
        ),
        "X-Forwarded-For states the TCP peer (the proxy), not the client the middleware found",
    ),
    Mutant(
        "pathguard-double-slash-accepted",
        PATHGUARD,
        "    if tail[0] == 0x2F:",
        "    if tail[0] == 0x2F and False:",
        PATHS,
        "a tail starting with `/` (`//` after the service) is accepted",
    ),
    Mutant(
        "pathguard-encoded-slash-passes-through",
        PATHGUARD,
        'tail = tail.replace(b"%2F", b"/").replace(b"%2f", b"/")',
        "tail = tail",
        PATHS,
        "an encoded `/` is neither a separator nor refused: Studio matches `a%2Fb`, the "
        "downstream may read `a/b`",
    ),
    Mutant(
        "pathguard-lower-case-slash-kept",
        PATHGUARD,
        '.replace(b"%2f", b"/")',
        "",
        PATHS,
        "`%2f` (lower case) is not read as a separator: one path, two spellings",
    ),
    Mutant(
        "pathguard-encoded-backslash",
        PATHGUARD,
        '        if b"\\\\" in decoded:\n',
        "        if False:\n",
        PATHS,
        "an encoded backslash `%5c` is accepted",
    ),
    Mutant(
        "pathguard-double-encoding",
        PATHGUARD,
        'if b"%" in decoded and _ESCAPE.search(decoded):',
        'if b"%25" in decoded and _ESCAPE.search(decoded):',
        PATHS,
        "double encoding (`%252e`) is accepted",
    ),
    Mutant(
        "pathguard-dot-segment-params",
        PATHGUARD,
        'if segment.split(b";", 1)[0] in _DOT_SEGMENTS:',
        "if segment in _DOT_SEGMENTS:",
        PATHS,
        "`..;x` (Tomcat's `..`) passes",
    ),
    Mutant(
        "pathguard-dots-checked-raw",
        PATHGUARD,
        'for segment in decoded.split(b"/"):',
        'for segment in tail.split(b"/"):',
        (*PATHS, "tests/proxy/test_path_normal_form.py"),
        "dot segments are looked for before decoding (`%2e%2e` passes)",
    ),
    Mutant(
        "pathguard-raw-backslash",
        PATHGUARD,
        'if b not in b"\\\\#?")',
        'if b not in b"#?")',
        PATHS,
        "a raw backslash is accepted in a tail",
    ),
    Mutant(
        "pathguard-escapes-not-upper-cased",
        PATHGUARD,
        "else match[0].upper()",
        "else match[0]",
        ("tests/proxy/test_path_normal_form.py",),
        "`%2f`-style escapes keep their case: one path, two spellings",
    ),
    Mutant(
        "pathguard-malformed-escape",
        PATHGUARD,
        '_MALFORMED_ESCAPE = re.compile(rb"%(?![0-9A-Fa-f]{2})")',
        '_MALFORMED_ESCAPE = re.compile(rb"%(?![0-9A-Fa-f])")',
        PATHS,
        "`%4` followed by a non-hex byte is not a malformed escape (off by one)",
    ),
    Mutant(
        "pathguard-encoded-prefix",
        PATHGUARD,
        "    if not raw_path.startswith(raw_prefix):\n",
        "    if False:\n",
        PATHS,
        "an encoded service prefix is not refused",
    ),
    Mutant(
        "pathguard-encoded-controls",
        PATHGUARD,
        "_DECODED_ALLOWED = bytes(range(0x20, 0x7F))",
        "_DECODED_ALLOWED = bytes(range(0x00, 0x7F))",
        PATHS,
        "encoded control characters (`%00`, `%0a`) are accepted",
    ),
    Mutant(
        "routing-placeholder-matches-empty",
        "app/proxy/routing.py",
        '        return segment != b""',
        "        return True",
        ("tests/proxy/test_forwarding.py", UNITS),
        "an empty segment fills a `{param}` (`/users//orders` matches `/users/{id}/orders`)",
    ),
    Mutant(
        "uploads-slot-not-released",
        "app/proxy/state.py",
        "active = self._active.get(user, 0) - 1",
        "active = self._active.get(user, 0)",
        ("tests/proxy/test_stalled_uploads.py::test_uploads_per_user_are_capped",),
        "a finished upload never gives its per-user slot back",
    ),
    Mutant(
        "uploads-cap-off-by-one",
        "app/proxy/state.py",
        "if active >= self.limit:",
        "if active > self.limit:",
        ("tests/proxy/test_stalled_uploads.py::test_uploads_per_user_are_capped",),
        "one upload more than PROXY_MAX_UPLOADS_PER_USER is let through",
    ),
)

NETWORK_MUTANTS = (
    Mutant(
        "network-garbage-hop-skipped",
        NETWORK,
        "            break  # garbage: stop believing the chain here",
        "            continue",
        (NET_T,),
        "a garbage X-Forwarded-For hop is skipped instead of ending the walk",
    ),
    Mutant(
        "network-leftmost-hop",
        NETWORK,
        "for hop in reversed(hops):",
        "for hop in hops:",
        (NET_T,),
        "the leftmost (client-written) X-Forwarded-For hop is believed",
    ),
    Mutant(
        "network-untrusted-peer-believed",
        NETWORK,
        "if peer_addr is None or not _trusted(peer_addr, trusted):",
        "if peer_addr is None:",
        (NET_T,),
        "X-Forwarded-For is believed from any peer",
    ),
    Mutant(
        "network-peer-trust-not-checked",
        NETWORK,
        "return addr is not None and _trusted(addr, trusted)",
        "return addr is not None",
        (NET_T, "tests/gateway/test_forwarded_origin.py"),
        "any peer counts as a trusted proxy (forwarded origin, HSTS, /metrics)",
    ),
    Mutant(
        "network-forwarded-port-unbounded",
        NETWORK,
        "if match is None or (match[1] is not None and int(match[1]) > 65535):",
        "if match is None:",
        ("tests/gateway/test_forwarded_origin.py::test_trusted_proxy_headers_are_validated",),
        "X-Forwarded-Host with a port above 65535 is passed downstream",
    ),
    Mutant(
        "network-forwarded-scheme-unchecked",
        NETWORK,
        "if scheme is not None and scheme not in _SCHEMES:",
        "if scheme is not None and not scheme:",
        ("tests/gateway/test_forwarded_origin.py::test_trusted_proxy_headers_are_validated",),
        "X-Forwarded-Proto `javascript` is passed downstream",
    ),
    Mutant(
        "network-forwarded-first-value",
        NETWORK,
        'return value.rsplit(b",", 1)[-1].strip().lower()',
        'return value.split(b",", 1)[0].strip().lower()',
        ("tests/gateway/test_forwarded_origin.py::test_trusted_proxy_headers_are_validated",),
        "the leftmost (client-written) X-Forwarded-Host/-Proto value is believed",
    ),
)

RATELIMIT = (
    Mutant(
        "ratelimit-ipv6-prefix-ignored",
        "app/ratelimit/keys.py",
        "network = ipaddress.IPv6Address(int(addr) >> host_bits << host_bits)",
        "network = ipaddress.IPv6Address(int(addr))",
        ("tests/ratelimit/test_ip_keys.py",),
        "each IPv6 address gets its own bucket (the /64 prefix is ignored)",
    ),
    Mutant(
        "ratelimit-mapped-ipv4-separate",
        "app/ratelimit/keys.py",
        "    if addr.ipv4_mapped is not None:\n        return str(addr.ipv4_mapped)\n",
        "",
        ("tests/ratelimit/test_ip_keys.py",),
        "`::ffff:a.b.c.d` is a bucket apart from `a.b.c.d`",
    ),
    Mutant(
        "ratelimit-garbage-key-unbounded",
        "app/ratelimit/keys.py",
        'return "?" + hashlib.sha256(address.encode("utf-8", "replace")).hexdigest()[:32]',
        "return address",
        ("tests/ratelimit/test_ip_keys.py",),
        "an unparseable client address is its own key, unbounded",
    ),
    Mutant(
        "ratelimit-prefix-setting-ignored",
        "app/ratelimit/dependencies.py",
        "keys.client_key(request.state.client_ip, request.state.settings.rate_limit_ipv6_prefix)",
        "keys.client_key(request.state.client_ip, 128)",
        ("tests/ratelimit/test_ip_keys.py",),
        "RATE_LIMIT_IPV6_PREFIX is ignored by the HTTP limits",
    ),
    Mutant(
        "ratelimit-earlier-bucket-not-released",
        "app/ratelimit/dependencies.py",
        "                await limiter.release(b, k, taken.member)\n",
        "                pass\n",
        ("tests/ratelimit/test_enforce_release.py",),
        "a refused request keeps the slots earlier buckets gave it",
    ),
    Mutant(
        "ratelimit-lua-off-by-one",
        "app/ratelimit/service.py",
        "if count < limit then",
        "if count <= limit then",
        ("tests/ratelimit/test_limiter.py",),
        "the limit lets one request more through",
    ),
    Mutant(
        "ratelimit-fails-open",
        "app/ratelimit/service.py",
        (
            "        except RedisError as exc:\n"
            '            raise DependencyUnavailable("Rate limiter is unavailable") from exc\n'
            "        return Decision("
        ),
        (
            "        except RedisError:\n"
            "            return Decision(True, limit, limit, 0)\n"
            "        return Decision("
        ),
        ("tests/ratelimit/test_limiter.py",),
        "a Redis failure admits the request (fail open)",
    ),
    Mutant(
        "ratelimit-no-expiry",
        "app/ratelimit/service.py",
        "redis.call('PEXPIRE', KEYS[1], window)",
        "",
        ("tests/ratelimit/test_limiter.py",),
        "window keys never expire in Redis",
    ),
    Mutant(
        "ratelimit-strictest-refusal",
        "app/ratelimit/service.py",
        "return max(refused, key=lambda d: d.reset_seconds)",
        "return min(refused, key=lambda d: d.reset_seconds)",
        ("tests/ratelimit/test_strictest.py", "tests/ratelimit/test_limiter.py"),
        "of several refusals, the one with the shortest Retry-After is reported",
    ),
)

RBAC = (
    Mutant(
        "permissions-any-area-star",
        "app/identity/permissions.py",
        'p == f"{area}:*"',
        'p.endswith(":*")',
        ("tests/rbac/test_permissions.py",),
        "`area:*` grants every area",
    ),
    Mutant(
        "permissions-area-prefix",
        "app/identity/permissions.py",
        'p == f"{area}:*"',
        'p.endswith(":*") and area.startswith(p[:-2])',
        ("tests/rbac/test_permissions.py",),
        "`zen:*` grants `zenx:read` (area compared as a prefix)",
    ),
    Mutant(
        "permissions-star-ignored",
        "app/identity/permissions.py",
        'p in ("*", required)',
        "p == required",
        ("tests/rbac/test_permissions.py",),
        "`*` no longer grants everything",
    ),
    Mutant(
        "authorize-removed",
        "app/identity/dependencies.py",
        "    if not principal.can(permission):\n        raise Forbidden",
        "    if not principal.user_id:\n        raise Forbidden",
        (
            "tests/rbac/test_admin.py::test_admin_routes_need_a_token_and_the_permission",
            "tests/proxy/test_forwarding.py::test_missing_permission_is_403_and_never_sent",
        ),
        "authorize lets any signed-in caller through",
    ),
    Mutant(
        "require-skips-authorize",
        "app/identity/dependencies.py",
        "        authorize(principal, permission)\n        return principal",
        "        return principal",
        ("tests/rbac/test_admin.py::test_admin_routes_need_a_token_and_the_permission",),
        "require() checks the caller is signed in, not the permission",
    ),
    Mutant(
        "principal-admin-any-permission",
        "app/identity/principal.py",
        'return "admin" in self.roles or "*" in self.permissions',
        'return "admin" in self.roles or bool(self.permissions)',
        ("tests/gateway/test_discovery.py",),
        "any caller with a permission counts as admin (discovery shows internal URLs)",
    ),
    Mutant(
        "rbac-unknown-role-ignored",
        "app/rbac/service.py",
        "    if missing:\n        raise ValidationFailed(",
        "    if False:\n        raise ValidationFailed(",
        ("tests/rbac/test_admin.py",),
        "an unknown role name is silently dropped instead of refused",
    ),
    Mutant(
        "rbac-least-privilege",
        "app/identity/permissions.py",
        "return sorted({p for p in wanted if not grants(held, p)})",
        'return sorted({p for p in wanted if not grants(held, p) and p != "*"})',
        ("tests/rbac/test_least_privilege.py",),
        "a roles admin may grant `*` it does not hold",
    ),
)

DASHBOARD = (
    Mutant(
        "dashboard-cache-not-per-user",
        "app/dashboard/service.py",
        'key = f"{prefix}dash:{{{principal.user_id}}}"',
        'key = f"{prefix}dash:{{all}}"',
        ("tests/gateway/test_dashboard.py",),
        "the dashboard cache answers one user with another user's page",
    ),
    Mutant(
        "dashboard-source-permission-unchecked",
        "app/dashboard/service.py",
        (
            "    if not principal.can(permission):\n"
            '        return {"ok": False, "error": "FORBIDDEN"}\n'
        ),
        "",
        ("tests/gateway/test_dashboard.py",),
        "a source the caller may not read is fetched and shown",
    ),
    Mutant(
        "dashboard-source-default-permission",
        "app/dashboard/service.py",
        "permission = source.permission or service.config.permissions.read",
        'permission = source.permission or "dashboard:read"',
        ("tests/gateway/test_dashboard.py",),
        "a source without its own permission needs only dashboard:read, not the service's read",
    ),
    Mutant(
        "dashboard-partial-page-cached",
        "app/dashboard/service.py",
        'if config.cache_seconds > 0 and all(slot["ok"] for slot in slots):',
        "if config.cache_seconds > 0:",
        ("tests/gateway/test_dashboard.py",),
        "a page with a failed source is cached (the recovered source stays hidden)",
    ),
)

TOKENS = "app/auth/tokens.py"
DEPS = "app/auth/dependencies.py"
COOKIES = "app/auth/cookies.py"
SESSIONS = "app/auth/sessions.py"
SCRIPTS = "app/auth/session_scripts.py"
T_TOKENS = "tests/auth/test_tokens.py"
T_CACHE = "tests/auth/test_token_cache.py"
T_COOKIE = "tests/auth/test_cookie_mode.py"

AUTH = (
    Mutant(
        "tokens-type-not-checked",
        TOKENS,
        'if any(c not in claims for c in REQUIRED_CLAIMS) or claims["typ"] != typ:',
        "if any(c not in claims for c in REQUIRED_CLAIMS):",
        (f"{T_TOKENS}::test_bad_refresh_token_refused",),
        "an access token is accepted as a refresh token (typ not checked)",
    ),
    Mutant(
        "tokens-cache-ignores-type",
        TOKENS,
        "if cached.typ == typ and time.time() < cached.exp:",
        "if time.time() < cached.exp:",
        (T_CACHE,),
        "a verified access token, cached, passes as a refresh token",
    ),
    Mutant(
        "tokens-cache-serves-expired",
        TOKENS,
        "if cached.typ == typ and time.time() < cached.exp:",
        "if cached.typ == typ:",
        (T_CACHE,),
        "the verified-token cache serves a token past its exp",
    ),
    Mutant(
        "tokens-alg-header-unchecked",
        TOKENS,
        (
            '            if header.get("alg") != self._algorithm:\n'
            "                raise TokenInvalid()"
        ),
        "            pass",
        (
            f"{T_TOKENS}::test_bad_access_token_refused",
            f"{T_TOKENS}::test_bad_refresh_token_refused",
        ),
        "the token header's alg is not pinned before decoding",
        equivalent="defence in depth: jose's decode(algorithms=[the one]) refuses any other alg "
        "(none, HS512, RS256) with a JWSError, TOKEN_INVALID either way",
    ),
    Mutant(
        "tokens-size-limit-raised",
        TOKENS,
        "len(token) > MAX_TOKEN_BYTES",
        "len(token) > MAX_TOKEN_BYTES * 4",
        (T_TOKENS,),
        "a token above MAX_TOKEN_BYTES is decoded",
    ),
    Mutant(
        "tokens-empty-ids-accepted",
        TOKENS,
        'if not all(isinstance(claims[c], str) and claims[c] for c in ("sub", "sid", "jti")):',
        'if not all(isinstance(claims[c], str) for c in ("sub", "sid", "jti")):',
        (T_TOKENS,),
        "a token with an empty sub, sid or jti is accepted",
    ),
    Mutant(
        "tokens-leeway",
        TOKENS,
        '            "leeway": 0,',
        '            "leeway": 3600,',
        (T_TOKENS, T_CACHE),
        "an hour of leeway: expired tokens pass",
    ),
    Mutant(
        "tokens-outlive-session",
        TOKENS,
        "exp = max(now, min(exp, int(not_after)))",
        "exp = max(now, exp)",
        ("tests/auth/test_session_lifetime.py",),
        "tokens outlive their session's max lifetime",
    ),
    Mutant(
        "auth-revoked-session-accepted",
        DEPS,
        (
            "    if fields.user_id is None or fields.user_id.decode() != claims.sub:\n"
            "        raise SessionRevoked()"
        ),
        "    if False:\n        raise SessionRevoked()",
        ("tests/auth/test_flow.py",),
        "a Bearer token of a revoked (deleted) session is accepted",
    ),
    Mutant(
        "auth-bearer-scheme-unchecked",
        DEPS,
        'if scheme.lower() != "bearer" or not token.strip():',
        "if not token.strip():",
        (f"{T_TOKENS}::test_missing_or_non_bearer_is_unauthorized",),
        "any Authorization scheme (`Token x`, `Basic x`) is read as Bearer",
    ),
    Mutant(
        "auth-cookie-wins-over-bearer",
        DEPS,
        "    if header is None:  # a Bearer header always wins",
        "    if True:",
        (f"{T_COOKIE}::test_bearer_header_wins_over_the_cookie",),
        "the session cookie wins over an Authorization header",
    ),
    Mutant(
        "auth-cookie-mode-unchecked",
        DEPS,
        ' or fields.mode != b"cookie":',
        ":",
        (f"{T_COOKIE}::test_a_bearer_session_cannot_be_used_as_a_cookie",),
        "a Bearer-mode session is accepted through a cookie",
    ),
    Mutant(
        "auth-cookie-secret-unchecked",
        DEPS,
        "    if not cookies.secret_matches(cookie, fields.secret_hash):",
        "    if False:",
        (f"{T_COOKIE}::test_a_forged_or_malformed_cookie_is_refused",),
        "a session cookie with a forged secret is accepted",
    ),
    Mutant(
        "auth-csrf-not-bound-to-session",
        DEPS,
        (
            "    if unsafe:  # bound to the session: a planted cookie fails here\n"
            "        policy.check_bound(request, fields.csrf)\n"
        ),
        "",
        (T_COOKIE,),
        "a planted CSRF cookie plus matching header passes (not checked against the session)",
    ),
    Mutant(
        "auth-origin-not-required",
        DEPS,
        "policy.check_origin(request, required=True)",
        "policy.check_origin(request, required=False)",
        (f"{T_COOKIE}::test_unsafe_methods_need_an_allowed_origin",),
        "a cookie POST without Origin or Referer passes",
    ),
    Mutant(
        "auth-cookie-grant-never-renewed",
        DEPS,
        "if expires is None or float(expires) <= cookies.clock():",
        "if expires is None:",
        (
            T_COOKIE,
            "tests/auth/test_session_truth.py::test_cookie_renewal_carries_the_current_grants",
        ),
        "an expired cookie access grant is used without renewal (stale grants, no user check)",
    ),
    Mutant(
        "cookies-session-not-httponly",
        COOKIES,
        "self._cookie(self.session_name, session_value, self.max_age, http_only=True)",
        "self._cookie(self.session_name, session_value, self.max_age, http_only=False)",
        (f"{T_COOKIE}::test_cookie_login_sets_httponly_session_and_readable_csrf_cookie",),
        "the session cookie is readable by scripts (no HttpOnly)",
    ),
    Mutant(
        "cookies-not-secure",
        COOKIES,
        "secure=not settings.is_dev,",
        "secure=False,",
        (f"{T_COOKIE}::test_outside_dev_cookies_are_secure_and_host_prefixed",),
        "cookies lack Secure outside dev",
    ),
    Mutant(
        "cookies-csrf-cookie-unchecked",
        COOKIES,
        "if not (header and hmac.compare_digest(header.encode(), cookie.encode())):",
        "if not header:",
        (T_COOKIE, "tests/auth/test_csrf_double_submit.py"),
        "X-CSRF-Token is not compared with the CSRF cookie (session only)",
    ),
    Mutant(
        "cookies-forwarded-origin-from-anyone",
        COOKIES,
        'if self.trust_forwarded and request.scope.get("state", {}).get("forwarded_by_proxy"):',
        "if self.trust_forwarded:",
        (T_COOKIE, "tests/auth/test_csrf_double_submit.py"),
        "X-Forwarded-Host from an untrusted peer makes a foreign Origin Studio's own",
    ),
    Mutant(
        "sessions-reuse-keeps-session",
        SCRIPTS,
        "  redis.call('DEL', KEYS[1])\n  redis.call('SREM', KEYS[2], ARGV[5])\n  return {-1, ''}",
        "  return {-1, ''}",
        ("tests/auth/test_flow.py::test_refresh_reuse_revokes_the_session",),
        "a reused refresh token is refused but its session lives on",
    ),
    Mutant(
        "sessions-rotate-past-lifetime",
        SCRIPTS,
        (
            "if now >= deadline then\n"
            "  redis.call('DEL', KEYS[1])\n"
            "  redis.call('SREM', KEYS[2], ARGV[5])"
        ),
        (
            "if now >= deadline + 86400 then\n"
            "  redis.call('DEL', KEYS[1])\n"
            "  redis.call('SREM', KEYS[2], ARGV[5])"
        ),
        ("tests/auth/test_session_lifetime.py",),
        "a Bearer refresh past the session's max lifetime still rotates",
    ),
    Mutant(
        "sessions-cookie-rotate-past-lifetime",
        SCRIPTS,
        (
            "if now >= deadline then\n"
            "  redis.call('DEL', KEYS[1])\n"
            "  redis.call('SREM', KEYS[2], ARGV[11])"
        ),
        (
            "if now >= deadline + 86400 then\n"
            "  redis.call('DEL', KEYS[1])\n"
            "  redis.call('SREM', KEYS[2], ARGV[11])"
        ),
        ("tests/auth/test_session_lifetime.py", "tests/auth/test_cookie_renewal.py"),
        "a cookie session is renewed past its max lifetime",
    ),
    Mutant(
        "sessions-older-grants-overwrite",
        SCRIPTS,
        "if tonumber(ARGV[9]) >= tonumber(redis.call('HGET', KEYS[1], 'gv') or '-1') then",
        "if true then",
        ("tests/auth/test_grants_version.py", "tests/auth/test_session_truth.py"),
        "a refresh that read older grants overwrites a newer permission snapshot",
    ),
    Mutant(
        "sessions-cookie-older-grants-overwrite",
        SCRIPTS,
        "if tonumber(ARGV[10]) >= tonumber(redis.call('HGET', KEYS[1], 'gv') or '-1') then",
        "if true then",
        ("tests/auth/test_grants_version.py", "tests/auth/test_session_truth.py"),
        "a cookie renewal that read older grants overwrites a newer permission snapshot",
    ),
    Mutant(
        "sessions-revoke-keeps-hash",
        SESSIONS,
        "                pipe.delete(self.session_key(user_id, sid))\n",
        "                pipe.exists(self.session_key(user_id, sid))\n",
        ("tests/auth/test_flow.py", "tests/auth/test_sessions.py"),
        "logout and revoke leave the session hash in Redis",
    ),
    Mutant(
        "sessions-revoke-not-published",
        SESSIONS,
        (
            "                deleted, _ = await pipe.execute()\n"
            "            await self._changed(user_id, sid)\n"
        ),
        "                deleted, _ = await pipe.execute()\n",
        ("tests/auth/test_session_cache.py",),
        "a revoke is not published: other instances' caches keep the session",
    ),
    Mutant(
        "sessions-grants-not-published",
        SESSIONS,
        (
            "                await self._update(keys=[self.session_key(user_id, sid)], args=args)\n"
            "                await self._changed(user_id, sid)\n"
        ),
        "                await self._update(keys=[self.session_key(user_id, sid)], args=args)\n",
        ("tests/auth/test_session_cache.py",),
        "a role change is not published: cached sessions keep the old permissions",
    ),
    Mutant(
        "sessions-revoke-all-includes-current",
        SESSIONS,
        "if sid != except_sid and await self.revoke(user_id, sid):",
        "if await self.revoke(user_id, sid):",
        ("tests/auth/test_password.py", "tests/auth/test_session_truth.py"),
        "a password change also ends the session that made it",
    ),
    Mutant(
        "sessions-ttl-past-lifetime",
        SESSIONS,
        "ttl_ms = min(self._ttl_ms, int(self.max_lifetime * 1000))",
        "ttl_ms = self._ttl_ms",
        ("tests/auth/test_session_lifetime.py",),
        "a new session's Redis TTL reaches past its max lifetime",
    ),
    Mutant(
        "session-cache-raced-fill-kept",
        "app/auth/session_cache.py",
        "if generation != self.generation or not self.live:",
        "if not self.live:",
        ("tests/auth/test_session_cache.py",),
        "a cache fill that raced an invalidation is kept (a revoked session stays cached)",
    ),
    Mutant(
        "renewal-other-session-token",
        "app/auth/renewal.py",
        "if claims.sub != user_id or claims.sid != sid:",
        "if claims.sub != user_id:",
        ("tests/auth/test_cookie_renewal.py",),
        "a cookie session renews with a stored token of another session of the user",
    ),
    Mutant(
        "renewal-disabled-user-refreshes",
        "app/auth/renewal.py",
        "    if not account.is_active:\n",
        "    if False:\n",
        ("tests/auth/test_session_truth.py", "tests/rbac/test_admin.py"),
        "a disabled account's refresh token still rotates",
    ),
)

MUTANTS: tuple[Mutant, ...] = (*PROXY, *NETWORK_MUTANTS, *RATELIMIT, *RBAC, *DASHBOARD, *AUTH)
