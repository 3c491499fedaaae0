package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/goat-gateway/goat-gateway/api"
	"github.com/goat-gateway/goat-gateway/auth"
	"github.com/goat-gateway/goat-gateway/cluster"
)

// fileConfig is the optional YAML config file (--config). Flags win over
// environment variables (GOAT_*), which win over the file.
type fileConfig struct {
	Listen    string         `yaml:"listen"`
	DataDir   string         `yaml:"dataDir"`
	KeysDir   string         `yaml:"keysDir"`
	Dev       bool           `yaml:"dev"`
	Rules     string         `yaml:"rules"`
	BodyLimit int64          `yaml:"bodyLimit"`
	LogLevel  string         `yaml:"logLevel"`
	Issuers   []issuerConfig `yaml:"issuers"`
	// NoDevIssuer stops trusting tokens from `goat-gateway token`.
	NoDevIssuer bool `yaml:"noDevIssuer"`
	// PrintToken prints a dev token for a subject at start (make run).
	PrintToken string `yaml:"printToken"`
	// Scale-out (package cluster, docs/scale-out.md).
	NATSURL         string   `yaml:"natsURL"`
	Peers           []string `yaml:"peers"`
	NodeToken       string   `yaml:"nodeToken"`
	NodeTokenFile   string   `yaml:"nodeTokenFile"`
	NodeKey         string   `yaml:"nodeKey"`
	HealInterval    string   `yaml:"healInterval"`
	ReplicationWait string   `yaml:"replicationWait"`
}

type issuerConfig struct {
	Issuer     string   `yaml:"issuer"`
	Audience   []string `yaml:"audience"`
	KeyFiles   []string `yaml:"keyFiles"`
	JWKSFile   string   `yaml:"jwksFile"`
	JWKSURL    string   `yaml:"jwksURL"`
	NodeTokens bool     `yaml:"nodeTokens"`
}

func loadFileConfig(path string) (fileConfig, error) {
	var fc fileConfig
	if path == "" {
		return fc, nil
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return fc, fmt.Errorf("config: %w", err)
	}
	dec := yaml.NewDecoder(strings.NewReader(string(b)))
	dec.KnownFields(true)
	if err := dec.Decode(&fc); err != nil && !errors.Is(err, io.EOF) {
		return fc, fmt.Errorf("config %s: %w", path, err)
	}
	return fc, nil
}

// serve runs a node until ctx is done. ready, when not nil, receives the
// bound address once the listener is up, so tests can bind port 0.
func serve(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer, ready chan<- string) error {
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	fs.SetOutput(stderr)
	configPath := fs.String("config", getenv("GOAT_CONFIG"), "YAML config file (env GOAT_CONFIG)")
	listen := fs.String("listen", "", "address to listen on (env GOAT_LISTEN; default localhost:8080)")
	dataDir := fs.String("data-dir", "", "directory for repository logs (env GOAT_DATA_DIR; default ./data)")
	keysDir := fs.String("keys-dir", "", "directory for the root and dev issuer keys (env GOAT_KEYS_DIR; default DATA_DIR/keys)")
	dev := fs.Bool("dev", false, "dev mode: every authenticated caller may read and write every repository (env GOAT_DEV)")
	rules := fs.String("rules", "", "authorization rules YAML file (env GOAT_RULES)")
	printToken := fs.String("print-token", "", "print a dev token for this subject at start (env GOAT_PRINT_TOKEN)")
	logLevel := fs.String("log-level", "", "debug, info, warn or error (env GOAT_LOG_LEVEL; default info)")
	natsURL := fs.String("nats-url", "", "NATS server for live fan-out between nodes, e.g. nats://nats:4222 (env GOAT_NATS_URL; default none: no fan-out)")
	peers := fs.String("peers", "", "comma-separated base URLs of the other nodes for node-to-node sync; may include this node's own (env GOAT_PEERS)")
	nodeToken := fs.String("node-token", "", "bearer token with role "+auth.NodeRole+" for calls to peers (env GOAT_NODE_TOKEN; default: minted with the node issuer key)")
	nodeTokenFile := fs.String("node-token-file", "", "file holding the node token, reread at every use (env GOAT_NODE_TOKEN_FILE)")
	nodeKey := fs.String("node-key", "", "node issuer key shared by the nodes (env GOAT_NODE_KEY; default KEYS_DIR/"+cluster.NodeKeyFile+", created if absent)")
	healInterval := fs.String("heal-interval", "", "period of full node-to-node reconciliation (env GOAT_HEAL_INTERVAL; default 30s)")
	replicationWait := fs.String("replication-wait", "", "how long a write's acknowledgement waits for NATS to hold it; 0 to not wait (env GOAT_REPLICATION_WAIT; default 2s)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	fc, err := loadFileConfig(*configPath)
	if err != nil {
		return err
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	pick := func(flagName, flagVal, env, fileVal, def string) string {
		switch {
		case set[flagName]:
			return flagVal
		case getenv(env) != "":
			return getenv(env)
		case fileVal != "":
			return fileVal
		}
		return def
	}
	addr := pick("listen", *listen, "GOAT_LISTEN", fc.Listen, "localhost:8080")
	cfg := api.Config{
		DataDir:     pick("data-dir", *dataDir, "GOAT_DATA_DIR", fc.DataDir, "./data"),
		KeysDir:     pick("keys-dir", *keysDir, "GOAT_KEYS_DIR", fc.KeysDir, ""),
		BodyLimit:   fc.BodyLimit,
		Version:     versionString(),
		NoDevIssuer: fc.NoDevIssuer,
	}
	cfg.Dev = fc.Dev || *dev
	if v := getenv("GOAT_DEV"); v != "" && !set["dev"] {
		if cfg.Dev, err = strconv.ParseBool(v); err != nil {
			return fmt.Errorf("GOAT_DEV: %w", err)
		}
	}
	var level slog.Level
	if err := level.UnmarshalText([]byte(pick("log-level", *logLevel, "GOAT_LOG_LEVEL", fc.LogLevel, "info"))); err != nil {
		return err
	}
	cfg.Logger = slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: level}))
	if path := pick("rules", *rules, "GOAT_RULES", fc.Rules, ""); path != "" {
		if cfg.Rules, err = auth.LoadRules(path); err != nil {
			return err
		}
	}
	for _, ic := range fc.Issuers {
		c := auth.IssuerConfig{Issuer: ic.Issuer, Audience: ic.Audience, JWKSFile: ic.JWKSFile, JWKSURL: ic.JWKSURL, NodeTokens: ic.NodeTokens}
		for _, p := range ic.KeyFiles {
			c.KeyFiles = append(c.KeyFiles, auth.KeyFile{Path: p})
		}
		cfg.Issuers = append(cfg.Issuers, c)
	}
	if !cfg.Dev && cfg.Rules == nil {
		cfg.Logger.Warn("no --rules and no --dev: every repository is closed to every caller (default deny)")
	}
	ccfg := cluster.Config{
		NATSURL:       pick("nats-url", *natsURL, "GOAT_NATS_URL", fc.NATSURL, ""),
		NodeToken:     pick("node-token", *nodeToken, "GOAT_NODE_TOKEN", fc.NodeToken, ""),
		NodeTokenFile: pick("node-token-file", *nodeTokenFile, "GOAT_NODE_TOKEN_FILE", fc.NodeTokenFile, ""),
		Logger:        cfg.Logger,
	}
	for _, p := range strings.Split(pick("peers", *peers, "GOAT_PEERS", strings.Join(fc.Peers, ","), ""), ",") {
		if p = strings.TrimSpace(p); p != "" {
			ccfg.Peers = append(ccfg.Peers, p)
		}
	}
	if v := pick("heal-interval", *healInterval, "GOAT_HEAL_INTERVAL", fc.HealInterval, ""); v != "" {
		if ccfg.HealInterval, err = time.ParseDuration(v); err != nil || ccfg.HealInterval <= 0 {
			return fmt.Errorf("heal interval %q: want a positive duration such as 30s", v)
		}
	}
	if v := pick("replication-wait", *replicationWait, "GOAT_REPLICATION_WAIT", fc.ReplicationWait, ""); v != "" {
		if ccfg.ReplicationWait, err = time.ParseDuration(v); err != nil || ccfg.ReplicationWait < 0 {
			return fmt.Errorf("replication wait %q: want a duration such as 2s, or 0", v)
		}
		if ccfg.ReplicationWait == 0 {
			ccfg.ReplicationWait = -1 // acknowledge without waiting
		}
	}
	clustered := ccfg.NATSURL != "" || len(ccfg.Peers) > 0
	if clustered && ccfg.NodeToken == "" && ccfg.NodeTokenFile == "" {
		path := pick("node-key", *nodeKey, "GOAT_NODE_KEY", fc.NodeKey, "")
		if path == "" {
			path = filepath.Join(keysDirFor(cfg.DataDir, cfg.KeysDir), cluster.NodeKeyFile)
		}
		if ccfg.NodeKey, err = auth.LoadOrCreateKey(path); err != nil {
			return fmt.Errorf("node issuer key: %w", err)
		}
	}
	node, err := cluster.New(ccfg)
	if err != nil {
		return err
	}
	if clustered {
		cfg.OnAppend = node.OnAppend
		cfg.Middleware = node.Middleware
		cfg.Issuers = append(cfg.Issuers, node.Issuers()...)
	}
	srv, err := api.Open(cfg)
	if err != nil {
		return err
	}
	defer srv.Close()
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	if clustered {
		// Started once the port is bound, so that the first reconciliation
		// pass recognizes this node in the peer list; closed before the
		// storage (defers run last in, first out).
		if err := node.Start(srv); err != nil {
			ln.Close()
			return err
		}
		defer node.Close()
	}
	url := "http://" + ln.Addr().String()
	cfg.Logger.Info("listening", "url", url, "data_dir", cfg.DataDir, "dev", cfg.Dev)
	fmt.Fprintf(stdout, "goat-gateway listening on %s\n", url)
	if sub := pick("print-token", *printToken, "GOAT_PRINT_TOKEN", fc.PrintToken, ""); sub != "" {
		tok, err := srv.DevIssuer().Mint(sub, nil, 30*24*time.Hour, time.Now())
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

// keysDirFor resolves the keys directory the way serve does.
func keysDirFor(dataDir, keysDir string) string {
	if keysDir != "" {
		return keysDir
	}
	return filepath.Join(dataDir, "keys")
}
