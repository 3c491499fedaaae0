package main

import (
	"bytes"
	"io"
	"runtime/debug"
	"strings"
	"testing"
)

// Every way of asking for help succeeds (exit 0), on stdout, and names the
// commands or the command's flags and examples.
func TestRun_Help(t *testing.T) {
	top := []string{"serve", "token", "fsck", "export", "import", "backup", "version", "help", "examples:"}
	cases := []struct {
		args []string
		want []string
	}{
		{[]string{"help"}, top},
		{[]string{"--help"}, top},
		{[]string{"-h"}, top},
		{[]string{"serve", "--help"}, []string{"usage: goat-gateway serve", "examples:", "--listen HOST:PORT", "GOAT_LISTEN"}},
		{[]string{"serve", "-h"}, []string{"usage: goat-gateway serve", "--data-dir DIR"}},
		{[]string{"token", "--help"}, []string{"usage: goat-gateway token", "examples:", "--sub NAME", "--ttl DURATION"}},
		{[]string{"fsck", "--help"}, []string{"usage: goat-gateway fsck", "examples:", "--repair"}},
		{[]string{"export", "--help"}, []string{"usage: goat-gateway export", "examples:", "--repo REPO", "--history"}},
		{[]string{"help", "export"}, []string{"usage: goat-gateway export", "examples:", "--url URL"}},
		{[]string{"import", "--help"}, []string{"usage: goat-gateway import", "examples:", "--data-dir DIR", "--url URL"}},
		{[]string{"backup", "-h"}, []string{"usage: goat-gateway backup", "examples:", "--out DIR", "--token TOKEN", "keys"}},
		{[]string{"help", "serve"}, []string{"usage: goat-gateway serve"}},
		{[]string{"version", "--help"}, []string{"goat-gateway "}},
	}
	for _, tc := range cases {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			var out, errOut bytes.Buffer
			if err := run(t.Context(), tc.args, &out, &errOut); err != nil {
				t.Fatalf("run: %v", err)
			}
			for _, w := range tc.want {
				if !strings.Contains(out.String(), w) {
					t.Errorf("stdout lacks %q:\n%s", w, out.String())
				}
			}
			if errOut.Len() != 0 {
				t.Errorf("stderr: %q, want nothing", errOut.String())
			}
		})
	}
}

func TestRun_Version(t *testing.T) {
	for _, args := range [][]string{{"version"}, {"--version"}, {"-version"}} {
		t.Run(args[0], func(t *testing.T) {
			var out bytes.Buffer
			if err := run(t.Context(), args, &out, io.Discard); err != nil {
				t.Fatal(err)
			}
			if got := out.String(); !strings.HasPrefix(got, "goat-gateway ") || strings.Count(got, "\n") != 1 {
				t.Fatalf("version printed %q, want one line starting goat-gateway", got)
			}
		})
	}
}

func TestVersionFrom(t *testing.T) {
	stamped := &debug.BuildInfo{GoVersion: "go1.26.0", Main: debug.Module{Version: "v0.3.0"}, Settings: []debug.BuildSetting{
		{Key: "vcs.revision", Value: "0123abc"}, {Key: "vcs.time", Value: "2026-12-01T10:00:00Z"}, {Key: "vcs.modified", Value: "true"},
	}}
	cases := []struct {
		name           string
		linked, commit string
		bi             *debug.BuildInfo
		want           string
	}{
		{"ModuleAndCommit", "dev", "", stamped, "goat-gateway v0.3.0 commit 0123abc+dirty (2026-12-01T10:00:00Z) go1.26.0"},
		{"LinkedWins", "v1.0.0", "fedcba9", stamped, "goat-gateway v1.0.0 commit fedcba9+dirty (2026-12-01T10:00:00Z) go1.26.0"},
		{"Devel", "dev", "", &debug.BuildInfo{GoVersion: "go1.26.0", Main: debug.Module{Version: "(devel)"}},
			"goat-gateway dev (no commit recorded: built outside a git checkout, by go run or go test, or with -buildvcs=false) go1.26.0"},
		{"LinkedCommitOnly", "dev", "fedcba9", &debug.BuildInfo{Main: debug.Module{Version: "(devel)"}}, "goat-gateway dev commit fedcba9"},
		{"NoBuildInfo", "dev", "", nil, "goat-gateway dev (no commit recorded: built outside a git checkout, by go run or go test, or with -buildvcs=false)"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if got := versionFrom(tc.linked, tc.commit, tc.bi); got != tc.want {
				t.Fatalf("versionFrom=%q, want %q", got, tc.want)
			}
		})
	}
}

// Each mistake of the issue gets a message that names the mistake and the
// way out, without Go internals.
func TestRun_Mistakes(t *testing.T) {
	dir := t.TempDir()
	cases := []struct {
		name string
		args []string
		want []string
	}{
		{"ExportWithoutRepo", []string{"export", "--data-dir", dir}, []string{"--repo is required", "--repo user.alice.notes"}},
		{"ExportBadRepo", []string{"export", "--data-dir", dir, "--repo", "Notes"}, []string{`--repo "Notes" is not a repository name`}},
		{"TTLInDays", []string{"token", "--data-dir", dir, "--sub", "a", "--ttl", "2d"}, []string{`"2d"`, "in h, m, s", "720h", "no unit for days"}},
		{"TokenWithoutSub", []string{"token", "--data-dir", dir}, []string{"--sub is required"}},
		{"UnknownFlag", []string{"serve", "--lisen", ":0"}, []string{"-lisen", "goat-gateway serve --help"}},
		{"ServeDuration", []string{"serve", "--heal-interval", "1d"}, []string{`--heal-interval "1d"`, "h, m, s or ms"}},
		{"UnknownCommand", []string{"exprot"}, []string{`unknown command "exprot"`, "export", "goat-gateway help"}},
		{"StrayArgument", []string{"fsck", "--data-dir", dir, "now"}, []string{`unexpected argument "now"`}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var out bytes.Buffer
			err := run(t.Context(), tc.args, &out, io.Discard)
			if err == nil {
				t.Fatalf("run %q succeeded", tc.args)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("err=%q, want it to contain %q", err, w)
				}
			}
			for _, bad := range []string{"parse error", "main.", "regexp", "^[a-z0-9]"} {
				if strings.Contains(err.Error(), bad) {
					t.Errorf("err=%q contains %q", err, bad)
				}
			}
			if out.Len() != 0 {
				t.Errorf("stdout %q, want nothing on a mistake", out.String())
			}
		})
	}
}
