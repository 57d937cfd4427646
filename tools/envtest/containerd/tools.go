//go:build tools

// Builds containerd, its runc shim and ctr for the test world's real node (issue #16).
// Pinned to containerd v2.4.2: kubelet v1.37 needs containerd 2.x.
package tools

import (
	_ "github.com/containerd/containerd/v2/cmd/containerd"
	_ "github.com/containerd/containerd/v2/cmd/containerd-shim-runc-v2"
	_ "github.com/containerd/containerd/v2/cmd/ctr"
)
