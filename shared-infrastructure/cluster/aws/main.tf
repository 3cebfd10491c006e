# Optional: an EKS cluster with a VPC for users who have no cluster yet. Apply it once, then
# apply shared-infrastructure/platform and the tenants against it. Not applied in our tests
# (no AWS here); `terraform fmt -check` runs on it in CI.
#
# What the platform needs from it: a GPU node group whose nodes fit one vLLM Pod (4 CPUs, 24 GiB
# and one GPU by default, var.vllm in the platform root) with NVIDIA's driver (the AL2023 NVIDIA
# AMI) and device plugin (which advertises nvidia.com/gpu), and a default StorageClass backed by
# the EBS CSI driver (with its IAM role) so the ledger's, Prometheus's and every tenant's
# PersistentVolumeClaims are bound.

provider "aws" {
  region = var.region
}

# Both talk to the new cluster with a token from the AWS CLI (as `aws eks update-kubeconfig` does).
provider "kubernetes" {
  host                   = module.eks.cluster_endpoint
  cluster_ca_certificate = base64decode(module.eks.cluster_certificate_authority_data)
  exec {
    api_version = "client.authentication.k8s.io/v1beta1"
    command     = "aws"
    args        = local.eks_token_args
  }
}

provider "helm" {
  kubernetes {
    host                   = module.eks.cluster_endpoint
    cluster_ca_certificate = base64decode(module.eks.cluster_certificate_authority_data)
    exec {
      api_version = "client.authentication.k8s.io/v1beta1"
      command     = "aws"
      args        = local.eks_token_args
    }
  }
}

data "aws_availability_zones" "available" {
  state = "available"
}

locals {
  zones          = slice(data.aws_availability_zones.available.names, 0, 3)
  eks_token_args = ["eks", "get-token", "--cluster-name", module.eks.cluster_name, "--region", var.region]
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
    aws-ebs-csi-driver     = { service_account_role_arn = module.ebs_csi_irsa.iam_role_arn }
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
      # EKS ships no AL2 GPU AMI for Kubernetes 1.33 and later: AL2023 with NVIDIA's driver and toolkit.
      ami_type       = "AL2023_x86_64_NVIDIA"
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

# The EBS CSI driver's controller creates and attaches volumes with this role (IRSA).
module "ebs_csi_irsa" {
  source  = "terraform-aws-modules/iam/aws//modules/iam-role-for-service-accounts-eks"
  version = "~> 5.48"

  role_name             = "${var.cluster_name}-ebs-csi"
  attach_ebs_csi_policy = true
  oidc_providers = {
    main = {
      provider_arn               = module.eks.oidc_provider_arn
      namespace_service_accounts = ["kube-system:ebs-csi-controller-sa"]
    }
  }
  tags = local.tags
}

# The default StorageClass: encrypted gp3 volumes, bound where the Pod is scheduled.
resource "kubernetes_storage_class_v1" "gp3" {
  metadata {
    name        = "gp3"
    annotations = { "storageclass.kubernetes.io/is-default-class" = "true" }
  }
  storage_provisioner    = "ebs.csi.aws.com"
  reclaim_policy         = "Delete"
  volume_binding_mode    = "WaitForFirstConsumer"
  allow_volume_expansion = true
  parameters             = { type = "gp3", encrypted = "true" }

  depends_on = [module.eks]
}

# NVIDIA's device plugin advertises the GPUs as nvidia.com/gpu, which the vLLM Pods request. It runs
# on the GPU nodes only (their label and taint, see the gpu node group).
resource "helm_release" "nvidia_device_plugin" {
  name             = "nvidia-device-plugin"
  repository       = "https://nvidia.github.io/k8s-device-plugin"
  chart            = "nvidia-device-plugin"
  version          = var.nvidia_device_plugin_version
  namespace        = "nvidia-device-plugin"
  create_namespace = true

  values = [yamlencode({
    nodeSelector = { "nvidia.com/gpu.present" = "true" }
    tolerations  = [{ key = "nvidia.com/gpu", operator = "Exists", effect = "NoSchedule" }]
  })]

  depends_on = [module.eks]
}
