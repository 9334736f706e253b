// Package sample is a tiny package whose tests pass, fail, skip, panic
// and nest, so that `go test -json` on it shows every kind of result.
package sample

// Add adds.
func Add(a, b int) int { return a + b }
