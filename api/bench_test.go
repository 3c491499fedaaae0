package api_test

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
	stdsync "sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/goat-gateway/goat-gateway/core"
	"github.com/goat-gateway/goat-gateway/internal/goattest"
)

// The hot paths of issue 19, in process over loopback HTTP, with fsync on,
// for profiles (go test -run '^$' -bench X -cpuprofile): a push of 100
// signed commits, a single-item PUT, and one commit delivered to N live
// subscribers. goat-bench measures the same against the built binary.

// benchClient is a keep-alive client with enough idle connections for
// RunParallel's goroutines.
var benchClient = &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 256, DisableCompression: true}}

func benchDo(b *testing.B, method, url, token string, body []byte) {
	req, err := http.NewRequest(method, url, bytes.NewReader(body))
	if err != nil {
		b.Error(err)
		return
	}
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Content-Type", "application/json")
	resp, err := benchClient.Do(req)
	if err != nil {
		b.Error(err)
		return
	}
	got, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode >= 300 {
		b.Errorf("%s %s: %d %s", method, url, resp.StatusCode, got)
	}
}

// BenchmarkPush is one POST /v1/repos/{repo}/commits of 100 new signed
// commits per op, from parallel clients.
func BenchmarkPush(b *testing.B) {
	g := startGateway(b, goattest.Config{Sync: true})
	const batch = 100
	var n atomic.Int64
	authors := make(chan *goattest.Author, 64)
	for i := range cap(authors) {
		a := g.newAuthor(b, fmt.Sprintf("pusher%d", i))
		a.CreateRepo(b, "bench")
		authors <- a
	}
	type push struct {
		token string
		body  []byte
	}
	pushes := make(chan push, b.N)
	for range b.N {
		a := <-authors
		cs := make([]*core.Commit, batch)
		for i := range cs {
			cs[i] = a.Commit("bench", fmt.Sprintf("k%d", n.Add(1)), map[string]any{"title": strings.Repeat("x", 400), "n": 1.0})
		}
		pushes <- push{a.Token, goattest.PushBody(cs...)}
		authors <- a
	}
	b.SetParallelism(4)
	cpu0 := processCPU(b)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			p := <-pushes
			benchDo(b, "POST", g.URL()+"/v1/repos/bench/commits", p.token, p.body)
		}
	})
	b.StopTimer()
	b.ReportMetric(float64(b.N*batch)/b.Elapsed().Seconds(), "commits/s")
	// The process's CPU time over the timed pushes (gateway and clients;
	// the signing before them left out), less swayed by other users of
	// the machine than the wall time.
	b.ReportMetric(float64((processCPU(b)-cpu0).Microseconds())/float64(b.N*batch), "cpu-µs/commit")
}

// BenchmarkPutItem is one PUT /v1/repos/{repo}/items/{key} per op (a new
// item, signed with the caller's custodial session), from parallel
// clients, each its own subject.
func BenchmarkPutItem(b *testing.B) {
	g := startGateway(b, goattest.Config{Sync: true})
	var n atomic.Int64
	tokens := make(chan string, 64)
	for i := range cap(tokens) {
		tok := g.Token(fmt.Sprintf("putter%d", i))
		benchDo(b, "PUT", g.URL()+"/v1/repos/bench", tok, nil)
		tokens <- tok
	}
	body := []byte(`{"schema":"any/1","data":{"title":"` + strings.Repeat("x", 400) + `","n":1}}`)
	b.SetParallelism(4)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		tok := <-tokens
		for pb.Next() {
			benchDo(b, "PUT", fmt.Sprintf("%s/v1/repos/bench/items/k%d", g.URL(), n.Add(1)), tok, body)
		}
	})
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "puts/s")
}

// BenchmarkLive is one commit pushed and delivered to every one of N live
// subscribers per op.
func BenchmarkLive(b *testing.B) {
	for _, subs := range []int{1, 100, 1000} {
		b.Run(fmt.Sprintf("subs=%d", subs), func(b *testing.B) {
			g := startGateway(b, goattest.Config{Sync: true, MaxStreamsPerCaller: subs + 1})
			a := g.newAuthor(b, "writer")
			a.CreateRepo(b, "live")
			tok := g.Token("reader")
			var wg stdsync.WaitGroup
			got := make([]chan struct{}, subs)
			ctx, cancel := context.WithCancel(context.Background())
			tr := &http.Transport{MaxIdleConnsPerHost: subs, DisableCompression: true}
			cl := &http.Client{Transport: tr}
			ready := make(chan struct{}, subs)
			for i := range subs {
				got[i] = make(chan struct{}, 1)
				req, _ := http.NewRequestWithContext(ctx, "GET", g.URL()+"/v1/events?repo=live", nil)
				req.Header.Set("Authorization", "Bearer "+tok)
				resp, err := cl.Do(req)
				if err != nil {
					b.Fatal(err)
				}
				wg.Add(1)
				go func() {
					defer wg.Done()
					defer resp.Body.Close()
					sc := bufio.NewScanner(resp.Body)
					sc.Buffer(make([]byte, 64<<10), 1<<20)
					for sc.Scan() {
						switch line := sc.Bytes(); {
						case bytes.Equal(line, []byte("event: ready")):
							ready <- struct{}{}
						case bytes.Equal(line, []byte("event: commit")):
							got[i] <- struct{}{}
						}
					}
				}()
			}
			for range subs {
				<-ready
			}
			b.Cleanup(func() { cancel(); wg.Wait(); tr.CloseIdleConnections() })
			n := 0
			data := map[string]any{"title": strings.Repeat("x", 400), "n": 1.0}
			b.ResetTimer()
			for b.Loop() {
				b.StopTimer()
				n++
				c := a.Commit("live", fmt.Sprintf("k%d", n), data)
				b.StartTimer()
				a.Push(b, c)
				timer := time.NewTimer(goattest.Patience)
				for i := range got {
					select {
					case <-got[i]:
					case <-timer.C:
						b.Fatalf("subscriber %d got no event", i)
					}
				}
				timer.Stop()
			}
		})
	}
}
