package main

import (
	"bytes"
	"context"
	"encoding/hex"
	"fmt"
	"net"
	"os"
	"runtime"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/goat-gateway/goat-gateway/client"
	"github.com/goat-gateway/goat-gateway/core"
)

// fleet is a set of SSE subscribers to one repository, and the commits
// whose arrival they time. Every commit to be timed is signed before the
// first subscriber connects, so the id -> sample table is read-only while
// streams run.
type fleet struct {
	g     *gateway
	repo  string
	base  time.Time
	index map[core.CommitID]int
	// Per sample: how many subscribers must see it, how many did, and a
	// channel closed when the last of them did.
	expect    []atomic.Int32
	delivered []atomic.Int32
	done      []chan struct{}

	// open and match, when set, subscribe the fleet to another server
	// than the gateway (a peer such as Centrifugo): open dials stream i and
	// returns it once it is live; match returns the sample an event
	// carries. Unset, the fleet subscribes to g's /v1/events and matches
	// commit ids.
	open  func(ctx context.Context, i int) (*sseStream, error)
	match func(ev sseEvent) (int, bool)

	mu      sync.Mutex
	subs    []*subscriber
	apis    map[int]*client.Client // by subject
	pollers []ssePoller            // read the live streams, one per core
	poller  pollerKind             // which kind of pollers
	added   int                    // streams given to the pollers
	closing atomic.Bool
	dropped atomic.Int64
}

type subscriber struct {
	// recv is per sample: nanoseconds since fleet.base, 0 when not seen.
	// Atomic because a late event may land while a timed-out sample is
	// being read.
	recv []atomic.Int64
}

func newFleet(g *gateway, repo string, samples []signed) *fleet {
	f := &fleet{g: g, repo: repo, base: time.Now(), index: make(map[core.CommitID]int, len(samples)),
		expect: make([]atomic.Int32, len(samples)), delivered: make([]atomic.Int32, len(samples)),
		done: make([]chan struct{}, len(samples)), apis: map[int]*client.Client{}}
	for i, s := range samples {
		f.index[s.c.ID] = i
		f.done[i] = make(chan struct{})
	}
	return f
}

// streamsPerToken stays under the gateway's default limit of concurrent
// streams per subject (64).
const streamsPerToken = 50

// fanoutSpareFDs are the descriptors each process keeps for other things
// than streams (listeners, log files, HTTP clients).
const fanoutSpareFDs = 100

// loopbackSources is how many 127.0.0.x source addresses the streams
// spread over, so that no address runs out of ephemeral ports.
const loopbackSources = 16

// grow opens streams until the fleet has n, with parallel dials at once,
// and returns the number that failed and the first error.
func (f *fleet) grow(ctx context.Context, n, parallel int) (int, error) {
	f.mu.Lock()
	have := len(f.subs)
	f.mu.Unlock()
	if n <= have {
		return 0, nil
	}
	var next atomic.Int64
	next.Store(int64(have))
	var failed atomic.Int64
	var firstErr atomic.Value
	var wg sync.WaitGroup
	for range parallel {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1) - 1)
				if i >= n || ctx.Err() != nil {
					return
				}
				if err := f.connect(ctx, i); err != nil {
					failed.Add(1)
					firstErr.CompareAndSwap(nil, err)
				}
			}
		}()
	}
	wg.Wait()
	err, _ := firstErr.Load().(error)
	return int(failed.Load()), err
}

// api returns the client of stream i's subject: one subject per
// streamsPerToken streams.
func (f *fleet) api(i int) (*client.Client, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	api, ok := f.apis[i/streamsPerToken]
	if !ok {
		var err error
		if api, err = newAPI(nil, f.g.URL, f.g.Token(fmt.Sprintf("sse-%d", i/streamsPerToken))); err != nil {
			return nil, err
		}
		f.apis[i/streamsPerToken] = api
	}
	return api, nil
}

// connect opens stream i and waits for its `ready` event, so that once
// grow returns every stream is live.
func (f *fleet) connect(ctx context.Context, i int) error {
	if f.open != nil {
		s, err := f.open(ctx, i)
		if err != nil {
			return err
		}
		return f.add(s)
	}
	src := net.IPv4(127, 0, 0, byte(1+i%loopbackSources))
	api, err := f.api(i)
	if err != nil {
		return err
	}
	req, err := api.NewEventsRequest(ctx, []string{f.repo}, "")
	if err != nil {
		return err
	}
	s, err := dialSSE(ctx, f.g.Addr, src, req)
	if err != nil {
		return err
	}
	_ = s.conn.SetReadDeadline(time.Now().Add(60 * time.Second))
	for {
		ev, err := s.Next()
		if err != nil {
			s.Close()
			return fmt.Errorf("waiting for ready: %w", err)
		}
		if ev.Name == "ready" {
			break
		}
	}
	_ = s.conn.SetReadDeadline(time.Time{})
	return f.add(s)
}

// add makes a live stream one of the fleet's subscribers: one of the
// fleet's pollers reads it from now on.
func (f *fleet) add(s *sseStream) error {
	sub := &subscriber{recv: make([]atomic.Int64, len(f.done))}
	f.mu.Lock()
	if f.pollers == nil {
		for range runtime.GOMAXPROCS(0) {
			pl, err := newSSEPoller(f.poller)
			if err != nil {
				f.mu.Unlock()
				s.Close()
				return err
			}
			f.pollers = append(f.pollers, pl)
		}
	}
	f.added++
	pl := f.pollers[f.added%len(f.pollers)]
	f.mu.Unlock()
	err := pl.add(s, func(ev sseEvent, at time.Time) { f.deliver(sub, ev, at) }, func(error) {
		if !f.closing.Load() {
			f.dropped.Add(1)
		}
	})
	if err != nil {
		return err
	}
	f.mu.Lock()
	f.subs = append(f.subs, sub)
	f.mu.Unlock()
	return nil
}

var idField = []byte(`"id":"`)

// deliver times ev, an event that one subscriber's stream read at at. The
// commit id is found textually: the event is canonical JSON
// {"commit":{...,"id":"<hex>",...},"repo":...}, and the benchmark's data
// objects have no "id" field.
func (f *fleet) deliver(sub *subscriber, ev sseEvent, at time.Time) {
	now := int64(at.Sub(f.base))
	match := f.match
	if match == nil {
		match = f.commitSample
	}
	i, ok := match(ev)
	if !ok || i < 0 || i >= len(sub.recv) || !sub.recv[i].CompareAndSwap(0, now) {
		return
	}
	if f.delivered[i].Add(1) == f.expect[i].Load() {
		close(f.done[i])
	}
}

// commitSample returns the sample of a gateway commit event.
func (f *fleet) commitSample(ev sseEvent) (int, bool) {
	if ev.Name != "commit" {
		return 0, false
	}
	j := bytes.Index(ev.Data, idField)
	if j < 0 || len(ev.Data) < j+len(idField)+64 {
		return 0, false
	}
	var id core.CommitID
	if _, err := hex.Decode(id[:], ev.Data[j+len(idField):j+len(idField)+64]); err != nil {
		return 0, false
	}
	i, ok := f.index[id]
	return i, ok
}

func (f *fleet) size() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.subs)
}

// close ends every stream.
func (f *fleet) close() {
	f.closing.Store(true)
	f.mu.Lock()
	pollers := f.pollers
	f.pollers = nil
	f.mu.Unlock()
	for _, pl := range pollers {
		pl.close()
	}
}

// sampleTimes is what the writer saw of one timed commit.
type sampleTimes struct {
	send, ack int64 // nanoseconds since fleet.base
	complete  bool  // every subscriber saw it before the timeout
}

// send pushes sample i alone, as a client's single commit, and waits until
// every current subscriber has it or timeout passes.
func (f *fleet) send(ctx context.Context, api *client.Client, i int, s signed, timeout time.Duration) (sampleTimes, error) {
	return f.publish(ctx, i, func(ctx context.Context) error { return push(ctx, api, f.repo, []signed{s}) }, timeout)
}

// publish times sample i as send does, sent by do (a push to the gateway,
// a publish to a peer).
func (f *fleet) publish(ctx context.Context, i int, do func(context.Context) error, timeout time.Duration) (sampleTimes, error) {
	n := f.size()
	f.expect[i].Store(int32(n))
	var st sampleTimes
	st.send = int64(time.Since(f.base))
	err := do(ctx)
	st.ack = int64(time.Since(f.base))
	if err != nil {
		return st, err
	}
	if n == 0 {
		st.complete = true
		return st, nil
	}
	t := time.NewTimer(timeout)
	defer t.Stop()
	select {
	case <-f.done[i]:
		st.complete = true
	case <-t.C:
	case <-ctx.Done():
		return st, ctx.Err()
	}
	return st, nil
}

// latencies collects, for the given samples, the per-(commit, subscriber)
// latency from send and from ack, the per-commit time until the last
// subscriber had it, and how many deliveries were missing.
func (f *fleet) latencies(samples []int, times []sampleTimes) (fromSend, fromAck, all []float64, lost int) {
	f.mu.Lock()
	subs := append([]*subscriber(nil), f.subs...)
	f.mu.Unlock()
	for _, i := range samples {
		st := times[i]
		last := int64(0)
		n := int(f.expect[i].Load())
		seen := 0
		for _, s := range subs[:min(n, len(subs))] {
			r := s.recv[i].Load()
			if r == 0 {
				continue
			}
			seen++
			fromSend = append(fromSend, ms(time.Duration(r-st.send)))
			fromAck = append(fromAck, ms(time.Duration(r-st.ack)))
			last = max(last, r)
		}
		lost += n - seen
		if seen == n && n > 0 {
			all = append(all, ms(time.Duration(last-st.send)))
		}
	}
	return fromSend, fromAck, all, lost
}

// LiveData is the live-latency scenario's figures.
type LiveData struct {
	Points []LivePoint `json:"points"`
}

// LivePoint is one subscriber count. Latencies are in milliseconds.
type LivePoint struct {
	Subscribers int `json:"subscribers"`
	Samples     int `json:"samples"`
	// FromSend: from the moment the writer sends the commit (POST) to the
	// moment a subscriber has parsed its event; it includes the durable
	// write (fsync) and is what an application sees end to end.
	FromSend Summary `json:"fromSendMs"`
	// FromAck: from the moment the writer has the gateway's acceptance
	// (the POST's response) to the event; negative when the event beat the
	// response, as it may: the gateway publishes before it answers.
	FromAck Summary `json:"fromAckMs"`
	// All: per commit, from send until the last subscriber had it.
	All Summary `json:"allMs"`
	// Write: the POST round trip (verify, fsync, answer).
	Write   Summary `json:"writeMs"`
	Lost    int     `json:"lost"`
	Dropped int     `json:"dropped"`
	// CPU time per commit (ms) of the gateway and of goat-bench (whose
	// subscribers parse every event), over the timed commits: on a small
	// machine they compete for the same cores.
	GatewayCPUms float64 `json:"gatewayCpuMsPerCommit"`
	ToolCPUms    float64 `json:"toolCpuMsPerCommit"`
}

const liveWarmup = 5

func (e *env) runLive(ctx context.Context, r *Result) (any, error) {
	g, err := e.newGateway(ctx, "live")
	if err != nil {
		return nil, err
	}
	defer g.Stop()
	c := newHTTPClient(4, nil)
	w, err := newSigner(ctx, c, g, "writer")
	if err != nil {
		return nil, err
	}
	const repo = "live"
	if err := createRepo(ctx, w.api, repo); err != nil {
		return nil, err
	}
	per := e.cfg.LiveSamples + liveWarmup
	all, err := w.commits(repo, "live-", 0, per*len(e.cfg.LiveSubs))
	if err != nil {
		return nil, err
	}
	r.Setup = []string{
		fmt.Sprintf("one goat-gateway process (dev mode, real fsync) on 127.0.0.1; subscribers and writer in the goat-bench process on the same %d cores", e.machine.Cores),
		fmt.Sprintf("subscribers: %v, each a separate HTTP/1.1 connection to GET /v1/events?repo=%s, all open and past their `ready` event before the first commit", e.cfg.LiveSubs, repo),
		fmt.Sprintf("writer: %d single-commit pushes (POST /v1/repos/%s/commits) per subscriber count, one at a time, the next sent once every subscriber had the previous (or after 2 s); the first %d are warm-up and not counted", per, repo, liveWarmup),
		"latency = time from the writer sending a commit to a subscriber having parsed its event (it includes the fsync of the write); also reported from the writer receiving the acknowledgement",
		e.cfg.Poller.setup(),
	}
	var data LiveData
	for k, n := range e.cfg.LiveSubs {
		samples := all[k*per : (k+1)*per]
		f := newFleet(g, repo, samples)
		f.poller = e.cfg.Poller
		failed, ferr := f.grow(ctx, n, e.cfg.Parallel)
		if failed > 0 {
			f.close()
			return data, fmt.Errorf("%d of %d subscribers could not connect: %v", failed, n, ferr)
		}
		times := make([]sampleTimes, len(samples))
		var writes []float64
		var gcpu0, tcpu0 float64
		for i, s := range samples {
			if i == liveWarmup {
				gcpu0, tcpu0 = procCPU(strconv.Itoa(g.PID()), false), procCPU("self", false)
			}
			st, err := f.send(ctx, w.api, i, s, 2*time.Second)
			if err != nil {
				f.close()
				return data, err
			}
			times[i] = st
			if i >= liveWarmup {
				writes = append(writes, ms(time.Duration(st.ack-st.send)))
			}
		}
		timed := float64(len(samples) - liveWarmup)
		gcpu := (procCPU(strconv.Itoa(g.PID()), false) - gcpu0) / timed * 1000
		tcpu := (procCPU("self", false) - tcpu0) / timed * 1000
		idx := make([]int, 0, len(samples)-liveWarmup)
		for i := liveWarmup; i < len(samples); i++ {
			idx = append(idx, i)
		}
		fromSend, fromAck, allMs, lost := f.latencies(idx, times)
		f.close()
		p := LivePoint{Subscribers: n, Samples: len(idx), FromSend: Summarize(fromSend), FromAck: Summarize(fromAck),
			All: Summarize(allMs), Write: Summarize(writes), Lost: lost, Dropped: int(f.dropped.Load()), GatewayCPUms: gcpu, ToolCPUms: tcpu}
		data.Points = append(data.Points, p)
		e.log.Info("live", "subscribers", n, "p50_ms", p.FromSend.P50, "p99_ms", p.FromSend.P99, "all_p99_ms", p.All.P99, "write_p50_ms", p.Write.P50, "lost", lost,
			"gateway_cpu_ms_per_commit", fmt.Sprintf("%.2f", gcpu), "tool_cpu_ms_per_commit", fmt.Sprintf("%.2f", tcpu))
	}
	for _, p := range data.Points {
		if p.Subscribers == 1000 {
			r.Targets = append(r.Targets, below(targetLive, p.FromSend.P99, 10, "ms",
				fmt.Sprintf("p99 %.2f ms from send (incl. fsync); %.2f ms from acknowledgement; %d lost", p.FromSend.P99, p.FromAck.P99, p.Lost)))
		}
	}
	return data, nil
}

// FanoutData is the fan-out scenario's figures.
type FanoutData struct {
	Steps []FanoutStep `json:"steps"`
	// BaselineRSS is the gateway's resident memory before any stream.
	BaselineRSS int64 `json:"baselineRSS"`
	// BytesPerSubscriber is the slope of a least-squares line through
	// (subscribers, RSS) over the steps.
	BytesPerSubscriber float64 `json:"bytesPerSubscriber"`
	Held               int     `json:"held"`
	Attempted          int     `json:"attempted"`
	ConnectErrors      int     `json:"connectErrors"`
	FirstError         string  `json:"firstError,omitempty"`
	OpenFilesLimit     uint64  `json:"openFilesLimit"`
}

// FanoutStep is the state at one subscriber count.
type FanoutStep struct {
	Subscribers       int     `json:"subscribers"`
	ServerSubscribers int     `json:"serverSubscribers"`
	RSS               int64   `json:"rss"`
	HeapInuse         int64   `json:"heapInuse"`
	Goroutines        int     `json:"goroutines"`
	PerSubscriber     float64 `json:"perSubscriberBytes"` // (RSS - baseline) / subscribers
	ConnectSeconds    float64 `json:"connectSeconds"`
	// DeliverAll: per commit, from send until every subscriber had it (ms).
	DeliverAll Summary `json:"deliverAllMs"`
	// PerSubscriber latency of the same commits (ms).
	Latency   Summary `json:"latencyMs"`
	Lost      int     `json:"lost"`
	Dropped   int     `json:"dropped"`
	ToolRSS   int64   `json:"toolRSS"`
	Commits   int     `json:"commits"`
	TimedOuts int     `json:"timedOut"`
	// CPU time per timed commit (ms) of the gateway and of goat-bench
	// (whose subscribers read and parse every event), as in LivePoint.
	GatewayCPUms float64 `json:"gatewayCpuMsPerCommit"`
	ToolCPUms    float64 `json:"toolCpuMsPerCommit"`
}

func (e *env) runFanout(ctx context.Context, r *Result) (any, error) {
	g, err := e.newGateway(ctx, "fanout")
	if err != nil {
		return nil, err
	}
	defer g.Stop()
	c := newHTTPClient(4, nil)
	w, err := newSigner(ctx, c, g, "writer")
	if err != nil {
		return nil, err
	}
	const repo = "fanout"
	if err := createRepo(ctx, w.api, repo); err != nil {
		return nil, err
	}
	k := e.cfg.FanoutCommits
	// Each stream costs one descriptor in this process and one in the
	// gateway; both need a few more for everything else.
	limit := raiseOpenFiles(1 << 16)
	var steps []int
	var capped []int
	for _, n := range e.cfg.FanoutSteps {
		if lim := int(limit) - fanoutSpareFDs; n > lim {
			capped = append(capped, n)
			n = lim
		}
		if len(steps) == 0 || n > steps[len(steps)-1] {
			steps = append(steps, n)
		}
	}
	samples, err := w.commits(repo, "fan-", 0, (k+1)*len(steps)+1)
	if err != nil {
		return nil, err
	}
	data := FanoutData{Attempted: steps[len(steps)-1], OpenFilesLimit: limit}
	if len(capped) > 0 {
		r.Notes = append(r.Notes, fmt.Sprintf("the open-files limit here is %d and could not be raised (raising the hard limit needs CAP_SYS_RESOURCE), so the ramp stopped at %s instead of %v; the 20,000 figure is projected from the last step with the measured slope", limit, commas(int64(steps[len(steps)-1])), capped))
	}
	r.Setup = []string{
		fmt.Sprintf("one goat-gateway process (fresh, dev mode); subscribers are raw HTTP/1.1 streams from the goat-bench process, spread over %d loopback source addresses (127.0.0.1-%d), one subject (token) per %d streams (the gateway allows 64 per subject)", loopbackSources, loopbackSources, streamsPerToken),
		fmt.Sprintf("ramp: %v subscribers; at each step, once every stream has its `ready` event: the gateway's VmRSS (/proc/PID/status), heap and goroutines (/metrics), then %d single commits, each timed until every subscriber had it (timeout 60 s)", steps, k),
		"memory per subscriber = (RSS at the step - RSS before any stream) / subscribers; the slope of a least-squares fit over the steps is reported as well",
		fmt.Sprintf("open-files limit of both processes: %d", data.OpenFilesLimit),
		e.cfg.Poller.setup(),
	}
	// Let the gateway settle and take its baseline.
	if err := push(ctx, w.api, repo, samples[len(samples)-1:]); err != nil {
		return nil, err
	}
	if data.BaselineRSS, _, err = g.Memory(); err != nil {
		return nil, err
	}
	f := newFleet(g, repo, samples)
	f.poller = e.cfg.Poller
	defer f.close()
	var xs, ys []float64
	for si, n := range steps {
		t0 := time.Now()
		failed, ferr := f.grow(ctx, n, e.cfg.Parallel)
		connect := time.Since(t0)
		data.ConnectErrors += failed
		if ferr != nil && data.FirstError == "" {
			data.FirstError = ferr.Error()
		}
		held := f.size()
		step := FanoutStep{Subscribers: held, ConnectSeconds: connect.Seconds(), Commits: k}
		// One commit first, so that every stream has carried an event (as
		// in steady state) before memory is read.
		if _, err := f.send(ctx, w.api, si*(k+1), samples[si*(k+1)], 60*time.Second); err != nil {
			return data, err
		}
		if step.RSS, _, err = g.Memory(); err != nil {
			return data, err
		}
		if m, err := g.Metrics(); err == nil {
			step.ServerSubscribers = int(m["goat_sse_subscribers"])
			step.HeapInuse = int64(m["go_memstats_heap_inuse_bytes"])
			step.Goroutines = int(m["go_goroutines"])
		}
		step.ToolRSS, _, _ = procMemory(os.Getpid())
		if held > 0 {
			step.PerSubscriber = float64(step.RSS-data.BaselineRSS) / float64(held)
		}
		times := make([]sampleTimes, len(samples))
		var idx []int
		gcpu0, tcpu0 := procCPU(strconv.Itoa(g.PID()), false), procCPU("self", false)
		for j := 1; j <= k; j++ {
			i := si*(k+1) + j
			st, err := f.send(ctx, w.api, i, samples[i], 60*time.Second)
			if err != nil {
				return data, err
			}
			if !st.complete {
				step.TimedOuts++
			}
			times[i] = st
			idx = append(idx, i)
		}
		step.GatewayCPUms = (procCPU(strconv.Itoa(g.PID()), false) - gcpu0) / float64(k) * 1000
		step.ToolCPUms = (procCPU("self", false) - tcpu0) / float64(k) * 1000
		lat, _, allMs, lost := f.latencies(idx, times)
		step.DeliverAll, step.Latency, step.Lost = Summarize(allMs), Summarize(lat), lost
		step.Dropped = int(f.dropped.Load())
		data.Steps = append(data.Steps, step)
		data.Held = max(data.Held, held)
		xs, ys = append(xs, float64(held)), append(ys, float64(step.RSS))
		e.log.Info("fanout", "subscribers", held, "server_subscribers", step.ServerSubscribers, "rss_mib", step.RSS>>20,
			"per_sub_kib", fmt.Sprintf("%.1f", step.PerSubscriber/1024), "deliver_all_p50_ms", step.DeliverAll.P50,
			"connect_s", fmt.Sprintf("%.1f", step.ConnectSeconds), "failed", failed,
			"gateway_cpu_ms_per_commit", fmt.Sprintf("%.1f", step.GatewayCPUms), "tool_cpu_ms_per_commit", fmt.Sprintf("%.1f", step.ToolCPUms))
		if failed > 0 {
			break // the node (or this machine) holds no more
		}
	}
	if s, _, ok := LinearFit(xs, ys); ok {
		data.BytesPerSubscriber = s
	}
	last := data.Steps[len(data.Steps)-1]
	const mib = 1 << 20
	if last.Subscribers >= 20000-fanoutSpareFDs*2 && last.Subscribers < 20000 {
		proj := float64(last.RSS) + float64(20000-last.Subscribers)*max(data.BytesPerSubscriber, 0)
		r.Targets = append(r.Targets, below(targetFanoutMemory, proj/mib, 400, "MiB RSS",
			fmt.Sprintf("%s subscribers held (the open-files limit); gateway RSS %.0f MiB, %.0f MiB at 20,000 with the measured %.1f KiB per subscriber", commas(int64(last.Subscribers)), float64(last.RSS)/mib, proj/mib, data.BytesPerSubscriber/1024)))
	} else if last.Subscribers >= 20000 {
		r.Targets = append(r.Targets, below(targetFanoutMemory, float64(last.RSS)/mib, 400, "MiB RSS",
			fmt.Sprintf("%s subscribers held; gateway RSS %.0f MiB (%.1f KiB per subscriber)", commas(int64(last.Subscribers)), float64(last.RSS)/mib, last.PerSubscriber/1024)))
	} else {
		// Below 20,000 the target is judged by extrapolating the measured
		// slope, and said so.
		proj := float64(data.BaselineRSS) + 20000*data.BytesPerSubscriber
		t := below(targetFanoutMemory, proj/mib, 400, "MiB RSS",
			fmt.Sprintf("only %s subscribers were run here; extrapolated from %.1f KiB per subscriber: %.0f MiB", commas(int64(last.Subscribers)), data.BytesPerSubscriber/1024, proj/mib))
		t.Name += " (extrapolated)"
		r.Targets = append(r.Targets, t)
	}
	judged := false
	for _, st := range data.Steps {
		if st.Subscribers >= 10000-fanoutSpareFDs*2 && !judged {
			judged = true
			r.Targets = append(r.Targets, below(targetFanoutDelivery, st.DeliverAll.P50, 60, "ms",
				fmt.Sprintf("p50 %.1f ms (p99 %.1f ms) from send until all %s subscribers had the commit, %d commits", st.DeliverAll.P50, st.DeliverAll.P99, commas(int64(st.Subscribers)), st.DeliverAll.N)))
		}
	}
	if !judged {
		r.Notes = append(r.Notes, fmt.Sprintf("the delivery target is for 10,000 subscribers; this run reached %s, so it is not judged", commas(int64(last.Subscribers))))
	}
	if data.Held < data.Attempted {
		return data, fmt.Errorf("held %d of %d subscribers: %s", data.Held, data.Attempted, data.FirstError)
	}
	if last.Dropped > 0 {
		r.Notes = append(r.Notes, fmt.Sprintf("%d streams were dropped by the gateway during the ramp (slow consumers are cut off by design)", last.Dropped))
	}
	return data, nil
}
