package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/goat-gateway/goat-gateway/auth"
	"github.com/goat-gateway/goat-gateway/cluster"
)

// The settings of `goat-gateway serve`. Each is one row of the settings
// table below; its flag, its environment variable, its config file key and
// its help text are all derived from that row, and loadConfig applies one
// precedence rule to every one of them: flag > environment > file > default.

// serveConfig holds the settings of `serve`, parsed and checked.
type serveConfig struct {
	ConfigFile  string
	Listen      string
	DataDir     string
	KeysDir     string // "": DataDir/keys
	Dev         bool
	Rules       string
	BodyLimit   int64
	LogLevel    slog.Level
	NoDevIssuer bool
	Audience    string
	PrintToken  string
	Issuers     []auth.IssuerConfig

	// TrustProxyHeaders counts anonymous callers by X-Forwarded-For's last
	// hop (api.Config).
	TrustProxyHeaders bool

	// BodyReadTimeout and BodyBudget bound the time a body may take to
	// arrive and the bytes of all bodies held at once (api.Config).
	BodyReadTimeout time.Duration
	BodyBudget      int64
	// BodyRate bounds the body bytes one caller sends a second; 0: no
	// limit (api.Config.BodyRate).
	BodyRate int64

	NATSURL       string
	Peers         []string
	NodeToken     string
	NodeTokenFile string
	NodeKey       string // "": KeysDir/node-issuer.key
	HealInterval  time.Duration
	// ReplicationWait 0 acknowledges writes without waiting for NATS.
	ReplicationWait time.Duration

	// The open-files budget and the quotas per owner (node.Config).
	MaxOpenRepos        int
	MaxReposPerOwner    int
	MaxSessionsPerOwner int
	MaxStreamsPerCaller int

	// TokenCache is how many verified tokens are remembered; 0: none
	// (api.Config.TokenCache).
	TokenCache int

	// IOURing lets the fan-out writers send on io_uring where the kernel
	// offers it (api.Config.NoIOURing).
	IOURing bool

	// StaticDir is served outside /v1 (the app's own files) and
	// CORSOrigins may call the API from their pages (api.Config).
	StaticDir   string
	CORSOrigins []string
}

// setting is one row of the settings table.
type setting struct {
	// flag is the flag's name; the environment variable is GOAT_ and the
	// flag's name in upper case with underscores (setting.env).
	flag string
	// key is the config file's key; "" for a setting the file cannot hold.
	key string
	// def is the default, written as a flag value; "" is the zero value.
	def string
	// arg names the value in the help; "" makes the flag a switch (--dev).
	arg  string
	help string
	// set parses a value given as a flag, an environment variable or a
	// scalar in the file, and stores it. Its errors say what a valid value
	// looks like; the caller names the setting and the source.
	set func(c *serveConfig, v string) error
	// setNode, when not nil, takes a file value that is a list or a
	// mapping; settings without it take scalars only.
	setNode func(c *serveConfig, n *yaml.Node) error
	// repeat lets the flag be given more than once; the values are joined
	// with commas, as the environment variable lists them.
	repeat bool
}

func (s setting) env() string {
	return "GOAT_" + strings.ToUpper(strings.ReplaceAll(s.flag, "-", "_"))
}

// configSetting names the config file; the file cannot hold it.
var configSetting = setting{flag: "config", arg: "FILE",
	help: "YAML file with any of the other settings, under their file keys",
	set:  store(parseString, func(c *serveConfig) *string { return &c.ConfigFile })}

// settings is the one list of what `serve` can be told, in the order of
// its help.
var settings = []setting{
	configSetting,
	{flag: "listen", key: "listen", def: "localhost:8080", arg: "HOST:PORT",
		help: "address to serve HTTP on",
		set:  store(parseString, func(c *serveConfig) *string { return &c.Listen })},
	{flag: "data-dir", key: "dataDir", def: "./data", arg: "DIR",
		help: "directory of the repository logs, one append-only file per repository",
		set:  store(parseString, func(c *serveConfig) *string { return &c.DataDir })},
	{flag: "keys-dir", key: "keysDir", arg: "DIR",
		help: "directory of the root key and the dev and node issuer keys; empty: DATA_DIR/keys",
		set:  store(parseString, func(c *serveConfig) *string { return &c.KeysDir })},
	{flag: "dev", key: "dev",
		help: "dev mode: every authenticated caller may read and write every repository; never in production",
		set:  store(parseBool, func(c *serveConfig) *bool { return &c.Dev })},
	{flag: "rules", key: "rules", arg: "FILE",
		help: "authorization rules YAML file (docs/security.md); without it and without dev mode every repository is closed",
		set:  store(parseString, func(c *serveConfig) *string { return &c.Rules })},
	{flag: "body-limit", key: "bodyLimit", def: "16777216", arg: "BYTES",
		help: "largest request body, in bytes; under 16 MiB, /v1/info advertises a smaller maxFilterBits so that a sync round still fits",
		set:  store(parseBodyLimit, func(c *serveConfig) *int64 { return &c.BodyLimit })},
	{flag: "body-read-timeout", key: "bodyReadTimeout", def: "30s", arg: "DURATION",
		help: "longest a request body may take to arrive; a slower one is cut with a 400",
		set:  store(parsePositiveDuration, func(c *serveConfig) *time.Duration { return &c.BodyReadTimeout })},
	{flag: "body-budget", key: "bodyBudget", def: "268435456", arg: "BYTES",
		help: "most bytes of request bodies held at once, all requests together; past it a request is a 429 with Retry-After",
		set:  store(parseBodyLimit, func(c *serveConfig) *int64 { return &c.BodyBudget })},
	{flag: "body-rate", key: "bodyRate", def: "33554432", arg: "BYTES",
		help: "most bytes of request bodies one caller sends a second (a token's subject; an anonymous caller by its address, as --trust-proxy-headers says), with a burst of one --body-limit; a body over it is a 429 with Retry-After before it is read; 0: no limit",
		set:  store(parseBodyRate, func(c *serveConfig) *int64 { return &c.BodyRate })},
	{flag: "log-level", key: "logLevel", def: "info", arg: "LEVEL",
		help: "debug, info, warn or error",
		set:  store(parseLogLevel, func(c *serveConfig) *slog.Level { return &c.LogLevel })},
	{flag: "no-dev-issuer", key: "noDevIssuer",
		help: "with --dev, still refuse tokens minted by `goat-gateway token` (the dev issuer); without --dev they are always refused",
		set:  store(parseBool, func(c *serveConfig) *bool { return &c.NoDevIssuer })},
	{flag: "audience", key: "audience", def: auth.DevAudience, arg: "AUD",
		help: "the audience session proofs are bound to (reported by /v1/info), so a proof made for one deployment is useless at another",
		set:  store(parseString, func(c *serveConfig) *string { return &c.Audience })},
	{flag: "trust-proxy-headers", key: "trustProxyHeaders",
		help: "count anonymous callers by the last hop of X-Forwarded-For (the address your proxy saw) instead of the connection's address; only behind a proxy that fronts every connection and appends to that header",
		set:  store(parseBool, func(c *serveConfig) *bool { return &c.TrustProxyHeaders })},
	{flag: "print-token", key: "printToken", arg: "SUBJECT",
		help: "print a dev token for this subject at start",
		set:  store(parseString, func(c *serveConfig) *string { return &c.PrintToken })},
	{flag: "issuers", key: "issuers", arg: "JSON",
		help: "trusted token issuers, a list of {" + strings.Join(issuerKeys, ", ") + "}: a YAML list in the file, " +
			"the same list in JSON as a flag or variable, e.g. " + issuersExample,
		set:     setIssuersText,
		setNode: setIssuersNode},
	{flag: "nats-url", key: "natsURL", arg: "URL",
		help: "NATS server(s) for live fan-out between nodes, comma-separated, e.g. nats://nats:4222; empty: no fan-out",
		set:  store(parseString, func(c *serveConfig) *string { return &c.NATSURL })},
	{flag: "peers", key: "peers", arg: "URLS",
		help:    "base URLs of the nodes for node-to-node sync, comma-separated (or a list in the file); may include this node's own",
		set:     setPeers,
		setNode: setPeersNode},

	{flag: "node-token", key: "nodeToken", arg: "TOKEN",
		help: "bearer token with role " + auth.NodeRole + " for calls to peers; empty: minted with the node issuer key",
		set:  store(parseString, func(c *serveConfig) *string { return &c.NodeToken })},
	{flag: "node-token-file", key: "nodeTokenFile", arg: "FILE",
		help: "file holding the node token, reread at every use",
		set:  store(parseString, func(c *serveConfig) *string { return &c.NodeTokenFile })},
	{flag: "node-key", key: "nodeKey", arg: "FILE",
		help: "node issuer key shared by the nodes, created if absent; empty: KEYS_DIR/" + cluster.NodeKeyFile,
		set:  store(parseString, func(c *serveConfig) *string { return &c.NodeKey })},
	{flag: "heal-interval", key: "healInterval", def: "30s", arg: "DURATION",
		help: "period of full node-to-node reconciliation",
		set:  store(parsePositiveDuration, func(c *serveConfig) *time.Duration { return &c.HealInterval })},
	{flag: "replication-wait", key: "replicationWait", def: "2s", arg: "DURATION",
		help: "how long a write's acknowledgement waits for NATS to hold it; 0: do not wait",
		set:  store(parseWait, func(c *serveConfig) *time.Duration { return &c.ReplicationWait })},

	{flag: "max-open-repos", key: "maxOpenRepos", def: "512", arg: "N",
		help: "most repositories open at once (the open-files budget); opening another first closes the least recently used idle one",
		set:  store(parsePositiveInt, func(c *serveConfig) *int { return &c.MaxOpenRepos })},
	{flag: "max-repos-per-owner", key: "maxReposPerOwner", def: "1000", arg: "N",
		help: "most repositories one token subject may create (anonymous callers count as one); past it, 429",
		set:  store(parsePositiveInt, func(c *serveConfig) *int { return &c.MaxReposPerOwner })},
	{flag: "max-sessions-per-owner", key: "maxSessionsPerOwner", def: "100", arg: "N",
		help: "most live (unexpired, unrevoked) sessions one token subject may hold; past it, 429",
		set:  store(parsePositiveInt, func(c *serveConfig) *int { return &c.MaxSessionsPerOwner })},
	{flag: "max-streams-per-caller", key: "maxStreamsPerCaller", def: "64", arg: "N",
		help: "most live event streams (GET /v1/events) one token subject holds at once, or one remote address for anonymous callers; past it, 429",
		set:  store(parsePositiveInt, func(c *serveConfig) *int { return &c.MaxStreamsPerCaller })},
	{flag: "token-cache", key: "tokenCache", def: "10000", arg: "N",
		help: "most verified bearer tokens remembered, so a token sent again is not verified again (never past its exp, never after its issuer's keys changed); 0: verify every request",
		set:  store(parseCount, func(c *serveConfig) *int { return &c.TokenCache })},
	{flag: "io-uring", key: "ioUring", def: "true", arg: "BOOL",
		help: "send live events to their streams on io_uring where the kernel offers it (Linux 5.19 or later), the sends of many streams in one system call; false: one write(2) per stream, for a security policy that forbids io_uring (where the kernel refuses it, write(2) is used anyway)",
		set:  store(parseBool, func(c *serveConfig) *bool { return &c.IOURing })},

	{flag: "static", key: "static", arg: "DIR",
		help: "serve the application's files from DIR on every path outside /v1 and the operational paths (HTML no-cache, fingerprinted assets immutable, unknown pages fall back to index.html)",
		set:  setStaticDir},
	{flag: "cors-origin", key: "corsOrigins", arg: "ORIGIN",
		help:    "origin whose pages may call the API from a browser, e.g. https://app.example.com, or * for public data; repeat the flag (or comma-separate, or a list in the file) for several; empty: no CORS headers",
		set:     setCORSOrigins,
		setNode: setCORSOriginsNode,
		repeat:  true},
}

// store makes a setter from a parser and the field it fills.
func store[T any](parse func(string) (T, error), field func(*serveConfig) *T) func(*serveConfig, string) error {
	return func(c *serveConfig, v string) error {
		x, err := parse(v)
		if err != nil {
			return err
		}
		*field(c) = x
		return nil
	}
}

func parseString(v string) (string, error) { return v, nil }

func parseBool(v string) (bool, error) {
	if b, err := strconv.ParseBool(v); err == nil {
		return b, nil
	}
	// YAML 1.1 words, which config files written for the struct decoder
	// used before may hold.
	switch strings.ToLower(v) {
	case "yes", "y", "on":
		return true, nil
	case "no", "n", "off":
		return false, nil
	}
	return false, errors.New("want true or false")
}

func parseBodyLimit(v string) (int64, error) {
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil || n <= 0 {
		return 0, errors.New("want a positive number of bytes such as 16777216 (16 MiB)")
	}
	return n, nil
}

func parseBodyRate(v string) (int64, error) {
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil || n < 0 {
		return 0, errors.New("want a number of bytes a second such as 33554432 (32 MiB/s), or 0 for no limit")
	}
	return n, nil
}

func parseLogLevel(v string) (slog.Level, error) {
	var l slog.Level
	if err := l.UnmarshalText([]byte(v)); err != nil {
		return 0, errors.New("want debug, info, warn or error")
	}
	return l, nil
}

func parsePositiveDuration(v string) (time.Duration, error) {
	d, err := time.ParseDuration(v)
	if err != nil || d <= 0 {
		return 0, errors.New("want a positive duration in h, m, s or ms, such as 30s or 24h (there is no unit for days)")
	}
	return d, nil
}

func parsePositiveInt(v string) (int, error) {
	n, err := strconv.Atoi(v)
	if err != nil || n <= 0 {
		return 0, errors.New("want a positive whole number such as 100")
	}
	return n, nil
}

func parseCount(v string) (int, error) {
	n, err := strconv.Atoi(v)
	if err != nil || n < 0 {
		return 0, errors.New("want a whole number such as 100, or 0")
	}
	return n, nil
}

func parseWait(v string) (time.Duration, error) {
	d, err := time.ParseDuration(v)
	if err != nil || d < 0 {
		return 0, errors.New("want a duration in h, m, s or ms, such as 2s, or 0")
	}
	return d, nil
}

// parseList splits a comma-separated list, dropping empty entries so that
// a trailing comma or an empty variable means no entry.
func parseList(v string) ([]string, error) {
	var l []string
	for _, p := range strings.Split(v, ",") {
		if p = strings.TrimSpace(p); p != "" {
			l = append(l, p)
		}
	}
	return l, nil
}

func setPeers(c *serveConfig, v string) error {
	c.Peers, _ = parseList(v)
	return nil
}

// setPeersNode takes a YAML list of peers.
func setPeersNode(c *serveConfig, n *yaml.Node) error {
	l, err := scalars(n)
	if err != nil {
		return err
	}
	return setPeers(c, strings.Join(l, ","))
}

// setStaticDir takes the directory of the app's files; it must exist, so
// that a typo fails at start rather than as 404s.
func setStaticDir(c *serveConfig, v string) error {
	if v != "" {
		st, err := os.Stat(v)
		if err != nil || !st.IsDir() {
			return errors.New("want an existing directory of the application's files")
		}
	}
	c.StaticDir = v
	return nil
}

// setCORSOrigins takes origins as a browser sends them in Origin: scheme,
// host and an optional port, nothing after; or "*".
func setCORSOrigins(c *serveConfig, v string) error {
	l, _ := parseList(v)
	for _, o := range l {
		if o == "*" {
			continue
		}
		u, err := url.Parse(o)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" ||
			(u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.Fragment != "" || u.User != nil {
			return fmt.Errorf("%q: want an origin such as https://app.example.com or http://localhost:3000 (scheme, host, port; no path), or *", o)
		}
	}
	for i, o := range l {
		l[i] = strings.TrimSuffix(o, "/")
	}
	c.CORSOrigins = l
	return nil
}

// setCORSOriginsNode takes a YAML list of origins.
func setCORSOriginsNode(c *serveConfig, n *yaml.Node) error {
	l, err := scalars(n)
	if err != nil {
		return err
	}
	return setCORSOrigins(c, strings.Join(l, ","))
}

// issuerKeys are the keys of one entry of issuers.
var issuerKeys = []string{"issuer", "audience", "keyFiles", "jwksFile", "jwksURL", "nodeTokens"}

const issuersExample = `[{"issuer":"https://auth.example.com/","audience":["goat-gateway"],"jwksURL":"https://auth.example.com/.well-known/jwks.json"}]`

// setIssuersText takes issuers from a flag or a variable: JSON, which YAML
// reads as well, so that both sources share one decoder and one set of
// checks.
func setIssuersText(c *serveConfig, v string) error {
	var doc yaml.Node
	if err := yaml.Unmarshal([]byte(v), &doc); err != nil || len(doc.Content) == 0 {
		return errors.New("want a JSON list such as " + issuersExample)
	}
	return setIssuersNode(c, doc.Content[0])
}

func setIssuersNode(c *serveConfig, n *yaml.Node) error {
	if n.Kind != yaml.SequenceNode {
		return errors.New("want a list of issuers such as " + issuersExample)
	}
	var list []auth.IssuerConfig
	for i, el := range n.Content {
		ic, err := decodeIssuer(el)
		if err != nil {
			return fmt.Errorf("issuers[%d]: %w", i, err)
		}
		list = append(list, ic)
	}
	c.Issuers = list
	return nil
}

// decodeIssuer reads one issuer key by key, so that a mistake is reported
// with the key's name and line rather than as a Go type.
func decodeIssuer(n *yaml.Node) (auth.IssuerConfig, error) {
	var ic auth.IssuerConfig
	if n.Kind != yaml.MappingNode {
		return ic, fmt.Errorf("line %d: want a mapping with the keys %s", n.Line, strings.Join(issuerKeys, ", "))
	}
	seen := map[string]bool{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], resolveAlias(n.Content[i+1])
		if seen[k.Value] {
			return ic, fmt.Errorf("line %d: %s is given twice", k.Line, k.Value)
		}
		seen[k.Value] = true
		var err error
		switch k.Value {
		case "issuer":
			ic.Issuer, err = scalar(v)
		case "audience":
			ic.Audience, err = scalars(v)
		case "keyFiles":
			var paths []string
			paths, err = scalars(v)
			for _, p := range paths {
				ic.KeyFiles = append(ic.KeyFiles, auth.KeyFile{Path: p})
			}
		case "jwksFile":
			ic.JWKSFile, err = scalar(v)
		case "jwksURL":
			ic.JWKSURL, err = scalar(v)
		case "nodeTokens":
			var s string
			if s, err = scalar(v); err == nil {
				ic.NodeTokens, err = parseBool(s)
			}
		default:
			return ic, fmt.Errorf("line %d: unknown key %q; valid keys: %s", k.Line, k.Value, strings.Join(issuerKeys, ", "))
		}
		if err != nil {
			return ic, fmt.Errorf("line %d: %s: %w", k.Line, k.Value, err)
		}
	}
	return ic, nil
}

func resolveAlias(n *yaml.Node) *yaml.Node {
	if n.Kind == yaml.AliasNode && n.Alias != nil {
		return n.Alias
	}
	return n
}

func scalar(n *yaml.Node) (string, error) {
	if n.Kind != yaml.ScalarNode {
		return "", errors.New("want a single value, not a list or a mapping")
	}
	return n.Value, nil
}

// scalars reads a list of scalars; a lone scalar is a list of one.
func scalars(n *yaml.Node) ([]string, error) {
	if n.Kind == yaml.ScalarNode {
		return []string{n.Value}, nil
	}
	if n.Kind != yaml.SequenceNode {
		return nil, errors.New("want a list of values")
	}
	var l []string
	for _, el := range n.Content {
		s, err := scalar(resolveAlias(el))
		if err != nil {
			return nil, fmt.Errorf("line %d: %w", el.Line, err)
		}
		l = append(l, s)
	}
	return l, nil
}

// value is one source's value for one setting.
type value struct {
	// where names the source and the setting for errors: "--listen",
	// "GOAT_LISTEN", "config c.yaml: line 3: listen".
	where string
	text  string
	// node is a file value that is not a scalar, else nil.
	node *yaml.Node
}

func (v value) apply(s setting, c *serveConfig) error {
	var err error
	switch {
	case v.node == nil:
		err = s.set(c, v.text)
	case s.setNode != nil:
		err = s.setNode(c, v.node)
	default:
		err = errors.New("want a single value, not a list or a mapping")
	}
	switch {
	case err == nil:
		return nil
	case v.node == nil && s.setNode == nil:
		// Quoted so that an empty or padded value shows. Structured
		// values are not repeated: their errors point into them.
		return fmt.Errorf("%s %q: %w", v.where, v.text, err)
	default:
		return fmt.Errorf("%s: %w", v.where, err)
	}
}

// source looks up one setting in one place where settings are given.
type source func(s setting) (value, bool)

// loadConfig reads the settings from args (flags), getenv and the config
// file they name. -h and --help return flag.ErrHelp.
func loadConfig(args []string, getenv func(string) string) (serveConfig, error) {
	flags := map[string]string{}
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	// serve prints the help on -h (flag.ErrHelp); a mistake is one line
	// that points at it, not the whole help on top of the message.
	fs.SetOutput(io.Discard)
	for _, s := range settings {
		// Only recorded here: values are parsed in the one loop below, so
		// a flag's error reads like any other source's.
		record := func(v string) error {
			if old, ok := flags[s.flag]; ok && s.repeat {
				v = old + "," + v
			}
			flags[s.flag] = v
			return nil
		}
		if s.arg == "" {
			fs.BoolFunc(s.flag, s.help, record)
		} else {
			fs.Func(s.flag, s.help, record)
		}
	}
	if err := fs.Parse(args); errors.Is(err, flag.ErrHelp) {
		return serveConfig{}, err
	} else if err != nil {
		return serveConfig{}, fmt.Errorf("serve: %w (see goat-gateway serve --help)", err)
	}
	if fs.NArg() > 0 {
		return serveConfig{}, fmt.Errorf("serve: unexpected argument %q: settings are flags, such as --listen localhost:8080", fs.Arg(0))
	}
	fromFlags := func(s setting) (value, bool) {
		v, ok := flags[s.flag]
		return value{where: "--" + s.flag, text: v}, ok
	}
	fromEnv := func(s setting) (value, bool) {
		// An empty variable is unset, as shells and compose files
		// commonly leave them.
		v := getenv(s.env())
		return value{where: s.env(), text: v}, v != ""
	}
	// The file's path is needed before the file, so it is looked up in the
	// sources above the file, in the order of the loop below.
	var path string
	for _, src := range []source{fromEnv, fromFlags} {
		if v, ok := src(configSetting); ok {
			path = v.text
		}
	}
	file, err := readConfigFile(path)
	if err != nil {
		return serveConfig{}, err
	}
	fromFile := func(s setting) (value, bool) {
		v, ok := file[s.key]
		return v, ok && s.key != ""
	}
	fromDefaults := func(s setting) (value, bool) {
		return value{where: "default of --" + s.flag, text: s.def}, s.def != ""
	}
	// The one precedence rule, lowest first: each source overrides the ones
	// before it. Every value given is parsed, overridden or not, so that a
	// mistake in the file does not wait for the day its override is gone.
	sources := []source{fromDefaults, fromFile, fromEnv, fromFlags}
	var c serveConfig
	var errs []error
	for _, s := range settings {
		for _, src := range sources {
			if v, ok := src(s); ok {
				if err := v.apply(s, &c); err != nil {
					errs = append(errs, err)
				}
			}
		}
	}
	return c, errors.Join(errs...)
}

// readConfigFile returns the values of the file at path by key; no path,
// no values.
func readConfigFile(path string) (map[string]value, error) {
	if path == "" {
		return nil, nil
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	var doc yaml.Node
	if err := yaml.Unmarshal(b, &doc); err != nil {
		return nil, fmt.Errorf("config %s: %w", path, err)
	}
	if len(doc.Content) == 0 {
		return nil, nil // empty, or comments only
	}
	root := resolveAlias(doc.Content[0])
	if root.Kind == yaml.ScalarNode && root.Tag == "!!null" {
		return nil, nil
	}
	if root.Kind != yaml.MappingNode {
		return nil, fmt.Errorf("config %s: want a mapping of settings such as \"listen: localhost:8080\"", path)
	}
	byKey := map[string]bool{}
	var keys []string
	for _, s := range settings {
		if s.key != "" {
			byKey[s.key] = true
			keys = append(keys, s.key)
		}
	}
	vals := map[string]value{}
	seen := map[string]int{}
	for i := 0; i+1 < len(root.Content); i += 2 {
		k, v := root.Content[i], resolveAlias(root.Content[i+1])
		if !byKey[k.Value] {
			return nil, fmt.Errorf("config %s: line %d: unknown setting %q; valid settings: %s", path, k.Line, k.Value, strings.Join(keys, ", "))
		}
		if first, dup := seen[k.Value]; dup {
			return nil, fmt.Errorf("config %s: line %d: %s is set twice (first at line %d)", path, k.Line, k.Value, first)
		}
		seen[k.Value] = k.Line
		if v.Kind == yaml.ScalarNode && v.Tag == "!!null" {
			continue // "keysDir:" with no value leaves the setting to its default
		}
		val := value{where: fmt.Sprintf("config %s: line %d: %s", path, k.Line, k.Value)}
		if v.Kind == yaml.ScalarNode {
			val.text = v.Value
		} else {
			val.node = v
		}
		vals[k.Value] = val
	}
	return vals, nil
}

// printServeUsage writes the help of serve, from the settings table.
func printServeUsage(w io.Writer) {
	fmt.Fprint(w, `usage: goat-gateway serve [flags]

Runs a gateway node. Each setting is taken from the first of: its flag, its
environment variable, the config file (--config), its default. An empty
environment variable counts as unset. Durations are written with units h, m,
s or ms, such as 30s or 24h.

examples:
  goat-gateway serve --dev --print-token dev             # a dev node on localhost:8080, data in ./data
  goat-gateway serve --config /etc/goat-gateway.yaml     # see docs/goat-gateway.example.yaml
  GOAT_LISTEN=:8080 GOAT_RULES=rules.yaml goat-gateway serve

flags:
`)
	for _, s := range settings {
		fmt.Fprintf(w, "  --%s", s.flag)
		if s.arg != "" {
			fmt.Fprintf(w, " %s", s.arg)
		}
		fmt.Fprintf(w, "\n        %s\n        env %s", s.help, s.env())
		if s.key != "" {
			fmt.Fprintf(w, ", file key %s", s.key)
		} else {
			fmt.Fprint(w, ", not in the file")
		}
		if s.def != "" {
			fmt.Fprintf(w, ", default %s", s.def)
		}
		fmt.Fprintln(w)
	}
}
