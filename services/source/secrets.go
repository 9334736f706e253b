package source

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/goccy/go-yaml"

	"github.com/gantry-ci/gantry/services/triggerfilter"
)

// WebhookSecrets are the secrets webhooks are verified with, per forge and
// repository. They are never in a pipeline file: the source service reads
// them from a file of its own (--webhook-secrets), e.g.
//
//	github:
//	  acme/webshop: 8f1c…          # the secret itself
//	  "*": file:/run/secrets/gh    # any other repository: read from a file
//	gitlab:
//	  group/sub/app: file:/run/secrets/gitlab-app
//	gitea:
//	  acme/tool: s3cr3t
//
// A repository is named as its forge names it (owner/name, without case);
// "*" is the forge's fallback. A forge or repository without a secret has
// its deliveries refused with 401.
type WebhookSecrets map[string]map[string]string

// ErrSecretsFile: the secrets file could not be read or is malformed.
var ErrSecretsFile = errors.New("webhook secrets file")

// LoadWebhookSecrets reads a secrets file, resolving file: values.
func LoadWebhookSecrets(path string) (WebhookSecrets, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrSecretsFile, err)
	}
	var s WebhookSecrets
	if err := yaml.Unmarshal(raw, &s); err != nil {
		return nil, fmt.Errorf("%w %s: %w", ErrSecretsFile, path, err)
	}
	out := WebhookSecrets{}
	for forge, repos := range s {
		if !isForge(forge) {
			return nil, fmt.Errorf("%w %s: unknown forge %q (forges: %s)", ErrSecretsFile, path, forge, strings.Join(Forges, ", "))
		}
		out[forge] = map[string]string{}
		for repo, v := range repos {
			if f, ok := strings.CutPrefix(v, "file:"); ok {
				if !filepath.IsAbs(f) {
					return nil, fmt.Errorf("%w %s: %s %s: file: needs an absolute path", ErrSecretsFile, path, forge, repo)
				}
				b, err := os.ReadFile(f)
				if err != nil {
					return nil, fmt.Errorf("%w %s: %s %s: %w", ErrSecretsFile, path, forge, repo, err)
				}
				v = strings.TrimRight(string(b), "\r\n")
			}
			if v == "" {
				return nil, fmt.Errorf("%w %s: %s %s: empty secret", ErrSecretsFile, path, forge, repo)
			}
			out[forge][key(repo)] = v
		}
	}
	return out, nil
}

func isForge(f string) bool {
	for _, x := range Forges {
		if x == f {
			return true
		}
	}
	return false
}

func key(repo string) string {
	if repo == "*" {
		return repo
	}
	return triggerfilter.Normalize(repo)
}

// Secret returns the secret of a forge's repository, or nil.
func (s WebhookSecrets) Secret(forge, repo string) []byte {
	repos := s[forge]
	if v, ok := repos[key(repo)]; ok && repo != "" {
		return []byte(v)
	}
	if v, ok := repos["*"]; ok {
		return []byte(v)
	}
	return nil
}
