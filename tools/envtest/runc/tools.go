//go:build tools

// Builds runc (with seccomp: libseccomp through cgo) for the test world's real node (issue #16).
package tools

import _ "github.com/opencontainers/runc"
