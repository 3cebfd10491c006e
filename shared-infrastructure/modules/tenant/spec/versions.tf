terraform {
  required_version = ">= 1.9" # validation blocks that refer to other variables
}
