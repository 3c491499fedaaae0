// Package uring is the smallest io_uring this module needs: one ring of
// socket sends and receives, set up and driven with raw system calls (no
// cgo). It exists because on the machines the gateway runs on a system
// call is expensive (page-table isolation and the CPU's speculation
// mitigations make each entry to the kernel cost about as much as a small
// loopback send itself), and fanning one commit out to a thousand event
// streams is a thousand sends: queued on a ring, they enter the kernel
// once.
//
// A Ring is the kernel's two queues mapped into the process: requests go
// on the submission queue (Send, Recv, Read), Submit hands them to the
// kernel, results come back on the completion queue (Completions), each
// with the user value its request was given. What it guarantees:
//
//   - Sends are non-blocking (MSG_DONTWAIT): a socket with no room
//     completes its send at once with EAGAIN (or with the bytes that fit),
//     inside Submit, never later; so after Submit every send queued before
//     it has its completion. MSG_NOSIGNAL is always set.
//   - Receives wait for data in the kernel and complete when it comes; a
//     receive's buffer is the kernel's until its completion is seen, and
//     the caller must keep it (and not reuse it) until then.
//   - A request that cannot start (a closed descriptor) completes with its
//     error, and the requests after it still start.
//   - New reports ErrUnavailable (wrapping the kernel's reason) where the
//     kernel has no io_uring, has it disabled (kernel.io_uring_disabled,
//     seccomp filters such as container runtimes' defaults) or lacks what
//     this package uses (Linux 5.19 or later); callers fall back to plain
//     system calls.
//
// A Ring is not safe for concurrent use: one goroutine at a time queues,
// submits and reaps. With SingleIssuer that goroutine must also stay on one
// thread (runtime.LockOSThread) and be the one that called New.
package uring
