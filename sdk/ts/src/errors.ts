// Errors: one class with a code per core sentinel (core/errors.go), so that
// callers branch on `err.code` the way Go callers use errors.Is. HTTP
// problems map back to the same codes (problemCode).

/** The codes of GoatError, one per core sentinel error. */
export type ErrorCode =
  | "not-found"
  | "repo-deleted"
  | "invalid"
  | "too-large"
  | "conflict"
  | "corrupt"
  | "bad-signature"
  | "missing-parents"
  | "schema"
  | "unauthenticated"
  | "forbidden"
  | "must-reconcile"
  | "closed"
  | "unavailable"
  | "rate-limited"
  | "network"
  | "internal";

/** GoatError is every error the SDK throws on purpose. */
export class GoatError extends Error {
  override readonly name = "GoatError";
  constructor(
    readonly code: ErrorCode,
    message: string,
    /** HTTP status, for errors that came from the gateway. */
    readonly status?: number,
    /** The problem type URI, for errors that came from the gateway. */
    readonly problemType?: string,
  ) {
    super(message);
  }
}

const problemPrefix = "https://goat-gateway.dev/problems/";

const problemCodes: Record<string, ErrorCode> = {
  "invalid-request": "invalid",
  unauthenticated: "unauthenticated",
  forbidden: "forbidden",
  "not-found": "not-found",
  "repo-deleted": "repo-deleted",
  conflict: "conflict",
  "must-reconcile": "must-reconcile",
  "too-large": "too-large",
  "unsupported-media-type": "invalid",
  "schema-violation": "schema",
  "schema-retired": "schema",
  "bad-signature": "bad-signature",
  "missing-parents": "missing-parents",
  "rate-limited": "rate-limited",
  unavailable: "unavailable",
  internal: "internal",
};

/** problemCode maps a problem type URI (docs/api.md, Errors) to an ErrorCode. */
export function problemCode(type: string | undefined, status: number): ErrorCode {
  if (type?.startsWith(problemPrefix)) {
    const c = problemCodes[type.slice(problemPrefix.length)];
    if (c) return c;
  }
  if (status === 404) return "not-found";
  if (status === 401) return "unauthenticated";
  if (status === 403) return "forbidden";
  if (status === 409) return "conflict";
  if (status === 413) return "too-large";
  if (status === 429) return "rate-limited";
  if (status === 502 || status === 503 || status === 504) return "unavailable"; // a proxy in front of a gateway that is down
  if (status >= 400 && status < 500) return "invalid";
  return "internal";
}

/** isCode reports whether e is a GoatError with the given code. */
export function isCode(e: unknown, code: ErrorCode): boolean {
  return e instanceof GoatError && e.code === code;
}
