// Package access is the one source of truth for who may do what on
// Gantry's NATS bus: one user per role, each with the publish and subscribe
// permissions of its job only. `gantry dev` runs its embedded server with
// these users, and `gantry nats config` writes the same set into a
// nats-server configuration for operators (deploy/nats/gantry.conf is one,
// generated and checked by a test).
//
// Permissions are allow lists: what a role is not granted it cannot do.
// JetStream is reached through subjects, so reading a stream means being
// allowed its `$JS.API` requests (stream info, direct and stored message
// gets, consumers and their pulls and acks), reading a KV bucket or object
// store means the same on its KV_<bucket> or OBJ_<bucket> stream, and
// writing one means publishing to `$KV.<bucket>.…` or `$O.<bucket>.…`.
// Replies come to a per-user inbox prefix (Inbox), so no user can
// subscribe to the replies another receives, such as the tasks a worker
// of another kind pulls.
//
// The package is pure: it builds data, and config.go renders it.
package access

import (
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/gantry-ci/gantry/events"
	"github.com/gantry-ci/gantry/services/command"
)

// Role users, spelled as the CLI's role commands. Agents are users per
// host (AgentUser); custom worker kinds are users named by their kind.
const (
	// Admin provisions streams and buckets, writes secrets and may do
	// anything: `gantry nats provision`, `gantry state rebuild`.
	Admin = "admin"
	// Operator is the CLI, the gateway and chat-ops bots: it reads
	// everything but keys and secrets, applies pipelines and groups,
	// starts, stops and approves runs, creates deployments and raises
	// alarms. It can neither dispatch tasks nor command agents.
	Operator        = "operator"
	Conductor       = "conductor"
	Projector       = "projector"
	Triggers        = "triggers"
	Source          = "source"
	Build           = "build"
	Test            = "test"
	DeployService   = "deploy-service"
	RollbackService = "rollback-service"
	DeployWorker    = "deploy-worker"
	// Retention deletes old runs' artifacts and logs (services/retention).
	Retention = "retention"
	// Notifier is the notification service (services/chatops, `gantry
	// notify`): it reads run events through its own durable consumer and
	// writes only to its own stream, GANTRY_NOTIFY.
	Notifier = "notifier"
	// Gateway is the HTTP API (services/gateway): it reads runs, logs,
	// artifacts and deployments, starts runs, sends commands, applies
	// pipelines and deployment groups and rolls groups back for its token
	// holders.
	Gateway = "gateway"
)

// Buckets only some roles may read. They are created by the services
// that own them (the conductor's lease key, the secrets admins write).
const (
	// BucketKeys holds the conductor's lease key; only the conductor
	// (and admin) may read or write it.
	BucketKeys = events.BucketKeys
	// BucketSecrets holds secret values; build and test workers read
	// it, only admin writes it.
	BucketSecrets = events.BucketSecrets
)

// DefaultPool is the worker pool served when a Spec names none.
const DefaultPool = "default"

// Agent names one host's agent.
type Agent struct{ Group, Host string }

// AgentUser is the user of one host's agent.
func AgentUser(group, host string) string { return "agent-" + group + "-" + host }

// Inbox is the reply prefix a user's connection must use
// (nats.CustomInboxPrefix): the only inbox it may subscribe to.
func Inbox(user string) string { return "_INBOX_" + user }

// Spec says which users to make beyond the fixed roles.
type Spec struct {
	// Pools the workers serve (default: DefaultPool). Task consumers are
	// per kind and pool, and a worker may pull only its own.
	Pools []string
	// Kinds of custom action workers, each a user named by its kind.
	Kinds []string
	// Agents, each a user of its own that reads only its host's commands.
	Agents []Agent
}

// Validate reports every bad name at once.
func (s Spec) Validate() error {
	var errs []error
	for _, p := range s.Pools {
		errs = append(errs, events.CheckName("pool", p))
	}
	for _, k := range s.Kinds {
		errs = append(errs, events.CheckName("worker kind", k))
		if slices.Contains(fixedRoles, k) || strings.HasPrefix(k, "agent-") {
			errs = append(errs, fmt.Errorf("worker kind %q would clash with a role's user", k))
		}
	}
	for _, a := range s.Agents {
		errs = append(errs, events.CheckName("agent group", a.Group), events.CheckName("agent host", a.Host))
	}
	return errors.Join(errs...)
}

// Permissions are a user's allow lists. Nil means nothing is allowed.
type Permissions struct {
	Publish   []string `json:"publish"`
	Subscribe []string `json:"subscribe"`
	// Responses lets the user answer requests it received (nats-server's
	// allow_responses): the conductor replies to `gantry run stop` on the
	// caller's own inbox without being allowed to publish to inboxes.
	Responses bool `json:"responses,omitempty"`
}

// User is one NATS user and what it may do.
type User struct {
	Name        string      `json:"name"`
	Permissions Permissions `json:"permissions"`
}

var fixedRoles = []string{Admin, Operator, Conductor, Projector, Triggers, Source, Build, Test,
	DeployService, RollbackService, DeployWorker, Retention, Notifier, Gateway}

// Users returns every user of s, fixed roles first, in a stable order.
func Users(s Spec) ([]User, error) {
	if err := s.Validate(); err != nil {
		return nil, fmt.Errorf("access spec: %w", err)
	}
	pools := s.Pools
	if len(pools) == 0 {
		pools = []string{DefaultPool}
	}
	var out []User
	add := func(name string, p *perms) {
		out = append(out, User{Name: name, Permissions: p.done()})
	}
	add(Admin, &perms{pub: []string{">"}, sub: []string{">"}})
	add(Operator, operator())
	add(Conductor, conductor())
	add(Projector, projector())
	add(Triggers, triggers())
	add(Source, source(pools))
	build := worker(Build, pools)
	build.readKV(BucketSecrets)
	add(Build, build)
	test := worker(Test, pools)
	test.readKV(BucketSecrets)
	add(Test, test)
	add(DeployService, deployService())
	add(RollbackService, rollbackService())
	add(DeployWorker, deployWorker(pools))
	add(Retention, retention())
	add(Notifier, notifier())
	add(Gateway, gateway())
	for _, k := range s.Kinds {
		add(k, worker(k, pools))
	}
	for _, a := range s.Agents {
		add(AgentUser(a.Group, a.Host), agent(a))
	}
	for i := range out {
		if out[i].Name != Admin {
			out[i].Permissions.Subscribe = append(out[i].Permissions.Subscribe, Inbox(out[i].Name)+".>")
		}
	}
	seen := map[string]bool{}
	for _, u := range out {
		if seen[u.Name] {
			return nil, fmt.Errorf("access spec: user %q twice", u.Name)
		}
		seen[u.Name] = true
	}
	return out, nil
}

// DeployKind is the task kind of pipeline deploy actions (services/deploy.TaskKind).
const DeployKind = "deploy"

func operator() *perms {
	p := base()
	for _, s := range []string{events.StreamEvents, events.StreamTriggers, events.StreamLogs, events.StreamDLQ,
		events.StreamDeploys, events.StreamAlarms, events.StreamNotify} {
		p.readStream(s)
	}
	for _, b := range []string{events.BucketPipelines, events.BucketRuns, events.BucketAgents,
		events.BucketDeployGroups, events.BucketDeployments} {
		p.readKV(b)
	}
	p.readObjects(events.BucketArtifacts)
	p.writeKV(events.BucketPipelines)
	p.writeKV(events.BucketDeployGroups)
	p.publish(events.SubjectTriggersAll, events.SubjectEventsAll, events.SubjectDeploysAll,
		events.SubjectAlarmsAll, events.CmdSubject(">"))
	return p
}

// gateway reads what the API shows and does what its routes do: publish
// triggers (run starts), send command requests, write the pipelines and
// deploygroups buckets (PUT of a pipeline or a group, for admin tokens) and
// append deployments (group rollback). Unlike the operator it raises no
// alarms and reads no dead letters; it writes no other bucket (agents'
// heartbeats, projections, keys, secrets).
func gateway() *perms {
	p := base()
	for _, s := range []string{events.StreamEvents, events.StreamLogs, events.StreamDeploys} {
		p.readStream(s)
	}
	for _, b := range []string{events.BucketPipelines, events.BucketRuns, events.BucketAgents,
		events.BucketDeployGroups, events.BucketDeployments} {
		p.readKV(b)
	}
	p.readObjects(events.BucketArtifacts)
	p.writeKV(events.BucketPipelines)
	p.writeKV(events.BucketDeployGroups)
	// A repeated start reads the first trigger back to name its run.
	p.publish("$JS.API.STREAM.INFO."+events.StreamTriggers, "$JS.API.STREAM.MSG.GET."+events.StreamTriggers)
	p.publish(events.SubjectTriggersAll, events.SubjectDeploysAll)
	for _, v := range command.Verbs {
		p.publish(events.CmdSubject(v))
	}
	return p
}

func conductor() *perms {
	p := base()
	p.readStream(events.StreamEvents)
	p.readKV(events.BucketPipelines)
	// NoActiveAlarm conditions read the last alarm of a group.
	p.readStream(events.StreamAlarms)
	p.readKV(BucketKeys)
	p.writeKV(BucketKeys)
	// The conductor creates its key bucket on first start.
	p.publish("$JS.API.STREAM.CREATE.KV_" + BucketKeys)
	p.publish(events.SubjectEventsAll, events.SubjectTasksAll, events.DLQSubject(events.StreamEvents))
	// It serves the command verbs (a queue group of all conductors).
	for _, v := range command.Verbs {
		p.sub = append(p.sub, events.CmdSubject(v))
	}
	p.resp = true
	return p
}

func projector() *perms {
	p := base()
	p.readStream(events.StreamEvents)
	p.readStream(events.StreamDeploys)
	p.readKV(events.BucketRuns)
	p.writeKV(events.BucketRuns)
	p.readKV(events.BucketDeployments)
	p.writeKV(events.BucketDeployments)
	// What it cannot fold or store goes to the dead-letter stream.
	p.publish(events.DLQSubject(events.StreamEvents), events.DLQSubject(events.StreamDeploys))
	return p
}

// retention reads the projections and deletes old runs' objects: an
// object delete purges its chunks, so it may purge the artifacts stream,
// which no worker may.
func retention() *perms {
	p := base()
	p.readKV(events.BucketRuns)
	p.readKV(events.BucketDeployments)
	p.readObjects(events.BucketArtifacts)
	p.writeObjects(events.BucketArtifacts)
	p.publish("$JS.API.STREAM.PURGE.OBJ_" + events.BucketArtifacts)
	return p
}

// notifier reads run events through its durable consumer (no other
// consumer, no run log reads), creates and uses its own stream for
// delivery jobs and outcome events, and dead-letters bad jobs. It can
// neither append to a run nor send a command.
func notifier() *perms {
	p := base()
	p.durable(events.StreamEvents, NotifierEventsDurable, events.SubjectEventsAll)
	p.durable(events.StreamNotify, NotifierDeliveriesDurable, events.SubjectNotifyDeliveries)
	p.publish("$JS.API.STREAM.CREATE."+events.StreamNotify, events.SubjectNotifyAll, events.DLQSubject(events.StreamNotify))
	return p
}

// The notifier's durable consumers (services/chatops EventsDurable and
// DeliveriesDurable; a test keeps them equal).
const (
	NotifierEventsDurable     = "notifier"
	NotifierDeliveriesDurable = "notifier-deliveries"
)

func triggers() *perms {
	p := base()
	p.readStream(events.StreamTriggers)
	p.readKV(events.BucketPipelines)
	p.publish(events.SubjectEventsAll, events.DLQSubject(events.StreamTriggers))
	return p
}

// worker may pull only its kind's tasks of its pools, report results and
// logs, and read and write artifacts. It reads the run log (to check an
// attempt is still open) but no other stream.
func worker(kind string, pools []string) *perms {
	p := base()
	for _, pool := range pools {
		p.durable(events.StreamTasks, "worker-"+kind+"-"+pool, events.TaskSubject(kind, pool))
	}
	p.readStream(events.StreamEvents)
	p.readObjects(events.BucketArtifacts)
	p.writeObjects(events.BucketArtifacts)
	p.publish(events.SubjectEventsAll, events.SubjectLogsAll, events.DLQSubject(events.StreamTasks))
	// While a task runs the worker listens on its run's subject for an
	// abandon (`gantry run stop --abandon`); it may read the log anyway.
	p.sub = append(p.sub, events.SubjectEventsAll)
	return p
}

// source is the checkout worker plus the webhook receiver and the git
// poller: they read the pipelines, publish triggers and their decision
// events (reading a duplicate trigger back for its run), and keep the
// poll state in a bucket the source service creates.
func source(pools []string) *perms {
	p := worker(Source, pools)
	p.readKV(events.BucketPipelines)
	p.readStream(events.StreamTriggers)
	p.publish(events.SubjectTriggersAll)
	p.readKV(events.BucketPoll)
	p.writeKV(events.BucketPoll)
	p.publish("$JS.API.STREAM.CREATE.KV_" + events.BucketPoll)
	return p
}

func deployWorker(pools []string) *perms {
	p := worker(DeployKind, pools)
	p.deployer()
	return p
}

func deployService() *perms {
	p := base()
	p.deployer()
	p.readStream(events.StreamAlarms)
	p.publish(events.SubjectAgentsAll, events.DLQSubject(events.StreamAlarms))
	return p
}

func rollbackService() *perms {
	p := base()
	p.deployer()
	return p
}

// deployer reads and appends to deployment logs and reads the groups and
// agents buckets: what creating a deployment needs.
func (p *perms) deployer() {
	p.readStream(events.StreamDeploys)
	p.readKV(events.BucketDeployGroups)
	p.readKV(events.BucketAgents)
	p.publish(events.SubjectDeploysAll, events.DLQSubject(events.StreamDeploys))
}

// agent reads its own host's commands, appends to its group's deployment
// logs, renews its own heartbeat key and downloads revisions.
func agent(a Agent) *perms {
	p := base()
	p.durable(events.StreamAgents, "agent-"+a.Group+"-"+a.Host, events.AgentSubject(a.Group, a.Host))
	p.readStream(events.StreamDeploys)
	p.readObjects(events.BucketArtifacts)
	p.publish("$JS.API.STREAM.INFO.KV_"+events.BucketAgents, "$KV."+events.BucketAgents+"."+events.AgentKey(a.Group, a.Host),
		events.GroupDeploys(a.Group), events.DLQSubject(events.StreamAgents))
	return p
}

// perms collects allow lists.
type perms struct {
	pub, sub []string
	resp     bool
}

// base is what every service needs: account info and binding the event
// stream (every connection opens it).
func base() *perms {
	return &perms{pub: []string{"$JS.API.INFO", "$JS.API.STREAM.INFO." + events.StreamEvents}}
}

func (p *perms) publish(subjects ...string) { p.pub = append(p.pub, subjects...) }

// readStream allows reading every message of a stream: info, direct and
// stored gets, consumers of any name (ordered ones included), their pulls
// and acks.
func (p *perms) readStream(s string) {
	p.publish(
		"$JS.API.STREAM.INFO."+s,
		"$JS.API.STREAM.MSG.GET."+s,
		"$JS.API.DIRECT.GET."+s,
		"$JS.API.DIRECT.GET."+s+".>",
		"$JS.API.CONSUMER.CREATE."+s+".>",
		"$JS.API.CONSUMER.DURABLE.CREATE."+s+".>",
		"$JS.API.CONSUMER.INFO."+s+".*",
		"$JS.API.CONSUMER.DELETE."+s+".*",
		"$JS.API.CONSUMER.MSG.NEXT."+s+".*",
		"$JS.ACK."+s+".>",
	)
}

// durable allows one named consumer with one filter on a stream, and
// nothing else of it: a worker of one kind pulls its own work queue only.
func (p *perms) durable(stream, name, filter string) {
	p.publish(
		"$JS.API.STREAM.INFO."+stream,
		"$JS.API.CONSUMER.CREATE."+stream+"."+name+"."+filter,
		"$JS.API.CONSUMER.INFO."+stream+"."+name,
		"$JS.API.CONSUMER.MSG.NEXT."+stream+"."+name,
		"$JS.ACK."+stream+"."+name+".>",
	)
}

func (p *perms) readKV(bucket string)      { p.readStream("KV_" + bucket) }
func (p *perms) writeKV(bucket string)     { p.publish("$KV." + bucket + ".>") }
func (p *perms) readObjects(bucket string) { p.readStream("OBJ_" + bucket) }

// writeObjects allows putting objects. Not purging: nats.go purges an
// overwritten object's old chunks and ignores a refusal, and a worker that
// could purge could delete any run's artifacts.
func (p *perms) writeObjects(bucket string) { p.publish("$O." + bucket + ".>") }

// done returns the lists sorted and without repeats.
func (p *perms) done() Permissions {
	norm := func(s []string) []string {
		s = slices.Clone(s)
		slices.Sort(s)
		return slices.Compact(s)
	}
	return Permissions{Publish: norm(p.pub), Subscribe: norm(p.sub), Responses: p.resp}
}
