#!/usr/bin/python3
"""Rewrites Kubernetes manifests for `podman kube play` 4.3 on a test machine.

Podman 4.3 mounts a Secret's files base64-encoded (its values are never
decoded), so each secret volume becomes a hostPath volume on a folder holding
the files `kubectl create secret` would have made (SECRETS_DIR/<secretName>/).
Everything else is left as written. Usage:
    podman_manifests.py SECRETS_DIR MANIFEST... > played.yaml
"""
import sys

import yaml


def rewrite(document, secrets_dir):
    spec = document.get("spec", {}).get("template", {}).get("spec")
    for volume in (spec or {}).get("volumes", []):
        secret = volume.pop("secret", None)
        if secret is not None:
            volume["hostPath"] = {
                "path": f"{secrets_dir}/{secret['secretName']}",
                "type": "Directory",
            }
    return document


def main():
    if len(sys.argv) < 3:
        sys.exit(__doc__)
    documents = []
    for path in sys.argv[2:]:
        with open(path, encoding="utf-8") as f:
            documents += [d for d in yaml.safe_load_all(f) if d]
    yaml.safe_dump_all([rewrite(d, sys.argv[1]) for d in documents], sys.stdout, sort_keys=False)


if __name__ == "__main__":
    main()
