// Command goat-soak runs the attack-mix soak (reliability.RunSoak) against
// a real goat-gateway binary on loopback: honest clients write and
// subscribe alone, then under every attack of issue 17 at once; it reports
// the node's peak memory above idle, the honest p99 latencies under attack
// against without, acknowledged writes lost after a restart and 5xx
// answers. It builds nothing: give it a binary.
//
//	go build -o bin/goat-gateway ./cmd/goat-gateway
//	go run ./cmd/goat-soak --bin bin/goat-gateway --out bench/results/soak
//
// It writes OUT.json and OUT.txt and exits 1 when a target is missed.
//
// The attackers run in a process of their own, this same program started
// again with --attacker at niceness --attacker-nice (10), because in a
// deployment the attackers' CPU is other machines', not the gateway's; the
// honest clients stay in this process at its priority. --attackers
// in-process runs them as goroutines here instead, as the 4-second soak
// of `go test ./reliability` also does.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/goat-gateway/goat-gateway/reliability"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "goat-soak:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	// The attacker process: orders on stdin, what it got on stdout
	// (reliability.RunSoakAttacker). Not in the usage: only the soak
	// starts it.
	if len(args) == 1 && args[0] == "--attacker" {
		return reliability.RunSoakAttacker(ctx, os.Stdin, stdout)
	}
	fs := flag.NewFlagSet("goat-soak", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var cfg reliability.SoakConfig
	fs.StringVar(&cfg.Bin, "bin", "", "path to a goat-gateway binary (required)")
	fs.DurationVar(&cfg.Baseline, "baseline", 30*time.Second, "phase 1: honest load alone")
	fs.DurationVar(&cfg.Attack, "attack", 60*time.Second, "phase 2: honest load under the attack mix (longer runs: --baseline 5m --attack 30m)")
	fs.IntVar(&cfg.Writers, "writers", 4, "honest users, each writing and subscribing")
	fs.DurationVar(&cfg.WriteEvery, "write-every", 100*time.Millisecond, "each honest user's pace")
	fs.IntVar(&cfg.SlowBodies, "slow-bodies", 200, "connections trickling a body one byte every 3 s")
	fs.IntVar(&cfg.Replays, "replays", 32, "never-reading replays of the public repository")
	fs.IntVar(&cfg.ManyHeads, "many-heads", 1000, "concurrent root commits on one item per round")
	attackList := fs.String("attacks", "", "comma-separated attacks to run in phase 2 (default all: "+strings.Join(reliability.SoakAttacks, ",")+")")
	attackers := fs.String("attackers", "process", "where the attackers run: process (their own, at --attacker-nice) or in-process (goroutines of the soak, competing with the honest clients for CPU)")
	fs.IntVar(&cfg.AttackerNice, "attacker-nice", 10, "niceness of the attacker process (0 to 19)")
	out := fs.String("out", "", "write the report to OUT.json and OUT.txt")
	quiet := fs.Bool("q", false, "print only the report")
	measure := fs.Bool("measure", false, "instead of the soak, measure issue 17's items 2, 5 and 6 the issue's way (about two minutes)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if cfg.Bin == "" {
		fs.Usage()
		return fmt.Errorf("--bin is required")
	}
	if !*quiet {
		cfg.Progress = stdout
	}
	if *attackList != "" {
		cfg.Attacks = strings.Split(*attackList, ",")
	}
	switch *attackers {
	case "in-process":
	case "process":
		self, err := os.Executable()
		if err != nil {
			return fmt.Errorf("--attackers process: finding this program to start again: %w", err)
		}
		cfg.Attacker = []string{self, "--attacker"}
	default:
		return fmt.Errorf("--attackers %q: want process or in-process", *attackers)
	}
	if cfg.AttackerNice < 0 || cfg.AttackerNice > 19 {
		return fmt.Errorf("--attacker-nice %d: want 0 to 19 (a lower niceness than ours needs privileges)", cfg.AttackerNice)
	}
	if *measure {
		rep, err := reliability.RunMeasure(ctx, cfg.Bin, cfg.Progress)
		if err != nil {
			return err
		}
		return report(*out, rep, rep.Text(), stdout, len(rep.Failures) == 0)
	}
	rep, err := reliability.RunSoak(ctx, cfg)
	if err != nil {
		return err
	}
	return report(*out, rep, rep.Text(), stdout, rep.Passed())
}

// report prints text and writes OUT.json and OUT.txt when out is set; it
// fails when the run did not pass.
func report(out string, rep any, text string, stdout io.Writer, passed bool) error {
	fmt.Fprint(stdout, text)
	if out != "" {
		b, _ := json.MarshalIndent(rep, "", "  ")
		if err := os.MkdirAll(filepath.Dir(out), 0o755); err != nil {
			return err
		}
		if err := os.WriteFile(out+".json", append(b, '\n'), 0o644); err != nil {
			return err
		}
		if err := os.WriteFile(out+".txt", []byte(text), 0o644); err != nil {
			return err
		}
	}
	if !passed {
		return fmt.Errorf("a target was missed or a check failed (see the report)")
	}
	return nil
}
