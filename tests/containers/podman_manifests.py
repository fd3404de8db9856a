#!/usr/bin/python3
"""Rewrites Kubernetes manifests for `podman kube play` 4.3 on a test machine.

Podman 4.3 mounts a Secret's files base64-encoded (its values are never
decoded), so each secret volume becomes a hostPath volume on a folder holding
the files `kubectl create secret` would have made (SECRETS_DIR/<secretName>/),
and an environment variable taken from a Secret (secretKeyRef) gets the value
of the file SECRETS_DIR/<name>/<key>. Podman plays one replica of a
Deployment, so a Deployment of N replicas becomes N Deployments of one,
named <name>-1 to <name>-N; podman publishes every containerPort on the
host, where two copies cannot both have it, so the copies list no ports
(the containers listen all the same). Podman has no disruption budgets:
they are left out. Everything else is left as written. Usage:
    podman_manifests.py SECRETS_DIR MANIFEST... > played.yaml
"""
import copy
import sys

import yaml


def secret_values(container, secrets_dir):
    for variable in container.get("env", []):
        reference = variable.get("valueFrom", {}).get("secretKeyRef")
        if reference is not None:
            path = f"{secrets_dir}/{reference['name']}/{reference['key']}"
            with open(path, encoding="utf-8") as f:
                variable["value"] = f.read().strip()
            del variable["valueFrom"]


def rewrite(document, secrets_dir):
    spec = document.get("spec", {}).get("template", {}).get("spec")
    for volume in (spec or {}).get("volumes", []):
        secret = volume.pop("secret", None)
        if secret is not None:
            volume["hostPath"] = {
                "path": f"{secrets_dir}/{secret['secretName']}",
                "type": "Directory",
            }
    for container in (spec or {}).get("containers", []):
        secret_values(container, secrets_dir)
    return document


def replicas_of(document):
    replicas = document.get("spec", {}).get("replicas", 1)
    if document.get("kind") != "Deployment" or replicas <= 1:
        return [document]
    copies = []
    for number in range(1, replicas + 1):
        one = copy.deepcopy(document)
        one["metadata"]["name"] = f"{document['metadata']['name']}-{number}"
        one["spec"]["replicas"] = 1
        for container in one["spec"]["template"]["spec"]["containers"]:
            container.pop("ports", None)
        copies.append(one)
    return copies


def main():
    if len(sys.argv) < 3:
        sys.exit(__doc__)
    documents = []
    for path in sys.argv[2:]:
        with open(path, encoding="utf-8") as f:
            documents += [d for d in yaml.safe_load_all(f) if d]
    played = []
    for document in documents:
        if document.get("kind") != "PodDisruptionBudget":
            played += replicas_of(rewrite(document, sys.argv[1]))
    yaml.safe_dump_all(played, sys.stdout, sort_keys=False)


if __name__ == "__main__":
    main()
