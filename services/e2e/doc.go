// Package e2e holds black-box tests that run the gantry binary as separate
// processes against one JetStream server and kill them mid-work.
package e2e
