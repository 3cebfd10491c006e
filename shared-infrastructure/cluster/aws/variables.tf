variable "region" {
  type        = string
  description = "AWS region of the cluster."
  default     = "eu-west-1"
}

variable "cluster_name" {
  type        = string
  description = "EKS cluster name (also names the VPC)."
  default     = "llm-tenants"

  validation {
    condition     = can(regex("^[a-z][-a-z0-9]{0,37}$", var.cluster_name))
    error_message = "cluster_name: lower-case letters, digits and '-', starting with a letter, at most 38 characters."
  }
}

variable "kubernetes_version" {
  type        = string
  description = "EKS Kubernetes version."
  default     = "1.34"
}

variable "vpc_cidr" {
  type        = string
  description = "CIDR of the VPC; split into three private and three public subnets."
  default     = "10.40.0.0/16"

  validation {
    condition     = can(cidrhost(var.vpc_cidr, 0))
    error_message = "vpc_cidr: must be a valid CIDR block."
  }
}

variable "system_nodes" {
  type = object({
    instance_type = string
    min_size      = number
    max_size      = number
  })
  description = "Node group for the platform and tenant proxies."
  default     = { instance_type = "m6i.large", min_size = 2, max_size = 6 }

  validation {
    condition     = var.system_nodes.min_size >= 1 && var.system_nodes.max_size >= var.system_nodes.min_size
    error_message = "system_nodes: need min_size >= 1 and max_size >= min_size."
  }
}

variable "gpu_nodes" {
  type = object({
    instance_type = string
    min_size      = number
    max_size      = number
  })
  description = "GPU node group for the vLLM pool (tainted nvidia.com/gpu, labelled nvidia.com/gpu.present=true). Each node must fit one vLLM Pod: the platform's default requests 4 CPUs, 24 GiB and one GPU, which a g5.2xlarge (8 vCPUs, 32 GiB, one A10G) fits and a g5.xlarge (16 GiB) does not."
  default     = { instance_type = "g5.2xlarge", min_size = 1, max_size = 2 }

  validation {
    condition     = var.gpu_nodes.min_size >= 0 && var.gpu_nodes.max_size >= var.gpu_nodes.min_size
    error_message = "gpu_nodes: need min_size >= 0 and max_size >= min_size."
  }
}

variable "nvidia_device_plugin_version" {
  type        = string
  description = "Version of NVIDIA's k8s-device-plugin Helm chart on the GPU nodes."
  default     = "0.17.1"
}
