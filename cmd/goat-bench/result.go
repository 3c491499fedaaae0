package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"time"
)

// Result is one scenario's outcome, written as bench/results/<scenario>.json.
// Data holds the scenario's own figures (LiveData, FanoutData, ...).
type Result struct {
	Scenario string          `json:"scenario"`
	Title    string          `json:"title"`
	Mode     string          `json:"mode"` // "quick" or "full"
	Started  time.Time       `json:"started"`
	Seconds  float64         `json:"seconds"`
	Machine  Machine         `json:"machine"`
	Load     Load            `json:"load"`
	Setup    []string        `json:"setup"`
	Targets  []Target        `json:"targets,omitempty"`
	Notes    []string        `json:"notes,omitempty"`
	Error    string          `json:"error,omitempty"`
	Data     json.RawMessage `json:"data,omitempty"`
}

// Target is one of the targets and whether this run met it. A
// missed target is a finding, reported as such.
type Target struct {
	Name     string  `json:"name"`
	Goal     string  `json:"goal"`
	Measured string  `json:"measured"`
	Value    float64 `json:"value"`
	Limit    float64 `json:"limit"`
	Unit     string  `json:"unit"`
	Met      bool    `json:"met"`
}

// The names of issue 19's targets (the JSON's targets[].name). Each says
// the figure it judges; docs/benchmarks.md lists them with their goals.
const (
	targetLive           = "live latency p99, 1,000 subscribers"
	targetFanoutDelivery = "delivery of one commit to all of 10,000 subscribers, p50"
	targetFanoutMemory   = "memory at 20,000 subscribers"
	targetBatched        = "durable ingest, batched, every signature verified"
	targetPut            = "single-item PUT (REST, custodial signing)"
	targetClone          = "clone of 100,000 commits, ids recomputed, identity"
	targetPeer           = "clone at least 12x faster than PouchDB's best"
	targetCold           = "cold open of 1,000,000 commits"
	targetColdMemory     = "cold open memory, 1,000,000 commits"
	targetCentrifugo     = "live latency ahead of Centrifugo at every size"
)

// below builds a target met when value < limit.
func below(name string, value, limit float64, unit, measured string) Target {
	return Target{Name: name, Goal: fmt.Sprintf("< %s %s", fmtNum(limit), unit), Measured: measured, Value: value, Limit: limit, Unit: unit, Met: value < limit}
}

// atMost builds a target met when value <= limit.
func atMost(name string, value, limit float64, unit, measured string) Target {
	return Target{Name: name, Goal: fmt.Sprintf("<= %s %s", fmtNum(limit), unit), Measured: measured, Value: value, Limit: limit, Unit: unit, Met: value <= limit}
}

// atLeast builds a target met when value >= limit.
func atLeast(name string, value, limit float64, unit, measured string) Target {
	return Target{Name: name, Goal: fmt.Sprintf(">= %s %s", fmtNum(limit), unit), Measured: measured, Value: value, Limit: limit, Unit: unit, Met: value >= limit}
}

func fmtNum(x float64) string {
	switch {
	case x == float64(int64(x)) && (x >= 10000 || x <= -10000):
		return commas(int64(x))
	case x == float64(int64(x)):
		return fmt.Sprintf("%d", int64(x))
	case x >= 100:
		return fmt.Sprintf("%.0f", x)
	case x >= 10:
		return fmt.Sprintf("%.1f", x)
	case x >= 1:
		return fmt.Sprintf("%.2f", x)
	}
	return fmt.Sprintf("%.3g", x)
}

// commas writes n with thousands separators.
func commas(n int64) string {
	s := fmt.Sprintf("%d", n)
	neg := s[0] == '-'
	if neg {
		s = s[1:]
	}
	var out []byte
	for i := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			out = append(out, ',')
		}
		out = append(out, s[i])
	}
	if neg {
		return "-" + string(out)
	}
	return string(out)
}

// writeJSON writes v to dir/name atomically (a reader never sees half a
// file).
func writeJSON(dir, name string, v any) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	return writeFileAtomic(filepath.Join(dir, name), append(b, '\n'))
}

func writeFileAtomic(path string, b []byte) error {
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, b, 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

// readResults loads every <scenario>.json of dir that a run wrote.
func readResults(dir string) (map[string]*Result, error) {
	out := map[string]*Result{}
	for _, name := range scenarioOrder {
		b, err := os.ReadFile(filepath.Join(dir, name+".json"))
		if os.IsNotExist(err) {
			continue
		}
		if err != nil {
			return nil, err
		}
		var r Result
		if err := json.Unmarshal(b, &r); err != nil {
			return nil, fmt.Errorf("%s.json: %w", name, err)
		}
		out[name] = &r
	}
	return out, nil
}

// decodeData decodes r.Data into v; false when absent or malformed.
func decodeData(r *Result, v any) bool {
	if r == nil || len(r.Data) == 0 {
		return false
	}
	return json.Unmarshal(r.Data, v) == nil
}

func jsonMarshal(v any) (json.RawMessage, error) { return json.Marshal(v) }
