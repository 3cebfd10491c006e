package main

import (
	"context"
	"fmt"
	"os"
	"sync"

	"github.com/hashicorp/terraform-plugin-framework/datasource"
	"github.com/hashicorp/terraform-plugin-framework/provider"
	"github.com/hashicorp/terraform-plugin-framework/provider/schema"
	"github.com/hashicorp/terraform-plugin-framework/resource"
	"github.com/hashicorp/terraform-plugin-framework/types"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/discovery/cached/memory"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/restmapper"
	"k8s.io/client-go/tools/clientcmd"
)

type kubeProvider struct{}

type providerModel struct {
	ConfigPath    types.String `tfsdk:"config_path"`
	ConfigContext types.String `tfsdk:"config_context"`
}

// clients is built lazily so configurations that only use kube_random_token
// need no cluster.
type clients struct {
	configPath, context string
	once                sync.Once
	dyn                 dynamic.Interface
	mapper              *restmapper.DeferredDiscoveryRESTMapper
	err                 error
}

func newProvider() provider.Provider { return &kubeProvider{} }

func (p *kubeProvider) Metadata(_ context.Context, _ provider.MetadataRequest, resp *provider.MetadataResponse) {
	resp.TypeName = "kube"
}

func (p *kubeProvider) Schema(_ context.Context, _ provider.SchemaRequest, resp *provider.SchemaResponse) {
	resp.Schema = schema.Schema{
		Description: "Manages Kubernetes objects by server-side apply of JSON manifests.",
		Attributes: map[string]schema.Attribute{
			"config_path": schema.StringAttribute{
				Optional:    true,
				Description: "Path of the kubeconfig file; defaults to $KUBECONFIG.",
			},
			"config_context": schema.StringAttribute{
				Optional:    true,
				Description: "Kubeconfig context to use; defaults to the current context.",
			},
		},
	}
}

func (p *kubeProvider) Configure(ctx context.Context, req provider.ConfigureRequest, resp *provider.ConfigureResponse) {
	var cfg providerModel
	resp.Diagnostics.Append(req.Config.Get(ctx, &cfg)...)
	if resp.Diagnostics.HasError() {
		return
	}
	c := &clients{configPath: cfg.ConfigPath.ValueString(), context: cfg.ConfigContext.ValueString()}
	if c.configPath == "" {
		c.configPath = os.Getenv("KUBECONFIG")
	}
	resp.ResourceData = c
}

func (p *kubeProvider) Resources(_ context.Context) []func() resource.Resource {
	return []func() resource.Resource{newObjectResource, newRandomTokenResource}
}

func (p *kubeProvider) DataSources(_ context.Context) []func() datasource.DataSource {
	return nil
}

func (c *clients) get() (dynamic.Interface, *restmapper.DeferredDiscoveryRESTMapper, error) {
	c.once.Do(func() {
		if c.configPath == "" {
			c.err = fmt.Errorf("no kubeconfig: set config_path in the provider block or KUBECONFIG")
			return
		}
		rules := &clientcmd.ClientConfigLoadingRules{ExplicitPath: c.configPath}
		overrides := &clientcmd.ConfigOverrides{CurrentContext: c.context}
		rc, err := clientcmd.NewNonInteractiveDeferredLoadingClientConfig(rules, overrides).ClientConfig()
		if err != nil {
			c.err = fmt.Errorf("loading kubeconfig %s: %w", c.configPath, err)
			return
		}
		disc, err := discovery.NewDiscoveryClientForConfig(rc)
		if err != nil {
			c.err = err
			return
		}
		c.mapper = restmapper.NewDeferredDiscoveryRESTMapper(memory.NewMemCacheClient(disc))
		c.dyn, c.err = dynamic.NewForConfig(rc)
	})
	return c.dyn, c.mapper, c.err
}
