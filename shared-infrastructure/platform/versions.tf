terraform {
  required_version = ">= 1.9"

  required_providers {
    kubectl = {
      source  = "gavinbunney/kubectl"
      version = "~> 1.19"
    }
  }

  backend "local" {}
}
