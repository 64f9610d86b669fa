"""Deployment files read without the platforms: Dockerfiles, build contexts, Kubernetes
manifests and API Gateway events, for the shipping chapters (7-9) and their graders, and what
NetworkPolicies allow (Chapter 12).

Introduced in Chapter 7.
"""
