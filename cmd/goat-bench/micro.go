package main

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"
)

// MicroData is the Go micro-benchmarks' results.
type MicroData struct {
	Benchtime  string       `json:"benchtime"`
	Packages   []string     `json:"packages"`
	Benchmarks []MicroBench `json:"benchmarks"`
	Failed     []string     `json:"failed,omitempty"` // packages whose benchmarks did not build or run
}

// MicroBench is one line of `go test -bench` output.
type MicroBench struct {
	Package    string             `json:"package"`
	Name       string             `json:"name"`
	Iterations int64              `json:"iterations"`
	NsPerOp    float64            `json:"nsPerOp"`
	Metrics    map[string]float64 `json:"metrics,omitempty"` // B/op, allocs/op and custom units
}

// benchPackages lists the packages under root that have benchmarks.
func benchPackages(root string) ([]string, error) {
	set := map[string]bool{}
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		name := d.Name()
		if d.IsDir() {
			if path != root && (strings.HasPrefix(name, ".") || strings.HasPrefix(name, "_") || name == "testdata" || name == "node_modules") {
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(name, "_test.go") {
			return nil
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		if bytes.Contains(b, []byte("\nfunc Benchmark")) {
			rel, _ := filepath.Rel(root, filepath.Dir(path))
			set["./"+filepath.ToSlash(rel)] = true
		}
		return nil
	})
	var out []string
	for p := range set {
		out = append(out, p)
	}
	slices.Sort(out)
	return out, err
}

// parseBench reads `go test -bench` output. pkg lines tell which package
// the benchmarks that follow belong to.
func parseBench(out []byte) (benches []MicroBench, failed []string) {
	sc := bufio.NewScanner(bytes.NewReader(out))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	pkg := ""
	var pending []MicroBench
	for sc.Scan() {
		line := sc.Text()
		f := strings.Fields(line)
		switch {
		case strings.HasPrefix(line, "pkg: "):
			pkg = strings.TrimPrefix(line, "pkg: ")
		case len(f) >= 2 && (f[0] == "ok" || f[0] == "PASS"):
			for i := range pending {
				pending[i].Package = pkg
			}
			benches = append(benches, pending...)
			pending = nil
		case len(f) >= 2 && f[0] == "FAIL" && f[1] != "":
			failed = append(failed, f[1])
			pending = nil
		case strings.HasPrefix(line, "Benchmark") && len(f) >= 4 && f[3] == "ns/op":
			b := MicroBench{Name: f[0], Metrics: map[string]float64{}}
			b.Iterations, _ = strconv.ParseInt(f[1], 10, 64)
			b.NsPerOp, _ = strconv.ParseFloat(f[2], 64)
			for i := 4; i+1 < len(f); i += 2 {
				v, err := strconv.ParseFloat(f[i], 64)
				if err == nil {
					b.Metrics[f[i+1]] = v
				}
			}
			b.Package = pkg
			pending = append(pending, b)
		}
	}
	// Output cut short (no ok/FAIL line): keep what was measured.
	benches = append(benches, pending...)
	return benches, failed
}

func (e *env) runMicro(ctx context.Context, r *Result) (any, error) {
	pkgs, err := benchPackages(e.cfg.Root)
	if err != nil {
		return nil, err
	}
	data := MicroData{Benchtime: e.cfg.MicroTime, Packages: pkgs}
	r.Setup = []string{
		fmt.Sprintf("go test -run '^$' -bench . -benchmem -benchtime %s over the packages with benchmarks: %s", e.cfg.MicroTime, strings.Join(pkgs, " ")),
		"one package at a time (go test -p 1), so that benchmarks do not compete with each other for the cores; a package whose benchmarks run longer than 3 minutes is stopped and reported as failed",
	}
	args := append([]string{"test", "-p", "1", "-run", "^$", "-bench", ".", "-benchmem", "-benchtime", e.cfg.MicroTime, "-timeout", "3m"}, pkgs...)
	cmd := exec.CommandContext(ctx, "go", args...)
	cmd.Dir = e.cfg.Root
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	t := time.Now()
	runErr := cmd.Run()
	e.log.Info("micro-benchmarks ran", "seconds", int(time.Since(t).Seconds()), "err", runErr)
	if err := os.WriteFile(filepath.Join(e.cfg.Out, "micro.txt"), out.Bytes(), 0o644); err != nil {
		return nil, err
	}
	data.Benchmarks, data.Failed = parseBench(out.Bytes())
	if len(data.Failed) > 0 {
		r.Notes = append(r.Notes, fmt.Sprintf("packages whose benchmarks failed to build or run (being edited by others during this run?): %s; see micro.txt", strings.Join(data.Failed, ", ")))
	}
	if len(data.Benchmarks) == 0 {
		return data, fmt.Errorf("no benchmark results: %v", runErr)
	}
	return data, nil
}
