// Command etcd is the upstream etcd server (its own etcdmain entry point, same flags) built from
// the go.etcd.io/etcd/server/v3 module for the test control plane.
package main

import (
	"os"

	"go.etcd.io/etcd/server/v3/etcdmain"
)

func main() {
	etcdmain.Main(os.Args)
}
