package main

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"debug/buildinfo"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"time"
)

// The second peer: Centrifugo v6, a real-time messaging server in Go.
// bench/run.sh installs it (pinned there) from the Go module proxy into
// bench/.bin; goat-bench runs it on loopback with a configuration of its
// own making and compares its live delivery with goat-gateway's, both
// measured the same way, message by message in alternation.

// centrifugoChannel is the one channel every subscriber is in.
const centrifugoChannel = "live"

// centrifugoModule is the module bench/run.sh installs; the version is
// read from the binary's build information, so bench/run.sh is the one
// place it is pinned.
const centrifugoModule = "github.com/centrifugal/centrifugo/v6"

// centrifugoConfig is the server's configuration file (JSON, Centrifugo v6
// keys): loopback only, the in-memory engine with no history (delivery
// only, nothing kept: the peer at its lightest), the unidirectional SSE
// transport, the HTTP publish API behind apiKey, and connection tokens
// signed with secret (HS256) whose `channels` claim subscribes the
// connection server-side, as the unidirectional transports require.
func centrifugoConfig(port int, apiKey, secret string) ([]byte, error) {
	if port <= 0 || port > 65535 {
		return nil, fmt.Errorf("centrifugo port %d out of range", port)
	}
	if apiKey == "" || secret == "" {
		return nil, errors.New("centrifugo needs an API key and a token secret")
	}
	cfg := map[string]any{
		"http_server": map[string]any{"address": "127.0.0.1", "port": port},
		"log":         map[string]any{"level": "error"},
		"engine":      map[string]any{"type": "memory"},
		"usage_stats": map[string]any{"disabled": true},
		"health":      map[string]any{"enabled": true},
		"client": map[string]any{
			"token":           map[string]any{"hmac_secret_key": secret},
			"allowed_origins": []string{"http://127.0.0.1"},
		},
		"http_api": map[string]any{"key": apiKey},
		"uni_sse":  map[string]any{"enabled": true},
		// Channels without a namespace: no history, no presence, no
		// recovery (the defaults, said here so that the comparison's
		// terms are in the file).
		"channel": map[string]any{"without_namespace": map[string]any{
			"history_size": 0, "history_ttl": "0s", "presence": false, "force_recovery": false,
		}},
	}
	return json.MarshalIndent(cfg, "", "  ")
}

// centrifugoToken is a connection JWT (HS256) for sub, subscribed
// server-side to channels.
func centrifugoToken(secret, sub string, channels ...string) string {
	enc := base64.RawURLEncoding
	head := enc.EncodeToString([]byte(`{"alg":"HS256","typ":"JWT"}`))
	claims, _ := json.Marshal(map[string]any{"sub": sub, "channels": channels}) // strings only: cannot fail
	msg := head + "." + enc.EncodeToString(claims)
	mac := hmac.New(sha256.New, []byte(secret))
	mac.Write([]byte(msg))
	return msg + "." + enc.EncodeToString(mac.Sum(nil))
}

// centrifugoPublish is the body of a publish request (POST /api/publish)
// of sample i: the sample number first, so that a subscriber finds it
// without decoding, and the very commit JSON that goat-gateway's
// subscribers receive for the same sample, so that both servers carry the
// same bytes.
func centrifugoPublish(i int, commit []byte) []byte {
	b := make([]byte, 0, len(commit)+64)
	b = append(b, `{"channel":"`+centrifugoChannel+`","data":{"seq":`...)
	b = strconv.AppendInt(b, int64(i), 10)
	b = append(b, `,"commit":`...)
	b = append(b, commit...)
	return append(b, "}}"...)
}

var seqField = []byte(`"seq":`)

// centrifugoSample returns the sample a Centrifugo SSE message carries: a
// publication push is {"channel":...,"pub":{"data":{"seq":N,...}}}; the
// connect reply and pings have no "seq".
func centrifugoSample(ev sseEvent) (int, bool) {
	j := bytes.Index(ev.Data, seqField)
	if j < 0 || !bytes.Contains(ev.Data[:j], []byte(`"pub"`)) {
		return 0, false
	}
	rest := ev.Data[j+len(seqField):]
	k := 0
	for k < len(rest) && rest[k] >= '0' && rest[k] <= '9' {
		k++
	}
	n, err := strconv.Atoi(string(rest[:k]))
	if err != nil {
		return 0, false
	}
	return n, true
}

// centrifugoVersion reads the module version of a binary that go install
// built.
func centrifugoVersion(bin string) (string, error) {
	bi, err := buildinfo.ReadFile(bin)
	if err != nil {
		return "", err
	}
	if bi.Main.Path != centrifugoModule {
		return "", fmt.Errorf("%s is %s, not %s", bin, bi.Main.Path, centrifugoModule)
	}
	return bi.Main.Version, nil
}

// centrifugo is a Centrifugo process that the benchmark started.
type centrifugo struct {
	cmd     *exec.Cmd
	URL     string
	Addr    string
	apiKey  string
	secret  string
	stderr  *tailBuffer
	exited  chan struct{}
	waitErr error
}

// startCentrifugo writes a configuration into dir and runs bin with it on
// a free loopback port, and waits until its health endpoint answers.
func startCentrifugo(ctx context.Context, bin, dir string, meter *cpuMeter, log *slog.Logger) (*centrifugo, error) {
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	c := &centrifugo{Addr: net.JoinHostPort("127.0.0.1", strconv.Itoa(port)), apiKey: randomHex(16), secret: randomHex(32),
		stderr: &tailBuffer{max: 64 << 10}, exited: make(chan struct{})}
	c.URL = "http://" + c.Addr
	cfg, err := centrifugoConfig(port, c.apiKey, c.secret)
	if err != nil {
		return nil, err
	}
	path := filepath.Join(dir, "centrifugo.json")
	if err := os.WriteFile(path, cfg, 0o600); err != nil {
		return nil, err
	}
	c.cmd = exec.Command(bin, "--config", path)
	c.cmd.Dir = dir
	c.cmd.Stdout, c.cmd.Stderr = c.stderr, c.stderr
	c.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := c.cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", bin, err)
	}
	meter.track(c.cmd.Process.Pid)
	go func() {
		c.waitErr = c.cmd.Wait()
		meter.untrack(c.cmd.Process.Pid)
		close(c.exited)
	}()
	deadline := time.Now().Add(time.Minute)
	for {
		resp, err := http.Get(c.URL + "/health")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				break
			}
		}
		if time.Now().After(deadline) {
			c.Stop()
			return nil, fmt.Errorf("centrifugo not healthy within a minute: %v\n%s", err, c.stderr.String())
		}
		select {
		case <-c.exited:
			return nil, fmt.Errorf("centrifugo exited: %v\n%s", c.waitErr, c.stderr.String())
		case <-ctx.Done():
			c.Stop()
			return nil, ctx.Err()
		case <-time.After(5 * time.Millisecond):
		}
	}
	log.Debug("centrifugo started", "url", c.URL, "pid", c.PID())
	return c, nil
}

// freePort returns a loopback port that was free a moment ago (Centrifugo
// cannot listen on port 0 and say which port it got).
func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b) // crypto/rand.Read never fails
	return hex.EncodeToString(b)
}

// PID is the process id.
func (c *centrifugo) PID() int { return c.cmd.Process.Pid }

// Stop ends the process with SIGTERM and, after 30 s, SIGKILL.
func (c *centrifugo) Stop() {
	select {
	case <-c.exited:
		return
	default:
	}
	_ = c.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-c.exited:
	case <-time.After(30 * time.Second):
		_ = c.cmd.Process.Kill()
		<-c.exited
	}
}

// Publish sends body to the HTTP API and fails unless Centrifugo answered
// with a result and no error.
func (c *centrifugo) Publish(ctx context.Context, hc *http.Client, body []byte) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.URL+"/api/publish", bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-API-Key", c.apiKey)
	resp, err := hc.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 4096))
	if err != nil {
		return err
	}
	var out struct {
		Error *struct {
			Code    int
			Message string
		} `json:"error"`
		Result json.RawMessage `json:"result"`
	}
	if resp.StatusCode != http.StatusOK || json.Unmarshal(b, &out) != nil || out.Error != nil || out.Result == nil {
		return fmt.Errorf("centrifugo publish: status %d: %s", resp.StatusCode, b)
	}
	return nil
}

// openStream opens subscriber i's unidirectional SSE connection (GET
// /connection/uni_sse with the connect request in cf_connect) and returns
// it once Centrifugo has sent its connect reply, which lists the channel:
// from then on the subscriber receives every publication.
func (c *centrifugo) openStream(ctx context.Context, i int) (*sseStream, error) {
	src := net.IPv4(127, 0, 0, byte(1+i%loopbackSources))
	connect, _ := json.Marshal(map[string]string{"token": centrifugoToken(c.secret, fmt.Sprintf("sub-%d", i), centrifugoChannel)})
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.URL+"/connection/uni_sse?cf_connect="+url.QueryEscape(string(connect)), nil)
	if err != nil {
		return nil, err
	}
	s, err := dialSSE(ctx, c.Addr, src, req)
	if err != nil {
		return nil, err
	}
	_ = s.conn.SetReadDeadline(time.Now().Add(60 * time.Second))
	for {
		ev, err := s.Next()
		if err != nil {
			s.Close()
			return nil, fmt.Errorf("waiting for the connect reply: %w", err)
		}
		if bytes.Contains(ev.Data, []byte(`"connect"`)) {
			if !bytes.Contains(ev.Data, []byte(`"`+centrifugoChannel+`"`)) {
				s.Close()
				return nil, fmt.Errorf("connect reply without channel %q: %s", centrifugoChannel, ev.Data)
			}
			break
		}
	}
	_ = s.conn.SetReadDeadline(time.Time{})
	return s, nil
}

// newPeerFleet is a fleet of subscribers to a peer, timing samples
// numbered 0..samples-1.
func newPeerFleet(samples int, open func(context.Context, int) (*sseStream, error), match func(sseEvent) (int, bool)) *fleet {
	f := &fleet{base: time.Now(), expect: make([]atomic.Int32, samples), delivered: make([]atomic.Int32, samples),
		done: make([]chan struct{}, samples), open: open, match: match}
	for i := range f.done {
		f.done[i] = make(chan struct{})
	}
	return f
}

// spread returns, for each given sample that every subscriber had, the
// time from the first subscriber having it to the last, in milliseconds.
func (f *fleet) spread(samples []int) []float64 {
	f.mu.Lock()
	subs := append([]*subscriber(nil), f.subs...)
	f.mu.Unlock()
	var out []float64
	for _, i := range samples {
		n := int(f.expect[i].Load())
		if n == 0 || n > len(subs) {
			continue
		}
		first, last := int64(0), int64(0)
		complete := true
		for _, s := range subs[:n] {
			r := s.recv[i].Load()
			if r == 0 {
				complete = false
				break
			}
			if first == 0 || r < first {
				first = r
			}
			last = max(last, r)
		}
		if complete {
			out = append(out, ms(time.Duration(last-first)))
		}
	}
	return out
}

// CentrifugoData is the second peer's scenario: goat-gateway and
// Centrifugo side by side at each subscriber count.
type CentrifugoData struct {
	Server       string            `json:"server"`
	PayloadBytes int               `json:"payloadBytes"` // the commit JSON both carry
	Points       []CentrifugoPoint `json:"points"`
	Ratios       []Ratio           `json:"ratios"`
}

// CentrifugoPoint is one subscriber count.
type CentrifugoPoint struct {
	Subscribers int      `json:"subscribers"`
	Samples     int      `json:"samples"`
	Goat        LiveSide `json:"goat"`
	Centrifugo  LiveSide `json:"centrifugo"`
}

// LiveSide is one server's figures at one subscriber count. Latencies in
// milliseconds.
type LiveSide struct {
	// FromSend: from the writer sending the message (goat-gateway: the
	// signed commit's POST, which returns after fsync; Centrifugo: the
	// publish API's POST) to a subscriber having parsed its event.
	FromSend Summary `json:"fromSendMs"`
	// All: per message, from send until the last subscriber had it.
	All Summary `json:"allMs"`
	// Spread: per message, from the first subscriber having it to the
	// last: the fan-out alone, without the write path before it (for
	// goat-gateway, the signature check and the fsync).
	Spread Summary `json:"spreadMs"`
	// Write: the POST's round trip.
	Write   Summary `json:"writeMs"`
	Lost    int     `json:"lost"`
	Dropped int     `json:"dropped"`
	// CPUms: the server process's CPU time (user + system) over the timed
	// messages, per message.
	CPUms float64 `json:"serverCpuMsPerMessage"`
	// BaseRSS: the server's VmRSS after start and one message, before any
	// subscriber; RSS: with every subscriber connected and past the
	// warm-up messages; PerSubscriber: (RSS - BaseRSS) / subscribers.
	BaseRSS       int64   `json:"baseRSS"`
	RSS           int64   `json:"rss"`
	PerSubscriber float64 `json:"rssPerSubscriberBytes"`
}

// centrifugoMemoryMinSubs is the smallest subscriber count whose memory
// per subscriber is compared: below it, the RSS difference is a few pages
// of allocator noise, not the subscribers.
const centrifugoMemoryMinSubs = 100

// centrifugoRatios compares the two sides at each subscriber count.
// Factor is Centrifugo / goat-gateway, as for PouchDB: above 1,
// goat-gateway is ahead by that factor.
func centrifugoRatios(points []CentrifugoPoint) []Ratio {
	var out []Ratio
	for _, p := range points {
		g, c := p.Goat, p.Centrifugo
		n := p.Subscribers
		out = append(out,
			Ratio{Name: fmt.Sprintf("live latency p50, %d subscribers", n), Goat: g.FromSend.P50, Peer: c.FromSend.P50, Unit: "ms", Factor: factor(c.FromSend.P50, g.FromSend.P50)},
			Ratio{Name: fmt.Sprintf("live latency p99, %d subscribers", n), Goat: g.FromSend.P99, Peer: c.FromSend.P99, Unit: "ms", Factor: factor(c.FromSend.P99, g.FromSend.P99)},
			Ratio{Name: fmt.Sprintf("server CPU per message, %d subscribers", n), Goat: g.CPUms, Peer: c.CPUms, Unit: "ms", Factor: factor(c.CPUms, g.CPUms),
				Note: "goat-gateway's includes verifying the signed commit and writing it durably"},
		)
		if n > 1 {
			out = append(out, Ratio{Name: fmt.Sprintf("fan-out spread p50, %d subscribers", n), Goat: g.Spread.P50, Peer: c.Spread.P50, Unit: "ms", Factor: factor(c.Spread.P50, g.Spread.P50),
				Note: "first subscriber to last, per message: the fan-out without the write path"})
		}
		if n >= centrifugoMemoryMinSubs {
			out = append(out, Ratio{Name: fmt.Sprintf("memory per subscriber, %d subscribers", n), Goat: g.PerSubscriber, Peer: c.PerSubscriber, Unit: "bytes",
				Factor: factor(c.PerSubscriber, g.PerSubscriber), Note: "RSS growth over the subscribers / subscribers"})
		}
	}
	return out
}

// factor is peer / goat; 0 when goat is not positive (no figure).
func factor(peer, goat float64) float64 {
	if goat <= 0 {
		return 0
	}
	return peer / goat
}

// centrifugoTarget judges "live figures ahead of Centrifugo at every
// size": goat-gateway's latency from send, p50 and p99, below
// Centrifugo's at every subscriber count run. Value is the smallest
// factor: above 1 met.
func centrifugoTarget(points []CentrifugoPoint, ratios []Ratio) Target {
	worst, worstName := 0.0, ""
	var parts []string
	for _, x := range ratios {
		if !strings.HasPrefix(x.Name, "live latency ") {
			continue
		}
		if worstName == "" || x.Factor < worst {
			worst, worstName = x.Factor, x.Name
		}
		parts = append(parts, fmt.Sprintf("%s %.2fx", strings.TrimPrefix(x.Name, "live latency "), x.Factor))
	}
	var sizes []string
	for _, p := range points {
		sizes = append(sizes, strconv.Itoa(p.Subscribers))
	}
	measured := "no sizes measured"
	if worstName != "" {
		measured = fmt.Sprintf("Centrifugo / goat-gateway at %s subscribers: %s; smallest %.2fx (%s)", strings.Join(sizes, ", "), strings.Join(parts, ", "), worst, worstName)
	}
	return Target{Name: targetCentrifugo, Goal: "> 1x (p50 and p99 at every size)", Measured: measured, Value: worst, Limit: 1, Unit: "x",
		Met: worstName != "" && worst > 1}
}

// centrifugoSide is one server under test in the alternation.
type centrifugoSide struct {
	name    string
	pid     func() int
	f       *fleet
	publish func(ctx context.Context, i int) error
	times   []sampleTimes
	writes  []float64
	cpu0    float64
}

func (e *env) runCentrifugo(ctx context.Context, r *Result) (any, error) {
	bin := e.cfg.Centrifugo
	version, err := centrifugoVersion(bin)
	if err != nil {
		return nil, fmt.Errorf("no Centrifugo binary (bench/run.sh installs the pinned version into bench/.bin): %w", err)
	}
	data := CentrifugoData{Server: "Centrifugo " + version}
	per := e.cfg.LiveSamples + liveWarmup
	r.Setup = []string{
		fmt.Sprintf("Centrifugo %s (%s, built by bench/run.sh with go install from the Go module proxy, pinned there), on 127.0.0.1 with a generated configuration: memory engine, no history, presence or recovery; unidirectional SSE transport; HTTP API with a key; connection JWTs (HS256) whose `channels` claim subscribes each connection to channel %q", version, centrifugoModule, centrifugoChannel),
		fmt.Sprintf("goat-gateway: as in the live scenario (dev mode, real fsync), subscribers on GET /v1/events; both servers fresh at each subscriber count (%v), both on 127.0.0.1, subscribers and writer in the goat-bench process on the same %d cores", e.cfg.LiveSubs, e.machine.Cores),
		"subscribers: raw HTTP/1.1 SSE streams, each its own connection, all open and past their ready event (goat-gateway) or connect reply (Centrifugo) before the first message",
		fmt.Sprintf("messages: %d per server and subscriber count (the first %d warm-up), one at a time, alternating between the servers message by message (which goes first alternates too), each sent once every subscriber had the previous (or after 2 s): goat-gateway gets a signed commit (POST /v1/repos/live/commits), Centrifugo the same commit JSON in a publish (POST /api/publish)", per, liveWarmup),
		"latency = from sending the message to a subscriber having parsed its event, p50/p99 over every (message, subscriber); server CPU = the process's user+system time over the timed messages / messages; memory per subscriber = (VmRSS with the subscribers - VmRSS before any) / subscribers",
		"what each write does: goat-gateway verifies the commit's signature, appends it to its log and fsyncs before it answers and publishes; Centrifugo keeps nothing (no history): its latency has no disk in it",
	}
	for _, n := range e.cfg.LiveSubs {
		p, err := e.centrifugoPoint(ctx, bin, n, per, &data)
		if err != nil {
			return data, fmt.Errorf("%d subscribers: %w", n, err)
		}
		data.Points = append(data.Points, p)
		e.log.Info("centrifugo", "subscribers", n,
			"goat_p50_ms", p.Goat.FromSend.P50, "goat_p99_ms", p.Goat.FromSend.P99, "centrifugo_p50_ms", p.Centrifugo.FromSend.P50, "centrifugo_p99_ms", p.Centrifugo.FromSend.P99,
			"goat_cpu_ms", fmt.Sprintf("%.2f", p.Goat.CPUms), "centrifugo_cpu_ms", fmt.Sprintf("%.2f", p.Centrifugo.CPUms),
			"goat_per_sub_kib", fmt.Sprintf("%.1f", p.Goat.PerSubscriber/1024), "centrifugo_per_sub_kib", fmt.Sprintf("%.1f", p.Centrifugo.PerSubscriber/1024))
	}
	data.Ratios = centrifugoRatios(data.Points)
	for _, x := range data.Ratios {
		e.log.Info("ratio", "name", x.Name, "goat", x.Goat, "centrifugo", x.Peer, "unit", x.Unit, "goat_better_by", fmt.Sprintf("%.2fx", x.Factor))
	}
	r.Targets = append(r.Targets, centrifugoTarget(data.Points, data.Ratios))
	if e.cfg.Mode == "quick" {
		r.Notes = append(r.Notes, fmt.Sprintf("quick run: %d timed messages per server and size; the full run has more", e.cfg.LiveSamples))
	}
	return data, nil
}

// centrifugoPoint measures both servers, fresh, at n subscribers.
func (e *env) centrifugoPoint(ctx context.Context, bin string, n, per int, data *CentrifugoData) (CentrifugoPoint, error) {
	p := CentrifugoPoint{Subscribers: n, Samples: per - liveWarmup}
	g, err := e.newGateway(ctx, "vs-centrifugo")
	if err != nil {
		return p, err
	}
	defer g.Stop()
	dir, err := os.MkdirTemp(e.cfg.Work, "centrifugo-")
	if err != nil {
		return p, err
	}
	c, err := startCentrifugo(ctx, bin, dir, e.meter, e.log)
	if err != nil {
		return p, err
	}
	defer c.Stop()
	hc := newHTTPClient(4, nil)
	w, err := newSigner(ctx, hc, g, "writer")
	if err != nil {
		return p, err
	}
	const repo = "live"
	if err := createRepo(ctx, w.api, repo); err != nil {
		return p, err
	}
	// One commit more than the fleet times: the first, for the baseline.
	all, err := w.commits(repo, "live-", 0, per+1)
	if err != nil {
		return p, err
	}
	data.PayloadBytes = len(all[1].json)
	bodies := make([][]byte, per)
	for i := range bodies {
		bodies[i] = centrifugoPublish(i, all[i+1].json)
	}
	// Baselines: each server started, one message through it, no
	// subscriber.
	if err := push(ctx, w.api, repo, all[:1]); err != nil {
		return p, err
	}
	if err := c.Publish(ctx, hc, centrifugoPublish(-1, all[0].json)); err != nil {
		return p, err
	}
	if p.Goat.BaseRSS, _, err = g.Memory(); err != nil {
		return p, err
	}
	if p.Centrifugo.BaseRSS, _, err = procMemory(c.PID()); err != nil {
		return p, err
	}
	samples := all[1:]
	sides := []*centrifugoSide{
		{name: "goat-gateway", pid: g.PID, f: newFleet(g, repo, samples)},
		{name: "centrifugo", pid: c.PID, f: newPeerFleet(per, c.openStream, centrifugoSample)},
	}
	for _, s := range sides {
		s.f.poller = e.cfg.Poller
	}
	sides[0].publish = func(ctx context.Context, i int) error { return push(ctx, w.api, repo, samples[i:i+1]) }
	sides[1].publish = func(ctx context.Context, i int) error { return c.Publish(ctx, hc, bodies[i]) }
	defer func() {
		for _, s := range sides {
			s.f.close()
		}
	}()
	for _, s := range sides {
		s.times = make([]sampleTimes, per)
		if failed, ferr := s.f.grow(ctx, n, e.cfg.Parallel); failed > 0 {
			return p, fmt.Errorf("%s: %d of %d subscribers could not connect: %v", s.name, failed, n, ferr)
		}
	}
	for i := range per {
		if i == liveWarmup {
			// Memory with every subscriber connected and warm; CPU from
			// the first timed message.
			if p.Goat.RSS, _, err = g.Memory(); err != nil {
				return p, err
			}
			if p.Centrifugo.RSS, _, err = procMemory(c.PID()); err != nil {
				return p, err
			}
			for _, s := range sides {
				s.cpu0 = procCPU(strconv.Itoa(s.pid()), false)
			}
		}
		for k := range sides {
			s := sides[(i+k)%len(sides)]
			st, err := s.f.publish(ctx, i, func(ctx context.Context) error { return s.publish(ctx, i) }, 2*time.Second)
			if err != nil {
				return p, fmt.Errorf("%s: %w", s.name, err)
			}
			s.times[i] = st
			if i >= liveWarmup {
				s.writes = append(s.writes, ms(time.Duration(st.ack-st.send)))
			}
		}
	}
	timed := make([]int, 0, per-liveWarmup)
	for i := liveWarmup; i < per; i++ {
		timed = append(timed, i)
	}
	out := []*LiveSide{&p.Goat, &p.Centrifugo}
	for k, s := range sides {
		cpu := (procCPU(strconv.Itoa(s.pid()), false) - s.cpu0) / float64(len(timed)) * 1000
		fromSend, _, allMs, lost := s.f.latencies(timed, s.times)
		o := out[k]
		o.FromSend, o.All, o.Write, o.Lost, o.Dropped, o.CPUms = Summarize(fromSend), Summarize(allMs), Summarize(s.writes), lost, int(s.f.dropped.Load()), cpu
		o.Spread = Summarize(s.f.spread(timed))
		o.PerSubscriber = float64(o.RSS-o.BaseRSS) / float64(n)
	}
	return p, nil
}
