package storage

import (
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sync"

	"github.com/goat-gateway/goat-gateway/core"
)

// NodeID identifies a data directory (a node's replica) for as long as the
// directory lives: it is created with the directory and kept in DIR/NODE.
// SSE event ids carry it next to a sequence number, so that an event id
// from another node, or from before the directory was wiped, is detected.
type NodeID [16]byte

func (id NodeID) String() string { return hex.EncodeToString(id[:]) }

// MarshalText implements encoding.TextMarshaler.
func (id NodeID) MarshalText() ([]byte, error) { return []byte(id.String()), nil }

// The NODE file. Wire format (a node's own disk only, but still versioned):
//
//	+------------+---------+---------+------------+---------+
//	| "GOATNODE" | version | node id | leased u64 | crc u32 |
//	| 8 B        | u32 = 1 | 16 B    |            |         |
//	+------------+---------+---------+------------+---------+
//	0            8         12        28           36        40
//
// crc is CRC-32C of bytes 0..36.
const (
	nodeMagic    = "GOATNODE"
	nodeVersion  = 1
	nodeFileSize = 40
	nodeFileName = "NODE"
)

// sequencer hands out the node-wide sequence numbers of records: strictly
// increasing across every repository of the node and across restarts, not
// necessarily dense.
//
// Numbers are leased in blocks: before the first number of a new block is
// handed out, the end of the block is written to DIR/NODE and synced, and
// after a restart numbering resumes past the recorded end. A crash
// therefore skips at most one block, and never reuses a number.
//
// The sequencer also orders delivery: Reserve returns a ticket, and the
// function given to complete for a ticket runs only after those of every
// earlier ticket, so that subscribers see records in sequence order even
// though repositories reach the disk in any order.
type sequencer struct {
	fsys   FS
	path   string
	block  uint64
	noSync bool
	node   NodeID

	mu     sync.Mutex
	next   uint64 // the next number to hand out
	leased uint64 // every number <= leased is covered by the durable lease
	queue  []*ticket
	// answers holds the tickets delivered, in order, whose after has not
	// run: it runs once the ticket is answered and those before it ran.
	answers []*ticket

	deliverMu sync.Mutex // held while running deliveries, so they run in order
}

type ticket struct {
	first, n uint64
	done     bool
	deliver  func()
	answered bool
	after    func()
}

// openSequencer reads (or creates) DIR/NODE.
func openSequencer(fsys FS, dir string, block uint64, noSync bool) (*sequencer, error) {
	s := &sequencer{fsys: fsys, path: filepath.Join(dir, nodeFileName), block: max(block, 1), noSync: noSync, next: 1}
	f, err := fsys.OpenFile(s.path, os.O_RDONLY, 0)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		rand.Read(s.node[:])
		if err := s.persist(0); err != nil {
			return nil, fmt.Errorf("create %s: %w", s.path, err)
		}
		return s, nil
	case err != nil:
		return nil, err
	}
	defer f.Close()
	b := make([]byte, nodeFileSize)
	if n, err := f.ReadAt(b, 0); n < nodeFileSize {
		return nil, fmt.Errorf("%w: %s: %d bytes (%v)", core.ErrCorrupt, s.path, n, err)
	}
	if string(b[:8]) != nodeMagic || binary.LittleEndian.Uint32(b[36:]) != crc(b[:36]) {
		return nil, fmt.Errorf("%w: %s: bad magic or checksum", core.ErrCorrupt, s.path)
	}
	if v := binary.LittleEndian.Uint32(b[8:]); v != nodeVersion {
		return nil, fmt.Errorf("%w: %s: version %d, this binary reads version %d", core.ErrCorrupt, s.path, v, nodeVersion)
	}
	copy(s.node[:], b[12:28])
	s.leased = binary.LittleEndian.Uint64(b[28:])
	s.next = s.leased + 1
	return s, nil
}

// persist writes the NODE file with the given lease end.
func (s *sequencer) persist(leased uint64) error {
	b := make([]byte, nodeFileSize)
	copy(b, nodeMagic)
	binary.LittleEndian.PutUint32(b[8:], nodeVersion)
	copy(b[12:28], s.node[:])
	binary.LittleEndian.PutUint64(b[28:], leased)
	binary.LittleEndian.PutUint32(b[36:], crc(b[:36]))
	return writeFileAtomic(s.fsys, s.path, b, s.noSync)
}

// Node returns the node id.
func (s *sequencer) Node() NodeID { return s.node }

// Last returns the largest number handed out so far (0 if none).
func (s *sequencer) Last() uint64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.next - 1
}

// reserve hands out n consecutive numbers and a ticket that the caller
// must complete, whatever happens.
func (s *sequencer) reserve(n int) (*ticket, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	last := s.next + uint64(n) - 1
	if last > s.leased {
		lease := last + s.block
		if err := s.persist(lease); err != nil {
			return nil, fmt.Errorf("lease sequence numbers: %w", err)
		}
		s.leased = lease
	}
	t := &ticket{first: s.next, n: uint64(n)}
	s.next = last + 1
	s.queue = append(s.queue, t)
	return t, nil
}

// observe makes every future number larger than seq. Opening a log calls
// it with the log's last number: a lost or restored NODE file then cannot
// make numbers go backwards for a repository that has been opened.
func (s *sequencer) observe(seq uint64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if seq >= s.next {
		s.next = seq + 1
	}
}

// complete marks t done; deliver (may be nil) runs after the deliveries of
// all earlier tickets, in ticket order, on whichever goroutine completes
// the last of them. after (may be nil) runs in ticket order too, after
// deliver, and not before answer(t): deliveries in two phases, one before
// the ticket's appenders are answered and one after. Without an after, t
// needs no answer.
func (s *sequencer) complete(t *ticket, deliver, after func()) {
	s.mu.Lock()
	t.done, t.deliver, t.after = true, deliver, after
	if after == nil {
		t.answered = true
	}
	s.mu.Unlock()
	s.run()
}

// answer marks t's appenders answered, letting its after run in turn.
func (s *sequencer) answer(t *ticket) {
	s.mu.Lock()
	t.answered = true
	s.mu.Unlock()
	s.run()
}

// run runs what is due of both phases, in ticket order.
func (s *sequencer) run() {
	s.deliverMu.Lock()
	defer s.deliverMu.Unlock()
	for {
		s.mu.Lock()
		var ready, answered []*ticket
		for len(s.queue) > 0 && s.queue[0].done {
			ready = append(ready, s.queue[0])
			s.answers = append(s.answers, s.queue[0])
			s.queue[0] = nil
			s.queue = s.queue[1:]
		}
		for len(s.answers) > 0 && s.answers[0].answered {
			answered = append(answered, s.answers[0])
			s.answers[0] = nil
			s.answers = s.answers[1:]
		}
		s.mu.Unlock()
		if len(ready) == 0 && len(answered) == 0 {
			return
		}
		// A ticket in both lists is delivered before its after runs.
		for _, r := range ready {
			if r.deliver != nil {
				r.deliver()
			}
		}
		for _, r := range answered {
			if r.after != nil {
				r.after()
			}
		}
	}
}
