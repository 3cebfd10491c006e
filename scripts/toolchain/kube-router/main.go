// Command kube-router-netpol runs only kube-router's NetworkPolicy controller (iptables + ipset),
// the way k3s embeds it: no BGP routing, no IPVS service proxy, no load-balancer allocator, no
// metrics port. It enforces the Kubernetes NetworkPolicies of the Pods on its node.
//
// /healthz on --health-address answers 200 once the controller has started its first full sync.
// On SIGTERM/SIGINT it stops and removes its iptables chains and ipsets (kube-router's Cleanup).
package main

import (
	"context"
	"errors"
	goflag "flag"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/signal"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/cloudnativelabs/kube-router/v2/pkg/controllers/netpol"
	"github.com/cloudnativelabs/kube-router/v2/pkg/healthcheck"
	"github.com/cloudnativelabs/kube-router/v2/pkg/options"
	"github.com/spf13/pflag"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"
	"k8s.io/klog/v2"
)

func main() {
	if err := run(); err != nil {
		klog.Errorf("kube-router-netpol: %v", err)
		os.Exit(1)
	}
}

func run() error {
	var kubeconfig, healthAddress string
	config := options.NewKubeRouterConfig()
	flags := pflag.CommandLine
	flags.StringVar(&kubeconfig, "kubeconfig", "", "kubeconfig of the identity the controller uses")
	flags.StringVar(&config.HostnameOverride, "hostname-override", "", "this node's name")
	flags.StringSliceVar(&config.ClusterIPCIDRs, "service-cluster-ip-range", config.ClusterIPCIDRs,
		"the cluster's Service CIDR")
	flags.DurationVar(&config.IPTablesSyncPeriod, "iptables-sync-period", config.IPTablesSyncPeriod,
		"period of the full resync (policy changes are applied at once, on their events)")
	flags.StringVar(&healthAddress, "health-address", "127.0.0.1:20245", "host:port of /healthz")
	klog.InitFlags(nil)
	flags.AddGoFlagSet(goflag.CommandLine)
	pflag.Parse()
	config.EnableIPv4 = true
	config.RunFirewall = true

	restConfig, err := clientcmd.BuildConfigFromFlags("", kubeconfig)
	if err != nil {
		return fmt.Errorf("reading %s: %w", kubeconfig, err)
	}
	client, err := kubernetes.NewForConfig(restConfig)
	if err != nil {
		return err
	}

	stopCh := make(chan struct{})
	factory := informers.NewSharedInformerFactory(client, 0)
	podInformer := factory.Core().V1().Pods().Informer()
	nsInformer := factory.Core().V1().Namespaces().Informer()
	npInformer := factory.Networking().V1().NetworkPolicies().Informer()
	factory.Start(stopCh)
	syncCtx, cancel := context.WithTimeout(context.Background(), config.CacheSyncTimeout)
	defer cancel()
	for informerType, ok := range factory.WaitForCacheSync(syncCtx.Done()) {
		if !ok {
			return fmt.Errorf("informer for %v did not sync", informerType)
		}
	}

	iptablesHandlers, ipsetHandlers, err := netpol.NewIPTablesHandlers(config)
	if err != nil {
		return err
	}
	var ipsetMutex sync.Mutex
	npc, err := netpol.NewNetworkPolicyController(client, config, podInformer, npInformer, nsInformer,
		&ipsetMutex, iptablesHandlers, ipsetHandlers)
	if err != nil {
		return err
	}
	for _, registration := range []error{
		addHandler(podInformer.AddEventHandler(npc.PodEventHandler)),
		addHandler(nsInformer.AddEventHandler(npc.NamespaceEventHandler)),
		addHandler(npInformer.AddEventHandler(npc.NetworkPolicyEventHandler)),
	} {
		if registration != nil {
			return registration
		}
	}

	var syncing atomic.Bool
	heartbeats := make(chan *healthcheck.ControllerHeartbeat, 10)
	go func() {
		for range heartbeats {
			syncing.Store(true)
		}
	}()
	server, err := serveHealth(healthAddress, &syncing)
	if err != nil {
		return err
	}

	var wg sync.WaitGroup
	wg.Add(1)
	go npc.Run(heartbeats, stopCh, &wg)

	signals := make(chan os.Signal, 1)
	signal.Notify(signals, syscall.SIGTERM, syscall.SIGINT)
	<-signals
	close(stopCh)
	wg.Wait()
	npc.Cleanup()
	ctx, done := context.WithTimeout(context.Background(), 2*time.Second)
	defer done()
	return server.Shutdown(ctx)
}

func addHandler[T any](_ T, err error) error { return err }

func serveHealth(address string, syncing *atomic.Bool) (*http.Server, error) {
	mux := http.NewServeMux()
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) {
		if !syncing.Load() {
			http.Error(w, "first sync not started", http.StatusServiceUnavailable)
			return
		}
		_, _ = w.Write([]byte("ok\n"))
	})
	server := &http.Server{Addr: address, Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	listener, err := net.Listen("tcp", address)
	if err != nil {
		return nil, err
	}
	klog.Infof("health endpoint on http://%s/healthz", listener.Addr())
	go func() {
		if err := server.Serve(listener); err != nil && !errors.Is(err, http.ErrServerClosed) {
			klog.Errorf("health server: %v", err)
		}
	}()
	return server, nil
}
