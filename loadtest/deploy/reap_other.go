//go:build !linux

package deploy

import "time"

func becomeSubreaper() {}

func reapChildren(time.Duration) {}
