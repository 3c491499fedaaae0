package main

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
)

func TestCentrifugoConfig(t *testing.T) {
	t.Run("Keys", func(t *testing.T) {
		b, err := centrifugoConfig(18000, "api-key", "secret")
		if err != nil {
			t.Fatal(err)
		}
		var cfg map[string]any
		if err := json.Unmarshal(b, &cfg); err != nil {
			t.Fatalf("not JSON: %v\n%s", err, b)
		}
		// The v6 keys the scenario relies on; a v5-style flat key
		// ("api_key", "uni_sse": true) would be ignored or refused by v6.
		for path, want := range map[string]any{
			"http_server.address":                          "127.0.0.1",
			"http_server.port":                             float64(18000),
			"engine.type":                                  "memory",
			"uni_sse.enabled":                              true,
			"http_api.key":                                 "api-key",
			"client.token.hmac_secret_key":                 "secret",
			"channel.without_namespace.history_size":       float64(0),
			"channel.without_namespace.presence":           false,
			"health.enabled":                               true,
			"usage_stats.disabled":                         true,
			"log.level":                                    "error",
			"channel.without_namespace.force_recovery":     false,
			"channel.without_namespace.history_ttl":        "0s",
			"client.allowed_origins":                       []any{"http://127.0.0.1"},
			"http_server.internal_address":                 nil,
			"http_api.insecure":                            nil,
			"client.insecure":                              nil,
			"client.allow_anonymous_connect_without_token": nil,
		} {
			got := lookup(cfg, path)
			if s, ok := want.([]any); ok {
				if g, ok := got.([]any); !ok || !slices.Equal(g, s) {
					t.Errorf("%s = %v, want %v", path, got, want)
				}
				continue
			}
			if got != want {
				t.Errorf("%s = %v, want %v", path, got, want)
			}
		}
	})
	t.Run("Refused", func(t *testing.T) {
		for _, tc := range []struct {
			name        string
			port        int
			key, secret string
		}{{"PortZero", 0, "k", "s"}, {"PortTooBig", 70000, "k", "s"}, {"NoKey", 8000, "", "s"}, {"NoSecret", 8000, "k", ""}} {
			if _, err := centrifugoConfig(tc.port, tc.key, tc.secret); err == nil {
				t.Errorf("%s: no error", tc.name)
			}
		}
	})
}

// lookup follows a dotted path through decoded JSON objects; nil when a
// step is missing.
func lookup(v any, path string) any {
	for _, k := range strings.Split(path, ".") {
		m, ok := v.(map[string]any)
		if !ok {
			return nil
		}
		v = m[k]
	}
	return v
}

func TestCentrifugoToken(t *testing.T) {
	tok := centrifugoToken("s3cret", "sub-7", "live")
	parts := strings.Split(tok, ".")
	if len(parts) != 3 {
		t.Fatalf("token %q has %d parts, want 3", tok, len(parts))
	}
	enc := base64.RawURLEncoding
	t.Run("Signature", func(t *testing.T) {
		mac := hmac.New(sha256.New, []byte("s3cret"))
		mac.Write([]byte(parts[0] + "." + parts[1]))
		sig, err := enc.DecodeString(parts[2])
		if err != nil || !hmac.Equal(sig, mac.Sum(nil)) {
			t.Fatalf("signature does not verify with the secret (err %v)", err)
		}
		other := centrifugoToken("other", "sub-7", "live")
		if other == tok {
			t.Fatal("the secret does not change the token")
		}
	})
	t.Run("Claims", func(t *testing.T) {
		var head struct{ Alg, Typ string }
		var claims struct {
			Sub      string
			Channels []string
		}
		hb, _ := enc.DecodeString(parts[0])
		cb, _ := enc.DecodeString(parts[1])
		if err := json.Unmarshal(hb, &head); err != nil || head.Alg != "HS256" || head.Typ != "JWT" {
			t.Fatalf("header %s (%v)", hb, err)
		}
		if err := json.Unmarshal(cb, &claims); err != nil || claims.Sub != "sub-7" || !slices.Equal(claims.Channels, []string{"live"}) {
			t.Fatalf("claims %s (%v)", cb, err)
		}
	})
}

func TestCentrifugoSample(t *testing.T) {
	commit := []byte(`{"author":"a","data":{"n":1,"seq":"no"},"id":"ff"}`)
	body := centrifugoPublish(42, commit)
	var req struct {
		Channel string
		Data    struct {
			Seq    int
			Commit json.RawMessage
		}
	}
	if err := json.Unmarshal(body, &req); err != nil {
		t.Fatalf("publish body not JSON: %v\n%s", err, body)
	}
	if req.Channel != centrifugoChannel || req.Data.Seq != 42 || string(req.Data.Commit) != string(commit) {
		t.Fatalf("publish body %s", body)
	}
	// What Centrifugo sends a uni_sse subscriber for the publication: the
	// data as it was published, inside a push.
	var data json.RawMessage
	_ = json.Unmarshal(body, &struct{ Data *json.RawMessage }{&data})
	for _, tc := range []struct {
		name string
		ev   string
		want int
		ok   bool
	}{
		{"Publication", `{"channel":"live","pub":{"data":` + string(data) + `,"offset":3}}`, 42, true},
		{"ConnectReply", `{"connect":{"client":"c","version":"6.9.1","subs":{"live":{}},"ping":25}}`, 0, false},
		{"Ping", `{}`, 0, false},
		{"SeqOutsidePub", `{"seq":7}`, 0, false},
		{"Negative", `{"channel":"live","pub":{"data":{"seq":-1}}}`, 0, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, ok := centrifugoSample(sseEvent{Name: "message", Data: []byte(tc.ev)})
			if got != tc.want || ok != tc.ok {
				t.Fatalf("centrifugoSample(%s) = %d, %v; want %d, %v", tc.ev, got, ok, tc.want, tc.ok)
			}
		})
	}
}

func centrifugoPoints(goatP50, goatP99, peerP50, peerP99 [3]float64) []CentrifugoPoint {
	var out []CentrifugoPoint
	for k, n := range []int{1, 100, 1000} {
		out = append(out, CentrifugoPoint{Subscribers: n, Samples: 30,
			Goat:       LiveSide{FromSend: Summary{P50: goatP50[k], P99: goatP99[k]}, Spread: Summary{P50: 0.5}, CPUms: 2, PerSubscriber: 20 << 10},
			Centrifugo: LiveSide{FromSend: Summary{P50: peerP50[k], P99: peerP99[k]}, Spread: Summary{P50: 2}, CPUms: 3, PerSubscriber: 70 << 10}})
	}
	return out
}

func TestCentrifugoRatios(t *testing.T) {
	pts := centrifugoPoints([3]float64{1, 4, 40}, [3]float64{2, 10, 100}, [3]float64{0.5, 8, 60}, [3]float64{3, 20, 300})
	rs := centrifugoRatios(pts)
	byName := map[string]Ratio{}
	for _, r := range rs {
		byName[r.Name] = r
	}
	for name, want := range map[string]float64{
		"live latency p50, 1 subscribers":         0.5,
		"live latency p99, 1 subscribers":         1.5,
		"live latency p50, 100 subscribers":       2,
		"live latency p99, 1000 subscribers":      3,
		"server CPU per message, 100 subscribers": 1.5,
		"memory per subscriber, 1000 subscribers": 3.5,
		"fan-out spread p50, 100 subscribers":     4,
	} {
		r, ok := byName[name]
		if !ok {
			t.Errorf("no ratio %q", name)
			continue
		}
		if r.Factor != want {
			t.Errorf("%s: factor %v, want %v (goat %v, peer %v)", name, r.Factor, want, r.Goat, r.Peer)
		}
	}
	// One subscriber's RSS difference is allocator noise: not compared.
	if _, ok := byName["memory per subscriber, 1 subscribers"]; ok {
		t.Error("memory compared at 1 subscriber")
	}
	// With one subscriber, first and last are the same: no spread.
	if _, ok := byName["fan-out spread p50, 1 subscribers"]; ok {
		t.Error("spread compared at 1 subscriber")
	}
	if got := len(rs); got != 3*3+2+2 {
		t.Errorf("%d ratios, want 13", got)
	}
	t.Run("NoGoatFigure", func(t *testing.T) {
		if f := factor(5, 0); f != 0 {
			t.Fatalf("factor(5, 0) = %v, want 0", f)
		}
	})
}

func TestCentrifugoTarget(t *testing.T) {
	for _, tc := range []struct {
		name      string
		pts       []CentrifugoPoint
		met       bool
		value     float64
		worstName string
	}{
		{"AheadEverywhere", centrifugoPoints([3]float64{1, 4, 40}, [3]float64{2, 10, 100}, [3]float64{1.5, 8, 60}, [3]float64{3, 20, 300}), true, 1.5, "p50, 1 subscribers"},
		{"BehindAtOne", centrifugoPoints([3]float64{1, 4, 40}, [3]float64{2, 10, 100}, [3]float64{0.5, 8, 60}, [3]float64{3, 20, 300}), false, 0.5, "p50, 1 subscribers"},
		{"EqualIsNotAhead", centrifugoPoints([3]float64{1, 4, 40}, [3]float64{2, 10, 100}, [3]float64{2, 8, 60}, [3]float64{3, 20, 100}), false, 1, "p99, 1000 subscribers"},
		{"Nothing", nil, false, 0, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tg := centrifugoTarget(tc.pts, centrifugoRatios(tc.pts))
			if tg.Name != targetCentrifugo || tg.Met != tc.met || tg.Value != tc.value || tg.Limit != 1 {
				t.Fatalf("target %+v; want met %v value %v", tg, tc.met, tc.value)
			}
			if tc.worstName != "" && !strings.Contains(tg.Measured, "smallest") || !strings.Contains(tg.Measured, tc.worstName) {
				t.Fatalf("measured %q does not name %q", tg.Measured, tc.worstName)
			}
		})
	}
}

func TestBuildReport_Centrifugo(t *testing.T) {
	pts := centrifugoPoints([3]float64{1, 4, 40}, [3]float64{2, 10, 100}, [3]float64{0.5, 8, 60}, [3]float64{3, 20, 300})
	d := CentrifugoData{Server: "Centrifugo v6.9.1", PayloadBytes: 536, Points: pts, Ratios: centrifugoRatios(pts)}
	raw, err := json.Marshal(d)
	if err != nil {
		t.Fatal(err)
	}
	r := &Result{Scenario: "centrifugo", Title: scenarioTitles["centrifugo"], Mode: "full", Data: raw,
		Targets: []Target{centrifugoTarget(d.Points, d.Ratios)}}
	md := buildReport(map[string]*Result{"centrifugo": r}, nil)
	for _, want := range []string{
		"## Side by side with Centrifugo",
		"| live latency p50, 1 subscribers | 1.00 ms | 0.50 ms | 0.50x |",
		"| memory per subscriber, 1000 subscribers | 20.0 KiB | 70.0 KiB | 3.50x |",
		"| " + targetCentrifugo + " | > 1x (p50 and p99 at every size) |",
		"**missed**",
		"| Centrifugo | 1,000 | 30 | 60.00 | 300.00 |",
		"the same 536-byte commit JSON",
	} {
		if !strings.Contains(md, want) {
			t.Errorf("report lacks %q", want)
		}
	}
}

func TestFleet_Spread(t *testing.T) {
	f := newPeerFleet(3, nil, nil)
	recv := [][3]int64{{1e6, 5e6, 0}, {4e6, 2e6, 7e6}} // ns since base, per sample; 0: not seen
	for _, r := range recv {
		s := &subscriber{recv: make([]atomic.Int64, 3)}
		for i, v := range r {
			s.recv[i].Store(v)
		}
		f.subs = append(f.subs, s)
	}
	for i := range 3 {
		f.expect[i].Store(2)
	}
	// Sample 2 was missed by one subscriber: it has no spread.
	if got, want := f.spread([]int{0, 1, 2}), []float64{3, 3}; !slices.Equal(got, want) {
		t.Fatalf("spread = %v, want %v", got, want)
	}
}
