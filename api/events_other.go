//go:build !linux

package api

import "net/http"

// takeOver reports false: only Linux has the fan-out writers
// (events_linux.go); elsewhere a stream stays with its handler.
func (e *eventStream) takeOver(*http.ResponseController, uint64) bool { return false }

func (e *eventStream) mayTakeOver() bool { return false }
