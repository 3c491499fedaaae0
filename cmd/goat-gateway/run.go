package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"runtime/debug"
	"strings"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

// run dispatches to a subcommand. It is main without the process: tests
// call it directly.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	cmd := "serve"
	if len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		cmd, args = args[0], args[1:]
	}
	switch cmd {
	case "serve":
		return serve(ctx, args, os.Getenv, stdout, stderr, nil)
	case "token":
		return token(args, stdout)
	case "fsck":
		return fsck(args, stdout)
	case "export":
		return export(ctx, args, stdout)
	case "version":
		fmt.Fprintln(stdout, versionString())
		return nil
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usage)
		return nil
	default:
		return fmt.Errorf("unknown command %q\n%s", cmd, usage)
	}
}

const usage = `usage: goat-gateway [command] [flags]

commands:
  serve     run a gateway node (default); see 'goat-gateway serve -h'
  token     print a token signed by the dev issuer: --data-dir DIR --sub NAME [--role R]... [--ttl D]
  fsck      check every repository log: --data-dir DIR [--repair]
  export    write a repository as NDJSON: --data-dir DIR --repo R [--history]
  version   print the version
`

func versionString() string {
	v := version
	if bi, ok := debug.ReadBuildInfo(); ok && v == "dev" && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
		v = bi.Main.Version
	}
	return "goat-gateway " + v
}
