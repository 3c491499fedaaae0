package goat_test

import (
	"context"
	"fmt"
	"os"
	"slices"

	"github.com/goat-gateway/goat-gateway/core"
	"github.com/goat-gateway/goat-gateway/internal/goattest"
	goat "github.com/goat-gateway/goat-gateway/sdk/go"
)

// exampleGateway starts a gateway in this process for the examples; in an
// application it is `goat-gateway serve` somewhere on the network, and
// the token comes from your identity provider.
func exampleGateway() (url string, token func(sub string) string, stop func()) {
	dir, err := os.MkdirTemp("", "goat-example-")
	if err != nil {
		panic(err)
	}
	g, err := goattest.OpenGateway(goattest.Config{DataDir: dir})
	if err != nil {
		panic(err)
	}
	return g.URL(), func(sub string) string { return g.Token(sub) }, func() { g.Stop(); os.RemoveAll(dir) }
}

// taskSchema is an application's item type.
var taskSchema = &core.Schema{NS: "task", Version: 1, Fields: map[string]core.Field{
	"title": {Type: core.TypeText, Required: true},
	"done":  {Type: core.TypeBoolean, Default: false},
	"tags":  {Type: core.TypeSet},
}}

// Two clients share a repository: writes are local and immediate, sync
// runs in the background (Sync waits for it, for the example's sake).
func Example() {
	url, token, stop := exampleGateway()
	defer stop()
	ctx := context.Background()

	alice, err := goat.Open(goat.Config{URL: url, Token: token("alice"), Schemas: []*core.Schema{taskSchema}})
	if err != nil {
		panic(err)
	}
	defer alice.Close()
	tasks, err := alice.Repo("team.tasks")
	if err != nil {
		panic(err)
	}
	if err := tasks.Set("t1", "task/1", map[string]any{"title": "Write the docs", "tags": []string{"docs"}}); err != nil {
		panic(err)
	}
	it, _ := tasks.Get("t1") // no network involved
	fmt.Println("alice reads:", it.Data["title"], "done:", it.Data["done"])
	if err := tasks.Sync(ctx); err != nil {
		panic(err)
	}

	bob, err := goat.Open(goat.Config{URL: url, Token: token("bob"), Schemas: []*core.Schema{taskSchema}})
	if err != nil {
		panic(err)
	}
	defer bob.Close()
	bobTasks, _ := bob.Repo("team.tasks")
	if err := bobTasks.Sync(ctx); err != nil {
		panic(err)
	}
	_ = bobTasks.Update("t1", func(d map[string]any) error {
		d["done"] = true
		return nil
	})
	_ = bobTasks.Sync(ctx)
	_ = tasks.Sync(ctx)
	it, _ = tasks.Get("t1")
	fmt.Println("alice reads:", it.Data["title"], "done:", it.Data["done"])
	// Output:
	// alice reads: Write the docs done: false
	// alice reads: Write the docs done: true
}

// A live query keeps a filtered, sorted result current as local edits
// and other clients' commits arrive.
func ExampleRepo_Query() {
	url, token, stop := exampleGateway()
	defer stop()
	ctx := context.Background()
	cfg := goat.Config{URL: url, Schemas: []*core.Schema{taskSchema}}

	cfg.Token = token("alice")
	alice, _ := goat.Open(cfg)
	defer alice.Close()
	cfg.Token = token("bob")
	bob, _ := goat.Open(cfg)
	defer bob.Close()
	aliceTasks, _ := alice.Repo("team.tasks")
	bobTasks, _ := bob.Repo("team.tasks")

	open, _ := aliceTasks.Query(goat.Query{
		Filter: func(it goat.Item) bool { return it.Data["done"] == false },
		Less:   func(a, b goat.Item) bool { return a.Data["title"].(string) < b.Data["title"].(string) },
	})
	defer open.Close()
	ev := <-open.Events()
	fmt.Println("snapshot:", len(ev.Items), "open tasks")

	_ = bobTasks.Set("t2", "task/1", map[string]any{"title": "Review"})
	_ = bobTasks.Sync(ctx)
	ev = <-open.Events()
	for _, ch := range ev.Changes {
		fmt.Println(ch.Kind, ch.Key, "at", ch.Index)
	}
	_ = aliceTasks.Set("t1", "task/1", map[string]any{"title": "Deploy"})
	ev = <-open.Events()
	for _, ch := range ev.Changes {
		fmt.Println(ch.Kind, ch.Key, "at", ch.Index)
	}
	_ = aliceTasks.Update("t2", func(d map[string]any) error { d["done"] = true; return nil })
	ev = <-open.Events()
	for _, ch := range ev.Changes {
		fmt.Println(ch.Kind, ch.Key, "from", ch.OldIndex)
	}
	// Output:
	// snapshot: 0 open tasks
	// added t2 at 0
	// added t1 at 0
	// removed t2 from 1
}

// A query over another query's result: of the open tasks, those tagged
// "urgent", by title. It follows the open tasks' changes only: a task
// that is done leaves both, without either looking at any other task.
func ExampleLiveQuery_Query() {
	url, token, stop := exampleGateway()
	defer stop()
	alice, _ := goat.Open(goat.Config{URL: url, Token: token("alice"), Schemas: []*core.Schema{taskSchema}})
	defer alice.Close()
	tasks, _ := alice.Repo("team.tasks")
	_ = tasks.Set("t1", "task/1", map[string]any{"title": "Fix the build", "tags": []string{"urgent"}})
	_ = tasks.Set("t2", "task/1", map[string]any{"title": "Write the docs"})
	_ = tasks.Set("t3", "task/1", map[string]any{"title": "Deploy", "tags": []string{"urgent"}})

	open, _ := tasks.Query(goat.Query{Filter: func(it goat.Item) bool { return it.Data["done"] == false }})
	defer open.Close()
	urgent, _ := open.Query(goat.Query{
		Filter: func(it goat.Item) bool {
			tags, _ := it.Data["tags"].([]any) // a set: sorted strings
			return slices.Contains(tags, any("urgent"))
		},
		Less: func(a, b goat.Item) bool { return a.Data["title"].(string) < b.Data["title"].(string) },
	})
	defer urgent.Close()
	ev := <-urgent.Events()
	for _, it := range ev.Items {
		fmt.Println("urgent:", it.Data["title"])
	}

	_ = tasks.Update("t3", func(d map[string]any) error { d["done"] = true; return nil })
	ev = <-urgent.Events()
	for _, ch := range ev.Changes {
		fmt.Println(ch.Kind, ch.Key, "from", ch.OldIndex)
	}
	fmt.Println("open:", open.Len(), "urgent:", urgent.Len())
	// Output:
	// urgent: Deploy
	// urgent: Fix the build
	// removed t3 from 0
	// open: 2 urgent: 1
}

// Task is the Go form of a task/1 item.
type Task struct {
	Title string   `json:"title"`
	Done  bool     `json:"done"`
	Tags  []string `json:"tags,omitempty"`
}

// Items can be read and written as Go values.
func ExampleGetAs() {
	url, token, stop := exampleGateway()
	defer stop()
	c, _ := goat.Open(goat.Config{URL: url, Token: token("alice"), Schemas: []*core.Schema{taskSchema}})
	defer c.Close()
	tasks, _ := c.Repo("team.tasks")

	_ = goat.SetAs(tasks, "t1", "task/1", Task{Title: "Ship it", Tags: []string{"release", "go"}})
	t, err := goat.GetAs[Task](tasks, "t1")
	if err != nil {
		panic(err)
	}
	fmt.Printf("%+v\n", t)
	// Output:
	// {Title:Ship it Done:false Tags:[go release]}
}

// A client with a local directory keeps working with the gateway down:
// its writes wait in the replica and go up when the gateway is back.
func ExampleConfig_dir() {
	url, token, stop := exampleGateway()
	dir, _ := os.MkdirTemp("", "goat-replica-")
	defer os.RemoveAll(dir)
	tok := token("alice")
	stop() // the gateway is down from here on

	c, _ := goat.Open(goat.Config{URL: url, Token: tok, Dir: dir, Schemas: []*core.Schema{taskSchema}})
	tasks, _ := c.Repo("team.tasks")
	_ = tasks.Set("t1", "task/1", map[string]any{"title": "Written offline"})
	_ = c.Close() // commits the edit to the local directory

	c, _ = goat.Open(goat.Config{URL: url, Token: tok, Dir: dir, Schemas: []*core.Schema{taskSchema}})
	defer c.Close()
	tasks, _ = c.Repo("team.tasks")
	it, _ := tasks.Get("t1")
	st := c.Status()
	fmt.Println(it.Data["title"], "| online:", st.Online, "| pending:", st.Pending)
	// Output:
	// Written offline | online: false | pending: 1
}
