package main

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/hashicorp/terraform-plugin-framework/diag"
	"github.com/hashicorp/terraform-plugin-framework/path"
	"github.com/hashicorp/terraform-plugin-framework/resource"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/booldefault"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/planmodifier"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/stringplanmodifier"
	"github.com/hashicorp/terraform-plugin-framework/tfsdk"
	"github.com/hashicorp/terraform-plugin-framework/types"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/client-go/dynamic"
)

const fieldManager = "llm-tenants"

type objectResource struct{ clients *clients }

type objectModel struct {
	Manifest        types.String `tfsdk:"manifest"`
	WaitForDeletion types.Bool   `tfsdk:"wait_for_deletion"`
	ID              types.String `tfsdk:"id"`
	APIVersion      types.String `tfsdk:"api_version"`
	Kind            types.String `tfsdk:"kind"`
	Name            types.String `tfsdk:"name"`
	Namespace       types.String `tfsdk:"namespace"`
	UID             types.String `tfsdk:"uid"`
}

func newObjectResource() resource.Resource { return &objectResource{} }

func (r *objectResource) Metadata(_ context.Context, req resource.MetadataRequest, resp *resource.MetadataResponse) {
	resp.TypeName = req.ProviderTypeName + "_object"
}

func (r *objectResource) Schema(_ context.Context, _ resource.SchemaRequest, resp *resource.SchemaResponse) {
	computed := func(desc string) schema.StringAttribute {
		return schema.StringAttribute{Computed: true, Description: desc,
			PlanModifiers: []planmodifier.String{stringplanmodifier.UseStateForUnknown()}}
	}
	resp.Schema = schema.Schema{
		Description: "One Kubernetes object, created and updated by server-side apply of `manifest` " +
			"(JSON, e.g. from jsonencode). Changing its apiVersion, kind, namespace or name replaces it. " +
			"The provider never waits for rollouts.",
		Attributes: map[string]schema.Attribute{
			"manifest": schema.StringAttribute{Required: true,
				Description: "The object as JSON: apiVersion, kind, metadata.name (and metadata.namespace when namespaced)."},
			"wait_for_deletion": schema.BoolAttribute{Optional: true, Computed: true, Default: booldefault.StaticBool(true),
				Description: "On destroy, wait until the object is gone (e.g. a namespace finalized)."},
			"id":          computed("apiVersion/kind/namespace/name."),
			"api_version": computed("apiVersion from the manifest."),
			"kind":        computed("kind from the manifest."),
			"name":        computed("metadata.name from the manifest."),
			"namespace":   computed("metadata.namespace from the manifest (empty when cluster-scoped)."),
			"uid":         computed("metadata.uid given by the API server."),
		},
	}
}

func (r *objectResource) Configure(_ context.Context, req resource.ConfigureRequest, _ *resource.ConfigureResponse) {
	if c, ok := req.ProviderData.(*clients); ok {
		r.clients = c
	}
}

// identity is what names an object; a change in it means a new object.
type identity struct{ apiVersion, kind, namespace, name string }

func (i identity) id() string {
	return fmt.Sprintf("%s/%s/%s/%s", i.apiVersion, i.kind, i.namespace, i.name)
}

func parseManifest(text string) (*unstructured.Unstructured, identity, error) {
	obj := &unstructured.Unstructured{}
	if err := json.Unmarshal([]byte(text), &obj.Object); err != nil {
		return nil, identity{}, fmt.Errorf("manifest is not a JSON object: %w", err)
	}
	id := identity{obj.GetAPIVersion(), obj.GetKind(), obj.GetNamespace(), obj.GetName()}
	if id.apiVersion == "" || id.kind == "" || id.name == "" {
		return nil, id, fmt.Errorf("manifest needs apiVersion, kind and metadata.name")
	}
	return obj, id, nil
}

func (m *objectModel) setIdentity(id identity) {
	m.ID = types.StringValue(id.id())
	m.APIVersion = types.StringValue(id.apiVersion)
	m.Kind = types.StringValue(id.kind)
	m.Name = types.StringValue(id.name)
	m.Namespace = types.StringValue(id.namespace)
}

// ModifyPlan fills the identity attributes at plan time, so other resources can
// reference them, and asks for replacement when the identity changes.
func (r *objectResource) ModifyPlan(ctx context.Context, req resource.ModifyPlanRequest, resp *resource.ModifyPlanResponse) {
	if req.Plan.Raw.IsNull() {
		return
	}
	var plan objectModel
	resp.Diagnostics.Append(req.Plan.Get(ctx, &plan)...)
	if resp.Diagnostics.HasError() || plan.Manifest.IsUnknown() {
		return
	}
	_, id, err := parseManifest(plan.Manifest.ValueString())
	if err != nil {
		resp.Diagnostics.AddAttributeError(path.Root("manifest"), "Invalid manifest", err.Error())
		return
	}
	if !req.State.Raw.IsNull() {
		var state objectModel
		resp.Diagnostics.Append(req.State.Get(ctx, &state)...)
		if state.ID.ValueString() != id.id() {
			resp.RequiresReplace = append(resp.RequiresReplace, path.Root("manifest"))
			plan.UID = types.StringUnknown()
		}
	}
	plan.setIdentity(id)
	resp.Diagnostics.Append(resp.Plan.Set(ctx, &plan)...)
}

// target resolves the object's resource client (namespaced or not) via discovery.
func (r *objectResource) target(obj *unstructured.Unstructured) (dynamic.ResourceInterface, error) {
	if r.clients == nil {
		return nil, fmt.Errorf("provider not configured")
	}
	dyn, mapper, err := r.clients.get()
	if err != nil {
		return nil, err
	}
	gvk := obj.GroupVersionKind()
	mapping, err := mapper.RESTMapping(gvk.GroupKind(), gvk.Version)
	if meta.IsNoMatchError(err) {
		mapper.Reset()
		mapping, err = mapper.RESTMapping(gvk.GroupKind(), gvk.Version)
	}
	if err != nil {
		return nil, fmt.Errorf("resolving %s: %w", gvk, err)
	}
	if mapping.Scope.Name() == meta.RESTScopeNameNamespace {
		if obj.GetNamespace() == "" {
			return nil, fmt.Errorf("%s %q is namespaced: set metadata.namespace", gvk.Kind, obj.GetName())
		}
		return dyn.Resource(mapping.Resource).Namespace(obj.GetNamespace()), nil
	}
	return dyn.Resource(mapping.Resource), nil
}

func (r *objectResource) apply(ctx context.Context, m *objectModel) error {
	obj, id, err := parseManifest(m.Manifest.ValueString())
	if err != nil {
		return err
	}
	client, err := r.target(obj)
	if err != nil {
		return err
	}
	out, err := client.Apply(ctx, id.name, obj, metav1.ApplyOptions{FieldManager: fieldManager, Force: true})
	if err != nil {
		return fmt.Errorf("applying %s: %w", id.id(), err)
	}
	m.setIdentity(id)
	m.UID = types.StringValue(string(out.GetUID()))
	return nil
}

func (r *objectResource) Create(ctx context.Context, req resource.CreateRequest, resp *resource.CreateResponse) {
	r.applyPlan(ctx, req.Plan, &resp.State, &resp.Diagnostics, "Create")
}

func (r *objectResource) Update(ctx context.Context, req resource.UpdateRequest, resp *resource.UpdateResponse) {
	r.applyPlan(ctx, req.Plan, &resp.State, &resp.Diagnostics, "Update")
}

// applyPlan server-side applies the planned manifest and records the result in state.
func (r *objectResource) applyPlan(ctx context.Context, plan tfsdk.Plan, state *tfsdk.State, diags *diag.Diagnostics, action string) {
	var m objectModel
	diags.Append(plan.Get(ctx, &m)...)
	if diags.HasError() {
		return
	}
	if err := r.apply(ctx, &m); err != nil {
		diags.AddError(action+" failed", err.Error())
		return
	}
	diags.Append(state.Set(ctx, &m)...)
}

// Read drops the object from state when it is gone, so the next plan recreates it.
func (r *objectResource) Read(ctx context.Context, req resource.ReadRequest, resp *resource.ReadResponse) {
	var m objectModel
	resp.Diagnostics.Append(req.State.Get(ctx, &m)...)
	if resp.Diagnostics.HasError() {
		return
	}
	obj, id, err := parseManifest(m.Manifest.ValueString())
	if err != nil {
		resp.Diagnostics.AddError("Read failed", err.Error())
		return
	}
	client, err := r.target(obj)
	if err != nil {
		resp.Diagnostics.AddError("Read failed", err.Error())
		return
	}
	live, err := client.Get(ctx, id.name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		resp.State.RemoveResource(ctx)
		return
	}
	if err != nil {
		resp.Diagnostics.AddError("Read failed", fmt.Sprintf("reading %s: %v", id.id(), err))
		return
	}
	m.UID = types.StringValue(string(live.GetUID()))
	resp.Diagnostics.Append(resp.State.Set(ctx, &m)...)
}

func (r *objectResource) Delete(ctx context.Context, req resource.DeleteRequest, resp *resource.DeleteResponse) {
	var m objectModel
	resp.Diagnostics.Append(req.State.Get(ctx, &m)...)
	if resp.Diagnostics.HasError() {
		return
	}
	obj, id, err := parseManifest(m.Manifest.ValueString())
	if err == nil {
		err = r.delete(ctx, obj, id, m.WaitForDeletion.ValueBool())
	}
	if err != nil {
		resp.Diagnostics.AddError("Delete failed", err.Error())
	}
}

func (r *objectResource) delete(ctx context.Context, obj *unstructured.Unstructured, id identity, wait bool) error {
	client, err := r.target(obj)
	if err != nil {
		return err
	}
	policy := metav1.DeletePropagationBackground
	err = client.Delete(ctx, id.name, metav1.DeleteOptions{PropagationPolicy: &policy})
	if apierrors.IsNotFound(err) {
		return nil
	}
	if err != nil || !wait {
		return err
	}
	deadline := time.Now().Add(5 * time.Minute)
	for time.Now().Before(deadline) {
		_, err = client.Get(ctx, id.name, metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(500 * time.Millisecond):
		}
	}
	return fmt.Errorf("%s still exists 5 minutes after deletion (finalizers pending?)", id.id())
}
