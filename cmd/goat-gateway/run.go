package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"runtime/debug"
	"sort"
	"strings"
)

// version and commit may be set at build time with -ldflags "-X
// main.version=... -X main.commit=...". Without them the build info is
// used: the module version (a tag under go install module@version) and the
// commit go build stamps; make build sets commit because go build stamps
// none in a git worktree checkout.
var (
	version = "dev"
	commit  = ""
)

// command is one subcommand of the binary.
type command struct {
	name    string
	summary string
	// usage is the command's help after its flags: what it does and
	// examples. The flags are listed from its flag set.
	usage string
	run   func(ctx context.Context, args []string, stdout, stderr io.Writer) error
}

// commands lists the subcommands in the order of the help.
func commands() []command {
	return []command{
		{name: "serve", summary: "run a gateway node (the default command)", run: func(ctx context.Context, args []string, stdout, stderr io.Writer) error {
			return serve(ctx, args, os.Getenv, stdout, stderr, nil)
		}},
		{name: "token", summary: "print a token signed by the dev issuer", usage: tokenUsage, run: func(_ context.Context, args []string, stdout, _ io.Writer) error {
			return token(args, stdout)
		}},
		{name: "fsck", summary: "check (and --repair) every repository log of a stopped gateway", usage: fsckUsage, run: func(_ context.Context, args []string, stdout, _ io.Writer) error {
			return fsck(args, stdout)
		}},
		{name: "export", summary: "write a repository as NDJSON: items, or every commit (running or stopped gateway)", usage: exportUsage, run: func(ctx context.Context, args []string, stdout, _ io.Writer) error {
			return export(ctx, args, stdout)
		}},
		{name: "import", summary: "load an export's commits into a repository (running or stopped gateway)", usage: importUsage, run: func(ctx context.Context, args []string, stdout, _ io.Writer) error {
			return importCmd(ctx, args, os.Stdin, stdout)
		}},
		{name: "backup", summary: "copy every repository of a running gateway into a directory a gateway can serve", usage: backupUsage, run: func(ctx context.Context, args []string, stdout, _ io.Writer) error {
			return backup(ctx, args, stdout)
		}},
		{name: "version", summary: "print the version and the commit it was built from", run: func(_ context.Context, args []string, stdout, _ io.Writer) error {
			if len(args) > 0 && !isHelp(args[0]) {
				return fmt.Errorf("version takes no arguments, got %q", args[0])
			}
			_, err := fmt.Fprintln(stdout, versionString())
			return err
		}},
		{name: "help", summary: "print this help, or a command's: goat-gateway help COMMAND", run: func(_ context.Context, args []string, stdout, _ io.Writer) error {
			if len(args) == 0 {
				printUsage(stdout)
				return nil
			}
			c, ok := lookup(args[0])
			if !ok {
				return unknownCommand(args[0])
			}
			return c.run(context.Background(), []string{"--help"}, stdout, io.Discard)
		}},
	}
}

func lookup(name string) (command, bool) {
	for _, c := range commands() {
		if c.name == name {
			return c, true
		}
	}
	return command{}, false
}

func isHelp(arg string) bool { return arg == "-h" || arg == "-help" || arg == "--help" }

// run dispatches to a subcommand. It is main without the process: tests
// call it directly.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) > 0 {
		switch {
		case isHelp(args[0]):
			printUsage(stdout)
			return nil
		case args[0] == "--version" || args[0] == "-version" || args[0] == "-v":
			_, err := fmt.Fprintln(stdout, versionString())
			return err
		}
	}
	name := "serve"
	if len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		name, args = args[0], args[1:]
	}
	c, ok := lookup(name)
	if !ok {
		return unknownCommand(name)
	}
	return c.run(ctx, args, stdout, stderr)
}

func unknownCommand(name string) error {
	var names []string
	for _, c := range commands() {
		names = append(names, c.name)
	}
	return fmt.Errorf("unknown command %q; the commands are %s (goat-gateway help)", name, strings.Join(names, ", "))
}

func printUsage(w io.Writer) {
	fmt.Fprint(w, "usage: goat-gateway [command] [flags]\n\ncommands:\n")
	for _, c := range commands() {
		fmt.Fprintf(w, "  %-8s  %s\n", c.name, c.summary)
	}
	fmt.Fprint(w, `
'goat-gateway COMMAND --help' describes a command and its flags.

examples:
  goat-gateway serve --dev --print-token dev      # a dev node on localhost:8080
  goat-gateway token --sub alice --role editor    # a dev token for alice
  goat-gateway fsck --data-dir ./data --repair    # check and repair a stopped node's logs
  goat-gateway export --data-dir ./data --repo user.alice.notes > notes.ndjson
  goat-gateway backup --url http://localhost:8080 --token $TOKEN --out ./backup
  goat-gateway --version
`)
}

// parseFlags parses a subcommand's flags. With -h or --help it prints the
// command's help on stdout and reports help, which the command answers by
// returning nil (exit 0). Mistakes are errors that name the command and
// point at its help, without printing the whole help on top.
func parseFlags(fs *flag.FlagSet, args []string, usage string, stdout io.Writer) (help bool, err error) {
	fs.SetOutput(io.Discard)
	err = fs.Parse(args)
	if errors.Is(err, flag.ErrHelp) {
		printFlags(stdout, fs, usage)
		return true, nil
	}
	if err != nil {
		return false, fmt.Errorf("%s: %w (see goat-gateway %s --help)", fs.Name(), err, fs.Name())
	}
	if fs.NArg() > 0 {
		return false, fmt.Errorf("%s: unexpected argument %q: options are flags (see goat-gateway %s --help)", fs.Name(), fs.Arg(0), fs.Name())
	}
	return false, nil
}

// printFlags writes a subcommand's help: its usage line and text, then its
// flags in the --name form the examples use.
func printFlags(w io.Writer, fs *flag.FlagSet, usage string) {
	fmt.Fprintf(w, "usage: goat-gateway %s [flags]\n\n%s\nflags:\n", fs.Name(), strings.TrimLeft(usage, "\n"))
	var lines []string
	fs.VisitAll(func(f *flag.Flag) {
		name, help := flag.UnquoteUsage(f)
		l := "  --" + f.Name
		if name != "" {
			l += " " + strings.ToUpper(name)
		}
		l += "\n        " + help
		if f.DefValue != "" && f.DefValue != "false" && f.DefValue != "[]" {
			l += " (default " + f.DefValue + ")"
		}
		lines = append(lines, l)
	})
	sort.Strings(lines)
	fmt.Fprintln(w, strings.Join(lines, "\n"))
}

func versionString() string {
	bi, _ := debug.ReadBuildInfo()
	return versionFrom(version, commit, bi)
}

// versionFrom says which build this is: the version set at link time or
// else the module's (a tag when built with go install module@version), and
// the VCS commit go build stamps, marked "+dirty" when the work tree had
// changes.
func versionFrom(linked, linkedCommit string, bi *debug.BuildInfo) string {
	if bi == nil {
		bi = &debug.BuildInfo{}
	}
	v := linked
	if v == "dev" && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
		v = bi.Main.Version
	}
	s := "goat-gateway " + v
	rev, modified, when := linkedCommit, "", ""
	for _, kv := range bi.Settings {
		switch kv.Key {
		case "vcs.revision":
			if rev == "" {
				rev = kv.Value
			}
		case "vcs.modified":
			modified = kv.Value
		case "vcs.time":
			when = kv.Value
		}
	}
	if rev != "" {
		s += " commit " + rev
		if modified == "true" {
			s += "+dirty"
		}
		if when != "" {
			s += " (" + when + ")"
		}
	} else {
		s += " (no commit recorded: built outside a git checkout, by go run or go test, or with -buildvcs=false)"
	}
	if bi.GoVersion != "" {
		s += " " + bi.GoVersion
	}
	return s
}
