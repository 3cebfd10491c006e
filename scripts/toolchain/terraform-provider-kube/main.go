// Command terraform-provider-kube is the platform's own small Terraform provider.
//
// The hashicorp/kubernetes v2 provider cannot be fetched from the Go module proxy
// these machines reach (only a 2020 v1 release is served, and its dependencies are
// not), so the platform ships this provider instead. It manages any Kubernetes
// object from a JSON manifest with server-side apply (kube_object) and generates
// random secrets (kube_random_token), which is all the tenant modules need.
package main

import (
	"context"
	"log"

	"github.com/hashicorp/terraform-plugin-framework/providerserver"
)

// Address is the provider source address the Terraform modules require.
const Address = "llm-tenants.local/platform/kube"

func main() {
	err := providerserver.Serve(context.Background(), newProvider, providerserver.ServeOpts{Address: Address})
	if err != nil {
		log.Fatal(err)
	}
}
