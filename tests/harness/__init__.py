"""Test harness: the real Kubernetes control plane (with kwok fake GPU nodes) and SeaweedFS S3 on loopback."""
