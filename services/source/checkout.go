package source

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	"github.com/gantry-ci/gantry/events"
	"github.com/gantry-ci/gantry/services/artifact"
	"github.com/gantry-ci/gantry/services/worker"
)

// Checkout is the handler of source actions. Configuration:
// repository (a path, relative to ReposDir, or a file:// or other git URL),
// branch (default main). The commit is the trigger's, if it named one, else
// the head of the branch.
type Checkout struct {
	// ReposDir resolves relative repository paths.
	ReposDir string
}

var _ worker.Handler = (*Checkout)(nil)

// ErrNoRepository is returned when a source action names no repository.
var ErrNoRepository = errors.New("source action needs configuration.repository")

// Handle clones, checks out and stores the tree (without .git).
func (c *Checkout) Handle(ctx context.Context, t *worker.Task) (worker.Result, error) {
	repo := t.Configuration["repository"]
	if repo == "" {
		return worker.Result{}, ErrNoRepository
	}
	if !strings.Contains(repo, "://") && !filepath.IsAbs(repo) && !strings.Contains(repo, "@") {
		repo = filepath.Join(c.ReposDir, repo)
	}
	branch := t.Configuration["branch"]
	if branch == "" {
		branch = "main"
	}
	if ref := t.Variables["GANTRY_REF"]; ref != "" {
		// A tag's run (a webhook or poll of a tag push) clones the tag:
		// git clone --branch takes tag names too.
		branch = strings.TrimPrefix(strings.TrimPrefix(ref, "refs/heads/"), "refs/tags/")
	}
	commit := t.Variables["GANTRY_COMMIT"]
	dir := filepath.Join(t.Workspace, "src")
	t.Log.Printf("cloning %s (branch %s)", repo, branch)
	if _, err := git(ctx, t, t.Workspace, "clone", "--quiet", "--no-checkout", "--branch", branch, "--", repo, dir); err != nil {
		return worker.Result{}, err
	}
	target := "origin/" + branch
	if commit != "" {
		target = commit
	}
	if _, err := git(ctx, t, dir, "-c", "advice.detachedHead=false", "checkout", "--quiet", target); err != nil {
		return worker.Result{}, err
	}
	head, err := git(ctx, t, dir, "rev-parse", "HEAD")
	if err != nil {
		return worker.Result{}, err
	}
	msg, _ := git(ctx, t, dir, "log", "-1", "--format=%s")
	t.Log.Printf("checked out %s: %s", head, msg)
	if err := os.RemoveAll(filepath.Join(dir, ".git")); err != nil {
		return worker.Result{}, fmt.Errorf("drop .git from the snapshot: %w", err)
	}
	files, err := artifact.DirFiles(dir)
	if err != nil {
		return worker.Result{}, err
	}
	name := "source"
	if len(t.Outputs) > 0 {
		name = t.Outputs[0]
	}
	ref, err := t.Artifacts.PutDir(ctx, t.ArtifactKey(name), name, files)
	if err != nil {
		return worker.Result{}, err
	}
	if err := t.Publish(ctx, events.ArtifactStored{ActionRef: t.Ref, Artifact: ref}, "artifact/"+name); err != nil {
		return worker.Result{}, err
	}
	t.Log.Printf("stored artifact %s (%d bytes, sha256 %s)", name, ref.Size, ref.SHA256)
	return worker.Result{
		Outputs:   []events.ArtifactRef{ref},
		Variables: map[string]string{"COMMIT_ID": head, "BRANCH_NAME": branch, "COMMIT_MESSAGE": msg},
	}, nil
}

func git(ctx context.Context, t *worker.Task, dir string, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, "git", args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "GIT_TERMINAL_PROMPT=0")
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		for _, l := range strings.Split(strings.TrimSpace(errb.String()), "\n") {
			if l != "" {
				t.Log.Line("source", l)
			}
		}
		return "", fmt.Errorf("git %s: %w: %s", args[0], err, strings.TrimSpace(errb.String()))
	}
	return strings.TrimSpace(out.String()), nil
}
