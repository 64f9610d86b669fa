"""Deployment files read without the platforms: Dockerfiles, build contexts, Kubernetes
manifests and API Gateway events, for the shipping chapters (7-9) and their graders.

Introduced in Chapter 7.
"""
