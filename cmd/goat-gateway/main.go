// Command goat-gateway runs the goat-gateway sync server and its tools.
//
//	goat-gateway [serve] [flags]   run a gateway node (the default)
//	goat-gateway token ...         mint a dev token
//	goat-gateway fsck ...          check and repair repository logs
//	goat-gateway export ...        write a repository as NDJSON
//	goat-gateway import ...        load an export's commits
//	goat-gateway backup ...        copy a running gateway into a directory
//	goat-gateway version           print the version
//	goat-gateway help [COMMAND]    the commands, or one command's flags
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "goat-gateway:", err)
		os.Exit(1)
	}
}
