/**
 * A front end's first session through openapi-fetch, typed only by the `paths` that
 * openapi-typescript generates from Studio's schema: every call is `client.GET/POST(path,
 * {params, body})` of the typed client, no URL or body is built by hand. Register, log in
 * (bearer), who am I, refresh, a proxied JSON POST, a wildcard GET of two segments with a query
 * string, a server-sent event stream, log out.
 *
 * `make ts-check` type-checks it; tests/contract compiles it against the live schema and runs
 *     node flow.js BASE_URL EMAIL PASSWORD
 * Each step prints `ok <step>`; the first failure exits non-zero with the step and the answer.
 */
import createClient from "openapi-fetch";
import type { paths } from "./schema";

// The Node globals used here (no @types/node: the client code of this package targets browsers).
declare const process: { argv: string[]; exitCode?: number };

class FlowFailed extends Error {}

function check(step: string, condition: boolean, detail: unknown = ""): asserts condition {
  if (!condition) {
    const text = typeof detail === "string" ? detail : JSON.stringify(detail);
    throw new FlowFailed(`${step}: ${text.slice(0, 500)}`);
  }
}

function ok(step: string): void {
  console.log(`ok ${step}`);
}

/** The Authorization header of a bearer token, per call (Studio's security schemes are per operation). */
const bearer = (token: string) => ({ Authorization: `Bearer ${token}` });

/** The fake downstream's echo of the request it received (the envelope's free-form result). */
function echoed(step: string, result: unknown): Record<string, unknown> {
  check(step, typeof result === "object" && result !== null, result);
  return result as Record<string, unknown>;
}

async function eventLines(stream: ReadableStream<Uint8Array>): Promise<string[]> {
  const reader = stream.getReader();
  const decoder = new TextDecoder();
  let text = "";
  for (let read = await reader.read(); !read.done; read = await reader.read()) {
    text += decoder.decode(read.value, { stream: true });
  }
  return (text + decoder.decode()).split("\n");
}

async function run(baseUrl: string, email: string, password: string): Promise<void> {
  // Answers are read as JSON unless a call asks otherwise (the SSE read asks for the stream);
  // free-form query parameters go out as `name=value` pairs (OpenAPI's form style, exploded).
  const client = createClient<paths, "application/json">({
    baseUrl,
    querySerializer: { object: { style: "form", explode: true } },
  });

  const created = await client.POST("/api/v1/auth/register", { body: { email, password } });
  check("register", created.response.status === 201 && created.data !== undefined, created.error);
  check("register", created.data.success && created.data.result.user.email === email, created.data);
  ok("register");

  const login = await client.POST("/api/v1/auth/login", { body: { email, password, mode: "bearer" } });
  check("login", login.response.status === 200 && login.data !== undefined, login.error);
  const pair = login.data.result;
  check("login", "access_token" in pair && pair.token_type === "bearer", pair);
  ok("login");

  const me = await client.GET("/api/v1/auth/me", { headers: bearer(pair.access_token) });
  check("me", me.response.status === 200 && me.data !== undefined, me.error);
  check("me", me.data.result.email === email, me.data);
  check("me", me.data.result.permissions.includes("zen:chat"), me.data.result.permissions);
  ok("me");

  const refreshed = await client.POST("/api/v1/auth/refresh", { headers: bearer(pair.refresh_token) });
  check("refresh", refreshed.response.status === 200 && refreshed.data !== undefined, refreshed.error);
  const renewed = refreshed.data.result;
  check("refresh", renewed.refresh_token !== pair.refresh_token, "refresh token not rotated");
  const auth = bearer(renewed.access_token);
  ok("refresh");

  const message = { message: "hello", history: [1, 2] };
  const posted = await client.POST("/api/v1/zen/{path}", {
    params: { path: { path: "chat" } },
    body: message,
    headers: auth,
  });
  check("proxied JSON POST", posted.response.status === 200 && posted.data !== undefined, posted.error);
  let echo = echoed("proxied JSON POST", posted.data.result);
  check("proxied JSON POST", echo["method"] === "POST" && echo["path"] === "/chat", echo);
  check("proxied JSON POST", JSON.stringify(echo["json"]) === JSON.stringify(message), echo);
  ok("proxied JSON POST");

  const history = await client.GET("/api/v1/zen/{path}", {
    params: { path: { path: "chat/history" }, query: { query: { q: "hello world", limit: "2" } } },
    headers: auth,
  });
  check("wildcard GET", history.response.status === 200 && history.data !== undefined, history.error);
  echo = echoed("wildcard GET", history.data.result);
  check("wildcard GET", echo["method"] === "GET" && echo["path"] === "/chat/history", echo);
  check("wildcard GET", echo["query"] === "q=hello%20world&limit=2", echo);
  ok("wildcard GET");

  const events = await client.GET("/api/v1/zen/{path}", {
    params: { path: { path: "sse" }, query: { query: { n: "3", interval: "0" } } },
    headers: { ...auth, Accept: "text/event-stream" },
    parseAs: "stream",
  });
  check("SSE", events.response.status === 200 && events.data != null, events.error);
  const media = events.response.headers.get("content-type") ?? "";
  check("SSE", media.startsWith("text/event-stream"), media);
  const ticks = (await eventLines(events.data)).filter((line) => line === "event: tick");
  check("SSE", ticks.length === 3, `${ticks.length} events`);
  ok("SSE");

  const logout = await client.POST("/api/v1/auth/logout", { headers: auth });
  check("logout", logout.response.status === 200 && logout.data !== undefined, logout.error);
  ok("logout");
  const after = await client.GET("/api/v1/auth/me", { headers: auth });
  check("logout", after.response.status === 401 && after.error !== undefined, after.data);
  check("logout", after.error.error.code === "SESSION_REVOKED", after.error);
  ok("session gone after logout");
}

const [baseUrl, email, password] = process.argv.slice(2);
if (baseUrl === undefined || email === undefined || password === undefined) {
  console.error("usage: node flow.js BASE_URL EMAIL PASSWORD");
  process.exitCode = 2;
} else {
  try {
    await run(baseUrl, email, password);
  } catch (failure) {
    console.error(`FAILED ${failure instanceof Error ? failure.message : String(failure)}`);
    process.exitCode = 1;
  }
}
