//go:build tools

// Package tools pins SeaweedFS (the S3-compatible object store the export tests run, issue #19).
package tools

import _ "github.com/seaweedfs/seaweedfs/weed"
