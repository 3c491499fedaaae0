package goat

import (
	"context"
	"log/slog"
)

// Log keys of the SDK's records.
const (
	logKeyRepo    = "repo"
	logKeyErr     = "err"
	logKeyRetryIn = "retry_in"
	logKeyCommit  = "commit"
	logKeySchema  = "schema"
	logKeyProblem = "problem"
	logKeyReason  = "reason"
	logKeyEvent   = "event_id"
)

// warnOnly passes on a handler's records at Warn and above: the local
// replica's storage reports routine events (a repository created) at
// Info, which are noise in an application's log.
type warnOnly struct{ slog.Handler }

func (h warnOnly) Enabled(ctx context.Context, l slog.Level) bool {
	return l >= slog.LevelWarn && h.Handler.Enabled(ctx, l)
}

func (h warnOnly) WithAttrs(as []slog.Attr) slog.Handler { return warnOnly{h.Handler.WithAttrs(as)} }

func (h warnOnly) WithGroup(name string) slog.Handler { return warnOnly{h.Handler.WithGroup(name)} }
