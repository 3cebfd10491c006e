# Optional: an EKS cluster with a VPC for users who have no cluster yet. Apply it once, then
# apply shared-infrastructure/platform and the tenants against it. Not applied in our tests
# (no AWS here); `terraform fmt -check` runs on it in CI.

provider "aws" {
  region = var.region
}

data "aws_availability_zones" "available" {
  state = "available"
}

locals {
  zones = slice(data.aws_availability_zones.available.names, 0, 3)
  tags = {
    "app.kubernetes.io/part-of" = "llm-tenants"
    "managed-by"                = "terraform"
  }
}

module "vpc" {
  source  = "terraform-aws-modules/vpc/aws"
  version = "~> 5.13"

  name            = var.cluster_name
  cidr            = var.vpc_cidr
  azs             = local.zones
  private_subnets = [for index in range(3) : cidrsubnet(var.vpc_cidr, 4, index)]
  public_subnets  = [for index in range(3) : cidrsubnet(var.vpc_cidr, 8, 48 + index)]

  enable_nat_gateway = true
  single_nat_gateway = true

  public_subnet_tags  = { "kubernetes.io/role/elb" = 1 }
  private_subnet_tags = { "kubernetes.io/role/internal-elb" = 1 }
  tags                = local.tags
}

module "eks" {
  source  = "terraform-aws-modules/eks/aws"
  version = "~> 20.24"

  cluster_name                             = var.cluster_name
  cluster_version                          = var.kubernetes_version
  vpc_id                                   = module.vpc.vpc_id
  subnet_ids                               = module.vpc.private_subnets
  cluster_endpoint_public_access           = true
  enable_cluster_creator_admin_permissions = true

  cluster_addons = {
    coredns                = {}
    kube-proxy             = {}
    vpc-cni                = { configuration_values = jsonencode({ enableNetworkPolicy = "true" }) }
    aws-ebs-csi-driver     = {}
    eks-pod-identity-agent = {}
  }

  eks_managed_node_groups = {
    system = {
      instance_types = [var.system_nodes.instance_type]
      min_size       = var.system_nodes.min_size
      max_size       = var.system_nodes.max_size
      desired_size   = var.system_nodes.min_size
    }
    gpu = {
      ami_type       = "AL2_x86_64_GPU"
      instance_types = [var.gpu_nodes.instance_type]
      min_size       = var.gpu_nodes.min_size
      max_size       = var.gpu_nodes.max_size
      desired_size   = var.gpu_nodes.min_size
      labels         = { "nvidia.com/gpu.present" = "true" }
      taints = {
        gpu = { key = "nvidia.com/gpu", value = "true", effect = "NO_SCHEDULE" }
      }
    }
  }

  tags = local.tags
}
