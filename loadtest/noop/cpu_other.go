//go:build !unix

package noop

import "time"

// processCPU is unknown here; the CPU fields of the report stay zero.
func processCPU() time.Duration { return 0 }
