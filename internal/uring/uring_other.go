//go:build !linux

package uring

import "errors"

// Ring is only available on Linux.
type Ring struct{}

// Flags choose how a ring is set up.
type Flags uint32

// SingleIssuer: see the Linux version.
const SingleIssuer Flags = 0

// ErrUnavailable is what New reports where there is no io_uring.
var ErrUnavailable = errors.New("io_uring unavailable")

// New reports ErrUnavailable: there is no io_uring here.
func New(sq, cq uint32, flags Flags) (*Ring, error) { return nil, ErrUnavailable }

func (r *Ring) Close() error                                   { return nil }
func (r *Ring) Send(fd int, b []byte, user uint64) bool        { return false }
func (r *Ring) Recv(fd int, b []byte, user uint64) bool        { return false }
func (r *Ring) Read(fd int, b []byte, user uint64) bool        { return false }
func (r *Ring) Submit() error                                  { return ErrUnavailable }
func (r *Ring) SubmitAndWait(n uint32) error                   { return ErrUnavailable }
func (r *Ring) Completions(f func(user uint64, res int32)) int { return 0 }
func (r *Ring) Free() int                                      { return 0 }
func (r *Ring) Fd() int                                        { return -1 }
