// Command chatops-bot is an example of a Gantry bot that speaks NATS
// directly (docs/chatops.md): it watches the run event log and the
// deployment log, approves waiting approval actions that match its rules
// through gantry.cmd.approve, and rolls a deployment group back when one
// of its deployments fails, if asked to for that group.
//
//	chatops-bot --nats tls://nats:4222 --nats-user operator \
//	  --approve 'webshop/Staging*' --rollback 'prod-*'
//
// It connects as a user with the operator's permissions (services/access):
// reading GANTRY_EVENTS and GANTRY_DEPLOYS through its own ordered
// consumers, sending commands, and appending the rollback deployment.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path"
	"slices"
	"strings"
	"syscall"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/gantry-ci/gantry/events"
	"github.com/gantry-ci/gantry/events/bus"
	"github.com/gantry-ci/gantry/services/command"
	"github.com/gantry-ci/gantry/services/deploy"
	"github.com/gantry-ci/gantry/services/rollback"
)

// WaitingType is the event an approval action appends while it waits for
// a decision (events.TypeActionWaiting of the approvals work, issue 9;
// spelled here until it is on main). Its data names the action as a task
// does (run, stage, action, attempt) and who may answer (approvers).
const WaitingType = events.TypeActionWaiting

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	os.Exit(run(ctx, os.Args[1:], os.Stdout, os.Stderr))
}

// list is a repeatable string flag.
type list []string

func (l *list) String() string     { return strings.Join(*l, ",") }
func (l *list) Set(v string) error { *l = append(*l, v); return nil }

type config struct {
	natsURL, user, password, ca, inbox string
	approve, rollback                  list
	actor, waitingType                 string
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	var c config
	fs := flag.NewFlagSet("chatops-bot", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&c.natsURL, "nats", envOr("NATS_URL", nats.DefaultURL), "NATS server URL (env NATS_URL)")
	fs.StringVar(&c.user, "nats-user", os.Getenv("NATS_USER"), "NATS user (env NATS_USER), e.g. operator")
	fs.StringVar(&c.password, "nats-password", os.Getenv("NATS_PASSWORD"), "NATS password (env NATS_PASSWORD)")
	fs.StringVar(&c.ca, "tls-ca", os.Getenv("NATS_CA"), "CA of the NATS server's certificate (env NATS_CA)")
	fs.Var(&c.approve, "approve", "approve waiting approvals matching PIPELINE[/STAGE[/ACTION]] (globs; repeatable)")
	fs.Var(&c.rollback, "rollback", "roll back deployment groups matching GROUP (glob; repeatable) when a deployment fails")
	fs.StringVar(&c.actor, "actor", "bot:chatops-bot", "who the commands say asked")
	fs.StringVar(&c.waitingType, "waiting-type", WaitingType, "event type of an approval that waits")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	for _, r := range append(append([]string(nil), c.approve...), c.rollback...) {
		if _, err := path.Match(r, ""); err != nil {
			fmt.Fprintf(stderr, "chatops-bot: bad glob %q\n", r)
			return 2
		}
	}
	if err := serve(ctx, c, stdout, stderr); err != nil && ctx.Err() == nil {
		fmt.Fprintln(stderr, "chatops-bot:", err)
		return 1
	}
	return 0
}

func envOr(k, def string) string {
	if v := os.Getenv(k); v != "" {
		return v
	}
	return def
}

type bot struct {
	c      config
	b      *bus.Bus
	cmd    command.Client
	stdout io.Writer
	stderr io.Writer
}

func serve(ctx context.Context, c config, stdout, stderr io.Writer) error {
	opts := []nats.Option{}
	if c.user != "" {
		// Gantry's users may read replies only on their own inbox prefix.
		opts = append(opts, nats.UserInfo(c.user, c.password), nats.CustomInboxPrefix("_INBOX_"+c.user))
	}
	if c.ca != "" {
		opts = append(opts, nats.RootCAs(c.ca))
	}
	nc, err := bus.Connect(c.natsURL, "chatops-bot", opts...)
	if err != nil {
		return err
	}
	defer nc.Close()
	codec, err := events.NewCodec()
	if err != nil {
		return err
	}
	b, err := bus.New(nc, codec)
	if err != nil {
		return err
	}
	if err := b.Open(ctx); err != nil {
		return err
	}
	bt := &bot{c: c, b: b, cmd: command.Client{Conn: nc}, stdout: stdout, stderr: stderr}
	// Ordered consumers from now on: a bot reacts to what happens while it
	// runs. (A bot that must not miss an approval while it is down would
	// use a durable consumer, which its NATS user must then be allowed.)
	watch := func(stream, filter string, handle func(jetstream.Msg)) (jetstream.ConsumeContext, error) {
		cons, err := b.JetStream().OrderedConsumer(ctx, stream, jetstream.OrderedConsumerConfig{
			FilterSubjects: []string{filter}, DeliverPolicy: jetstream.DeliverNewPolicy})
		if err != nil {
			return nil, fmt.Errorf("watch %s: %w", filter, err)
		}
		return cons.Consume(handle)
	}
	cc, err := watch(events.StreamEvents, events.SubjectEventsAll, func(m jetstream.Msg) { bt.onRunEvent(ctx, m) })
	if err != nil {
		return err
	}
	defer cc.Stop()
	if len(c.rollback) > 0 {
		dc, err := watch(events.StreamDeploys, events.SubjectDeploysAll, func(m jetstream.Msg) { bt.onDeployEvent(ctx, m) })
		if err != nil {
			return err
		}
		defer dc.Stop()
	}
	fmt.Fprintf(stdout, "chatops-bot ready: approving %v, rolling back %v\n", []string(c.approve), []string(c.rollback))
	<-ctx.Done()
	return nil
}

// waiting is the part of a waiting approval's data the bot reads: the
// action it is, and who may answer (empty: anyone allowed to send
// gantry.cmd.approve).
type waiting struct {
	Run       string   `json:"run"`
	Stage     string   `json:"stage"`
	Action    string   `json:"action"`
	Approvers []string `json:"approvers,omitempty"`
}

func (bt *bot) onRunEvent(ctx context.Context, m jetstream.Msg) {
	// The envelope only: this bot may be older or newer than the services.
	var env events.Envelope
	if err := json.Unmarshal(m.Data(), &env); err != nil || env.Type != bt.c.waitingType {
		return
	}
	var w waiting
	if err := json.Unmarshal(env.Data, &w); err != nil || w.Run == "" {
		fmt.Fprintf(bt.stderr, "chatops-bot: %s %s: unexpected data: %s\n", env.Type, env.ID, env.Data)
		return
	}
	parts := strings.Split(m.Subject(), ".") // gantry.events.<pipeline>.<run>
	if len(parts) != 4 {
		return
	}
	pipeline := parts[2]
	rule, ok := matchApproval(bt.c.approve, pipeline, w.Stage, w.Action)
	if !ok {
		fmt.Fprintf(bt.stdout, "not approving %s/%s/%s of run %s: no rule matches\n", pipeline, w.Stage, w.Action, w.Run)
		return
	}
	if len(w.Approvers) > 0 && !slices.Contains(w.Approvers, bt.c.actor) {
		fmt.Fprintf(bt.stdout, "not approving %s/%s/%s of run %s: %s is not among its approvers %v\n",
			pipeline, w.Stage, w.Action, w.Run, bt.c.actor, w.Approvers)
		return
	}
	reply, err := bt.cmd.Do(ctx, command.Approve, command.Request{Run: w.Run, Pipeline: pipeline, Stage: w.Stage, Action: w.Action,
		Comment: "approved by chatops-bot rule " + rule, Actor: bt.c.actor})
	if err != nil {
		fmt.Fprintf(bt.stderr, "chatops-bot: approve %s/%s of run %s: %v\n", w.Stage, w.Action, w.Run, err)
		return
	}
	fmt.Fprintf(bt.stdout, "approved %s/%s of run %s (rule %s); run is %s\n", w.Stage, w.Action, w.Run, rule, reply.Phase)
}

// matchApproval finds the first rule PIPELINE[/STAGE[/ACTION]] that
// matches; a rule without a stage or action matches any.
func matchApproval(rules []string, pipeline, stage, action string) (string, bool) {
	for _, r := range rules {
		parts := strings.SplitN(r, "/", 3)
		have := []string{pipeline, stage, action}
		ok := true
		for i, p := range parts {
			if m, _ := path.Match(p, have[i]); !m {
				ok = false
				break
			}
		}
		if ok {
			return r, true
		}
	}
	return "", false
}

func (bt *bot) onDeployEvent(ctx context.Context, m jetstream.Msg) {
	var env events.Envelope
	if err := json.Unmarshal(m.Data(), &env); err != nil || env.Type != events.TypeDeploymentFailed {
		return
	}
	var f events.DeploymentFailed
	if err := json.Unmarshal(env.Data, &f); err != nil {
		return
	}
	matched := false
	for _, g := range bt.c.rollback {
		if ok, _ := path.Match(g, f.Group); ok {
			matched = true
		}
	}
	if !matched {
		return
	}
	// A rollback that fails is not rolled back again (the rollback
	// service's rule too).
	st, err := deploy.Load(ctx, bt.b, f.Deployment)
	if err != nil {
		fmt.Fprintf(bt.stderr, "chatops-bot: deployment %s: %v\n", f.Deployment, err)
		return
	}
	if st.Created.RollbackOf != "" {
		fmt.Fprintf(bt.stdout, "not rolling back %s: it was itself a rollback\n", f.Deployment)
		return
	}
	c, err := rollback.Rollback(ctx, bt.b, rollback.Request{Group: f.Group, Of: f.Deployment,
		ID: rollback.RollbackID(f.Deployment, env.Time), Actor: bt.c.actor})
	if err != nil && !errors.Is(err, context.Canceled) {
		fmt.Fprintf(bt.stderr, "chatops-bot: roll back %s after %s: %v\n", f.Group, f.Deployment, err)
		return
	}
	fmt.Fprintf(bt.stdout, "rolled %s back after %s failed: deployment %s of %s\n", f.Group, f.Deployment, c.Deployment, c.Revision.Key)
}
