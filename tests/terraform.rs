//! Rendered Terraform: parses as HCL, passes `terraform fmt -check`, and holds what each cloud needs.
