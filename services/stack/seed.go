package stack

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	"github.com/gantry-ci/gantry/events"
	"github.com/gantry-ci/gantry/services/pipelinefile"
	"github.com/gantry-ci/gantry/services/source"
)

// FindExamples returns dir if given, else the nearest examples/ directory
// at or above the working directory (so `gantry dev` works from anywhere in
// a checkout).
func FindExamples(dir string) (string, error) {
	if dir != "" {
		return dir, nil
	}
	wd, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for d := wd; ; d = filepath.Dir(d) {
		cand := filepath.Join(d, "examples")
		if fi, err := os.Stat(cand); err == nil && fi.IsDir() {
			return cand, nil
		}
		if filepath.Dir(d) == d {
			return "", errors.New("no examples/ directory here or above; pass --examples DIR")
		}
	}
}

// Example is one example project: a directory with a pipeline.yaml.
type Example struct {
	Name     string
	Dir      string
	Pipeline events.Definition
}

// LoadExamples parses every examples/*/pipeline.yaml.
func LoadExamples(dir string) ([]Example, error) {
	matches, err := filepath.Glob(filepath.Join(dir, "*", "pipeline.yaml"))
	if err != nil {
		return nil, err
	}
	var out []Example
	for _, m := range matches {
		data, err := os.ReadFile(m)
		if err != nil {
			return nil, err
		}
		d, err := pipelinefile.Parse(m, data)
		if err != nil {
			return nil, err
		}
		out = append(out, Example{Name: filepath.Base(filepath.Dir(m)), Dir: filepath.Dir(m), Pipeline: d})
	}
	return out, nil
}

// SeedRepo makes a local git repository of an example under reposDir on
// first use, so the source action has a real repository to clone. It
// returns the repository path and whether it was created now.
func SeedRepo(ctx context.Context, ex Example, reposDir string) (string, bool, error) {
	repo := filepath.Join(reposDir, ex.Name)
	if _, err := os.Stat(filepath.Join(repo, ".git")); err == nil {
		return repo, false, nil
	}
	if err := copyTree(ex.Dir, repo); err != nil {
		return "", false, fmt.Errorf("copy example %s: %w", ex.Name, err)
	}
	for _, args := range [][]string{
		{"init", "--quiet", "--initial-branch=main"},
		{"add", "--all"},
		{"commit", "--quiet", "-m", "Import the " + ex.Name + " example"},
	} {
		if err := Git(ctx, repo, args...); err != nil {
			return "", false, err
		}
	}
	return repo, true, nil
}

// Git runs git in dir with a fixed identity, for seeding and for tests.
func Git(ctx context.Context, dir string, args ...string) error {
	cmd := exec.CommandContext(ctx, "git", args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(),
		"GIT_AUTHOR_NAME=Gantry", "GIT_AUTHOR_EMAIL=gantry@localhost",
		"GIT_COMMITTER_NAME=Gantry", "GIT_COMMITTER_EMAIL=gantry@localhost")
	out, err := cmd.CombinedOutput()
	if err != nil {
		return fmt.Errorf("git %s in %s: %w: %s", strings.Join(args, " "), dir, err, strings.TrimSpace(string(out)))
	}
	return nil
}

func copyTree(src, dst string) error {
	return filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, p)
		target := filepath.Join(dst, rel)
		if d.IsDir() {
			return os.MkdirAll(target, 0o755)
		}
		if !d.Type().IsRegular() {
			return nil
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		return os.WriteFile(target, b, info.Mode().Perm())
	})
}

// ApplyExamples stores every example's pipeline.
func ApplyExamples(ctx context.Context, c *Conn, exs []Example) error {
	kv, err := c.Bus.JetStream().KeyValue(ctx, events.BucketPipelines)
	if err != nil {
		return err
	}
	for _, ex := range exs {
		if _, err := (source.Pipelines{KV: kv}).Put(ctx, ex.Pipeline); err != nil {
			return err
		}
	}
	return nil
}
