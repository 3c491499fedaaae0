package reliability

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/goat-gateway/goat-gateway/client"
	"github.com/goat-gateway/goat-gateway/core"
	"github.com/goat-gateway/goat-gateway/gen/models"
)

// MeasureReport holds the figures of issue 17's items 2, 5 and 6, measured
// the way against the real binary (RunMeasure). Sizes are bytes.
type MeasureReport struct {
	LoadAvgStart string `json:"loadAvgStart"`
	LoadAvgEnd   string `json:"loadAvgEnd"`
	// Item 2: slow and almost-complete bodies.
	SlowBodies struct {
		Connections   int         `json:"connections"`
		IdleFDs       int         `json:"idleFDs"`
		HeldFDs       int         `json:"heldFDs"` // with every connection trickling
		AfterFDs      int         `json:"afterFDs"`
		IdleRSS       int64       `json:"idleRSS"`
		HeldRSS       int64       `json:"heldRSS"`
		Statuses      map[int]int `json:"statuses"` // 0: no answer
		CutAfterSecs  float64     `json:"cutAfterSeconds"`
		TrickleEveryS float64     `json:"trickleEverySeconds"`
	} `json:"slowBodies"`
	AlmostComplete struct {
		Bodies   int         `json:"bodies"`
		BodySize int         `json:"bodySize"`
		IdleRSS  int64       `json:"idleRSS"`
		PeakRSS  int64       `json:"peakRSS"`
		Statuses map[int]int `json:"statuses"`
	} `json:"almostComplete"`
	// Item 5: invented methods.
	Methods struct {
		Requests          int         `json:"requests"`
		Statuses          map[int]int `json:"statuses"`
		MetricsBefore     int         `json:"metricsBytesBefore"`
		MetricsAfter      int         `json:"metricsBytesAfter"`
		ScrapeMSBefore    float64     `json:"scrapeMsBefore"`
		ScrapeMSAfter     float64     `json:"scrapeMsAfter"`
		RSSBefore         int64       `json:"rssBefore"`
		RSSAfter          int64       `json:"rssAfter"`
		SeriesLinesBefore int         `json:"seriesLinesBefore"`
		SeriesLinesAfter  int         `json:"seriesLinesAfter"`
	} `json:"methods"`
	// Item 6: one anonymous address at its stream quota, another one.
	Streams struct {
		Quota          int         `json:"quota"`
		FirstAddress   map[int]int `json:"firstAddressStatuses"`
		OtherStatus    int         `json:"otherAddressStatus"`
		OtherEventMS   float64     `json:"otherAddressEventMs"`
		OtherGotCommit bool        `json:"otherAddressGotCommit"`
	} `json:"streams"`
	Failures []string `json:"failures,omitempty"`
}

// Text renders the figures for people.
func (m MeasureReport) Text() string {
	var b strings.Builder
	mib := func(n int64) string { return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20)) }
	fmt.Fprintf(&b, "goat-soak --measure (load %s -> %s)\n", m.LoadAvgStart, m.LoadAvgEnd)
	sb := m.SlowBodies
	fmt.Fprintf(&b, "item 2: %d anonymous bodies trickling 1 byte every %.0f s: gateway descriptors %d idle, %d while held, %d after; RSS %s idle, %s while held; answers %v, the first cut after %.1f s\n",
		sb.Connections, sb.TrickleEveryS, sb.IdleFDs, sb.HeldFDs, sb.AfterFDs, mib(sb.IdleRSS), mib(sb.HeldRSS), sb.Statuses, sb.CutAfterSecs)
	ac := m.AlmostComplete
	fmt.Fprintf(&b, "item 2: %d bodies of %d bytes, all but 1 KiB sent, then stalled: RSS %s idle, peak %s (+%s); answers %v\n",
		ac.Bodies, ac.BodySize, mib(ac.IdleRSS), mib(ac.PeakRSS), mib(ac.PeakRSS-ac.IdleRSS), ac.Statuses)
	me := m.Methods
	fmt.Fprintf(&b, "item 5: %d requests with invented methods (answers %v): /metrics %d -> %d bytes (%d -> %d lines), scrape %.1f -> %.1f ms; RSS %s -> %s\n",
		me.Requests, me.Statuses, me.MetricsBefore, me.MetricsAfter, me.SeriesLinesBefore, me.SeriesLinesAfter, me.ScrapeMSBefore, me.ScrapeMSAfter, mib(me.RSSBefore), mib(me.RSSAfter))
	st := m.Streams
	fmt.Fprintf(&b, "item 6: one anonymous address opened %d + 1 streams: %v; another anonymous address: %d, live commit received %v after %.1f ms\n",
		st.Quota, st.FirstAddress, st.OtherStatus, st.OtherGotCommit, st.OtherEventMS)
	for _, f := range m.Failures {
		fmt.Fprintf(&b, "FAILURE: %s\n", f)
	}
	return b.String()
}

// RunMeasure starts the real binary with the documented rules and measures
// issue 17's items 2 (1,000 slow bodies; 100 almost-complete 8 MB bodies),
// 5 (20,000 invented methods) and 6 (an anonymous address at its stream
// quota, and another one), the way. It takes about two minutes.
func RunMeasure(ctx context.Context, bin string, progress io.Writer) (rep MeasureReport, err error) {
	cfg := SoakConfig{Bin: bin, PublicRecords: 10, PublicRecordBytes: 100, Progress: progress}
	cfg.setDefaults()
	rep.LoadAvgStart = loadAvg()
	defer func() { rep.LoadAvgEnd = loadAvg() }()
	dir, err := os.MkdirTemp("", "goat-measure-")
	if err != nil {
		return rep, err
	}
	defer os.RemoveAll(dir)
	s := &soak{cfg: cfg, rep: &SoakReport{}, dir: dir, acked: map[string][]string{}, status: map[string]map[int]int{},
		httpc: &http.Client{Timeout: 60 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 64}}}
	defer func() {
		if s.gw != nil {
			s.gw.kill()
		}
		if s.logs != nil {
			s.logs.Close()
		}
	}()
	if err := s.setup(ctx); err != nil {
		return rep, err
	}
	pid := s.gw.cmd.Process.Pid
	failf := func(format string, args ...any) { rep.Failures = append(rep.Failures, fmt.Sprintf(format, args...)) }

	var mu sync.Mutex
	var wg sync.WaitGroup

	// Item 5: 20,000 invented methods, first, on a node that has held no
	// large body: its memory figures are then the flood's, not the garbage
	// collector's pace after item 2's bodies.
	me := &rep.Methods
	me.Requests, me.Statuses = 20000, map[int]int{}
	me.MetricsBefore, me.SeriesLinesBefore, me.ScrapeMSBefore, _, _ = scrape(ctx, s.apiFor(""))
	me.RSSBefore, _, _ = procStatus(pid)
	s.progressf("item 5: %d invented methods", me.Requests)
	tr := &http.Transport{MaxIdleConnsPerHost: 16}
	hc := &http.Client{Transport: tr, Timeout: 30 * time.Second}
	next := make(chan int)
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				req, _ := http.NewRequestWithContext(ctx, fmt.Sprintf("X%07d", i), s.gw.url+"/v1/repos/public.big", nil)
				st := 0
				if resp, err := hc.Do(req); err == nil {
					io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
					st = resp.StatusCode
				}
				mu.Lock()
				me.Statuses[st]++
				mu.Unlock()
			}
		}()
	}
	for i := range me.Requests {
		next <- i
	}
	close(next)
	wg.Wait()
	tr.CloseIdleConnections()
	me.MetricsAfter, me.SeriesLinesAfter, me.ScrapeMSAfter, _, _ = scrape(ctx, s.apiFor(""))
	me.RSSAfter, _, _ = procStatus(pid)

	// Item 6: one anonymous address takes its whole stream quota; another
	// still gets the public live feed.
	st := &rep.Streams
	st.Quota, st.FirstAddress = 64, map[int]int{}
	s.progressf("item 6: %d + 1 anonymous streams from one address, then another address", st.Quota)
	streamCtx, stopStreams := context.WithCancel(ctx)
	defer stopStreams()
	for range st.Quota + 1 {
		code, _, err := openEvents(streamCtx, s.gw.url, "127.0.5.1")
		if err != nil {
			failf("stream from 127.0.5.1: %v", err)
		}
		st.FirstAddress[code]++
	}
	code, events, err := openEvents(streamCtx, s.gw.url, "127.0.5.2")
	st.OtherStatus = code
	if err == nil && code == http.StatusOK {
		editor := s.apiFor(s.token("editor", "editor"))
		sent := time.Now()
		if _, err := editor.PutItem(ctx, "public.big", "live", models.ItemWrite{Schema: core.AnySchema, Data: map[string]any{"v": 1.0}}, ""); err != nil {
			failf("editor's write: %v", err)
		}
		select {
		case <-events:
			st.OtherGotCommit, st.OtherEventMS = true, float64(time.Since(sent))/float64(time.Millisecond)
		case <-time.After(30 * time.Second):
			failf("the other anonymous address got no live commit within 30 s")
		}
	}
	stopStreams()

	// Item 2a: 1,000 anonymous sync rounds (read-authorized, so their
	// bodies are read) trickling one byte every 2 s.
	sb := &rep.SlowBodies
	sb.Connections, sb.TrickleEveryS, sb.Statuses = 1000, 2, map[int]int{}
	sb.IdleRSS, _, sb.IdleFDs = procStatus(pid)
	s.progressf("item 2: %d slow bodies", sb.Connections)
	start := time.Now()
	slowCtx, stopSlow := context.WithTimeout(ctx, 45*time.Second)
	for i := range sb.Connections {
		wg.Add(1)
		go func() {
			defer wg.Done()
			st := trickle(slowCtx, s.gw.url, fmt.Sprintf("127.0.3.%d", 1+i%250), 4096, 0, 2*time.Second)
			mu.Lock()
			defer mu.Unlock()
			sb.Statuses[st]++
			if st != 0 && sb.CutAfterSecs == 0 {
				sb.CutAfterSecs = time.Since(start).Seconds()
			}
		}()
	}
	sleepCtx(ctx, 10*time.Second)
	sb.HeldRSS, _, sb.HeldFDs = procStatus(pid)
	wg.Wait()
	stopSlow()
	_, _, sb.AfterFDs = procStatus(pid)

	// Item 2b: 100 anonymous 8 MB bodies, all but the last KiB sent.
	ac := &rep.AlmostComplete
	ac.Bodies, ac.BodySize, ac.Statuses = 100, 8_000_000, map[int]int{}
	ac.IdleRSS, _, _ = procStatus(pid)
	s.progressf("item 2: %d almost-complete bodies of %d bytes", ac.Bodies, ac.BodySize)
	bigCtx, stopBig := context.WithTimeout(ctx, 45*time.Second)
	peakDone := make(chan struct{})
	go func() {
		defer close(peakDone)
		t := time.NewTicker(100 * time.Millisecond)
		defer t.Stop()
		for {
			rss, _, _ := procStatus(pid)
			ac.PeakRSS = max(ac.PeakRSS, rss)
			select {
			case <-bigCtx.Done():
				return
			case <-t.C:
			}
		}
	}()
	for i := range ac.Bodies {
		wg.Add(1)
		go func() {
			defer wg.Done()
			st := trickle(bigCtx, s.gw.url, fmt.Sprintf("127.0.4.%d", 1+i%250), ac.BodySize, ac.BodySize-1024, time.Hour)
			mu.Lock()
			ac.Statuses[st]++
			mu.Unlock()
		}()
	}
	wg.Wait()
	stopBig()
	<-peakDone

	return rep, nil
}

// trickle sends an anonymous sync round to public.big from src with
// Content-Length length: first bytes of it at once, then one byte every
// pace. It returns the status the gateway answers (0: none, or the
// connection was cut).
func trickle(ctx context.Context, url, src string, length, first int, pace time.Duration) int {
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(src)}, Timeout: 10 * time.Second}
	conn, err := d.DialContext(ctx, "tcp", strings.TrimPrefix(url, "http://"))
	if err != nil {
		return 0
	}
	defer conn.Close()
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	defer stop()
	answered := make(chan int, 1)
	go func() {
		resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
		if err != nil {
			answered <- 0
			return
		}
		resp.Body.Close()
		answered <- resp.StatusCode
	}()
	fmt.Fprintf(conn, "POST /v1/repos/public.big/sync HTTP/1.1\r\nHost: measure\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n", length)
	if first > 0 {
		chunk := make([]byte, 64<<10)
		for i := range chunk {
			chunk[i] = ' '
		}
		for sent := 0; sent < first; {
			n := min(len(chunk), first-sent)
			if _, err := conn.Write(chunk[:n]); err != nil {
				return <-answered
			}
			sent += n
		}
	}
	t := time.NewTicker(pace)
	defer t.Stop()
	for {
		select {
		case st := <-answered:
			return st
		case <-ctx.Done():
			return 0
		case <-t.C:
			if _, err := conn.Write([]byte{' '}); err != nil {
				return <-answered
			}
		}
	}
}

// scrape reads /metrics through api and returns its size, its sample
// lines, how long it took and the status it answered; err only when
// nothing was answered.
func scrape(ctx context.Context, api *client.Client) (size, lines int, ms float64, status int, err error) {
	start := time.Now()
	b, err := api.Metrics(ctx)
	ms = float64(time.Since(start)) / float64(time.Millisecond)
	if status, _ = statusOf(err, ""); status == 0 {
		return 0, 0, 0, 0, err
	}
	for _, l := range strings.Split(string(b), "\n") {
		if l != "" && !strings.HasPrefix(l, "#") {
			lines++
		}
	}
	return len(b), lines, ms, status, nil
}

// openEvents opens the public feed anonymously from src and returns the
// status and, for a stream that opened, a channel that receives once a
// commit event arrives; the stream stays open until ctx ends.
func openEvents(ctx context.Context, url, src string) (int, <-chan struct{}, error) {
	resp, err := apiFrom(url, src, "").Events(ctx, []string{"public.big"}, "")
	if pe, ok := errors.AsType[*client.ProblemError](err); ok {
		return pe.Status, nil, nil
	}
	if err != nil {
		return 0, nil, err
	}
	got := make(chan struct{})
	go func() {
		defer resp.Body.Close()
		sc := bufio.NewScanner(resp.Body)
		sc.Buffer(nil, 1<<20)
		for sc.Scan() {
			if sc.Text() == "event: commit" {
				close(got)
				io.Copy(io.Discard, resp.Body)
				return
			}
		}
	}()
	return resp.StatusCode, got, nil
}
