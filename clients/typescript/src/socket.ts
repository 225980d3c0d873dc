/**
 * Opening a WebSocket through Studio: `wss://<studio>/api/v1/<service>/<path>`.
 *
 * Browsers open sockets in cookie mode: sign in with `POST /auth/login` and `"mode": "cookie"`
 * first; the browser then sends the HttpOnly session cookie with the upgrade, and Studio checks
 * the page's `Origin` against `CORS_ALLOW_ORIGINS` (403 `CSRF_FAILED` otherwise). A browser
 * cannot set `Authorization` on a WebSocket, and a token in the query string (`access_token`,
 * `token`, ...) is refused with 401: it would end up in logs. Scripts outside a browser send
 * `Authorization: Bearer <access token>` with the upgrade instead.
 *
 * Studio relays text and binary frames and close codes both ways and negotiates the
 * subprotocol with the service. It closes the socket with 4401 when the session ends (logout,
 * revocation, password change, disabled account) and 4403 when the permission is gone; 1009
 * for a message over the service's limit, 1001 on idle timeout or shutdown. An upgrade Studio
 * refuses (401, 403, 404, 429, 502, 503, 504) fails before `open`; browsers report it only as
 * an `error` event followed by `close` with code 1006.
 */

/** Close codes Studio sends of its own. */
export const StudioCloseCode = {
  SessionEnded: 4401,
  PermissionRevoked: 4403,
  MessageTooBig: 1009,
  GoingAway: 1001,
} as const;
export type StudioCloseCode = (typeof StudioCloseCode)[keyof typeof StudioCloseCode];

/** Query parameter names Studio refuses on an upgrade (tokens never travel in URLs). */
export const REFUSED_QUERY_NAMES: readonly string[] = ["access_token", "token", "jwt", "bearer"];

export interface StudioSocketOptions {
  /** Studio's origin, e.g. `https://studio.example.com` (http is mapped to ws, https to wss). */
  baseUrl: string;
  /** The API prefix, `/api/v1` unless Studio's `API_PREFIX` says otherwise. */
  apiPrefix?: string;
  /** The registry service, e.g. `zen`. */
  service: string;
  /** The path below the service, e.g. `/chat/live`. */
  path: string;
  /** Query parameters for the service (never a token). */
  query?: Record<string, string>;
  /** Subprotocols to offer; the service's choice is `socket.protocol` once open. */
  protocols?: readonly string[];
  /** `blob` (the browser default) or `arraybuffer` for binary frames. */
  binaryType?: BinaryType;
}

export interface StudioSocketHandlers<T = string | ArrayBuffer | Blob> {
  onOpen?: (socket: WebSocket) => void;
  onMessage?: (data: T, socket: WebSocket) => void;
  /** `code` is one of `StudioCloseCode` when Studio ended the socket, else the service's. */
  onClose?: (code: number, reason: string, byStudio: boolean) => void;
  onError?: (event: Event) => void;
}

/** The `ws(s)://` URL of a service path behind Studio; throws on a token in `query`. */
export function socketUrl(options: StudioSocketOptions): string {
  const base = new URL(options.baseUrl);
  base.protocol = base.protocol === "https:" ? "wss:" : "ws:";
  const prefix = (options.apiPrefix ?? "/api/v1").replace(/\/$/, "");
  const path = options.path.startsWith("/") ? options.path : `/${options.path}`;
  const url = new URL(`${prefix}/${encodeURIComponent(options.service)}${path}`, base);
  for (const [name, value] of Object.entries(options.query ?? {})) {
    if (REFUSED_QUERY_NAMES.includes(name.toLowerCase())) {
      throw new Error(`Studio refuses tokens in the query string (${name})`);
    }
    url.searchParams.set(name, value);
  }
  return url.toString();
}

const STUDIO_CODES: ReadonlySet<number> = new Set(Object.values(StudioCloseCode));

/** Open a socket through Studio in cookie mode (the browser sends the session cookie). */
export function openStudioSocket<T = string | ArrayBuffer | Blob>(
  options: StudioSocketOptions,
  handlers: StudioSocketHandlers<T> = {},
): WebSocket {
  const socket = new WebSocket(socketUrl(options), [...(options.protocols ?? [])]);
  if (options.binaryType !== undefined) {
    socket.binaryType = options.binaryType;
  }
  socket.addEventListener("open", () => handlers.onOpen?.(socket));
  socket.addEventListener("message", (event: MessageEvent<T>) =>
    handlers.onMessage?.(event.data, socket),
  );
  socket.addEventListener("close", (event: CloseEvent) =>
    handlers.onClose?.(event.code, event.reason, STUDIO_CODES.has(event.code)),
  );
  socket.addEventListener("error", (event: Event) => handlers.onError?.(event));
  return socket;
}

/** True when a close means the user must sign in again (the session ended). */
export function needsSignIn(code: number): boolean {
  return code === StudioCloseCode.SessionEnded;
}
