# The tenant spec's types, defaults and rules (variables.tf), in one place for every tenant root.
# No resources: the tenant module reads the checked spec from output "spec".
#
# tenant_spec/model.py (pydantic) checks the same file for local mode; tests/shared_infrastructure/
# test_spec_rules.py runs one corpus of good and bad specs through both and requires the same verdicts.

locals {
  document = var.document
  spec     = var.spec

  # Terraform's type conversion silently drops a field the type does not have and turns 5 into "5" (or
  # null into a default), so the document as written is compared with the typed spec: every field must
  # exist there and hold the same JSON. The fields known are the type's: a field added to `spec` is known.
  lists_of_objects = { for field, value in local.document : field => [
    for inner, items in value : inner if can(keys(items[0]))
  ] if can(keys(value)) }

  unknown_fields = concat(
    [for field in keys(local.document) : field if !contains(keys(local.spec), field)],
    flatten([for field, inners in local.lists_of_objects : [
      for inner, value in local.document[field] : "${field}.${inner}" if !contains(keys(local.spec[field]), inner)
    ] if contains(keys(local.spec), field)]),
    flatten([for field, inners in local.lists_of_objects : [for inner in inners : [
      for index, element in local.document[field][inner] : [
        for key in keys(element) : "${field}.${inner}.${index}.${key}" if !contains(keys(local.spec[field][inner][index]), key)
      ] if can(keys(element))
    ] if contains(keys(local.spec[field]), inner)] if contains(keys(local.spec), field)]),
  )

  mistyped_fields = length(local.unknown_fields) > 0 ? [] : concat(
    [for field, value in local.document : field if !can(keys(value)) && jsonencode(value) != jsonencode(local.spec[field])],
    flatten([for field, inners in local.lists_of_objects : [
      for inner, value in local.document[field] : "${field}.${inner}" if !contains(inners, inner) && jsonencode(value) != jsonencode(local.spec[field][inner])
    ]]),
    flatten([for field, inners in local.lists_of_objects : [for inner in inners : [
      for index, element in local.document[field][inner] : [
        for key, leaf in element : "${field}.${inner}.${index}.${key}" if jsonencode(leaf) != jsonencode(local.spec[field][inner][index][key])
      ] if can(keys(element))
    ]]]),
  )
}
