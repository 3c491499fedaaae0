package main

import (
	"bytes"
	"errors"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/goat-gateway/goat-gateway/auth"
	"github.com/goat-gateway/goat-gateway/cluster"
)

// envMap is a getenv over a map.
func envMap(m map[string]string) func(string) string {
	return func(k string) string { return m[k] }
}

// writeConfig writes a config file and returns its path.
func writeConfig(tb testing.TB, text string) string {
	tb.Helper()
	path := filepath.Join(tb.TempDir(), "goat.yaml")
	if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
		tb.Fatal(err)
	}
	return path
}

func TestLoadConfig_DocumentedExample(t *testing.T) {
	c, err := loadConfig([]string{"--config", "../../docs/goat-gateway.example.yaml"}, envMap(nil))
	if err != nil {
		t.Fatal(err)
	}
	if c.Listen != "0.0.0.0:8080" || c.Dev || !c.NoDevIssuer || len(c.Issuers) != 2 || c.Issuers[1].KeyFiles[0].Path == "" {
		t.Fatalf("example parsed as %+v", c)
	}
}

func TestLoadConfig_UnknownKeyIsAnError(t *testing.T) {
	path := writeConfig(t, "listen: x\nlisten_typo: y\n")
	_, err := loadConfig([]string{"--config", path}, envMap(nil))
	if err == nil {
		t.Fatal("unknown key accepted")
	}
	for _, want := range []string{`line 2: unknown setting "listen_typo"`, "valid settings: listen, dataDir, keysDir", "replicationWait"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("err=%v, want it to contain %q", err, want)
		}
	}
	if strings.Contains(err.Error(), "serveConfig") || strings.Contains(err.Error(), "main.") {
		t.Errorf("err=%v names a Go type", err)
	}
}

// precedence gives, for one setting, a value for each source, each
// different from the one below it, and what each parses to.
type precedence struct {
	flag, env, file             string // file: a YAML value
	wantFlag, wantEnv, wantFile any
	wantDefault                 any
	get                         func(serveConfig) any
}

// precedences has a row for every setting; TestLoadConfig_Precedence fails
// for a setting without one.
var precedences = map[string]precedence{
	"config": {flag: "$DIR/flag.yaml", env: "$DIR/env.yaml",
		wantFlag: "$DIR/flag.yaml", wantEnv: "$DIR/env.yaml", wantDefault: "",
		get: func(c serveConfig) any { return c.ConfigFile }},
	"listen": {flag: "f:1", env: "e:1", file: "c:1",
		wantFlag: "f:1", wantEnv: "e:1", wantFile: "c:1", wantDefault: "localhost:8080",
		get: func(c serveConfig) any { return c.Listen }},
	"data-dir": {flag: "/f", env: "/e", file: "/c",
		wantFlag: "/f", wantEnv: "/e", wantFile: "/c", wantDefault: "./data",
		get: func(c serveConfig) any { return c.DataDir }},
	"keys-dir": {flag: "/f", env: "/e", file: "/c",
		wantFlag: "/f", wantEnv: "/e", wantFile: "/c", wantDefault: "",
		get: func(c serveConfig) any { return c.KeysDir }},
	"dev": {flag: "true", env: "false", file: "true",
		wantFlag: true, wantEnv: false, wantFile: true, wantDefault: false,
		get: func(c serveConfig) any { return c.Dev }},
	"rules": {flag: "f.yaml", env: "e.yaml", file: "c.yaml",
		wantFlag: "f.yaml", wantEnv: "e.yaml", wantFile: "c.yaml", wantDefault: "",
		get: func(c serveConfig) any { return c.Rules }},
	"body-limit": {flag: "1", env: "2", file: "3",
		wantFlag: int64(1), wantEnv: int64(2), wantFile: int64(3), wantDefault: int64(16 << 20),
		get: func(c serveConfig) any { return c.BodyLimit }},
	"body-read-timeout": {flag: "1s", env: "2m", file: "3h",
		wantFlag: time.Second, wantEnv: 2 * time.Minute, wantFile: 3 * time.Hour, wantDefault: 30 * time.Second,
		get: func(c serveConfig) any { return c.BodyReadTimeout }},
	"body-budget": {flag: "1", env: "2", file: "3",
		wantFlag: int64(1), wantEnv: int64(2), wantFile: int64(3), wantDefault: int64(256 << 20),
		get: func(c serveConfig) any { return c.BodyBudget }},
	"body-rate": {flag: "1", env: "0", file: "3",
		wantFlag: int64(1), wantEnv: int64(0), wantFile: int64(3), wantDefault: int64(32 << 20),
		get: func(c serveConfig) any { return c.BodyRate }},
	"log-level": {flag: "debug", env: "warn", file: "error",
		wantFlag: slog.LevelDebug, wantEnv: slog.LevelWarn, wantFile: slog.LevelError, wantDefault: slog.LevelInfo,
		get: func(c serveConfig) any { return c.LogLevel }},
	"no-dev-issuer": {flag: "true", env: "false", file: "true",
		wantFlag: true, wantEnv: false, wantFile: true, wantDefault: false,
		get: func(c serveConfig) any { return c.NoDevIssuer }},
	"audience": {flag: "f", env: "e", file: "c",
		wantFlag: "f", wantEnv: "e", wantFile: "c", wantDefault: "goat-gateway",
		get: func(c serveConfig) any { return c.Audience }},
	"trust-proxy-headers": {flag: "true", env: "false", file: "true",
		wantFlag: true, wantEnv: false, wantFile: true, wantDefault: false,
		get: func(c serveConfig) any { return c.TrustProxyHeaders }},
	"print-token": {flag: "f", env: "e", file: "c",
		wantFlag: "f", wantEnv: "e", wantFile: "c", wantDefault: "",
		get: func(c serveConfig) any { return c.PrintToken }},
	"issuers": {
		flag:        `[{"issuer":"f","audience":["a"],"jwksURL":"https://f.example/jwks"}]`,
		env:         `[{"issuer":"e","audience":["a","b"],"jwksFile":"e.json","nodeTokens":true}]`,
		file:        "\n  - issuer: c\n    audience: a\n    keyFiles: [c.pem, d.pem]\n",
		wantFlag:    []auth.IssuerConfig{{Issuer: "f", Audience: []string{"a"}, JWKSURL: "https://f.example/jwks"}},
		wantEnv:     []auth.IssuerConfig{{Issuer: "e", Audience: []string{"a", "b"}, JWKSFile: "e.json", NodeTokens: true}},
		wantFile:    []auth.IssuerConfig{{Issuer: "c", Audience: []string{"a"}, KeyFiles: []auth.KeyFile{{Path: "c.pem"}, {Path: "d.pem"}}}},
		wantDefault: []auth.IssuerConfig(nil),
		get:         func(c serveConfig) any { return c.Issuers }},
	"nats-url": {flag: "nats://f:4222", env: "nats://e:4222", file: "nats://c:4222",
		wantFlag: "nats://f:4222", wantEnv: "nats://e:4222", wantFile: "nats://c:4222", wantDefault: "",
		get: func(c serveConfig) any { return c.NATSURL }},
	"static": {flag: "$DIR", env: ".", file: "/",
		wantFlag: "$DIR", wantEnv: ".", wantFile: "/", wantDefault: "",
		get: func(c serveConfig) any { return c.StaticDir }},
	"cors-origin": {flag: "https://f.example", env: "https://e.example,http://g.example:8081", file: "[https://c.example, '*']",
		wantFlag: []string{"https://f.example"}, wantEnv: []string{"https://e.example", "http://g.example:8081"}, wantFile: []string{"https://c.example", "*"},
		wantDefault: []string(nil),
		get:         func(c serveConfig) any { return c.CORSOrigins }},
	"peers": {flag: "http://f:1, http://g:1,", env: "http://e:1", file: "[http://c:1, http://d:1]",
		wantFlag: []string{"http://f:1", "http://g:1"}, wantEnv: []string{"http://e:1"}, wantFile: []string{"http://c:1", "http://d:1"},
		wantDefault: []string(nil),
		get:         func(c serveConfig) any { return c.Peers }},
	"node-token": {flag: "f", env: "e", file: "c",
		wantFlag: "f", wantEnv: "e", wantFile: "c", wantDefault: "",
		get: func(c serveConfig) any { return c.NodeToken }},
	"node-token-file": {flag: "f", env: "e", file: "c",
		wantFlag: "f", wantEnv: "e", wantFile: "c", wantDefault: "",
		get: func(c serveConfig) any { return c.NodeTokenFile }},
	"node-key": {flag: "f", env: "e", file: "c",
		wantFlag: "f", wantEnv: "e", wantFile: "c", wantDefault: "",
		get: func(c serveConfig) any { return c.NodeKey }},
	"heal-interval": {flag: "1s", env: "2m", file: "3h",
		wantFlag: time.Second, wantEnv: 2 * time.Minute, wantFile: 3 * time.Hour, wantDefault: 30 * time.Second,
		get: func(c serveConfig) any { return c.HealInterval }},
	"replication-wait": {flag: "0", env: "1s", file: "0s",
		wantFlag: time.Duration(0), wantEnv: time.Second, wantFile: time.Duration(0), wantDefault: 2 * time.Second,
		get: func(c serveConfig) any { return c.ReplicationWait }},
	"max-open-repos": {flag: "1", env: "2", file: "3",
		wantFlag: 1, wantEnv: 2, wantFile: 3, wantDefault: 512,
		get: func(c serveConfig) any { return c.MaxOpenRepos }},
	"max-repos-per-owner": {flag: "1", env: "2", file: "3",
		wantFlag: 1, wantEnv: 2, wantFile: 3, wantDefault: 1000,
		get: func(c serveConfig) any { return c.MaxReposPerOwner }},
	"max-sessions-per-owner": {flag: "1", env: "2", file: "3",
		wantFlag: 1, wantEnv: 2, wantFile: 3, wantDefault: 100,
		get: func(c serveConfig) any { return c.MaxSessionsPerOwner }},
	"max-streams-per-caller": {flag: "1", env: "2", file: "3",
		wantFlag: 1, wantEnv: 2, wantFile: 3, wantDefault: 64,
		get: func(c serveConfig) any { return c.MaxStreamsPerCaller }},
	"token-cache": {flag: "0", env: "2", file: "3",
		wantFlag: 0, wantEnv: 2, wantFile: 3, wantDefault: 10000,
		get: func(c serveConfig) any { return c.TokenCache }},
	"io-uring": {flag: "false", env: "true", file: "false",
		wantFlag: false, wantEnv: true, wantFile: false, wantDefault: true,
		get: func(c serveConfig) any { return c.IOURing }},
}

func TestLoadConfig_Precedence(t *testing.T) {
	for _, s := range settings {
		p, ok := precedences[s.flag]
		if !ok {
			t.Errorf("setting --%s has no precedence test row", s.flag)
			continue
		}
		t.Run(s.flag, func(t *testing.T) {
			dir := t.TempDir()
			expand := func(v string) string { return strings.ReplaceAll(v, "$DIR", dir) }
			config := filepath.Join(dir, "file.yaml")
			text := "# no value of this setting\n"
			if s.key != "" {
				text = s.key + ": " + p.file + "\n"
			}
			for _, path := range []string{config, filepath.Join(dir, "flag.yaml"), filepath.Join(dir, "env.yaml")} {
				if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			flagArg := "--" + s.flag + "=" + expand(p.flag)
			env := map[string]string{s.env(): expand(p.env)}
			cases := []struct {
				name string
				args []string
				env  map[string]string
				want any
			}{
				{"FlagBeatsEnv", []string{"--config", config, flagArg}, env, p.wantFlag},
				{"EnvBeatsFile", []string{"--config", config}, env, p.wantEnv},
				{"FileBeatsDefault", []string{"--config", config}, nil, p.wantFile},
				{"Default", nil, nil, p.wantDefault},
			}
			if s.key == "" {
				// A setting the file cannot hold: the flag beats the
				// variable, which beats the default.
				cases = []struct {
					name string
					args []string
					env  map[string]string
					want any
				}{
					{"FlagBeatsEnv", []string{flagArg}, env, p.wantFlag},
					{"EnvBeatsDefault", nil, env, p.wantEnv},
					{"Default", nil, nil, p.wantDefault},
				}
			}
			for _, tc := range cases {
				t.Run(tc.name, func(t *testing.T) {
					c, err := loadConfig(tc.args, envMap(tc.env))
					if err != nil {
						t.Fatal(err)
					}
					want := tc.want
					if w, ok := want.(string); ok {
						want = expand(w)
					}
					if got := p.get(c); !reflect.DeepEqual(got, want) {
						t.Fatalf("%s=%#v, want %#v", s.flag, got, want)
					}
				})
			}
		})
	}
}

func TestLoadConfig_BadValues(t *testing.T) {
	cases := []struct {
		name string
		args []string
		env  map[string]string
		file string // config file text, passed with --config when set
		want []string
	}{
		{name: "DurationFlag", args: []string{"--heal-interval", "2d"},
			want: []string{`--heal-interval "2d": want a positive duration in h, m, s or ms, such as 30s or 24h`}},
		{name: "ZeroHealIntervalEnv", env: map[string]string{"GOAT_HEAL_INTERVAL": "0s"},
			want: []string{`GOAT_HEAL_INTERVAL "0s": want a positive duration in h, m, s or ms, such as 30s or 24h`}},
		{name: "NegativeWait", args: []string{"--replication-wait=-1s"},
			want: []string{`--replication-wait "-1s": want a duration in h, m, s or ms, such as 2s, or 0`}},
		{name: "BoolEnv", env: map[string]string{"GOAT_DEV": "maybe"},
			want: []string{`GOAT_DEV "maybe": want true or false`}},
		{name: "BoolFlag", args: []string{"--no-dev-issuer=maybe"},
			want: []string{`--no-dev-issuer "maybe": want true or false`}},
		{name: "BodyLimitFile", file: "bodyLimit: 8MB\n",
			want: []string{`line 1: bodyLimit "8MB": want a positive number of bytes such as 16777216`}},
		{name: "LogLevel", args: []string{"--log-level", "loud"},
			want: []string{`--log-level "loud": want debug, info, warn or error`}},
		{name: "ListForAScalar", file: "dev: false\nlisten: [a, b]\n",
			want: []string{`line 2: listen: want a single value, not a list or a mapping`}},
		{name: "IssuersNotAList", file: "issuers: {issuer: x}\n",
			want: []string{`line 1: issuers: want a list of issuers such as [{"issuer":`}},
		{name: "IssuerUnknownKey", file: "issuers:\n  - issuer: x\n    audiance: [a]\n",
			want: []string{`issuers[0]: line 3: unknown key "audiance"; valid keys: issuer, audience, keyFiles, jwksFile, jwksURL, nodeTokens`}},
		{name: "IssuerListForAScalar", file: "issuers: [{issuer: [a, b]}]\n",
			want: []string{`issuers[0]: line 1: issuer: want a single value`}},
		{name: "IssuerBadNodeTokens", env: map[string]string{"GOAT_ISSUERS": `[{"issuer":"x","nodeTokens":"sometimes"}]`},
			want: []string{`GOAT_ISSUERS: issuers[0]: line 1: nodeTokens: want true or false`}},
		{name: "IssuerTwice", file: "issuers:\n  - issuer: x\n    issuer: y\n",
			want: []string{`issuers[0]: line 3: issuer is given twice`}},
		{name: "IssuersNotJSON", args: []string{"--issuers", "[{"},
			want: []string{`--issuers: want a JSON list such as [{"issuer":`}},
		{name: "BadFileValueUnderAFlag", file: "healInterval: soon\n", args: []string{"--heal-interval", "1s"},
			want: []string{`line 1: healInterval "soon": want a positive duration`}},
		{name: "EveryErrorAtOnce", args: []string{"--body-limit", "0", "--listen", "x", "--heal-interval", "x"},
			want: []string{`--body-limit "0"`, `--heal-interval "x"`}},
		{name: "PeersMapping", file: "peers: {a: b}\n",
			want: []string{`line 1: peers: want a list of values`}},
		{name: "NotAMapping", file: "- listen\n",
			want: []string{`want a mapping of settings such as "listen: localhost:8080"`}},
		{name: "KeyTwice", file: "listen: a\ndev: true\nlisten: b\n",
			want: []string{`line 3: listen is set twice (first at line 1)`}},
		{name: "ConfigInTheFile", file: "config: other.yaml\n",
			want: []string{`unknown setting "config"`}},
		{name: "MissingFile", args: []string{"--config", "does-not-exist.yaml"},
			want: []string{"config: open does-not-exist.yaml"}},
		{name: "YAMLSyntax", file: "listen: [\n",
			want: []string{"config ", "yaml:"}},
		{name: "UnknownFlag", args: []string{"--lisen", "x"},
			want: []string{"flag provided but not defined: -lisen"}},
		{name: "CORSOriginWithPath", args: []string{"--cors-origin", "https://app.example.com/app"},
			want: []string{`--cors-origin: "https://app.example.com/app": want an origin such as https://app.example.com`}},
		{name: "CORSOriginNoScheme", file: "corsOrigins: [app.example.com]\n",
			want: []string{`line 1: corsOrigins: "app.example.com": want an origin`}},
		{name: "StaticMissingDir", env: map[string]string{"GOAT_STATIC": "does-not-exist"},
			want: []string{`GOAT_STATIC "does-not-exist": want an existing directory`}},
		{name: "StrayArgument", args: []string{"--dev", "true"},
			want: []string{`unexpected argument "true"`}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			args := tc.args
			if tc.file != "" {
				args = append([]string{"--config", writeConfig(t, tc.file)}, args...)
			}
			_, err := loadConfig(args, envMap(tc.env))
			if err == nil {
				t.Fatal("accepted")
			}
			for _, want := range tc.want {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("err=%v, want it to contain %q", err, want)
				}
			}
		})
	}
}

func TestLoadConfig_EmptyEnvIsUnset(t *testing.T) {
	c, err := loadConfig(nil, envMap(map[string]string{"GOAT_LISTEN": "", "GOAT_HEAL_INTERVAL": ""}))
	if err != nil {
		t.Fatal(err)
	}
	if got, want := c.Listen, "localhost:8080"; got != want {
		t.Fatalf("listen=%q, want %q", got, want)
	}
}

func TestLoadConfig_EmptyFileValueIsUnset(t *testing.T) {
	path := writeConfig(t, "listen:\nhealInterval:\n")
	c, err := loadConfig([]string{"--config", path}, envMap(nil))
	if err != nil {
		t.Fatal(err)
	}
	if c.Listen != "localhost:8080" || c.HealInterval != 30*time.Second {
		t.Fatalf("listen=%q healInterval=%v, want the defaults", c.Listen, c.HealInterval)
	}
}

func TestLoadConfig_PeersInFileAsText(t *testing.T) {
	path := writeConfig(t, "peers: http://a:1, http://b:1\n")
	c, err := loadConfig([]string{"--config", path}, envMap(nil))
	if err != nil {
		t.Fatal(err)
	}
	if got, want := c.Peers, []string{"http://a:1", "http://b:1"}; !reflect.DeepEqual(got, want) {
		t.Fatalf("peers=%q, want %q", got, want)
	}
}

func TestLoadConfig_StaticAndCORS(t *testing.T) {
	dir := t.TempDir()
	t.Run("File", func(t *testing.T) {
		path := writeConfig(t, "static: "+dir+"\ncorsOrigins: [https://a.example, 'http://localhost:3000/']\n")
		c, err := loadConfig([]string{"--config", path}, envMap(nil))
		if err != nil {
			t.Fatal(err)
		}
		if c.StaticDir != dir {
			t.Fatalf("static=%q, want %q", c.StaticDir, dir)
		}
		if got, want := c.CORSOrigins, []string{"https://a.example", "http://localhost:3000"}; !reflect.DeepEqual(got, want) {
			t.Fatalf("corsOrigins=%q, want %q", got, want)
		}
	})
	t.Run("RepeatedFlag", func(t *testing.T) {
		c, err := loadConfig([]string{"--cors-origin", "https://a.example", "--cors-origin", "*"}, envMap(map[string]string{"GOAT_CORS_ORIGIN": "https://env.example"}))
		if err != nil {
			t.Fatal(err)
		}
		if got, want := c.CORSOrigins, []string{"https://a.example", "*"}; !reflect.DeepEqual(got, want) {
			t.Fatalf("corsOrigins=%q, want %q", got, want)
		}
	})
	t.Run("Env", func(t *testing.T) {
		c, err := loadConfig(nil, envMap(map[string]string{"GOAT_CORS_ORIGIN": "https://a.example,https://b.example", "GOAT_STATIC": dir}))
		if err != nil {
			t.Fatal(err)
		}
		if got, want := c.CORSOrigins, []string{"https://a.example", "https://b.example"}; !reflect.DeepEqual(got, want) || c.StaticDir != dir {
			t.Fatalf("corsOrigins=%q static=%q, want %q and %q", got, c.StaticDir, want, dir)
		}
		cfgs, err := c.build(slog.New(slog.DiscardHandler))
		if err != nil {
			t.Fatal(err)
		}
		if cfgs.api.StaticDir != dir || !reflect.DeepEqual(cfgs.api.CORSOrigins, c.CORSOrigins) {
			t.Fatalf("api config static=%q cors=%q", cfgs.api.StaticDir, cfgs.api.CORSOrigins)
		}
	})
}

// Every setting is named, with its flag, variable and file key, in the
// help and in the documented example file.
func TestSettings_Documented(t *testing.T) {
	var help bytes.Buffer
	printServeUsage(&help)
	example, err := os.ReadFile("../../docs/goat-gateway.example.yaml")
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range settings {
		names := []string{"--" + s.flag, s.env()}
		if s.key != "" {
			names = append(names, s.key)
		}
		for _, name := range names {
			if !strings.Contains(help.String(), name) {
				t.Errorf("help lacks %s", name)
			}
			if !strings.Contains(string(example), name) {
				t.Errorf("docs/goat-gateway.example.yaml lacks %s", name)
			}
		}
		if s.key != "" && !strings.Contains(string(example), s.key+":") {
			t.Errorf("docs/goat-gateway.example.yaml shows no value for %s", s.key)
		}
	}
}

func TestSettings_Names(t *testing.T) {
	flags, keys := map[string]bool{}, map[string]bool{}
	for _, s := range settings {
		if flags[s.flag] || (s.key != "" && keys[s.key]) {
			t.Errorf("setting --%s (%s) is in the table twice", s.flag, s.key)
		}
		flags[s.flag], keys[s.key] = true, true
		if s.help == "" || s.set == nil {
			t.Errorf("setting --%s lacks help or a setter", s.flag)
		}
	}
	if got, want := (setting{flag: "heal-interval"}).env(), "GOAT_HEAL_INTERVAL"; got != want {
		t.Fatalf("env=%q, want %q", got, want)
	}
}

func TestServeConfig_Build(t *testing.T) {
	logger := slog.New(slog.DiscardHandler)
	t.Run("ReplicationWaitZeroDoesNotWait", func(t *testing.T) {
		cfgs, err := serveConfig{DataDir: t.TempDir(), ReplicationWait: 0}.build(logger)
		ccfg := cfgs.cluster
		if err != nil {
			t.Fatal(err)
		}
		if ccfg.ReplicationWait >= 0 {
			t.Fatalf("ReplicationWait=%v, want negative (do not wait)", ccfg.ReplicationWait)
		}
	})
	t.Run("SettingsReachTheConfigs", func(t *testing.T) {
		c := serveConfig{DataDir: "/d", KeysDir: "/k", Dev: true, BodyLimit: 7, NoDevIssuer: true, Audience: "aud.example", TrustProxyHeaders: true,
			Issuers: []auth.IssuerConfig{{Issuer: "x"}}, NodeToken: "t", Peers: []string{"http://p:1"},
			NATSURL: "nats://n:1", HealInterval: time.Minute, ReplicationWait: time.Second,
			MaxOpenRepos: 11, MaxReposPerOwner: 12, MaxSessionsPerOwner: 13, MaxStreamsPerCaller: 14}
		cfgs, err := c.build(logger)
		if err != nil {
			t.Fatal(err)
		}
		ncfg, cfg, ccfg := cfgs.node, cfgs.api, cfgs.cluster
		if ncfg.DataDir != "/d" || ncfg.KeysDir != "/k" || !ncfg.Dev || ncfg.Audience != "aud.example" {
			t.Fatalf("node config %+v", ncfg)
		}
		if ncfg.MaxOpenRepos != 11 || ncfg.MaxReposPerOwner != 12 || ncfg.MaxSessionsPerOwner != 13 || ncfg.MaxStreamsPerCaller != 14 {
			t.Fatalf("node limits: open %d, repos %d, sessions %d, streams %d; want 11, 12, 13, 14",
				ncfg.MaxOpenRepos, ncfg.MaxReposPerOwner, ncfg.MaxSessionsPerOwner, ncfg.MaxStreamsPerCaller)
		}
		if cfg.BodyLimit != 7 || cfg.TrustDevIssuer || !cfg.TrustProxyHeaders || len(cfg.Issuers) != 1 {
			t.Fatalf("api config %+v", cfg)
		}
		if ccfg.NodeToken != "t" || len(ccfg.Peers) != 1 || ccfg.NATSURL != "nats://n:1" || ccfg.HealInterval != time.Minute || ccfg.ReplicationWait != time.Second || ccfg.NodeKey != nil {
			t.Fatalf("cluster config %+v", ccfg)
		}
	})
	t.Run("ClusteredCreatesTheNodeKeyInKeysDir", func(t *testing.T) {
		dir := t.TempDir()
		cfgs, err := serveConfig{DataDir: dir, Peers: []string{"http://p:1"}}.build(logger)
		ccfg := cfgs.cluster
		if err != nil {
			t.Fatal(err)
		}
		if ccfg.NodeKey == nil {
			t.Fatal("no node key")
		}
		if _, err := os.Stat(filepath.Join(dir, "keys", cluster.NodeKeyFile)); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("AloneCreatesNothing", func(t *testing.T) {
		dir := filepath.Join(t.TempDir(), "data")
		if _, err := (serveConfig{DataDir: dir}).build(logger); err != nil {
			t.Fatal(err)
		}
		if _, err := os.Stat(dir); !errors.Is(err, fs.ErrNotExist) {
			t.Fatalf("stat %s: %v, want it absent", dir, err)
		}
	})
	t.Run("MissingRules", func(t *testing.T) {
		if _, err := (serveConfig{DataDir: t.TempDir(), Rules: "does-not-exist.yaml"}).build(logger); err == nil {
			t.Fatal("missing rules file accepted")
		}
	})
}

// A node started on a busy port fails before it creates its data
// directory or any key.
func TestServe_BusyPort(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	dataDir := filepath.Join(t.TempDir(), "data")
	ready := make(chan string, 1)
	err = serve(t.Context(), []string{"--listen", ln.Addr().String(), "--data-dir", dataDir, "--dev", "--peers", "http://127.0.0.1:1"},
		envMap(nil), io.Discard, io.Discard, ready)
	if err == nil {
		t.Fatal("serve on a busy port succeeded")
	}
	if _, err := os.Stat(dataDir); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("stat %s: %v, want it absent", dataDir, err)
	}
	if len(ready) != 0 {
		t.Fatal("serve reported ready on a busy port")
	}
}

func TestToken_PrintsOnlyTheToken(t *testing.T) {
	var out bytes.Buffer
	dir := t.TempDir()
	if err := run(t.Context(), []string{"token", "--data-dir", dir, "--sub", "alice", "--role", "editor", "--ttl", "1h"}, &out, io.Discard); err != nil {
		t.Fatal(err)
	}
	tok := strings.TrimSpace(out.String())
	if strings.Count(tok, ".") != 2 || strings.ContainsAny(tok, " \n") {
		t.Fatalf("stdout is not one JWT: %q", out.String())
	}
	if err := run(t.Context(), []string{"token", "--data-dir", dir}, io.Discard, io.Discard); err == nil {
		t.Fatal("token without --sub succeeded")
	}
}
