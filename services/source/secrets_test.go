package source_test

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gantry-ci/gantry/services/source"
)

func TestLoadWebhookSecrets(t *testing.T) {
	dir := t.TempDir()
	write := func(name, content string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	tokenFile := write("gl-token", "from-a-file\n")
	good := write("good.yaml", "github:\n  Acme/Web: s1\n  \"*\": any\ngitlab:\n  group/sub/app: file:"+tokenFile+"\n")
	s, err := source.LoadWebhookSecrets(good)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct{ forge, repo, want string }{
		{source.ForgeGitHub, "acme/web", "s1"},
		{source.ForgeGitHub, "ACME/WEB", "s1"},
		{source.ForgeGitHub, "other/repo", "any"},
		{source.ForgeGitHub, "", "any"},
		{source.ForgeGitLab, "group/sub/app", "from-a-file"},
		{source.ForgeGitLab, "group/other", ""},
		{source.ForgeGitea, "acme/web", ""},
	} {
		if got := string(s.Secret(c.forge, c.repo)); got != c.want {
			t.Errorf("Secret(%s, %s) = %q, want %q", c.forge, c.repo, got, c.want)
		}
	}
	for name, content := range map[string]string{
		"forge.yaml":    "bitbucket:\n  a/b: x\n",
		"relative.yaml": "github:\n  a/b: file:secret.txt\n",
		"missing.yaml":  "github:\n  a/b: file:/does/not/exist\n",
		"empty.yaml":    "github:\n  a/b: \"\"\n",
		"syntax.yaml":   "github: [\n",
	} {
		_, err := source.LoadWebhookSecrets(write(name, content))
		if !errors.Is(err, source.ErrSecretsFile) || !strings.Contains(err.Error(), name) && name != "missing.yaml" {
			t.Errorf("%s: error %v, want ErrSecretsFile naming the file", name, err)
		}
	}
}
