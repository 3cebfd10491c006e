// Command coredns is CoreDNS with only the plugins the local node's cluster DNS uses: the
// kubernetes plugin answers *.svc.cluster.local (and reverse lookups) from the API; there is no
// forward plugin, because Pods here must not reach any resolver beyond this machine.
//
// Upstream CoreDNS compiles in every plugin (cloud DNS providers, etcd, ...); a custom directive
// list is CoreDNS's documented way to build a smaller server. The order is upstream plugin.cfg's.
package main

import (
	"github.com/coredns/coredns/core/dnsserver"
	"github.com/coredns/coredns/coremain"

	_ "github.com/coredns/coredns/plugin/cache"
	_ "github.com/coredns/coredns/plugin/errors"
	_ "github.com/coredns/coredns/plugin/health"
	_ "github.com/coredns/coredns/plugin/kubernetes"
	_ "github.com/coredns/coredns/plugin/loadbalance"
	_ "github.com/coredns/coredns/plugin/log"
	_ "github.com/coredns/coredns/plugin/ready"
	_ "github.com/coredns/coredns/plugin/reload"
)

// directives in upstream plugin.cfg order (which is the order a query passes through them).
var directives = []string{"reload", "ready", "health", "errors", "log", "loadbalance", "cache", "kubernetes"}

func init() {
	dnsserver.Directives = directives
}

func main() {
	coremain.Run()
}
