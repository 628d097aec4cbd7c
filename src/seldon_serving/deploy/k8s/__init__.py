"""SeldonDeployments on Kubernetes: what the operator applies (render), the core install, the
operator itself."""
