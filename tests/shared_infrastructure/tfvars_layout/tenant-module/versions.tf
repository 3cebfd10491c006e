terraform {
  required_version = ">= 1.9" # validation blocks that refer to other variables

  required_providers {
    kubectl = {
      source  = "gavinbunney/kubectl"
      version = "~> 1.19"
    }
  }
}
