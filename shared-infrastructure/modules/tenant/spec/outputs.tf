output "spec" {
  description = "The tenant spec with every default filled in (admin_group included), valid by the rules in variables.tf."
  value       = merge(var.spec, { admin_group = coalesce(var.spec.admin_group, "${var.spec.name}-admins") })

  precondition {
    condition     = length(local.unknown_fields) == 0
    error_message = "${join(", ", local.unknown_fields)}: is not a known field (check the spelling; docs/tenant-spec.md lists the fields)."
  }
  precondition {
    condition     = length(local.mistyped_fields) == 0
    error_message = "${join(", ", local.mistyped_fields)}: has the wrong JSON type (a number in quotes, a name without them, null where a value is needed): nothing is converted; docs/tenant-spec.md gives each field's type."
  }
}
