package access_test

import (
	"bufio"
	"context"
	"encoding/json"
	"net"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/gantry-ci/gantry/events"
	"github.com/gantry-ci/gantry/events/natsd"
	"github.com/gantry-ci/gantry/services/access"
	"github.com/gantry-ci/gantry/services/stack"
)

// server is an embedded server run from the real configuration, as
// `gantry dev` runs it: TLS, one user per role.
type server struct {
	t       *testing.T
	dataDir string
	url     string
}

func startServer(t *testing.T) *server {
	t.Helper()
	dir := t.TempDir()
	spec := access.Spec{Agents: []access.Agent{{Group: "web", Host: "h1"}}}
	if err := stack.WriteDevAuth(dir, spec); err != nil {
		t.Fatal(err)
	}
	srv, err := natsd.Start(natsd.Options{DataDir: stack.JetStreamDir(dir), Port: -1, ConfigFile: stack.DevServerConfig(dir)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Shutdown)
	s := &server{t: t, dataDir: dir, url: srv.ClientURL()}
	// Admin provisions, as gantry dev does, and makes the buckets other
	// engineers' services create: the conductor's keys, the secrets.
	admin := s.open(access.Admin, true)
	ctx := context.Background()
	for _, b := range []string{access.BucketKeys, access.BucketSecrets} {
		kv, err := admin.Bus.JetStream().CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{Bucket: b, History: 1})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := kv.Put(ctx, "k", []byte("secret value")); err != nil {
			t.Fatal(err)
		}
	}
	return s
}

func (s *server) auth(user string) stack.Auth {
	s.t.Helper()
	a, ok, err := stack.DevAuth(s.dataDir, user)
	if err != nil || !ok {
		s.t.Fatalf("credentials of %s: %v", user, err)
	}
	return a
}

func (s *server) open(user string, provision bool) *stack.Conn {
	s.t.Helper()
	c, err := stack.Open(context.Background(), stack.Target{URL: s.url, Auth: s.auth(user)}, "test-"+user, provision)
	if err != nil {
		s.t.Fatalf("open as %s: %v", user, err)
	}
	s.t.Cleanup(c.Close)
	return c
}

// client is a raw connection as one user that collects the server's
// permission refusals.
type client struct {
	t    *testing.T
	user string
	nc   *nats.Conn
	errs chan error
}

func (s *server) client(user string) *client {
	s.t.Helper()
	c := &client{t: s.t, user: user, errs: make(chan error, 64)}
	opts := append(s.auth(user).Options(), nats.ErrorHandler(func(_ *nats.Conn, _ *nats.Subscription, err error) {
		select {
		case c.errs <- err:
		default:
		}
	}))
	nc, err := nats.Connect(s.url, opts...)
	if err != nil {
		s.t.Fatalf("connect as %s: %v", user, err)
	}
	s.t.Cleanup(nc.Close)
	c.nc = nc
	return c
}

// refused waits for the server's permission refusal naming subject.
func (c *client) refused(what, subject string) {
	c.t.Helper()
	if err := c.nc.Flush(); err != nil {
		c.t.Fatal(err)
	}
	deadline := time.After(3 * time.Second)
	for {
		select {
		case err := <-c.errs:
			if strings.Contains(err.Error(), "Permissions Violation") && strings.Contains(err.Error(), subject) {
				return
			}
		case <-deadline:
			c.t.Errorf("%s may %s %s; want a permissions violation", c.user, what, subject)
			return
		}
	}
}

func (c *client) cannotPublish(subject string) {
	c.t.Helper()
	if err := c.nc.Publish(subject, []byte(`{}`)); err != nil {
		c.t.Fatal(err)
	}
	c.refused("publish to", subject)
}

func (c *client) cannotSubscribe(subject string) {
	c.t.Helper()
	sub, err := c.nc.SubscribeSync(subject)
	if err != nil {
		c.t.Fatal(err)
	}
	defer sub.Unsubscribe()
	c.refused("subscribe to", subject)
}

// TestBuildWorkerUserIsConfined: against the real permission set, the
// build worker's user does its job (pulls build tasks, reports results,
// stores artifacts) and nothing else.
func TestBuildWorkerUserIsConfined(t *testing.T) {
	s := startServer(t)
	ctx := context.Background()

	// What the job needs works.
	build := s.open(access.Build, false)
	js := build.Bus.JetStream()
	cons, err := js.CreateOrUpdateConsumer(ctx, events.StreamTasks, jetstream.ConsumerConfig{
		Durable: "worker-build-default", FilterSubject: events.TaskSubject("build", "default"), AckPolicy: jetstream.AckExplicitPolicy})
	if err != nil {
		t.Fatalf("build worker creates its task consumer: %v", err)
	}
	conductor := s.open(access.Conductor, false)
	for _, kind := range []string{"build", "test"} {
		if _, err := conductor.Bus.JetStream().Publish(ctx, events.TaskSubject(kind, "default"), []byte(`{"lease":"`+kind+`"}`)); err != nil {
			t.Fatalf("conductor dispatches a %s task: %v", kind, err)
		}
	}
	batch, err := cons.Fetch(1, jetstream.FetchMaxWait(3*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	for m := range batch.Messages() {
		if !strings.Contains(string(m.Data()), `"build"`) {
			t.Errorf("build worker got %s", m.Data())
		}
		if err := m.Ack(); err != nil {
			t.Fatalf("build worker acks its task: %v", err)
		}
	}
	if _, err := js.Publish(ctx, events.RunSubject("hello", "r1"), []byte(`{}`)); err != nil {
		t.Fatalf("build worker publishes a run event: %v", err)
	}
	if _, err := js.ObjectStore(ctx, events.BucketArtifacts); err != nil {
		t.Fatalf("build worker binds the artifacts store: %v", err)
	}
	if kv, err := js.KeyValue(ctx, access.BucketSecrets); err != nil {
		t.Fatalf("build worker binds the secrets bucket: %v", err)
	} else if _, err := kv.Get(ctx, "k"); err != nil {
		t.Fatalf("build worker reads a secret: %v", err)
	}

	// Nothing else does.
	c := s.client(access.Build)
	c.cannotPublish(events.AgentSubject("web", "h1"))
	c.cannotPublish(events.AlarmSubject("web"))
	c.cannotPublish(events.DeploySubject("web", "d1"))
	c.cannotPublish(events.TaskSubject("build", "default"))
	c.cannotPublish("$KV.pipelines.hello")
	c.cannotPublish("$KV." + access.BucketSecrets + ".k")
	// Test tasks: not through the test workers' consumer, not through one
	// of its own, not by listening on the subject or others' inboxes.
	c.cannotPublish("$JS.API.CONSUMER.MSG.NEXT." + events.StreamTasks + ".worker-test-default")
	c.cannotPublish("$JS.API.CONSUMER.CREATE." + events.StreamTasks + ".mine.gantry.tasks.test.default")
	c.cannotPublish("$JS.API.CONSUMER.CREATE." + events.StreamTasks + ".mine")
	c.cannotSubscribe("gantry.tasks.test.default")
	c.cannotSubscribe("_INBOX.>")
	c.cannotSubscribe(access.Inbox(access.Test) + ".>")
	// The conductor's lease key.
	c.cannotPublish("$JS.API.DIRECT.GET.KV_" + access.BucketKeys + ".$KV." + access.BucketKeys + ".k")
	c.cannotPublish("$JS.API.STREAM.MSG.GET.KV_" + access.BucketKeys)
	c.cannotPublish("$JS.API.CONSUMER.CREATE.KV_" + access.BucketKeys + ".mine")
	c.cannotSubscribe("$KV." + access.BucketKeys + ".>")
	c.cannotPublish("$JS.API.STREAM.PURGE.OBJ_" + events.BucketArtifacts)
	c.cannotPublish("$JS.API.STREAM.DELETE." + events.StreamEvents)
	// A refused request goes unanswered: give up soon.
	short, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
	defer cancel()
	if _, err := js.KeyValue(short, access.BucketKeys); err == nil {
		t.Error("build worker binds the keys bucket")
	}
}

// TestConductorAloneReadsKeys: the conductor reads the lease key; the
// operator's CLI user, with every other read, does not.
func TestConductorAloneReadsKeys(t *testing.T) {
	s := startServer(t)
	ctx := context.Background()
	kv, err := s.open(access.Conductor, false).Bus.JetStream().KeyValue(ctx, access.BucketKeys)
	if err != nil {
		t.Fatal(err)
	}
	if e, err := kv.Get(ctx, "k"); err != nil || string(e.Value()) != "secret value" {
		t.Fatalf("conductor reads its key: %v", err)
	}
	for _, u := range []string{access.Operator, access.Test, access.DeployService, access.AgentUser("web", "h1")} {
		s.client(u).cannotPublish("$JS.API.DIRECT.GET.KV_" + access.BucketKeys + ".$KV." + access.BucketKeys + ".k")
	}
}

// TestAgentUserIsConfined: an agent appends to its group's deployment
// logs only, never to a run's, and reads only its own commands.
func TestAgentUserIsConfined(t *testing.T) {
	s := startServer(t)
	ag := s.open(access.AgentUser("web", "h1"), false)
	if _, err := ag.Bus.JetStream().Publish(context.Background(), events.DeploySubject("web", "d1"), []byte(`{}`)); err != nil {
		t.Fatalf("agent appends to its group's deployment log: %v", err)
	}
	c := s.client(access.AgentUser("web", "h1"))
	c.cannotPublish(events.RunSubject("hello", "r1"))
	c.cannotPublish(events.DeploySubject("shop", "d1"))
	c.cannotPublish(events.AgentSubject("web", "h2"))
	c.cannotPublish("$JS.API.CONSUMER.MSG.NEXT." + events.StreamAgents + ".agent-web-h2")
	c.cannotPublish("$KV.agents.web.h2")
	c.cannotSubscribe(events.SubjectAgentsAll)
}

// TestUnauthenticatedAndWrongPasswordRefused: no user, a wrong password,
// or an unknown user cannot connect.
func TestUnauthenticatedAndWrongPasswordRefused(t *testing.T) {
	s := startServer(t)
	a := s.auth(access.Admin)
	for name, auth := range map[string]stack.Auth{
		"no user":        {CAFile: a.CAFile, CertFile: a.CertFile, KeyFile: a.KeyFile},
		"wrong password": {User: access.Admin, Password: "guess", CAFile: a.CAFile, CertFile: a.CertFile, KeyFile: a.KeyFile},
		"unknown user":   {User: "mallory", Password: a.Password, CAFile: a.CAFile, CertFile: a.CertFile, KeyFile: a.KeyFile},
	} {
		nc, err := nats.Connect(s.url, append(auth.Options(), nats.NoReconnect(), nats.Timeout(3*time.Second))...)
		if err == nil {
			nc.Close()
			t.Errorf("%s: connected", name)
			continue
		}
		if !strings.Contains(strings.ToLower(err.Error()), "authorization") {
			t.Errorf("%s: %v, want an authorization violation", name, err)
		}
	}
}

// TestPlainClientRefused: a client that does not start TLS gets no further
// than the server's greeting, even with the right password.
func TestPlainClientRefused(t *testing.T) {
	s := startServer(t)
	a := s.auth(access.Admin)
	u, err := url.Parse(s.url)
	if err != nil {
		t.Fatal(err)
	}
	conn, err := net.DialTimeout("tcp", u.Host, 3*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(5 * time.Second))
	r := bufio.NewReader(conn)
	info, err := r.ReadString('\n')
	if err != nil || !strings.Contains(info, `"tls_required":true`) {
		t.Fatalf("greeting %q %v, want tls_required", info, err)
	}
	connect, _ := json.Marshal(map[string]any{"user": a.User, "pass": a.Password, "verbose": false, "protocol": 1})
	if _, err := conn.Write([]byte("CONNECT " + string(connect) + "\r\nPING\r\n")); err != nil {
		return // refused already
	}
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			return // the server hung up: refused
		}
		if strings.HasPrefix(line, "PONG") {
			t.Fatal("a plaintext client was served")
		}
	}
}

// TestClientWithoutCertificateRefused: the dev server verifies client
// certificates; a client with the right password and the CA but no
// certificate is refused.
func TestClientWithoutCertificateRefused(t *testing.T) {
	s := startServer(t)
	a := s.auth(access.Admin)
	a.CertFile, a.KeyFile = "", ""
	nc, err := nats.Connect(s.url, append(a.Options(), nats.NoReconnect(), nats.Timeout(3*time.Second))...)
	if err == nil {
		nc.Close()
		t.Fatal("connected without a client certificate")
	}
}
