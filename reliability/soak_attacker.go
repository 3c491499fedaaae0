package reliability

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// The soak's attackers can run in a process of their own (SoakConfig.Attacker)
// at a lower CPU priority, because in a deployment the attackers are other
// machines: their own CPU is never the gateway's. On a small machine the
// attackers' client code (closed loops that build bodies, dial, sign) takes
// cores from the gateway and from the honest clients, which then wait for a
// core rather than for the gateway. docs/decisions.md has what this does
// not cover.

// soakOrders is what the soak sends its attacker process on stdin: the
// gateway to attack, how, and the issuer key that mints the attacking
// user's token (an ephemeral key of this run).
type soakOrders struct {
	URL        string        `json:"url"`
	NodeID     string        `json:"nodeId"`
	IssuerSeed []byte        `json:"issuerSeed"`
	Attack     time.Duration `json:"attack"`
	SlowBodies int           `json:"slowBodies"`
	Replays    int           `json:"replays"`
	ManyHeads  int           `json:"manyHeads"`
	Attacks    []string      `json:"attacks"`
	Nice       int           `json:"nice"`
}

// soakSpoils is what the attacker process answers on stdout when its
// attacks have stopped: every answer it got, by actor and status, and the
// many-head commits the gateway acknowledged (the soak checks them after
// its restart like the honest ones).
type soakSpoils struct {
	Statuses       map[string]map[int]int `json:"statuses"`
	FiveXX         int                    `json:"fiveXX"`
	Samples        []string               `json:"samples,omitempty"`
	Failures       []string               `json:"failures,omitempty"`
	ManyHeadRounds []ManyHeadRound        `json:"manyHeadRounds,omitempty"`
	Acked          map[string][]string    `json:"acked,omitempty"`
}

// RunSoakAttacker is the attacker process of a soak (SoakConfig.Attacker):
// it reads its orders from in, lowers the priority of all its threads to
// the ordered niceness, runs every ordered attack until in reaches
// its end (the soak closes it when the attack phase ends; the phase's
// length plus a minute at most), waits for its attackers to stop, and
// writes what they got to out.
func RunSoakAttacker(ctx context.Context, in io.Reader, out io.Writer) error {
	var o soakOrders
	dec := json.NewDecoder(in)
	if err := dec.Decode(&o); err != nil {
		return fmt.Errorf("soak attacker: reading orders: %w", err)
	}
	if len(o.IssuerSeed) != ed25519.SeedSize || o.URL == "" {
		return errors.New("soak attacker: orders without a gateway or an issuer key")
	}
	if err := reniceSelf(o.Nice); err != nil {
		return fmt.Errorf("soak attacker: %w", err)
	}
	cfg := SoakConfig{Attack: o.Attack, SlowBodies: o.SlowBodies, Replays: o.Replays, ManyHeads: o.ManyHeads, Attacks: o.Attacks}
	cfg.setDefaults()
	s := &soak{cfg: cfg, rep: &SoakReport{}, acked: map[string][]string{}, status: map[string]map[int]int{},
		issuer: ed25519.NewKeyFromSeed(o.IssuerSeed), nodeID: o.NodeID, gw: &process{url: o.URL},
		httpc: newSoakHTTPClient()}
	// The attack ends when the soak closes our stdin, or a minute after
	// the phase should have ended if it never does.
	actx, stop := context.WithTimeout(ctx, cfg.Attack+time.Minute)
	defer stop()
	go func() {
		_, _ = io.Copy(io.Discard, dec.Buffered())
		_, _ = io.Copy(io.Discard, in)
		stop()
	}()
	var wg sync.WaitGroup
	s.attack(actx, &wg)
	<-actx.Done()
	wg.Wait()
	return json.NewEncoder(out).Encode(soakSpoils{Statuses: s.status, FiveXX: s.rep.FiveXX, Samples: s.samples,
		Failures: s.rep.Failures, ManyHeadRounds: s.rep.ManyHeadRounds, Acked: s.acked})
}

// attackerProc is a running attacker process.
type attackerProc struct {
	cmd    *exec.Cmd
	stdin  io.WriteCloser
	stdout bytes.Buffer
	stderr bytes.Buffer
}

// startAttacker starts the attacker process and sends it its orders (it
// lowers its own priority to cfg.AttackerNice before it attacks); the
// attack runs until finish.
func (s *soak) startAttacker() (*attackerProc, error) {
	a := &attackerProc{cmd: exec.Command(s.cfg.Attacker[0], s.cfg.Attacker[1:]...)}
	a.cmd.Stdout, a.cmd.Stderr = &a.stdout, &a.stderr
	stdin, err := a.cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	a.stdin = stdin
	if err := a.cmd.Start(); err != nil {
		return nil, fmt.Errorf("starting the attacker process %q: %w", s.cfg.Attacker, err)
	}
	o := soakOrders{URL: s.gw.url, NodeID: s.nodeID, IssuerSeed: s.issuer.Seed(), Attack: s.cfg.Attack,
		SlowBodies: s.cfg.SlowBodies, Replays: s.cfg.Replays, ManyHeads: s.cfg.ManyHeads, Attacks: s.cfg.Attacks,
		Nice: s.cfg.AttackerNice}
	if err := json.NewEncoder(stdin).Encode(o); err != nil {
		_ = a.cmd.Process.Kill()
		_ = a.cmd.Wait()
		return nil, fmt.Errorf("sending the attacker its orders: %w", err)
	}
	return a, nil
}

// finish ends the attack (closes the process's stdin), waits for the
// process and merges what its attackers got into the soak's report.
func (s *soak) finish(a *attackerProc) error {
	_ = a.stdin.Close()
	if err := a.cmd.Wait(); err != nil {
		return fmt.Errorf("attacker process: %w: %s", err, tail(a.stderr.String(), 2000))
	}
	var sp soakSpoils
	if err := json.Unmarshal(a.stdout.Bytes(), &sp); err != nil {
		return fmt.Errorf("attacker process: reading its answer: %w: %s", err, tail(a.stderr.String(), 2000))
	}
	s.mu.Lock()
	for actor, byStatus := range sp.Statuses {
		m := s.status[actor]
		if m == nil {
			m = map[int]int{}
			s.status[actor] = m
		}
		for st, n := range byStatus {
			m[st] += n
		}
	}
	s.rep.FiveXX += sp.FiveXX
	for _, x := range sp.Samples {
		if len(s.samples) < 20 {
			s.samples = append(s.samples, x)
		}
	}
	s.rep.ManyHeadRounds = append(s.rep.ManyHeadRounds, sp.ManyHeadRounds...)
	for repo, ids := range sp.Acked {
		s.acked[repo] = append(s.acked[repo], ids...)
	}
	s.mu.Unlock()
	for _, f := range sp.Failures {
		s.failf("attacker process: %s", f)
	}
	return nil
}

func tail(s string, n int) string {
	if len(s) > n {
		return "..." + s[len(s)-n:]
	}
	return s
}

// reniceSelf gives every thread of this process niceness nice (raising
// niceness needs no privilege). On Linux niceness belongs to a thread and
// a new thread takes its creator's, so once every thread has it, every
// later one does too; a thread started during a pass is caught by the
// next, until a pass finds them all at nice. (Lowering one thread's
// priority in the soak and starting the child from it was tried: the Go
// runtime may keep that thread, the main one, parked forever at the lower
// priority instead of ending it.)
func reniceSelf(nice int) error {
	if runtime.GOOS != "linux" {
		// Elsewhere niceness may be the process's, and no /proc.
		return errors.New("a niced attacker process needs Linux (per-thread niceness); run the attackers in-process")
	}
	for range 100 {
		tasks, err := os.ReadDir("/proc/self/task")
		if err != nil {
			return err
		}
		for _, t := range tasks {
			tid, err := strconv.Atoi(t.Name())
			if err != nil {
				continue
			}
			// A thread that ended since the listing is no error.
			if err := syscall.Setpriority(syscall.PRIO_PROCESS, tid, nice); err != nil && !errors.Is(err, syscall.ESRCH) {
				return fmt.Errorf("setpriority %d on thread %d: %w", nice, tid, err)
			}
		}
		if lo, hi, ok := niceness(os.Getpid()); ok && lo == nice && hi == nice {
			return nil
		}
	}
	return fmt.Errorf("threads kept starting at another niceness than %d", nice)
}

// niceness returns the lowest and highest niceness of pid's threads
// (/proc/PID/task/TID/stat, field 19), or ok false when none was read.
func niceness(pid int) (lo, hi int, ok bool) {
	tasks, err := os.ReadDir(fmt.Sprintf("/proc/%d/task", pid))
	if err != nil {
		return 0, 0, false
	}
	for _, t := range tasks {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/task/%s/stat", pid, t.Name()))
		if err != nil {
			continue
		}
		i := bytes.LastIndexByte(b, ')')
		if i < 0 {
			continue
		}
		f := strings.Fields(string(b[i+1:]))
		if len(f) < 17 {
			continue
		}
		n, err := strconv.Atoi(f[16])
		if err != nil {
			continue
		}
		if !ok {
			lo, hi, ok = n, n, true
		}
		lo, hi = min(lo, n), max(hi, n)
	}
	return lo, hi, ok
}
