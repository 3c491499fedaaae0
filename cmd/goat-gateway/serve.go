package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"path/filepath"
	"time"

	"github.com/goat-gateway/goat-gateway/api"
	"github.com/goat-gateway/goat-gateway/auth"
	"github.com/goat-gateway/goat-gateway/cluster"
	"github.com/goat-gateway/goat-gateway/node"
)

// serve runs a node until ctx is done. ready, when not nil, receives the
// bound address once the listener is up, so tests can bind port 0.
func serve(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer, ready chan<- string) error {
	c, err := loadConfig(args, getenv)
	if errors.Is(err, flag.ErrHelp) {
		printServeUsage(stdout)
		return nil
	}
	if err != nil {
		return err
	}
	logger := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: c.LogLevel}))
	// Bound before anything touches the disk: a node started on a busy
	// port must fail without leaving a data directory or keys behind.
	ln, err := net.Listen("tcp", c.Listen)
	if err != nil {
		return err
	}
	defer ln.Close() // for the early returns; Serve closes it too
	cfgs, err := c.build(logger)
	if err != nil {
		return err
	}
	cl, err := cluster.New(cfgs.cluster)
	if err != nil {
		return err
	}
	if c.clustered() {
		cfgs.node.Observer, cfgs.node.Barrier, cfgs.node.SessionSource = cl, cl, cl
		cfgs.api.Issuers = append(cfgs.api.Issuers, cl.Issuers()...)
		cfgs.api.Collectors = append(cfgs.api.Collectors, cl.Collector())
	}
	nd, err := node.Open(cfgs.node)
	if err != nil {
		return err
	}
	defer nd.Close()
	srv, err := api.New(nd, cfgs.api)
	if err != nil {
		return err
	}
	if c.clustered() {
		// Started once the port is bound, so that the first reconciliation
		// pass recognizes this node in the peer list; closed before the
		// node (defers run last in, first out).
		if err := cl.Start(nd); err != nil {
			return err
		}
		defer cl.Close()
	}
	url := "http://" + ln.Addr().String()
	logger.Info("listening", "url", url, "data_dir", cfgs.node.DataDir, "dev", cfgs.node.Dev)
	fmt.Fprintf(stdout, "goat-gateway listening on %s\n", url)
	if sub := c.PrintToken; sub != "" {
		tok, err := nd.DevIssuer().Mint(sub, nil, 30*24*time.Hour, time.Now())
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "dev token for %q (30 days):\n\n  export TOKEN=%s\n\n", sub, tok)
		fmt.Fprintf(stdout, "try:\n  curl -s -H \"Authorization: Bearer $TOKEN\" %s/v1/repos\n", url)
	}
	if ready != nil {
		ready <- ln.Addr().String()
	}
	return srv.Serve(ctx, ln)
}

// clustered says whether the node works with other nodes.
func (c serveConfig) clustered() bool { return c.NATSURL != "" || len(c.Peers) > 0 }

// configs are what a gateway process is built from: the node, its HTTP
// face, and its scale-out.
type configs struct {
	node    node.Config
	api     api.Config
	cluster cluster.Config
}

// build turns the settings into the configurations of the node, of its
// HTTP face and of its scale-out. It is the one place that knows how
// settings map onto them. It may create the node issuer key, so serve
// calls it only once the port is bound.
func (c serveConfig) build(logger *slog.Logger) (configs, error) {
	ncfg := node.Config{
		DataDir:  c.DataDir,
		KeysDir:  c.KeysDir,
		Dev:      c.Dev,
		Audience: c.Audience,
		Logger:   logger,
	}
	ncfg.MaxOpenRepos = c.MaxOpenRepos
	ncfg.MaxReposPerOwner = c.MaxReposPerOwner
	ncfg.MaxSessionsPerOwner = c.MaxSessionsPerOwner
	ncfg.MaxStreamsPerCaller = c.MaxStreamsPerCaller
	cfg := api.Config{
		Issuers:           c.Issuers,
		TrustDevIssuer:    c.Dev && !c.NoDevIssuer,
		TrustProxyHeaders: c.TrustProxyHeaders,
		BodyLimit:         c.BodyLimit,
		BodyReadTimeout:   c.BodyReadTimeout,
		BodyBudget:        c.BodyBudget,
		BodyRate:          c.BodyRate,
		TokenCache:        c.TokenCache,
		NoIOURing:         !c.IOURing,
		StaticDir:         c.StaticDir,
		CORSOrigins:       c.CORSOrigins,
		Version:           versionString(),
		Logger:            logger,
	}
	if c.TokenCache == 0 {
		cfg.TokenCache = -1 // 0 turns the cache off; api's zero is its default
	}
	if c.BodyRate == 0 {
		cfg.BodyRate = -1 // 0 is no limit; api's zero is its default
	}
	ccfg := cluster.Config{
		NATSURL:         c.NATSURL,
		Peers:           c.Peers,
		NodeToken:       c.NodeToken,
		NodeTokenFile:   c.NodeTokenFile,
		HealInterval:    c.HealInterval,
		ReplicationWait: c.ReplicationWait,
		Logger:          logger,
	}
	if c.ReplicationWait == 0 {
		ccfg.ReplicationWait = -1 // acknowledge without waiting
	}
	var err error
	out := func() configs { return configs{node: ncfg, api: cfg, cluster: ccfg} }
	if c.Rules != "" {
		if ncfg.Rules, err = auth.LoadRules(c.Rules); err != nil {
			return out(), err
		}
	}
	if !ncfg.Dev && ncfg.Rules == nil {
		logger.Warn("no --rules and no --dev: every repository is closed to every caller (default deny)")
	}
	if c.clustered() && ccfg.NodeToken == "" && ccfg.NodeTokenFile == "" {
		path := c.NodeKey
		if path == "" {
			path = filepath.Join(keysDirFor(c.DataDir, c.KeysDir), cluster.NodeKeyFile)
		}
		if ccfg.NodeKey, err = auth.LoadOrCreateKey(path); err != nil {
			return out(), fmt.Errorf("node issuer key: %w", err)
		}
	}
	return out(), nil
}

// keysDirFor resolves the keys directory the way serve does.
func keysDirFor(dataDir, keysDir string) string {
	if keysDir != "" {
		return keysDir
	}
	return filepath.Join(dataDir, "keys")
}
