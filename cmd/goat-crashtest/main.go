// Command goat-crashtest kills a real goat-gateway process with SIGKILL at
// random moments while it takes writes, restarts it, and checks that every
// acknowledged commit survived byte for byte and that the logs reopen
// without repair (reliability.RunCrash). It builds nothing: give it a
// binary.
//
//	go build -o bin/goat-gateway ./cmd/goat-gateway
//	go run ./cmd/goat-crashtest --bin bin/goat-gateway --trials 200
//
// It prints one line per trial and ends with
//
//	crash-test: N trials, M acknowledged commits checked, 0 lost
//
// and exits 1 if anything was lost or any check failed.
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/goat-gateway/goat-gateway/reliability"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "goat-crashtest:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("goat-crashtest", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var cfg reliability.CrashConfig
	fs.StringVar(&cfg.Bin, "bin", "", "path to a goat-gateway binary (required)")
	fs.IntVar(&cfg.Trials, "trials", 5, "kill-and-restart cycles")
	fs.Uint64Var(&cfg.Seed, "seed", uint64(time.Now().UnixNano()), "seed for kill moments and writes")
	fs.IntVar(&cfg.Writers, "writers", 4, "concurrent writers")
	fs.StringVar(&cfg.DataDir, "data-dir", "", "data directory kept across trials (default: a temporary one, removed on success)")
	fs.DurationVar(&cfg.MinKill, "min-kill", 10*time.Millisecond, "shortest delay from the writers' start to the SIGKILL")
	fs.DurationVar(&cfg.MaxKill, "max-kill", 400*time.Millisecond, "longest delay from the writers' start to the SIGKILL")
	fs.Float64Var(&cfg.RecoveryKills, "recovery-kills", 0.1, "fraction of trials killed while the gateway starts (negative: none)")
	quiet := fs.Bool("q", false, "print only the summary")
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
	fmt.Fprintf(stdout, "crash-test: seed %d, %d trials, %d writers, binary %s\n", cfg.Seed, cfg.Trials, cfg.Writers, cfg.Bin)
	rep, err := reliability.RunCrash(ctx, cfg)
	fmt.Fprintf(stdout, "crash-test: %d pushed commits, %d item writes, %d sessions acknowledged; %d checks over all restarts; %d killed during recovery; fsck after kills: %s; %s\n",
		rep.Pushed, rep.Items, rep.Sessions, rep.Checks, rep.RecoveryKills, rep.FsckSummary(), rep.Elapsed.Round(time.Second))
	fmt.Fprintln(stdout, rep.Summary())
	if err != nil {
		fmt.Fprintf(stderr, "data kept in %s, gateway log %s\n", rep.DataDir, rep.GatewayLog)
	}
	return err
}
