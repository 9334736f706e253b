package stack

import (
	"context"
	"net"
	"os"
	"path/filepath"

	"github.com/rs/zerolog"

	"github.com/gantry-ci/gantry/services/source"
)

// sourceRole is the source service: the checkout worker, the git poller
// and, with o.Listen, the webhook receiver, stopped together.
func sourceRole(c *Conn, name string, log zerolog.Logger, o RoleOptions) (Role, error) {
	w, err := workerRole(c, name, log, o, &source.Checkout{ReposDir: o.ReposDir})
	if err != nil {
		return Role{}, err
	}
	mirrors := filepath.Join(os.TempDir(), "gantry-source-mirrors")
	if o.WorkDir != "" {
		mirrors = filepath.Join(o.WorkDir, "mirrors")
	}
	git := &source.GitFiles{Dir: mirrors}
	dec := &source.Decider{Bus: c.Bus, Validator: c.Validator}
	roles := []Role{w, {Name: name + "-poll", Run: (&source.Poller{Decider: dec, Log: log.With().Str("part", "poll").Logger(),
		Git: git, ReposDir: o.ReposDir}).Run}}
	if o.Listen != "" {
		var secrets source.WebhookSecrets
		if o.WebhookSecrets != "" {
			if secrets, err = source.LoadWebhookSecrets(o.WebhookSecrets); err != nil {
				return Role{}, err
			}
		}
		hooks := &source.Webhooks{Decider: dec, Log: log.With().Str("part", "webhooks").Logger(), Secrets: secrets,
			Git: git, ReposDir: o.ReposDir}
		roles = append(roles, Role{Name: name + "-webhooks", Run: func(ctx context.Context) error {
			return hooks.Serve(ctx, o.Listen, func(a net.Addr) {
				if o.OnListen != nil {
					o.OnListen(a.String())
				}
			})
		}})
	}
	return Role{Name: name, Run: func(ctx context.Context) error { return RunRoles(ctx, roles) }}, nil
}
