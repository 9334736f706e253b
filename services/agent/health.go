package agent

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"text/template"
	"time"

	"github.com/gantry-ci/gantry/events"
)

// HealthTarget is what a health check URL template sees.
type HealthTarget struct {
	Host   string
	Group  string
	Labels map[string]string
}

// HealthURL renders a health check URL template for a host.
func HealthURL(tmpl string, t HealthTarget) (string, error) {
	tp, err := template.New("url").Option("missingkey=error").Parse(tmpl)
	if err != nil {
		return "", fmt.Errorf("health check url %q: %w", tmpl, err)
	}
	var b bytes.Buffer
	if err := tp.Execute(&b, t); err != nil {
		return "", fmt.Errorf("health check url %q: %w", tmpl, err)
	}
	return b.String(), nil
}

// healthCheck probes url until threshold consecutive answers have the
// expected status, or the timeout passes.
func healthCheck(ctx context.Context, hc events.HealthCheck, url string, log io.Writer) error {
	want := hc.ExpectedStatus
	if want == 0 {
		want = http.StatusOK
	}
	interval := time.Duration(max(hc.IntervalSeconds, 1)) * time.Second
	if hc.IntervalSeconds == 0 {
		interval = 200 * time.Millisecond
	}
	threshold := hc.HealthyThreshold
	if threshold == 0 {
		threshold = 2
	}
	timeout := time.Duration(hc.TimeoutSeconds) * time.Second
	if timeout == 0 {
		timeout = 60 * time.Second
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	client := &http.Client{Timeout: max(interval, time.Second)}
	good, last := 0, ""
	for {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if err != nil {
			return err
		}
		resp, err := client.Do(req)
		if err != nil {
			good, last = 0, err.Error()
		} else {
			io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
			resp.Body.Close()
			if resp.StatusCode == want {
				good++
				last = resp.Status
			} else {
				good, last = 0, fmt.Sprintf("status %s, want %d", resp.Status, want)
			}
		}
		fmt.Fprintf(log, "GET %s: %s (%d of %d healthy)\n", url, last, good, threshold)
		if good >= threshold {
			return nil
		}
		select {
		case <-ctx.Done():
			if ctx.Err() == context.DeadlineExceeded {
				return fmt.Errorf("GET %s not healthy after %s: %s", url, timeout, last)
			}
			return ctx.Err()
		case <-time.After(interval):
		}
	}
}
