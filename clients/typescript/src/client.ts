/**
 * A small Studio client, typed from `schema.d.ts` (generated from Studio's OpenAPI schema by
 * `make ts-check`): if the API drifts from what a front-end relies on, this stops compiling.
 *
 * Like the platform's api-client, every call returns the envelope's `result` and throws a
 * `StudioError` (status, `error.code`, message) for an error envelope.
 */
import type { components, paths } from "./schema";

type Schemas = components["schemas"];
export type User = Schemas["UserRead"];
export type TokenPair = Schemas["TokenPair"];
export type CookieSession = Schemas["CookieSession"];
export type LoginMode = NonNullable<Schemas["LoginRequest"]["mode"]>;
type ErrorEnvelope = Schemas["ErrorEnvelope"];

type Method = "get" | "post" | "put" | "patch" | "delete";
type Operation<P extends keyof paths, M extends Method> = NonNullable<paths[P][M]>;
/** The JSON body of an operation's 200 (or 201) response. */
type Success<O> = O extends { responses: { 200: { content: { "application/json": infer B } } } }
  ? B
  : O extends { responses: { 201: { content: { "application/json": infer B } } } }
    ? B
    : never;
/** The envelope's `result`, never null once the call succeeded. */
type Result<O> = Success<O> extends { result?: infer R } ? Exclude<R, null | undefined> : never;
type JsonBody<O> = O extends { requestBody: { content: { "application/json": infer B } } }
  ? B
  : O extends { requestBody?: { content: { "application/json": infer B } } }
    ? B
    : never;
type PathParams<O> = O extends { parameters: { path: infer A } } ? A : never;

export class StudioError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly details: unknown,
    readonly requestId: string | null,
  ) {
    super(message);
    this.name = "StudioError";
  }
}

export interface StudioClientOptions {
  /** Studio's origin, e.g. `https://studio.example.com`. */
  baseUrl: string;
  /** `bearer`: tokens in memory, sent as Authorization. `cookie`: HttpOnly session cookie + CSRF. */
  mode: LoginMode;
  fetch?: typeof fetch;
}

interface CallOptions<O> {
  params?: PathParams<O>;
  body?: JsonBody<O>;
  query?: Record<string, string>;
}

const UNSAFE = new Set<Method>(["post", "put", "patch", "delete"]);

function isErrorEnvelope(body: unknown): body is ErrorEnvelope {
  return typeof body === "object" && body !== null && (body as { success?: unknown }).success === false;
}

export class StudioClient {
  private accessToken: string | null = null;
  private refreshToken: string | null = null;
  private csrfToken: string | null = null;
  private readonly fetch: typeof fetch;

  constructor(private readonly options: StudioClientOptions) {
    this.fetch = options.fetch ?? globalThis.fetch.bind(globalThis);
  }

  /** Any route of the schema; returns the envelope's `result`. */
  async call<P extends keyof paths, M extends Method & keyof paths[P]>(
    method: M,
    path: P,
    options: CallOptions<Operation<P, M>> = {},
  ): Promise<Result<Operation<P, M>>> {
    const response = await this.send(method, path, options);
    const body: unknown = await response.json();
    if (!response.ok || isErrorEnvelope(body)) {
      const error = isErrorEnvelope(body) ? body : null;
      throw new StudioError(
        response.status,
        error?.error.code ?? "HTTP_ERROR",
        error?.message ?? response.statusText,
        error?.error.details,
        response.headers.get("X-Request-ID"),
      );
    }
    return (body as Success<Operation<P, M>> & { result: Result<Operation<P, M>> }).result;
  }

  private async send<P extends keyof paths, M extends Method & keyof paths[P]>(
    method: M,
    path: P,
    options: CallOptions<Operation<P, M>>,
  ): Promise<Response> {
    let url = this.options.baseUrl + String(path);
    const params = (options.params ?? {}) as Record<string, string | number>;
    for (const [name, value] of Object.entries(params)) {
      // `{path}` of a wildcard service may hold several segments: keep its slashes.
      const encoded = name === "path" ? String(value).split("/").map(encodeURIComponent).join("/")
        : encodeURIComponent(String(value));
      url = url.replace(`{${name}}`, encoded);
    }
    if (options.query) url += "?" + new URLSearchParams(options.query).toString();
    const headers: Record<string, string> = { Accept: "application/json" };
    if (options.body !== undefined) headers["Content-Type"] = "application/json";
    if (this.options.mode === "bearer" && this.accessToken) {
      headers["Authorization"] = `Bearer ${this.accessToken}`;
    }
    if (this.options.mode === "cookie" && this.csrfToken && UNSAFE.has(method)) {
      headers["X-CSRF-Token"] = this.csrfToken;
    }
    const init: RequestInit = {
      method: method.toUpperCase(),
      headers,
      credentials: this.options.mode === "cookie" ? "include" : "omit",
    };
    if (options.body !== undefined) init.body = JSON.stringify(options.body);
    return this.fetch(url, init);
  }

  /** Log in; in cookie mode Studio keeps the tokens and this keeps only the CSRF token. */
  async login(email: string, password: string): Promise<User> {
    const result = await this.call("post", "/api/v1/auth/login", {
      body: { email, password, mode: this.options.mode },
    });
    if ("csrf_token" in result) {
      const session: CookieSession = result;
      this.csrfToken = session.csrf_token;
      return session.user;
    }
    const pair: TokenPair = result;
    this.accessToken = pair.access_token;
    this.refreshToken = pair.refresh_token;
    if (!pair.user) throw new StudioError(500, "INTERNAL_ERROR", "login without user", null, null);
    return pair.user;
  }

  /** Bearer mode: rotate the pair (cookie mode refreshes inside Studio). */
  async refresh(): Promise<void> {
    if (this.options.mode !== "bearer" || !this.refreshToken) return;
    const saved = this.accessToken;
    this.accessToken = this.refreshToken; // /auth/refresh takes the refresh token as Bearer
    try {
      const pair = await this.call("post", "/api/v1/auth/refresh");
      this.accessToken = pair.access_token;
      this.refreshToken = pair.refresh_token;
    } catch (error) {
      this.accessToken = saved;
      throw error;
    }
  }

  me(): Promise<User> {
    return this.call("get", "/api/v1/auth/me");
  }

  /** A proxied Zen route (wildcard service): the downstream JSON, unwrapped. */
  zen(path: string, query?: Record<string, string>): Promise<unknown> {
    return this.call("get", "/api/v1/zen/{path}", query ? { params: { path }, query } : { params: { path } });
  }

  /** A proxied explicit Nexus route, with its typed path parameter. */
  document(documentId: string): Promise<unknown> {
    return this.call("get", "/api/v1/nexus/documents/{document_id}", {
      params: { document_id: documentId },
    });
  }

  /** Server-sent events of a proxied route, read with fetch (works in both modes). */
  async *events(path: string): AsyncGenerator<{ event: string; data: string; id?: string }> {
    const headers: Record<string, string> = { Accept: "text/event-stream" };
    if (this.options.mode === "bearer" && this.accessToken) {
      headers["Authorization"] = `Bearer ${this.accessToken}`;
    }
    const response = await this.fetch(`${this.options.baseUrl}/api/v1/zen/${path}`, {
      headers,
      credentials: this.options.mode === "cookie" ? "include" : "omit",
    });
    if (!response.ok || !response.body) {
      throw new StudioError(response.status, "HTTP_ERROR", response.statusText, null, null);
    }
    const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
    let buffer = "";
    for (;;) {
      const { value, done } = await reader.read();
      if (done) return;
      buffer += value;
      let end = buffer.indexOf("\n\n");
      while (end >= 0) {
        const block = buffer.slice(0, end);
        buffer = buffer.slice(end + 2);
        const message: { event: string; data: string; id?: string } = { event: "message", data: "" };
        for (const line of block.split("\n")) {
          const [field, ...rest] = line.split(":");
          const text = rest.join(":").replace(/^ /, "");
          if (field === "event") message.event = text;
          else if (field === "data") message.data += (message.data ? "\n" : "") + text;
          else if (field === "id") message.id = text;
        }
        yield message;
        end = buffer.indexOf("\n\n");
      }
    }
  }

  async logout(): Promise<void> {
    await this.call("post", "/api/v1/auth/logout");
    this.accessToken = this.refreshToken = this.csrfToken = null;
  }
}

/** What a front-end does first: sign in, who am I, one proxied call, sign out. */
export async function demo(baseUrl: string, email: string, password: string): Promise<string> {
  const client = new StudioClient({ baseUrl, mode: "cookie" });
  const user = await client.login(email, password);
  const me = await client.me();
  const permissions: string[] = me.permissions;
  const answer = await client.zen("chat", { q: "hello" });
  const ticks: string[] = [];
  for await (const event of client.events("sse?n=3")) ticks.push(event.data);
  await client.logout();
  return `${user.email} (${permissions.join(", ")}): ${JSON.stringify(answer)}, ${ticks.length} events`;
}

// Compile-time checks that the generated types resolve: a `never` here would hide API drift.
type Equals<A, B> = (<T>() => T extends A ? 1 : 2) extends <T>() => T extends B ? 1 : 2 ? true : false;
type Assert<T extends true> = T;
export type SchemaChecks = [
  Assert<Equals<Result<Operation<"/api/v1/auth/me", "get">>, User>>,
  Assert<Equals<Result<Operation<"/api/v1/auth/login", "post">>, TokenPair | CookieSession>>,
  Assert<Equals<PathParams<Operation<"/api/v1/nexus/documents/{document_id}", "get">>, { document_id: string }>>,
];
