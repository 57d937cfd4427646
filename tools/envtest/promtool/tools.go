//go:build tools

// Package tools pins promtool, used to check the agent's Prometheus exposition (issue #8).
package tools

import _ "github.com/prometheus/prometheus/cmd/promtool"
