package main

import (
	"context"
	"fmt"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/goat-gateway/goat-gateway/client"
	"github.com/goat-gateway/goat-gateway/core"
	"github.com/goat-gateway/goat-gateway/gen/models"
)

// IngestData is the durable-ingest scenario's figures.
type IngestData struct {
	Batch  int           `json:"batch"`
	Points []IngestPoint `json:"points"`
}

// IngestPoint is one mode at one concurrency.
type IngestPoint struct {
	Mode    string `json:"mode"` // "batched" (POST /commits, Batch per request) or "put" (PUT /items/{key})
	Clients int    `json:"clients"`
	// Runs are commits acknowledged per second, one per repetition;
	// CommitsPerSec is their median.
	Runs          []float64 `json:"runs"`
	CommitsPerSec float64   `json:"commitsPerSec"`
	// Latency of one request (ms), every request of every repetition.
	Latency Summary `json:"latencyMs"`
	Commits int     `json:"commits"` // per repetition (batched) or in all (put)
	Errors  int     `json:"errors"`
	// GatewayCPUMicros is the gateway's CPU time per commit, µs.
	GatewayCPUMicros float64 `json:"gatewayCpuMicrosPerCommit"`
	// ToolCPUMicros is goat-bench's own CPU time per commit over the
	// same timed phase (its clients: sending, reading the answers), µs:
	// it shares the machine's cores with the gateway.
	ToolCPUMicros float64 `json:"toolCpuMicrosPerCommit"`
}

func (e *env) runIngest(ctx context.Context, r *Result) (any, error) {
	g, err := e.newGateway(ctx, "ingest")
	if err != nil {
		return nil, err
	}
	defer g.Stop()
	B := e.cfg.IngestBatch
	minBatches := 8
	if e.cfg.Mode == "quick" {
		minBatches = 2
	}
	r.Setup = []string{
		"one goat-gateway process (dev mode) writing to its data directory with real fsync: a commit counts once the gateway has acknowledged it, which it does only after fsync (group commit)",
		fmt.Sprintf("batched: each client has its own session and pushes signed commits, %d per POST /v1/repos/{repo}/commits, back to back; a repetition pushes max(%s, clients x %d x %d) new-item commits, all signed before the clock starts; the gateway verifies every signature", B, commas(int64(e.cfg.IngestCommits)), B, minBatches),
		fmt.Sprintf("single-item PUT: each client (its own subject) writes new items with PUT /v1/repos/{repo}/items/{key} {schema, data} for %.1f s; the gateway signs each commit with the caller's custodial session", e.cfg.IngestPutSecs),
		fmt.Sprintf("clients: %v, all in the goat-bench process, keep-alive HTTP/1.1; %d repetition(s) per point, each into a fresh repository; reported: the median of the repetitions", e.cfg.IngestClients, e.cfg.IngestReps),
	}
	data := IngestData{Batch: B}
	c := newHTTPClient(256, nil)
	modes := []string{"batched", "put"}
	if e.cfg.IngestPutSecs == 0 {
		// --ingest-put-secs 0: the batched mode alone, for A/B runs of
		// the push path (the PUT target is then reported as missed).
		modes = modes[:1]
	}
	for _, mode := range modes {
		for _, n := range e.cfg.IngestClients {
			p := IngestPoint{Mode: mode, Clients: n}
			var lat []float64
			var cpu, tcpu, commits float64
			for rep := range e.cfg.IngestReps {
				repo := fmt.Sprintf("ingest-%s-%d-%d", mode, n, rep)
				var rate float64
				var l []float64
				var nc, errs int
				var gcpu, tc float64
				if mode == "batched" {
					total := max(e.cfg.IngestCommits, n*B*minBatches)
					rate, l, nc, errs, gcpu, tc, err = e.ingestBatched(ctx, g, c, repo, n, total, B)
				} else {
					rate, l, nc, errs, gcpu, tc, err = e.ingestPut(ctx, g, c, repo, n, time.Duration(e.cfg.IngestPutSecs*float64(time.Second)))
				}
				if err != nil {
					return data, fmt.Errorf("%s, %d clients: %w", mode, n, err)
				}
				p.Runs = append(p.Runs, rate)
				lat = append(lat, l...)
				p.Commits, p.Errors = nc, p.Errors+errs
				cpu += gcpu
				tcpu += tc
				commits += float64(nc)
			}
			p.CommitsPerSec = Median(p.Runs)
			p.Latency = Summarize(lat)
			if commits > 0 {
				p.GatewayCPUMicros = cpu / commits * 1e6
				p.ToolCPUMicros = tcpu / commits * 1e6
			}
			data.Points = append(data.Points, p)
			e.log.Info("ingest", "mode", mode, "clients", n, "commits_per_s", int(p.CommitsPerSec), "runs", fmtRuns(p.Runs),
				"latency_p50_ms", p.Latency.P50, "latency_p99_ms", p.Latency.P99, "gateway_cpu_us_per_commit", int(p.GatewayCPUMicros), "tool_cpu_us_per_commit", int(p.ToolCPUMicros))
		}
	}
	for _, t := range []struct {
		mode, name string
		goal       float64
	}{{"batched", targetBatched, 25000}, {"put", targetPut, 6000}} {
		best := IngestPoint{}
		for _, p := range data.Points {
			if p.Mode == t.mode && p.CommitsPerSec > best.CommitsPerSec {
				best = p
			}
		}
		r.Targets = append(r.Targets, atLeast(t.name, best.CommitsPerSec, t.goal, "commits/s",
			fmt.Sprintf("%s commits/s at %d clients (median of %d; runs %s); gateway CPU %.0f µs per commit, goat-bench's %.0f µs", commas(int64(best.CommitsPerSec)), best.Clients, len(best.Runs), fmtRuns(best.Runs), best.GatewayCPUMicros, best.ToolCPUMicros)))
	}
	return data, nil
}

func fmtRuns(runs []float64) string {
	s := ""
	for i, x := range runs {
		if i > 0 {
			s += "/"
		}
		s += strconv.FormatInt(int64(x), 10)
	}
	return s
}

// ingestBatched pushes total commits from n clients in batches of b and
// returns acknowledged commits per second.
func (e *env) ingestBatched(ctx context.Context, g *gateway, c *http.Client, repo string, n, total, b int) (rate float64, lat []float64, commits, errs int, gatewayCPU, toolCPU float64, err error) {
	per := (total + n - 1) / n
	signers := make([]*signer, n)
	work := make([][]signed, n)
	for j := range n {
		if signers[j], err = newSigner(ctx, c, g, fmt.Sprintf("ingest-%d", j)); err != nil {
			return
		}
		if work[j], err = signers[j].commits(repo, fmt.Sprintf("c%d-", j), 0, per); err != nil {
			return
		}
	}
	if err = createRepo(ctx, signers[0].api, repo); err != nil {
		return
	}
	start := make(chan struct{})
	var wg sync.WaitGroup
	lats := make([][]float64, n)
	errc := make(chan error, n)
	for j := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			for i := 0; i < len(work[j]); i += b {
				t := time.Now()
				if err := push(ctx, signers[j].api, repo, work[j][i:min(i+b, len(work[j]))]); err != nil {
					errc <- err
					return
				}
				lats[j] = append(lats[j], ms(time.Since(t)))
			}
		}()
	}
	cpu0, tool0 := procCPU(strconv.Itoa(g.PID()), false), procCPU("self", false)
	t0 := time.Now()
	close(start)
	wg.Wait()
	elapsed := time.Since(t0)
	gatewayCPU, toolCPU = procCPU(strconv.Itoa(g.PID()), false)-cpu0, procCPU("self", false)-tool0
	close(errc)
	if err = <-errc; err != nil {
		return
	}
	for _, l := range lats {
		lat = append(lat, l...)
	}
	count, _, err := serverDigest(ctx, c, g.URL, repo, signers[0].token)
	if err != nil {
		return
	}
	if int(count) != per*n {
		err = fmt.Errorf("repository holds %d commits after pushing %d", count, per*n)
		return
	}
	return float64(per*n) / elapsed.Seconds(), lat, per * n, 0, gatewayCPU, toolCPU, nil
}

// ingestPut writes single items from n clients for d and returns
// acknowledged writes per second.
func (e *env) ingestPut(ctx context.Context, g *gateway, c *http.Client, repo string, n int, d time.Duration) (rate float64, lat []float64, commits, errs int, gatewayCPU, toolCPU float64, err error) {
	bodies := make([]models.ItemWrite, 256)
	for i := range bodies {
		bodies[i] = models.ItemWrite{Schema: core.AnySchema, Data: doc(i)}
	}
	apis := make([]*client.Client, n)
	for j := range n {
		if apis[j], err = newAPI(c, g.URL, g.Token(fmt.Sprintf("put-%d", j))); err != nil {
			return
		}
	}
	if err = createRepo(ctx, apis[0], repo); err != nil {
		return
	}
	// Warm-up: each caller's first write registers its custodial session.
	for j := range n {
		if _, err = apis[j].PutItem(ctx, repo, fmt.Sprintf("w%d", j), bodies[0], ""); err != nil {
			return
		}
	}
	start := make(chan struct{})
	var wg sync.WaitGroup
	lats := make([][]float64, n)
	counts := make([]int, n)
	fails := make([]int, n)
	var deadline time.Time
	for j := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			for i := 0; time.Now().Before(deadline); i++ {
				t := time.Now()
				if _, err := apis[j].PutItem(ctx, repo, fmt.Sprintf("p%d-%07d", j, i), bodies[i%len(bodies)], ""); err != nil {
					fails[j]++
					if ctx.Err() != nil {
						return
					}
					continue
				}
				lats[j] = append(lats[j], ms(time.Since(t)))
				counts[j]++
			}
		}()
	}
	cpu0, tool0 := procCPU(strconv.Itoa(g.PID()), false), procCPU("self", false)
	t0 := time.Now()
	deadline = t0.Add(d)
	close(start)
	wg.Wait()
	elapsed := time.Since(t0)
	gatewayCPU, toolCPU = procCPU(strconv.Itoa(g.PID()), false)-cpu0, procCPU("self", false)-tool0
	for j := range n {
		commits += counts[j]
		errs += fails[j]
		lat = append(lat, lats[j]...)
	}
	if commits == 0 {
		err = fmt.Errorf("no PUT succeeded (%d failed)", errs)
		return
	}
	return float64(commits) / elapsed.Seconds(), lat, commits, errs, gatewayCPU, toolCPU, nil
}
