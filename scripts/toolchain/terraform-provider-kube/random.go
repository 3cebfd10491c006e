package main

import (
	"context"
	"crypto/rand"
	"fmt"
	"math/big"

	"github.com/hashicorp/terraform-plugin-framework/resource"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/int64default"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/int64planmodifier"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/mapplanmodifier"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/planmodifier"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/stringplanmodifier"
	"github.com/hashicorp/terraform-plugin-framework/types"
)

const tokenAlphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"

// randomTokenResource stands in for hashicorp/random's random_password: a secret
// generated once, kept in state, regenerated only when length or keepers change.
type randomTokenResource struct{}

type randomTokenModel struct {
	Length  types.Int64  `tfsdk:"length"`
	Prefix  types.String `tfsdk:"prefix"`
	Keepers types.Map    `tfsdk:"keepers"`
	ID      types.String `tfsdk:"id"`
	Result  types.String `tfsdk:"result"`
}

func newRandomTokenResource() resource.Resource { return &randomTokenResource{} }

func (r *randomTokenResource) Metadata(_ context.Context, req resource.MetadataRequest, resp *resource.MetadataResponse) {
	resp.TypeName = req.ProviderTypeName + "_random_token"
}

func (r *randomTokenResource) Schema(_ context.Context, _ resource.SchemaRequest, resp *resource.SchemaResponse) {
	keep := []planmodifier.String{stringplanmodifier.UseStateForUnknown()}
	resp.Schema = schema.Schema{
		Description: "A random alphanumeric secret (e.g. an API key), generated once and kept in state.",
		Attributes: map[string]schema.Attribute{
			"length": schema.Int64Attribute{Optional: true, Computed: true, Default: int64default.StaticInt64(40),
				Description:   "Number of random characters (after the prefix).",
				PlanModifiers: []planmodifier.Int64{int64planmodifier.RequiresReplace()}},
			"prefix": schema.StringAttribute{Optional: true,
				Description:   "Fixed text put before the random characters, e.g. \"sk-\".",
				PlanModifiers: []planmodifier.String{stringplanmodifier.RequiresReplace()}},
			"keepers": schema.MapAttribute{Optional: true, ElementType: types.StringType,
				Description:   "Arbitrary values; changing any of them generates a new token.",
				PlanModifiers: []planmodifier.Map{mapplanmodifier.RequiresReplace()}},
			"id":     schema.StringAttribute{Computed: true, PlanModifiers: keep},
			"result": schema.StringAttribute{Computed: true, Sensitive: true, PlanModifiers: keep},
		},
	}
}

func randomString(n int64) (string, error) {
	if n < 1 || n > 4096 {
		return "", fmt.Errorf("length must be between 1 and 4096, got %d", n)
	}
	limit := big.NewInt(int64(len(tokenAlphabet)))
	out := make([]byte, n)
	for i := range out {
		k, err := rand.Int(rand.Reader, limit)
		if err != nil {
			return "", err
		}
		out[i] = tokenAlphabet[k.Int64()]
	}
	return string(out), nil
}

func (r *randomTokenResource) Create(ctx context.Context, req resource.CreateRequest, resp *resource.CreateResponse) {
	var m randomTokenModel
	resp.Diagnostics.Append(req.Plan.Get(ctx, &m)...)
	if resp.Diagnostics.HasError() {
		return
	}
	token, err := randomString(m.Length.ValueInt64())
	if err != nil {
		resp.Diagnostics.AddError("Cannot generate token", err.Error())
		return
	}
	m.Result = types.StringValue(m.Prefix.ValueString() + token)
	m.ID = types.StringValue("none")
	resp.Diagnostics.Append(resp.State.Set(ctx, &m)...)
}

func (r *randomTokenResource) Read(context.Context, resource.ReadRequest, *resource.ReadResponse) {}

// Update only happens for no-op changes: every input attribute forces replacement.
func (r *randomTokenResource) Update(ctx context.Context, req resource.UpdateRequest, resp *resource.UpdateResponse) {
	var m randomTokenModel
	resp.Diagnostics.Append(req.Plan.Get(ctx, &m)...)
	resp.Diagnostics.Append(resp.State.Set(ctx, &m)...)
}

func (r *randomTokenResource) Delete(context.Context, resource.DeleteRequest, *resource.DeleteResponse) {
}
