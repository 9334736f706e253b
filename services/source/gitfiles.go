package source

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
)

// GitFiles answers what changed between two commits of a repository with
// git, in a bare mirror of it under Dir: for webhooks whose payload lacks
// the changed files (pull requests, long pushes) and for polls. Every git
// argument is an argument, never shell text; commits are checked to be
// SHAs and URLs follow "--".
type GitFiles struct {
	// Dir holds one bare mirror per repository. It belongs to one process:
	// the locks that keep two fetches of a mirror apart are in memory.
	Dir string

	mu    sync.Mutex
	locks map[string]*sync.Mutex
}

func (g *GitFiles) lock(dir string) func() {
	g.mu.Lock()
	if g.locks == nil {
		g.locks = map[string]*sync.Mutex{}
	}
	l := g.locks[dir]
	if l == nil {
		l = &sync.Mutex{}
		g.locks[dir] = l
	}
	g.mu.Unlock()
	l.Lock()
	return l.Unlock
}

func (g *GitFiles) mirror(ctx context.Context, repo string) (string, error) {
	h := sha256.Sum256([]byte(repo))
	dir := filepath.Join(g.Dir, hex.EncodeToString(h[:12])+".git")
	if _, err := os.Stat(filepath.Join(dir, "HEAD")); err == nil {
		return dir, nil
	}
	if err := os.MkdirAll(g.Dir, 0o755); err != nil {
		return "", fmt.Errorf("git mirrors: %w", err)
	}
	if _, err := runGit(ctx, "", "init", "--quiet", "--bare", "--", dir); err != nil {
		return "", err
	}
	return dir, nil
}

// Fetch brings the commits into the mirror of repo and returns its
// directory. It fetches branches and tags, then any commit still missing
// by its name (forges serve pull request heads that way).
func (g *GitFiles) Fetch(ctx context.Context, repo string, commits ...string) (string, error) {
	for _, c := range commits {
		if c != "" && !validSHA(c) {
			return "", fmt.Errorf("git fetch: %q is not a commit SHA", c)
		}
	}
	dir, err := g.mirror(ctx, repo)
	if err != nil {
		return "", err
	}
	unlock := g.lock(dir)
	defer unlock()
	if g.has(ctx, dir, commits) {
		return dir, nil
	}
	if _, err := runGit(ctx, dir, "fetch", "--quiet", "--force", "--", repo, "+refs/heads/*:refs/heads/*", "+refs/tags/*:refs/tags/*"); err != nil {
		return "", err
	}
	for _, c := range commits {
		if c != "" && !g.has(ctx, dir, []string{c}) {
			if _, err := runGit(ctx, dir, "fetch", "--quiet", "--", repo, c); err != nil {
				return "", err
			}
		}
	}
	return dir, nil
}

func (g *GitFiles) has(ctx context.Context, dir string, commits []string) bool {
	for _, c := range commits {
		if c == "" {
			continue
		}
		if _, err := runGit(ctx, dir, "cat-file", "-e", c+"^{commit}"); err != nil {
			return false
		}
	}
	return true
}

// Changed lists the files that differ between base and head (base empty:
// the files of head's own commit).
func (g *GitFiles) Changed(ctx context.Context, repo, base, head string) ([]string, error) {
	dir, err := g.Fetch(ctx, repo, base, head)
	if err != nil {
		return nil, err
	}
	var out string
	if base == "" {
		out, err = runGit(ctx, dir, "diff-tree", "--no-commit-id", "--name-only", "-r", "--root", head)
	} else {
		out, err = runGit(ctx, dir, "diff", "--name-only", base, head)
	}
	if err != nil {
		return nil, err
	}
	var files []string
	for _, l := range strings.Split(out, "\n") {
		if l != "" {
			files = append(files, l)
		}
	}
	return files, nil
}

// LsRemote lists a repository's branches and tags with their commits
// (annotated tags peeled to the commit they tag).
func LsRemote(ctx context.Context, repo string) (map[string]string, error) {
	out, err := runGit(ctx, "", "ls-remote", "--heads", "--tags", "--", repo)
	if err != nil {
		return nil, err
	}
	refs := map[string]string{}
	for _, l := range strings.Split(out, "\n") {
		sha, ref, ok := strings.Cut(l, "\t")
		if !ok || !validSHA(sha) {
			continue
		}
		if tag, peeled := strings.CutSuffix(ref, "^{}"); peeled {
			refs[tag] = sha
		} else if _, seen := refs[ref]; !seen {
			refs[ref] = sha
		}
	}
	return refs, nil
}

func runGit(ctx context.Context, dir string, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, "git", args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "GIT_TERMINAL_PROMPT=0")
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("git %s: %w: %s", args[0], err, strings.TrimSpace(errb.String()))
	}
	return strings.TrimSpace(out.String()), nil
}
