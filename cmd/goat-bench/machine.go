package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// Machine describes where a run happened.
type Machine struct {
	CPU         string  `json:"cpu"`
	Cores       int     `json:"cores"`
	MemoryGiB   float64 `json:"memoryGiB"`
	Kernel      string  `json:"kernel"`
	Go          string  `json:"go"`
	Node        string  `json:"node,omitempty"`
	Commit      string  `json:"commit,omitempty"`
	OpenFiles   uint64  `json:"openFilesLimit"`
	Virtualized string  `json:"virtualized,omitempty"`
}

func describeMachine(ctx context.Context, root string) Machine {
	m := Machine{Cores: runtime.NumCPU(), Go: runtime.Version()}
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
				m.CPU = strings.TrimSpace(v)
				break
			}
		}
		if strings.Contains(string(b), " hypervisor") {
			m.Virtualized = "yes (hypervisor flag set)"
		}
	}
	if b, err := os.ReadFile("/proc/meminfo"); err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			if f := strings.Fields(line); len(f) >= 2 && f[0] == "MemTotal:" {
				kb, _ := strconv.ParseFloat(f[1], 64)
				m.MemoryGiB = kb / (1 << 20)
			}
		}
	}
	var u syscall.Utsname
	if syscall.Uname(&u) == nil {
		m.Kernel = utsString(u.Sysname[:]) + " " + utsString(u.Release[:]) + " " + utsString(u.Machine[:])
	}
	if out, err := exec.CommandContext(ctx, "node", "--version").Output(); err == nil {
		m.Node = strings.TrimSpace(string(out))
	}
	// Read-only: which commit was measured, and whether the tree had
	// changes on top of it.
	if out, err := exec.CommandContext(ctx, "git", "-C", root, "rev-parse", "--short=12", "HEAD").Output(); err == nil {
		m.Commit = strings.TrimSpace(string(out))
		if st, err := exec.CommandContext(ctx, "git", "-C", root, "status", "--porcelain", "--untracked-files=no").Output(); err == nil && len(strings.TrimSpace(string(st))) > 0 {
			m.Commit += " (with uncommitted changes)"
		}
	}
	var rl syscall.Rlimit
	if syscall.Getrlimit(syscall.RLIMIT_NOFILE, &rl) == nil {
		m.OpenFiles = rl.Cur
	}
	return m
}

func utsString(b []int8) string {
	var s []byte
	for _, c := range b {
		if c == 0 {
			break
		}
		s = append(s, byte(c))
	}
	return string(s)
}

// raiseOpenFiles lifts the open-files limit to want (raising the hard
// limit works as root) or else to the hard limit, and returns the limit in
// force. Child processes (the gateway) inherit it.
func raiseOpenFiles(want uint64) uint64 {
	var rl syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &rl); err != nil {
		return 0
	}
	if rl.Cur >= want {
		return rl.Cur
	}
	if rl.Max < want {
		if syscall.Setrlimit(syscall.RLIMIT_NOFILE, &syscall.Rlimit{Cur: want, Max: want}) == nil {
			return want
		}
	}
	rl.Cur = min(want, rl.Max)
	_ = syscall.Setrlimit(syscall.RLIMIT_NOFILE, &rl)
	_ = syscall.Getrlimit(syscall.RLIMIT_NOFILE, &rl)
	return rl.Cur
}

// Load says how busy the machine was while a scenario ran: other
// engineers share it, so every figure comes with this.
type Load struct {
	Cores int `json:"cores"`
	// LoadAvg1 is /proc/loadavg's 1-minute average at the start and the
	// end.
	LoadAvgStart float64 `json:"loadAvgStart"`
	LoadAvgEnd   float64 `json:"loadAvgEnd"`
	// BusyCores is how many cores were busy on average (from /proc/stat),
	// OursCores how many of them our processes used (this tool, the
	// gateway, the peer), OthersCores the rest: everybody else.
	BusyCores   float64 `json:"busyCores"`
	OursCores   float64 `json:"oursCores"`
	OthersCores float64 `json:"othersCores"`
	Seconds     float64 `json:"seconds"`
	// FsyncMs is a probe of the disk the gateway writes to: 4 KiB written
	// and fsynced, 20 times at the start and 20 at the end of the scenario.
	// Other users' disk traffic shows up here, as CPU contention shows up
	// in OthersCores.
	FsyncMs Summary `json:"fsyncMs"`
}

// String says it in a sentence fragment.
func (l Load) String() string {
	s := fmt.Sprintf("load average %.1f -> %.1f; of %d cores, %.2f busy on average: %.2f by this benchmark (tool, gateway, peer), %.2f by other users",
		l.LoadAvgStart, l.LoadAvgEnd, l.Cores, l.BusyCores, l.OursCores, l.OthersCores)
	if l.FsyncMs.N > 0 {
		s += fmt.Sprintf("; disk probe, 4 KiB write + fsync: p50 %.2f ms, max %.1f ms", l.FsyncMs.P50, l.FsyncMs.Max)
	}
	return s
}

// fsyncProbe writes and fsyncs 4 KiB n times in dir and returns the
// latencies in ms. It stops early after 2 s, so a stalled disk costs the
// run little (and the stall is in the figures).
func fsyncProbe(dir string, n int) []float64 {
	fh, err := os.CreateTemp(dir, "fsync-probe-")
	if err != nil {
		return nil
	}
	defer os.Remove(fh.Name())
	defer fh.Close()
	buf := make([]byte, 4096)
	var out []float64
	start := time.Now()
	for i := range n {
		buf[0] = byte(i)
		t := time.Now()
		if _, err := fh.WriteAt(buf, int64(i)*4096); err != nil {
			break
		}
		if err := fh.Sync(); err != nil {
			break
		}
		out = append(out, ms(time.Since(t)))
		if time.Since(start) > 2*time.Second {
			break
		}
	}
	return out
}

// cpuMeter accounts CPU time of the whole machine and of our processes.
type cpuMeter struct {
	mu   sync.Mutex
	pids map[int]bool
}

func newCPUMeter() *cpuMeter { return &cpuMeter{pids: map[int]bool{}} }

// track adds a live child process (its time moves into our cutime when it
// is waited for, and untrack must be called then).
func (m *cpuMeter) track(pid int) {
	m.mu.Lock()
	m.pids[pid] = true
	m.mu.Unlock()
}

func (m *cpuMeter) untrack(pid int) {
	m.mu.Lock()
	delete(m.pids, pid)
	m.mu.Unlock()
}

type cpuSample struct {
	at         time.Time
	busy, ours float64 // seconds
	loadavg    float64
}

const clockTicks = 100 // USER_HZ on Linux

func (m *cpuMeter) sample() cpuSample {
	s := cpuSample{at: time.Now()}
	if b, err := os.ReadFile("/proc/stat"); err == nil {
		line, _, _ := strings.Cut(string(b), "\n")
		f := strings.Fields(line)
		if len(f) >= 8 && f[0] == "cpu" {
			var total, idle float64
			for i, x := range f[1:] {
				v, _ := strconv.ParseFloat(x, 64)
				if i >= 8 { // guest time is already in user
					break
				}
				total += v
				if i == 3 || i == 4 { // idle, iowait
					idle += v
				}
			}
			s.busy = (total - idle) / clockTicks
		}
	}
	s.ours = procCPU("self", true)
	m.mu.Lock()
	for pid := range m.pids {
		s.ours += procCPU(strconv.Itoa(pid), true)
	}
	m.mu.Unlock()
	if b, err := os.ReadFile("/proc/loadavg"); err == nil {
		if f := strings.Fields(string(b)); len(f) > 0 {
			s.loadavg, _ = strconv.ParseFloat(f[0], 64)
		}
	}
	return s
}

// procCPU returns utime+stime (and with children, cutime+cstime) of a
// process in seconds.
func procCPU(pid string, children bool) float64 {
	b, err := os.ReadFile("/proc/" + pid + "/stat")
	if err != nil {
		return 0
	}
	// The command name may contain spaces: fields start after the last ')'.
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return 0
	}
	f := strings.Fields(s[i+1:])
	// f[0] is state (field 3); utime is field 14 -> f[11].
	if len(f) < 15 {
		return 0
	}
	var t float64
	n := 2
	if children {
		n = 4
	}
	for j := 11; j < 11+n; j++ {
		v, _ := strconv.ParseFloat(f[j], 64)
		t += v
	}
	return t / clockTicks
}

// loadBetween summarizes the machine's load between two samples.
func loadBetween(a, b cpuSample) Load {
	secs := b.at.Sub(a.at).Seconds()
	l := Load{Cores: runtime.NumCPU(), LoadAvgStart: a.loadavg, LoadAvgEnd: b.loadavg, Seconds: secs}
	if secs <= 0 {
		return l
	}
	// /proc/stat counts in 10 ms ticks, per core: over short spans the
	// rates are coarse, so they are clamped to what the machine has.
	cores := float64(l.Cores)
	l.BusyCores = min(cores, max(0, (b.busy-a.busy)/secs))
	l.OursCores = min(l.BusyCores, max(0, (b.ours-a.ours)/secs))
	l.OthersCores = max(0, l.BusyCores-l.OursCores)
	return l
}
